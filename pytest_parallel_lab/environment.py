"""The machine and interpreter a run measures on: CPUs, GIL, start method, xdist role.

Pure (no pytest): the glue works these out once at configure time and hands them on,
and :func:`describe_environment` makes the document's ``environment`` block.
"""

from __future__ import annotations

import os
import platform
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_parallel_lab import __version__
from pytest_parallel_lab.capacity import CpuCapacity, read_capacity
from pytest_parallel_lab.vocabulary import Role

if TYPE_CHECKING:
    from pytest_parallel_lab.document.records import Environment


def usable_cpus() -> int:
    """Whole CPUs this process may use: affinity, ``PYTHON_CPU_COUNT`` and a cgroup quota
    (see :mod:`pytest_parallel_lab.capacity`)."""
    return read_capacity().usable


@dataclass(frozen=True)
class XdistRun:
    """This process's part in a pytest-xdist run, worked out once."""

    role: Role = Role.PLAIN
    #: the ``-n`` worker count (0 without xdist)
    workers: int = 0
    #: ``gw0``, ... in a worker
    worker_id: str | None = None
    #: the ``--dist`` mode
    dist: str = "no"

    @classmethod
    def from_settings(
        cls,
        workerinput: Mapping[str, Any] | None,
        numprocesses: Any,
        dist: Any,
        tx: Sequence[str] = (),
    ) -> XdistRun:
        """From xdist's ``config.workerinput`` (in a worker) or its ``-n``, ``--dist`` and
        ``--tx`` options (on the controller)."""
        if workerinput is not None:
            return cls(
                Role.WORKER,
                int(workerinput.get("workercount", 1)),
                str(workerinput.get("workerid")),
                str(dist or "load"),
            )
        if dist in (None, "no"):
            return cls()
        if isinstance(numprocesses, int) and numprocesses > 0:
            return cls(Role.CONTROLLER, numprocesses, None, str(dist))
        gateways = sum(_gateways(spec) for spec in tx or ())
        return cls(Role.CONTROLLER, gateways, None, str(dist)) if gateways else cls()


def _gateways(spec: str) -> int:
    """How many workers one ``--tx`` spec starts: ``3*popen`` three, ``ssh=host`` one."""
    count, star, _ = spec.partition("*")
    return int(count) if star and count.isdigit() else 1


def gil_enabled() -> bool:
    """Whether the GIL is on in this process right now (3.13+ can turn it off)."""
    check = getattr(sys, "_is_gil_enabled", None)
    return bool(check()) if check is not None else True


def free_threaded_build() -> bool:
    """Whether the interpreter was built with ``Py_GIL_DISABLED`` (the 't' builds)."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def platform_name() -> str:
    """``platform.platform()``, without its cost on glibc Linux: there it reads the whole
    interpreter binary to find the C library's version (7 ms), which glibc tells at once."""
    uname = platform.uname()
    if uname.system == "Linux":
        try:
            libc = os.confstr("CS_GNU_LIBC_VERSION")
        except (ValueError, OSError, AttributeError):
            libc = None
        if libc and libc.startswith("glibc "):
            version = libc.split()[1]
            return f"{uname.system}-{uname.release}-{uname.machine}-with-glibc{version}"
    return platform.platform()


def describe_environment(
    *,
    pytest_version: str,
    capacity: CpuCapacity,
    xdist_workers: int = 0,
    start_method: str | None = None,
    label: str | None = None,
) -> Environment:
    """The environment block for this process, whose CPUs are *capacity*."""
    from pytest_parallel_lab.document.records import Environment  # only for a report

    return Environment(
        python_version=platform.python_version(),
        implementation=platform.python_implementation(),
        gil_enabled=gil_enabled(),
        free_threaded_build=free_threaded_build(),
        cpu_count=capacity.online,
        usable_cpus=capacity.usable,
        cpu_capacity=capacity.cpus,
        cpu_limit=capacity.limit,
        platform=platform_name(),
        machine=platform.machine(),
        pytest_version=pytest_version,
        plugin_version=__version__,
        xdist_workers=xdist_workers,
        start_method=start_method or default_start_method(),
        tox_env=os.environ.get("TOX_ENV_NAME") or None,
        label=label,
    )


def default_start_method() -> str:
    """The start method a process pool gets here when none is given.

    Only ``multiprocessing`` can change it, so while nothing in this process has
    imported that (5 ms to import, for a report that may have no pools at all), the
    answer is the platform's default, as CPython picks it.
    """
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:
        return platform_default_start_method()
    methods = multiprocessing.get_all_start_methods()
    chosen: str | None = multiprocessing.get_start_method(allow_none=True)
    return chosen or (methods[0] if methods else "none")


def platform_default_start_method(
    platform_id: str = sys.platform, version: tuple[int, int] = sys.version_info[:2]
) -> str:
    """CPython's default: spawn on Windows and macOS; on other POSIX systems fork up to
    3.13 and forkserver from 3.14."""
    if platform_id in ("win32", "darwin"):
        return "spawn"
    return "forkserver" if version >= (3, 14) else "fork"
