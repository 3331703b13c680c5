"""Backends that run tasks in worker processes: ``concurrent.futures.ProcessPoolExecutor``
(``process``) and ``multiprocessing.Pool`` (``multiprocessing``).

Tasks and their arguments are pickled to the workers. A worker that dies (``os._exit``,
a segfault) is reported with its exit code or signal; a run past the timeout kills the
pool's processes, so nothing is left behind.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.pool
import os
import signal
import threading
import time
from collections.abc import Callable

# The executor from its own module (not the concurrent.futures package's lazy, cached
# attribute): its pickled call items must be the classes of the module in sys.modules.
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from multiprocessing.process import BaseProcess
from typing import Any

from pytest_parallel_lab import timing
from pytest_parallel_lab.backends.base import (
    BatchResult,
    Work,
    collect_outcomes,
    indexed,
    run_task,
    submit_and_wait,
)
from pytest_parallel_lab.backends.errors import BackendError, WorkerCrashed, WorkloadTimeout
from pytest_parallel_lab.backends.lifetime import owner_for, tie_to_owner

#: How often a multiprocessing.Pool run is checked for dead workers (seconds).
_POOL_POLL_S = 0.05
#: How long a terminated worker may take to end before it is killed (seconds).
_TERMINATE_GRACE_S = 1.0


def describe_exit(exitcode: int | None) -> str:
    """'exit code 3' or 'signal SIGSEGV' for a process's exit code."""
    if exitcode is None:
        return "an unknown exit status"
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


def unpicklable_result_message(backend: str, exc: BaseException) -> str:
    """What to say when a task's outcome cannot travel back from a worker process."""
    return (
        f"a task's result could not be sent back from a worker of the {backend} backend "
        f"({type(exc).__name__}: {exc}). Fix: return picklable data (plain values, not locks, "
        'sockets, open files or generators), or use backend="thread"'
    )


def _exit_status(process: BaseProcess, deadline: float) -> int | None:
    """The exit code of a worker that died, waiting until *deadline* for it to be known.

    The executor's own thread reaps a broken pool's workers at the same moment; when it
    wins the race, ``exitcode`` reads None until its result is stored, so poll.
    """
    while True:
        process.join(timeout=0.05)
        code = process.exitcode
        if code is not None or timing.perf_counter() > deadline:
            return code


def guard_exit_status(process: BaseProcess) -> None:
    """Let one thread at a time read a forkserver worker's exit status.

    Under ``forkserver`` the status arrives as four bytes on the worker's sentinel pipe.
    Two threads polling at once both see the pipe readable: one reads the status, the
    other reads end-of-file and stores 255 over it ("perhaps the forkserver itself got
    killed"). Since CPython 3.15 the executor's own thread reads every worker's exit code
    when a pool breaks, at the moment this plugin (or a test's ``join``) reads it, so a
    SIGKILLed worker was reported with "exit code 255" about one time in ten. The wait
    for the pipe stays outside the lock, so a blocking ``join`` never holds up
    ``is_alive()`` in another thread.
    """
    popen: Any = getattr(process, "_popen", None)
    if popen is None or getattr(popen, "method", None) != "forkserver":
        return
    if getattr(popen, _GUARDED, False):
        return
    from multiprocessing.connection import wait

    unguarded_poll = popen.poll
    lock = threading.Lock()

    def poll(flag: int = os.WNOHANG) -> int | None:
        if flag != os.WNOHANG and popen.returncode is None:
            wait([popen.sentinel])
        with lock:
            code: int | None = unguarded_poll(os.WNOHANG)
            return code

    popen.poll = poll
    setattr(popen, _GUARDED, True)


#: Marks a worker's Popen whose exit status reads are serialized (guard_exit_status).
_GUARDED = "_pytest_parallel_lab_guarded"


def _ready_probe(item: Any) -> int:
    """Run on each worker once at start-up: its pid says the worker is ready."""
    return os.getpid()


def _context(start_method: str | None) -> Any:
    return multiprocessing.get_context(start_method)


class ProcessRunner:
    """``ProcessPoolExecutor`` with all workers started (and timed) before measuring."""

    def __init__(self, workers: int, start_method: str | None) -> None:
        self.workers = workers
        self.start_method = start_method or multiprocessing.get_start_method()
        started = timing.perf_counter()
        self.executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=_context(start_method),
            initializer=tie_to_owner,
            initargs=(owner_for(self.start_method),),
        )
        self._processes: dict[int, BaseProcess] = {}
        try:
            # One probe per worker: the executor starts processes as tasks arrive, so
            # `workers` quick tasks make it start them all.
            probes = [self.executor.submit(_ready_probe, i) for i in range(workers)]
            self._remember_processes()
            for probe in probes:
                probe.result(timeout=120)
        except BaseException:
            self.abandon()  # Ctrl-C while starting: no half-started pool stays behind
            raise
        self.startup_s = timing.perf_counter() - started

    def _remember_processes(self) -> None:
        # Kept so that a crash can be reported with the exit code: the executor
        # forgets its processes when the pool breaks.
        for pid, process in dict(getattr(self.executor, "_processes", None) or {}).items():
            guard_exit_status(process)
            self._processes[pid] = process

    @property
    def broken(self) -> bool:
        """A worker died (between items, too): the pool cannot run anything more."""
        return bool(getattr(self.executor, "_broken", False)) or any(
            not p.is_alive() for p in self._processes.values()
        )

    def run(self, work: Work, timeout: float) -> BatchResult:
        try:
            futures, wall = submit_and_wait(self.executor, work, timeout, "process")
            results = [f.result() for f in futures]
        except BrokenProcessPool:
            raise WorkerCrashed(self._crash_message()) from None
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(unpicklable_result_message("process", exc)) from None
        finally:
            self._remember_processes()
        outcomes, cpu = collect_outcomes(results)
        return BatchResult(wall, cpu, outcomes)

    def _crash_message(self) -> str:
        ended = {}
        deadline = timing.perf_counter() + 2.0  # shared: survivors must not add up
        for pid, process in self._processes.items():
            code = _exit_status(process, deadline)
            if code not in (None, 0):
                ended[pid] = code
        # The executor terminates the surviving workers of a broken pool: those
        # SIGTERMs are its doing, not the cause, unless nothing else is known.
        causes = {pid: code for pid, code in ended.items() if code != -signal.SIGTERM} or ended
        dead = [f"pid {pid} ended with {describe_exit(code)}" for pid, code in causes.items()]
        detail = "; ".join(dead) if dead else "a worker ended abruptly"
        return f"a worker process of the process backend died: {detail}"

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def abandon(self) -> None:
        self._remember_processes()
        for process in self._processes.values():
            if process.is_alive():
                process.kill()
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in self._processes.values():
            process.join(timeout=5)
            # The executor's own thread may reap the process first (its join then sees
            # no child and returns early): wait until one of them has its exit code.
            deadline = time.monotonic() + 5  # a deadline, not a measurement
            while process.exitcode is None and time.monotonic() < deadline:
                time.sleep(0.01)


class MultiprocessingPoolRunner:
    """``multiprocessing.Pool``, tasks sent with ``map`` (its own chunking)."""

    def __init__(self, workers: int, start_method: str | None) -> None:
        self.workers = workers
        self.start_method = start_method or multiprocessing.get_start_method()
        started = timing.perf_counter()
        self.pool: multiprocessing.pool.Pool = _context(start_method).Pool(
            processes=workers,
            initializer=tie_to_owner,
            initargs=(owner_for(self.start_method),),
        )
        try:
            self.pool.map(_ready_probe, range(workers), chunksize=1)
        except BaseException:
            self.abandon()
            raise
        self.startup_s = timing.perf_counter() - started

    def _workers(self) -> list[BaseProcess]:
        return list(getattr(self.pool, "_pool", []))

    def run(self, work: Work, timeout: float) -> BatchResult:
        watched = self._workers()
        for process in watched:
            # The pool's worker handler thread polls the same exit codes as this loop.
            guard_exit_status(process)
        started = timing.perf_counter()
        pending = self.pool.map_async(
            functools.partial(run_task, work.call, work.coroutine), indexed(work.items)
        )
        deadline = started + timeout
        # Pool.map never returns when a worker dies (the pool replaces the worker
        # and waits forever for the lost chunk), so watch the workers while waiting.
        while not pending.ready():
            pending.wait(_POOL_POLL_S)
            dead = [p for p in watched if p.exitcode is not None]
            if dead and not pending.ready():
                raise WorkerCrashed(
                    "a worker process of the multiprocessing backend died: "
                    + "; ".join(f"pid {p.pid} ended with {describe_exit(p.exitcode)}" for p in dead)
                )
            if timing.perf_counter() > deadline and not pending.ready():
                raise WorkloadTimeout(
                    f"the multiprocessing backend did not finish within the timeout of {timeout:g}s"
                )
        wall = timing.perf_counter() - started
        try:
            results = pending.get()
        except Exception as exc:
            raise BackendError(unpicklable_result_message("multiprocessing", exc)) from None
        outcomes, cpu = collect_outcomes(results)
        return BatchResult(wall, cpu, outcomes)

    @property
    def broken(self) -> bool:
        """The pool was terminated or closed: it cannot run anything more."""
        return getattr(self.pool, "_state", multiprocessing.pool.RUN) != multiprocessing.pool.RUN

    def close(self) -> None:
        self.pool.close()
        self.pool.join()

    def abandon(self) -> None:
        # terminate() sends SIGTERM and joins; a worker whose workload handles SIGTERM
        # would keep it waiting, so whatever is alive after a grace period is killed.
        # (Killing first is no faster: a worker killed holding the pool's queue lock
        # would hang terminate() for ever.)
        ended = threading.Event()
        inqueue = getattr(self.pool, "_inqueue", None)
        outqueue = getattr(self.pool, "_outqueue", None)
        locks = [getattr(inqueue, "_rlock", None), getattr(outqueue, "_wlock", None)]
        killer = threading.Thread(
            target=_kill_after_grace,
            args=(self._workers, locks, ended),
            name="pytest-parallel-lab-kill",
        )
        killer.daemon = True
        killer.start()
        try:
            self.pool.terminate()
            self.pool.join()
        finally:
            ended.set()


def _kill_after_grace(
    workers_now: Callable[[], list[BaseProcess]], locks: list[Any], ended: threading.Event
) -> None:
    """SIGKILL the pool's workers still alive when *ended* is not set within the grace period,
    and free the pool's queue *locks* that they held.

    ``Pool.terminate()`` first takes the task queue's read lock, which an idle worker
    holds while it waits for a task (a worker that replaced a crashed one, for example):
    that wait never ends. Killed, the worker cannot release it, so it is released here
    (a multiprocessing Lock may be released by any process).
    """
    if ended.wait(_TERMINATE_GRACE_S):
        return
    workers = workers_now()  # the pool may have replaced a dead worker since
    for process in workers:
        if process.is_alive():
            process.kill()
    for process in workers:
        process.join(timeout=1)
    for lock in locks:
        if lock is None:
            continue
        with contextlib.suppress(ValueError, OSError):
            lock.acquire(False)
            lock.release()
