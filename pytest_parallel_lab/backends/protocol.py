"""What a backend is: the protocols a backend and its runner implement.

Kept apart from the unit of work (``base.py``) so that registering backends, which
every pytest run does, imports nothing else: the dataclasses and the task functions
load with the first runner. The errors a runner raises are in ``errors.py`` (and
importable from here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pytest_parallel_lab.backends.errors import BackendError, WorkerCrashed, WorkloadTimeout

if TYPE_CHECKING:
    from pytest_parallel_lab.backends.base import BatchResult, Work

__all__ = [
    "Backend",
    "BackendError",
    "Runner",
    "WorkerCrashed",
    "WorkloadTimeout",
    "in_all",
    "pickler",
    "pickles_tasks",
]


@runtime_checkable
class Runner(Protocol):
    """A started pool of workers (or the serial loop), reused across measurements."""

    #: Seconds it took to start the pool until every worker was ready.
    startup_s: float

    def run(self, work: Work, timeout: float) -> BatchResult:
        """Run every task of *work* once; raise WorkloadTimeout or WorkerCrashed."""
        ...

    def close(self) -> None:
        """Shut the pool down and wait for its workers (the normal end)."""
        ...

    def abandon(self) -> None:
        """Tear the pool down after a timeout or crash without waiting for stuck tasks."""
        ...


@runtime_checkable
class Backend(Protocol):
    """A concurrency model the marker can name. Register one through the
    ``pytest_parallel_lab_register_backends`` hook."""

    @property
    def name(self) -> str:
        """The name used in ``@pytest.mark.parallel(backend=...)`` and in test ids."""
        ...

    @property
    def description(self) -> str:
        """One line for the docs."""
        ...

    @property
    def uses_processes(self) -> bool:
        """True when tasks run in other processes: arguments are pickled, a start method applies."""
        ...

    def unavailable_reason(self) -> str | None:
        """None when the backend works on this interpreter, else why not."""
        ...

    def start(self, workers: int, start_method: str | None) -> Runner:
        """Start a runner with *workers* workers."""
        ...


def pickles_tasks(backend: Backend) -> bool:
    """Whether *backend* pickles each task's callable, arguments and result: an optional
    ``pickles_tasks`` attribute (subinterpreters pickle without processes), else
    ``uses_processes``."""
    return bool(getattr(backend, "pickles_tasks", backend.uses_processes))


def in_all(backend: Backend) -> bool:
    """Whether ``backend="all"`` includes *backend* where it is available (an optional
    ``in_all`` attribute, default True). Every built-in is in "all"; a third-party backend
    sets ``in_all = False`` when it must be named to run (one that rents machines, say)."""
    return bool(getattr(backend, "in_all", True))


def pickler(backend: Backend) -> str:
    """Which pickler a pickling backend sends tasks with: ``"pickle"`` (the
    multiprocessing one, the default) or ``"cloudpickle"`` (an optional ``pickler``
    attribute; lambdas and closures travel)."""
    return str(getattr(backend, "pickler", "pickle"))
