"""Backends that run tasks inside the pytest process: serial, thread and asyncio.

Every thread started here is a *daemon* thread named ``pytest-parallel-lab-*``: when
a task hangs past its timeout the thread is abandoned, and a daemon thread never
keeps the interpreter from exiting. ``ThreadPoolExecutor`` normally starts
non-daemon workers that ``concurrent.futures`` joins at exit; its threads inherit
the daemon flag of the thread that submits the first tasks, so the pool is warmed
up from a daemon thread (see :class:`ThreadRunner`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable
from concurrent.futures import thread as futures_thread
from typing import Any, TypeVar

from pytest_parallel_lab import timing
from pytest_parallel_lab.backends.base import (
    BatchResult,
    TaskOutcome,
    Work,
    captures,
    collect_outcomes,
    error_from_exception,
    indexed,
    run_task,
    submit_and_wait,
    worker_name,
)
from pytest_parallel_lab.backends.errors import WorkloadTimeout

T = TypeVar("T")
THREAD_PREFIX = "pytest-parallel-lab"
#: Watchers of the batches the thread backend runs on more than one worker: each is
#: called before a batch with its number of tasks and returns what to call once the
#: batch ended. Empty unless ``--parallel-safety`` watches for module globals that
#: tasks of one test write while they run at once (``safety/hooks.py``).
THREAD_BATCH_WATCHERS: list[Callable[[int], Callable[[], None]]] = []


def start_daemon(target: Callable[[], None], name: str) -> threading.Thread:
    """Start *target* in a named daemon thread."""
    thread = threading.Thread(target=target, name=f"{THREAD_PREFIX}-{name}", daemon=True)
    thread.start()
    return thread


class DaemonCaller:
    """One daemon thread that runs calls handed to it, waited for with a timeout."""

    def __init__(self, name: str) -> None:
        self._requests: queue.SimpleQueue[
            tuple[Callable[[], Any], concurrent.futures.Future[Any]] | None
        ] = queue.SimpleQueue()
        self.thread = start_daemon(self._serve, name)

    def _serve(self) -> None:
        while True:
            request = self._requests.get()
            if request is None:
                return
            function, future = request
            try:
                future.set_result(function())
            except BaseException as exc:
                future.set_exception(exc)

    def call(self, function: Callable[[], T], timeout: float, what: str) -> T:
        """Run *function* in the thread; WorkloadTimeout after *timeout* seconds."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._requests.put((function, future))
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise WorkloadTimeout(
                f"{what} did not finish within the timeout of {timeout:g}s"
            ) from None

    def stop(self, wait: bool = True) -> None:
        """Ask the thread to end; join it unless it is being abandoned."""
        self._requests.put(None)
        if wait:
            self.thread.join(timeout=10)


class SerialRunner:
    """The baseline: the tasks one after another in one (daemon) thread, timed inside it."""

    def __init__(self) -> None:
        started = timing.perf_counter()
        self._caller = DaemonCaller("serial")
        self._loop: asyncio.AbstractEventLoop | None = None
        self.startup_s = timing.perf_counter() - started

    def run(self, work: Work, timeout: float) -> BatchResult:
        return self._caller.call(lambda: self._run_here(work), timeout, "the serial run")

    def _run_here(self, work: Work) -> BatchResult:
        tasks = indexed(work.items)
        if work.coroutine:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(_await_one_by_one(work, tasks))
        cpu_started = timing.thread_time()
        started = timing.perf_counter()
        outcomes = [run_task(work.call, False, task) for task in tasks]
        wall = timing.perf_counter() - started
        return BatchResult(wall, timing.thread_time() - cpu_started, tuple(outcomes))

    def close(self) -> None:
        if self._loop is not None:
            loop = self._loop
            self._caller.call(loop.close, 10, "closing the serial event loop")
        self._caller.stop()

    def abandon(self) -> None:
        self._caller.stop(wait=False)


async def _await_one_by_one(work: Work, tasks: list[tuple[int, Any]]) -> BatchResult:
    cpu_started = timing.thread_time()
    started = timing.perf_counter()
    outcomes = []
    for index, item in tasks:
        try:
            value = await work.call(item)
        except BaseException as exc:
            if not captures(exc):
                raise
            outcomes.append(TaskOutcome(index, error=error_from_exception(index, exc)))
        else:
            outcomes.append(TaskOutcome(index, value=value))
    wall = timing.perf_counter() - started
    return BatchResult(wall, timing.thread_time() - cpu_started, tuple(outcomes))


class ThreadRunner:
    """``concurrent.futures.ThreadPoolExecutor`` with every worker started up front."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        started = timing.perf_counter()
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=f"{THREAD_PREFIX}-thread"
        )
        # Submitting from a daemon thread makes the executor's threads daemons; the
        # barrier keeps every worker busy so that all `workers` threads get started.
        barrier = threading.Barrier(workers + 1)
        warm = start_daemon(lambda: self._start_all(barrier), "thread-start")
        try:
            barrier.wait(timeout=60)
        except BaseException:
            barrier.abort()  # Ctrl-C while starting: the waiting workers are let go
            self.abandon()
            raise
        warm.join()
        self.startup_s = timing.perf_counter() - started

    def _start_all(self, barrier: threading.Barrier) -> None:
        for _ in range(self.workers):
            self.executor.submit(barrier.wait, 60)

    def run(self, work: Work, timeout: float) -> BatchResult:
        watching = THREAD_BATCH_WATCHERS if self.workers > 1 else ()
        ends = [watch(len(work.items)) for watch in watching]
        try:
            futures, wall = submit_and_wait(self.executor, work, timeout, "thread")
        finally:
            for end in ends:
                end()
        outcomes, cpu = collect_outcomes([f.result() for f in futures])
        return BatchResult(wall, cpu, outcomes)

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def abandon(self) -> None:
        abandon_thread_executor(self.executor)


def abandon_thread_executor(executor: concurrent.futures.ThreadPoolExecutor) -> None:
    """Shut *executor* down without waiting. concurrent.futures joins its workers at
    interpreter exit; a stuck one would hang pytest's exit, so they are forgotten
    (they are daemon threads, see ``start_daemon``)."""
    executor.shutdown(wait=False, cancel_futures=True)
    registry = getattr(futures_thread, "_threads_queues", None)
    for thread in list(getattr(executor, "_threads", ())):
        if registry is not None:
            registry.pop(thread, None)


class AsyncioRunner:
    """One event loop in a daemon thread; tasks gathered, at most ``workers`` at once."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        started = timing.perf_counter()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()

        self.thread = start_daemon(serve, "asyncio")
        ready.wait(timeout=60)
        self.startup_s = timing.perf_counter() - started

    def run(self, work: Work, timeout: float) -> BatchResult:
        future = asyncio.run_coroutine_threadsafe(self._gather(work), self.loop)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise WorkloadTimeout(
                f"the asyncio backend did not finish within the timeout of {timeout:g}s"
            ) from None

    async def _gather(self, work: Work) -> BatchResult:
        limit = asyncio.Semaphore(self.workers)

        async def one(index: int, item: Any) -> TaskOutcome:
            async with limit:
                started = timing.perf_counter()
                try:
                    # A synchronous call blocks the loop here: nothing else can run,
                    # which is exactly what the measurement should show.
                    value = work.call(item)
                    if work.coroutine:
                        value = await value
                except BaseException as exc:
                    if not captures(exc):
                        raise
                    return TaskOutcome(index, error=error_from_exception(index, exc))
                return TaskOutcome(
                    index, value=value, worker=worker, started=started, ended=timing.perf_counter()
                )

        worker = worker_name()
        cpu_started = timing.thread_time()
        started = timing.perf_counter()
        outcomes = await asyncio.gather(*(one(i, item) for i, item in indexed(work.items)))
        wall = timing.perf_counter() - started
        return BatchResult(wall, timing.thread_time() - cpu_started, tuple(outcomes))

    def close(self) -> None:
        self._stop(wait=True)

    def abandon(self) -> None:
        self._stop(wait=False)

    def _stop(self, wait: bool) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        if wait:
            self.thread.join(timeout=10)
            if not self.thread.is_alive():
                self.loop.close()
