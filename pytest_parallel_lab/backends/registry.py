"""The backend registry and the cache of started runners."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_parallel_lab.backends.protocol import Backend, Runner, in_all


class BackendRegistry:
    """Backends by name, filled by the ``pytest_parallel_lab_register_backends`` hook."""

    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}
        #: the reasons, asked of the backends once (some probe imports) and only when needed
        self._unavailable: dict[str, str] | None = None

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
        self._unavailable = None

    def get(self, name: str) -> Backend | None:
        return self._backends.get(name)

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._backends)

    def unavailable(self) -> dict[str, str]:
        """Why each backend that cannot work on this interpreter cannot, by name (asked
        of the backends on the first call after a registration)."""
        if self._unavailable is None:
            reasons = {}
            for name, backend in self._backends.items():
                reason = backend.unavailable_reason()
                if reason is not None:
                    reasons[name] = reason
            self._unavailable = reasons
        return dict(self._unavailable)

    def not_in_all(self) -> list[str]:
        """The backends ``backend="all"`` leaves out (a cluster, an optional extra)."""
        return [name for name, backend in self._backends.items() if not in_all(backend)]

    def __iter__(self) -> Iterator[Backend]:
        return iter(self._backends.values())


#: The fewest spare workers of each kind (processes, threads) the cache may keep
#: beyond the largest single request; :class:`RunnerCache` takes the usable CPUs when
#: there are more.
MIN_SPARE_WORKERS = 8


@dataclass
class StartedRunner:
    """A cached runner and whether it has served an item before."""

    runner: Runner
    #: how many workers it has, and whether they are processes (else threads)
    workers: int = 1
    processes: bool = False
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

    The footprint is bounded: the live workers of each kind (processes, threads) never
    exceed the largest single request of that kind plus ``spare`` (the larger of
    :data:`MIN_SPARE_WORKERS` and the usable CPUs). Before a runner starts, the least
    recently used ones are closed until the new one fits; the runners of the
    measurement in hand are kept.
    """

    spare: int = MIN_SPARE_WORKERS
    #: The runners by key, least recently used first.
    _runners: dict[tuple[Any, ...], StartedRunner] = field(default_factory=dict)
    _largest: dict[bool, int] = field(default_factory=dict)

    def get(
        self,
        backend: Backend,
        workers: int,
        start_method: str | None,
        keep: Sequence[StartedRunner] = (),
    ) -> StartedRunner:
        """The runner for this request, started unless one is cached; *keep* are the
        runners the caller holds for the same measurement (never closed to make room)."""
        key = (backend.name, workers, start_method if backend.uses_processes else None)
        self._close_fork_unsafe(key, keep)
        started = self._runners.pop(key, None)
        if started is not None and getattr(started.runner, "broken", False):
            # A worker died since the last item (killed from outside, OOM): start afresh
            # rather than fail an innocent item.
            started.runner.abandon()
            started = None
        if started is None:
            processes = backend.uses_processes
            self._make_room(workers, processes, keep)
            started = StartedRunner(
                backend.start(workers, start_method), workers=workers, processes=processes
            )
        self._runners[key] = started  # now the most recently used
        started.uses += 1
        return started

    def _close_fork_unsafe(self, key: tuple[Any, ...], keep: Sequence[StartedRunner]) -> None:
        """Close cached runners that make a later fork crash (subinterpreters on
        CPython 3.14), unless the caller asked for one of them or holds it: the next
        runner may fork (a process pool with fork, or its lazily started workers)."""
        for other, started in list(self._runners.items()):
            unsafe = getattr(started.runner, "fork_unsafe", False)
            if unsafe and other != key and not any(started is k for k in keep):
                del self._runners[other]
                _close(started)

    def live_workers(self, processes: bool) -> int:
        """The workers of the cached runners that are processes (or threads)."""
        return sum(s.workers for s in self._runners.values() if s.processes is processes)

    def _make_room(self, workers: int, processes: bool, keep: Sequence[StartedRunner]) -> None:
        largest = self._largest[processes] = max(self._largest.get(processes, 0), workers)
        limit = largest + self.spare
        for key, started in list(self._runners.items()):
            if self.live_workers(processes) + workers <= limit:
                return
            if started.processes is processes and not any(started is k for k in keep):
                del self._runners[key]
                _close(started)

    def discard(self, started: StartedRunner) -> None:
        """Abandon a broken runner (after a timeout or crash) and forget it."""
        for key, value in list(self._runners.items()):
            if value is started:
                del self._runners[key]
        started.runner.abandon()

    def close_all(self, wait: bool = True) -> None:
        """Close every runner (*wait*: let idle workers finish; else tear them down at
        once, as after Ctrl-C); one that fails to close is abandoned instead."""
        runners, self._runners = list(self._runners.values()), {}
        for index, started in enumerate(runners):
            if not wait:
                started.runner.abandon()
                continue
            try:
                _close(started)
            except BaseException:
                # A second Ctrl-C while closing: the rest go down without waiting.
                for rest in runners[index + 1 :]:
                    rest.runner.abandon()
                raise


def _close(started: StartedRunner) -> None:
    """Close a runner; abandon it when closing fails (Ctrl-C re-raised after)."""
    try:
        started.runner.close()
    except Exception:
        started.runner.abandon()
    except BaseException:
        started.runner.abandon()
        raise
