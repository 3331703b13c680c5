"""xdist's ``--tx`` gateway specs, as the prediction sees them: local or remote workers.

Pure. ``3*popen`` is three local workers; ``ssh=host``, ``socket=host:port``, a
``vagrant_ssh=`` box or a popen ``via=`` a proxy is a remote gateway, whose start-up
the user gives (``--parallel-predict-tx-startup``) and whose CPU is its own.
"""

from __future__ import annotations

from collections.abc import Iterable


def spec_workers(spec: str) -> tuple[int, bool]:
    """How many workers one ``--tx`` spec starts, and whether they are remote."""
    count, star, rest = spec.partition("*")
    if star and count.strip().isdigit():
        workers, spec = int(count), rest
    else:
        workers = 1
    parts = [part.strip() for part in spec.split("//")]
    local = "popen" in parts and not any(part.startswith("via=") for part in parts)
    return workers, not local


def count_gateways(specs: Iterable[str]) -> tuple[int, int]:
    """The local and the remote workers of ``--tx`` *specs*."""
    local = remote = 0
    for spec in specs:
        workers, is_remote = spec_workers(spec)
        if is_remote:
            remote += workers
        else:
            local += workers
    return local, remote
