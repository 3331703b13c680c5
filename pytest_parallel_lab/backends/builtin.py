"""The built-in backends, registered through the same hook a third-party plugin uses."""

from __future__ import annotations

import importlib

from pytest_parallel_lab.backends.protocol import Backend, Runner

# The runner modules are imported when a backend starts: a run without marked tests
# does not pay for importing asyncio and the process pools.


def _process_support() -> str | None:
    """Why worker processes cannot be used here, or None when they can."""
    try:
        importlib.import_module("_multiprocessing")
        importlib.import_module("multiprocessing.synchronize")  # needs sem_open
    except ImportError as exc:
        return f"this interpreter cannot start worker processes ({exc})"
    import multiprocessing

    if not multiprocessing.get_all_start_methods():
        return "this platform has no multiprocessing start method"
    return None


class SerialBackend:
    name = "serial"
    description = "the tasks one after another in one thread (the baseline)"
    uses_processes = False

    def unavailable_reason(self) -> str | None:
        return None

    def start(self, workers: int, start_method: str | None) -> Runner:
        from pytest_parallel_lab.backends.inprocess import SerialRunner

        return SerialRunner()


class ThreadBackend:
    name = "thread"
    description = "concurrent.futures.ThreadPoolExecutor"
    uses_processes = False

    def unavailable_reason(self) -> str | None:
        return None

    def start(self, workers: int, start_method: str | None) -> Runner:
        from pytest_parallel_lab.backends.inprocess import ThreadRunner

        return ThreadRunner(workers)


class ProcessBackend:
    name = "process"
    description = "concurrent.futures.ProcessPoolExecutor"
    uses_processes = True

    def unavailable_reason(self) -> str | None:
        return _process_support()

    def start(self, workers: int, start_method: str | None) -> Runner:
        from pytest_parallel_lab.backends.processes import ProcessRunner

        return ProcessRunner(workers, start_method)


class MultiprocessingBackend:
    name = "multiprocessing"
    description = "multiprocessing.Pool (map)"
    uses_processes = True

    def unavailable_reason(self) -> str | None:
        return _process_support()

    def start(self, workers: int, start_method: str | None) -> Runner:
        from pytest_parallel_lab.backends.processes import MultiprocessingPoolRunner

        return MultiprocessingPoolRunner(workers, start_method)


class AsyncioBackend:
    name = "asyncio"
    description = "one asyncio event loop, tasks gathered, at most `workers` at once"
    uses_processes = False

    def unavailable_reason(self) -> str | None:
        return None

    def start(self, workers: int, start_method: str | None) -> Runner:
        from pytest_parallel_lab.backends.inprocess import AsyncioRunner

        return AsyncioRunner(workers)


class InterpreterBackend:
    name = "interpreter"
    description = "concurrent.futures.InterpreterPoolExecutor (3.14+, one interpreter per worker)"
    uses_processes = False
    #: the callable, its arguments and its result are pickled between interpreters
    pickles_tasks = True

    def unavailable_reason(self) -> str | None:
        from pytest_parallel_lab.backends.interpreters import interpreter_pool_support

        return interpreter_pool_support()

    def start(self, workers: int, start_method: str | None) -> Runner:
        from pytest_parallel_lab.backends.interpreters import InterpreterRunner

        return InterpreterRunner(workers)


class DaskBackend:
    """Dask: a ``LocalCluster`` the session starts, or the cluster at *scheduler*."""

    name = "dask"
    description = (
        "distributed.Client.map(pure=False) on a LocalCluster or --parallel-dask-scheduler"
    )
    uses_processes = True
    #: In "all" where ``distributed`` is installed: the LocalCluster's start-up (seconds)
    #: is paid once per session, reused by every item and reported apart from dispatch.
    #: Dask pickles with cloudpickle (lambdas and closures travel)
    pickler = "cloudpickle"

    def __init__(self, scheduler: str | None = None) -> None:
        self.scheduler = scheduler

    def unavailable_reason(self) -> str | None:
        from pytest_parallel_lab.backends.dask_cluster import dask_support

        return dask_support()

    def start(self, workers: int, start_method: str | None) -> Runner:
        from pytest_parallel_lab.backends.dask_cluster import DaskRunner

        return DaskRunner(workers, self.scheduler)


class LokyBackend:
    """loky (joblib's process pool): cloudpickle, so lambdas and closures travel."""

    name = "loky"
    description = "loky.ProcessPoolExecutor (joblib's pool; cloudpickle: lambdas travel)"
    uses_processes = True
    pickler = "cloudpickle"

    def unavailable_reason(self) -> str | None:
        from pytest_parallel_lab.backends.loky_pool import loky_support

        return loky_support()

    def start(self, workers: int, start_method: str | None) -> Runner:
        from pytest_parallel_lab.backends.loky_pool import LokyRunner

        return LokyRunner(workers)


def builtin_backends(dask_scheduler: str | None = None) -> tuple[Backend, ...]:
    """The built-in backends, the dask one pointed at *dask_scheduler* when given."""
    if dask_scheduler is None:
        return BUILTIN_BACKENDS
    return tuple(DaskBackend(dask_scheduler) if b.name == "dask" else b for b in BUILTIN_BACKENDS)


BUILTIN_BACKENDS: tuple[Backend, ...] = (
    SerialBackend(),
    ThreadBackend(),
    ProcessBackend(),
    MultiprocessingBackend(),
    AsyncioBackend(),
    InterpreterBackend(),
    DaskBackend(),
    LokyBackend(),
)
