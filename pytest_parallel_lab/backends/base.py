"""The unit of work a runner runs, what running it returns, and the task functions.

A *backend* (``thread``, ``process``, …) knows how to start a *runner*: a pool of
workers kept alive across measurements. A runner runs one :class:`Work` — every
task once — and returns a :class:`BatchResult` with the wall time it measured at
the right place (inside the executing thread for in-process runners, around
dispatch and collection for pools) and each task's outcome.

Task functions here are module-level so that process pools can pickle them.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_parallel_lab import timing
from pytest_parallel_lab.backends.errors import WorkloadTimeout

if TYPE_CHECKING:
    import asyncio


@dataclass(frozen=True)
class TaskError:
    """A task's exception, flattened to strings so that it crosses processes."""

    index: int
    type_name: str
    message: str
    traceback: str
    #: Set when the task asked the test framework for an outcome instead of failing:
    #: pytest's ``Skipped``, ``Failed``, ``XFailed`` or ``Exit`` (by class name).
    control: str | None = None

    @property
    def signature(self) -> tuple[str, str]:
        """What makes two errors 'the same error' (type and message)."""
        return (self.type_name, self.message)


@dataclass(frozen=True)
class TaskOutcome:
    """One task's result: its value or its error, and the CPU seconds it used."""

    index: int
    value: Any = None
    error: TaskError | None = None
    cpu_s: float = 0.0
    #: Where and when it ran: "pid:thread-name", and perf_counter start / end.
    worker: str = ""
    started: float = 0.0
    ended: float = 0.0


@dataclass(frozen=True)
class Work:
    """One measurement's workload: ``call(item)`` for each item.

    ``call`` must be picklable for process backends (a module-level function or a
    ``functools.partial`` of one). ``coroutine`` says that ``call`` returns an
    awaitable that the backend has to drive.
    """

    call: Callable[[Any], Any]
    items: tuple[Any, ...]
    coroutine: bool = False


@dataclass(frozen=True)
class BatchResult:
    """Running a :class:`Work` once: wall and CPU seconds and the per-task outcomes."""

    wall_s: float
    cpu_s: float
    outcomes: tuple[TaskOutcome, ...]

    @property
    def errors(self) -> list[TaskError]:
        """The errors of the tasks that failed, in task order."""
        return [o.error for o in self.outcomes if o.error is not None]


# --- executing tasks (module level: these cross process boundaries) --------------

_worker_state = threading.local()


def _worker_loop() -> asyncio.AbstractEventLoop:
    """The event loop of the current worker thread, created once and reused."""
    import asyncio  # only where coroutines run: asyncio is slow to import

    loop: asyncio.AbstractEventLoop | None = getattr(_worker_state, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _worker_state.loop = loop
    return loop


def captures(exc: BaseException) -> bool:
    """Whether a task turns *exc* into a :class:`TaskError`: everything but what stops
    the worker itself (an interrupt, a generator's or a task's cancellation)."""
    import asyncio

    return not isinstance(exc, (KeyboardInterrupt, GeneratorExit, asyncio.CancelledError))


def error_from_exception(index: int, exc: BaseException) -> TaskError:
    """Flatten *exc* into a :class:`TaskError` (picklable whatever the exception is).

    pytest's outcome exceptions (``pytest.skip()``, ``pytest.fail()`` in a body) are
    BaseExceptions that cannot be pickled; they are carried by class name as
    ``control`` so that the item gets that outcome under every backend.
    """
    # pytest's outcome classes say __module__ == "builtins"; their base names them.
    names = {cls.__name__ for cls in type(exc).__mro__}
    is_outcome = "OutcomeException" in names or type(exc).__name__ == "Exit"
    control = type(exc).__name__ if is_outcome else None
    return TaskError(
        index=index,
        type_name=type(exc).__qualname__,
        message=str(getattr(exc, "msg", None) or exc) if control else str(exc),
        traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        control=control,
    )


def run_task(
    call: Callable[[Any], Any], coroutine: bool, indexed_item: tuple[int, Any]
) -> TaskOutcome:
    """Run one task in the current thread: a coroutine in this worker's event loop."""
    index, item = indexed_item
    cpu_started = timing.thread_time()
    started = timing.perf_counter()
    error = None
    value = None
    try:
        value = call(item)
        if coroutine:
            value = _worker_loop().run_until_complete(value)
    except BaseException as exc:
        if not captures(exc):
            raise
        # The value may be the coroutine that raised: it must not travel back.
        value = None
        error = error_from_exception(index, exc)
    return TaskOutcome(
        index,
        value=value,
        error=error,
        cpu_s=timing.thread_time() - cpu_started,
        worker=worker_name(),
        started=started,
        ended=timing.perf_counter(),
    )


def worker_name() -> str:
    """'pid:thread-name' of the calling thread: identifies a pool worker in traces."""
    return f"{os.getpid()}:{threading.current_thread().name}"


def call_test_body(function: Callable[..., Any], kwargs: dict[str, Any], item: Any) -> Any:
    """The task of a marked test: the body with its fixture values (``item`` is the task index)."""
    return function(**kwargs)


def empty_task(item: Any) -> None:
    """A task that does nothing: its cost through a pool is the dispatch cost."""
    return


def indexed(items: Sequence[Any]) -> list[tuple[int, Any]]:
    """Pair each item with its task index."""
    return list(enumerate(items))


def submit_and_wait(
    executor: concurrent.futures.Executor, work: Work, timeout: float, backend: str
) -> tuple[list[concurrent.futures.Future[TaskOutcome]], float]:
    """Submit one task per item (as ``executor.map`` does) and wait for all of them.

    Returns the futures, all done, and the wall time from the first submission to the
    last result; raises :class:`WorkloadTimeout` when some are still running.
    """
    started = timing.perf_counter()
    futures = [
        executor.submit(run_task, work.call, work.coroutine, task) for task in indexed(work.items)
    ]
    _done, pending = concurrent.futures.wait(futures, timeout=timeout)
    wall = timing.perf_counter() - started
    if pending:
        raise WorkloadTimeout(
            f"{len(pending)} of {len(futures)} tasks under the {backend} backend did not finish "
            f"within the timeout of {timeout:g}s"
        )
    return futures, wall


def collect_outcomes(outcomes: Sequence[TaskOutcome]) -> tuple[tuple[TaskOutcome, ...], float]:
    """Outcomes in task order and their summed CPU seconds."""
    ordered = tuple(sorted(outcomes, key=lambda o: o.index))
    return ordered, sum(o.cpu_s for o in ordered)
