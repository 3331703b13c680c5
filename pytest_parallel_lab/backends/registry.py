"""The backend registry and the cache of started runners."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pytest_parallel_lab.backends.protocol import Backend, Runner


class BackendRegistry:
    """Backends by name, filled by the ``pytest_parallel_lab_register_backends`` hook."""

    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}

    def register(self, backend: Backend) -> None:
        """Add *backend*; a name can be registered once (a clash is a plugin bug)."""
        if not isinstance(backend, Backend):
            raise TypeError(
                f"{backend!r} does not implement the pytest_parallel_lab Backend protocol"
            )
        if not backend.name or not backend.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"backend name {backend.name!r} must be letters, digits, '-' or '_'")
        if backend.name in self._backends:
            raise ValueError(f"a backend named {backend.name!r} is already registered")
        self._backends[backend.name] = backend

    def get(self, name: str) -> Backend | None:
        return self._backends.get(name)

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._backends)

    def unavailable(self) -> dict[str, str]:
        """Why each backend that cannot work on this interpreter cannot, by name."""
        reasons = {}
        for name, backend in self._backends.items():
            reason = backend.unavailable_reason()
            if reason is not None:
                reasons[name] = reason
        return reasons

    def __iter__(self) -> Iterator[Backend]:
        return iter(self._backends.values())


@dataclass
class StartedRunner:
    """A cached runner and whether it has served an item before."""

    runner: Runner
    uses: int = 0
    #: the workload this runner last measured (a test id) and its wall time per run: a
    #: serial runner that just ran the same test needs no warm-up for it
    warm_for: str | None = None
    warm_wall_s: float | None = None


@dataclass
class RunnerCache:
    """Runners reused across items with the same (backend, workers, start method).

    Start-up happens outside every timed region and is reported on its own. A runner
    that timed out or crashed is abandoned and dropped, so the next item gets a fresh one.
    """

    _runners: dict[tuple[Any, ...], StartedRunner] = field(default_factory=dict)

    def get(self, backend: Backend, workers: int, start_method: str | None) -> StartedRunner:
        key = (backend.name, workers, start_method if backend.uses_processes else None)
        started = self._runners.get(key)
        if started is not None and getattr(started.runner, "broken", False):
            # A worker died since the last item (killed from outside, OOM): start afresh
            # rather than fail an innocent item.
            self.discard(started)
            started = None
        if started is None:
            started = StartedRunner(backend.start(workers, start_method))
            self._runners[key] = started
        started.uses += 1
        return started

    def discard(self, started: StartedRunner) -> None:
        """Abandon a broken runner (after a timeout or crash) and forget it."""
        for key, value in list(self._runners.items()):
            if value is started:
                del self._runners[key]
        started.runner.abandon()

    def close_all(self) -> None:
        """Close every runner; one that fails to close is abandoned instead."""
        runners, self._runners = list(self._runners.values()), {}
        for started in runners:
            try:
                started.runner.close()
            except Exception:
                started.runner.abandon()
