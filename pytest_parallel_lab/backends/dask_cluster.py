"""The ``dask`` backend: tasks sent with ``distributed.Client.map(..., pure=False)``.

By default the session starts a ``LocalCluster`` of its own (worker processes under a
nanny, one thread each, no dashboard, on 127.0.0.1), reused across items like the other
pools and closed at session end. With ``--parallel-dask-scheduler=ADDRESS`` (a
``tcp://host:port`` address or a scheduler file) the backend connects to a cluster that
someone else runs: it closes its client, and never the cluster.

``pure=False`` on every call: Dask caches the result of identical pure calls, and a
benchmark that runs the same task eight times must run it eight times.

Faults behave as for the process backends: a task that kills its worker fails the item
with Dask's ``KilledWorker`` (a local cluster gives up at the first death, not after
three); a run past the timeout cancels its futures (and a local cluster is torn down, its
worker processes killed); a value that cannot be pickled is named before anything is sent.

Only the backend's registration is imported at every pytest start; ``distributed`` (a
second to import) loads with the first dask item.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pytest_parallel_lab import timing
from pytest_parallel_lab.backends.base import (
    BatchResult,
    TaskOutcome,
    Work,
    collect_outcomes,
    indexed,
    run_task,
)
from pytest_parallel_lab.backends.errors import BackendError, WorkerCrashed, WorkloadTimeout

INSTALL_HINT = "pip install 'pytest-parallel-lab[dask]'"
#: How long connecting to a scheduler (and a local cluster's start) may take (seconds).
CONNECT_TIMEOUT_S = 10.0
START_TIMEOUT_S = 120.0
#: How long closing the client and a local cluster may take before processes are killed.
CLOSE_TIMEOUT_S = 10.0


def dask_support() -> str | None:
    """Why the dask backend cannot run here (``distributed`` not installed), else None."""
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        return f"needs the distributed package: {INSTALL_HINT}"
    return None


# --- the address of a cluster someone else runs: checked at configure time ------------


@dataclass(frozen=True)
class SchedulerAddress:
    """What ``--parallel-dask-scheduler`` names: a scheduler address or a scheduler file."""

    given: str
    #: ``tcp://host:port`` (read from the file for a scheduler file)
    address: str
    scheduler_file: str | None = None


def resolve_scheduler(given: str) -> SchedulerAddress:
    """Read *given*: an address (``tcp://host:8786``, ``host:8786``) or the path of a
    scheduler file (the JSON ``dask scheduler --scheduler-file`` writes); ValueError
    saying what is wrong."""
    text = given.strip()
    if "://" not in text and (
        os.path.sep in text or text.endswith(".json") or os.path.isfile(text)
    ):
        try:
            with open(text, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as exc:
            raise ValueError(f"cannot read the scheduler file ({exc.strerror or exc})") from None
        except ValueError:
            raise ValueError("the scheduler file is not JSON") from None
        address = data.get("address") if isinstance(data, dict) else None
        if not isinstance(address, str) or not address:
            raise ValueError("the scheduler file has no 'address'")
        return SchedulerAddress(given, _checked_address(address), scheduler_file=text)
    return SchedulerAddress(given, _checked_address(text if "://" in text else f"tcp://{text}"))


def _checked_address(address: str) -> str:
    parts = urlsplit(address)
    if parts.scheme not in ("tcp", "tls"):
        raise ValueError(f"{address!r} is not a tcp:// or tls:// scheduler address")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ValueError(f"{address!r} has no host:port (e.g. tcp://127.0.0.1:8786)")
    return address


def scheduler_unreachable(address: SchedulerAddress, timeout: float = 3.0) -> str | None:
    """Why nothing answers at *address* (a TCP connection refused or timed out), or None."""
    parts = urlsplit(address.address)
    assert parts.hostname is not None
    assert parts.port is not None
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return None
    except OSError as exc:
        return f"no scheduler answers at {address.address} ({exc.strerror or exc})"


# --- running tasks on a cluster -------------------------------------------------------


def _killed_worker_type() -> type[BaseException]:
    from distributed.scheduler import KilledWorker

    killed: type[BaseException] = KilledWorker
    return killed


class DaskRunner:
    """A client of a Dask cluster: a ``LocalCluster`` this session starts with *workers*
    single-threaded worker processes, or the cluster at *scheduler*."""

    def __init__(self, workers: int, scheduler: str | None = None) -> None:
        import dask
        from distributed import Client, LocalCluster

        self.workers = workers
        self.cluster: Any = None
        self.client: Any = None
        self.owns_cluster = scheduler is None
        started = timing.perf_counter()
        try:
            if scheduler is None:
                # The first death of a worker fails its task (default: three deaths), as
                # a dying process fails its item under the process backends.
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self.cluster = LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        # No dashboard; the scheduler's HTTP routes (it always has some)
                        # on a free port rather than 8787, which a user's cluster may hold.
                        dashboard_address=None,
                        scheduler_kwargs={"dashboard": False, "dashboard_address": ":0"},
                        # Our own teardown of a faulty cluster makes nannies log errors.
                        silence_logs=logging.CRITICAL,
                    )
                self.client = Client(self.cluster, timeout=CONNECT_TIMEOUT_S)
            else:
                resolved = resolve_scheduler(scheduler)
                if resolved.scheduler_file is not None:
                    self.client = Client(
                        scheduler_file=resolved.scheduler_file, timeout=CONNECT_TIMEOUT_S
                    )
                else:
                    self.client = Client(resolved.address, timeout=CONNECT_TIMEOUT_S)
            from pytest_parallel_lab.backends.dask_worker_plugin import SysPathPlugin

            self.client.register_plugin(SysPathPlugin(sys.path))
            if self.owns_cluster:
                self.client.wait_for_workers(workers, timeout=START_TIMEOUT_S)
            else:
                self.client.wait_for_workers(1, timeout=START_TIMEOUT_S)
        except BaseException:
            self.abandon()  # Ctrl-C or a failure while starting: nothing half-started stays
            raise
        self.startup_s = timing.perf_counter() - started
        threads = self.client.nthreads()
        self.cluster_workers = len(threads)
        self.cluster_threads = sum(threads.values())

    @property
    def note(self) -> str:
        """What the report says about the cluster: its kind, workers and threads."""
        kind = "LocalCluster" if self.owns_cluster else f"cluster {self.client.scheduler.address}"
        workers = f"{self.cluster_workers} worker{'s' if self.cluster_workers != 1 else ''}"
        threads = f"{self.cluster_threads} thread{'s' if self.cluster_threads != 1 else ''}"
        return f"{kind}: {workers}, {threads}"

    @property
    def broken(self) -> bool:
        """The client lost its scheduler, or a local cluster lost workers."""
        if self.client is None or self.client.status != "running":
            return True
        return self.owns_cluster and len(self.client.nthreads()) < self.workers

    def run(self, work: Work, timeout: float) -> BatchResult:
        from distributed import wait

        call: Callable[[tuple[int, Any]], TaskOutcome] = _task_call(work)
        started = timing.perf_counter()
        futures = self.client.map(call, indexed(work.items), pure=False)
        try:
            done = wait(futures, timeout=timeout, return_when="ALL_COMPLETED")
        except TimeoutError:
            done = None
        wall = timing.perf_counter() - started
        if done is None or done.not_done:
            pending = len(done.not_done) if done is not None else len(futures)
            self.client.cancel(futures, force=True)
            raise WorkloadTimeout(
                f"{pending} of {len(futures)} tasks under the dask backend did not finish "
                f"within the timeout of {timeout:g}s"
            )
        try:
            results: list[TaskOutcome] = self.client.gather(futures)
        except _killed_worker_type() as exc:
            raise WorkerCrashed(
                f"a worker of the dask backend died running a task: KilledWorker: {exc}"
            ) from None
        except Exception as exc:
            raise BackendError(
                f"a task's call or result could not travel to or from a Dask worker "
                f"({type(exc).__name__}: {exc}). Fix: send and return picklable data, "
                'make the test importable on the workers, or use backend="process"'
            ) from None
        outcomes, cpu = collect_outcomes(results)
        return BatchResult(wall, cpu, outcomes)

    def close(self) -> None:
        self._shutdown(wait=True)

    def abandon(self) -> None:
        self._shutdown(wait=False)

    def _shutdown(self, wait: bool) -> None:
        """Close the client; close (or, after a fault, tear down) a cluster of our own.
        A cluster someone else runs is never shut down."""
        client, cluster = self.client, self.cluster
        self.client = self.cluster = None
        if not wait and cluster is not None:
            _kill_worker_processes(cluster)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close(timeout=CLOSE_TIMEOUT_S if wait else 1)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=CLOSE_TIMEOUT_S if wait else 2)
            _kill_worker_processes(cluster)  # whatever did not end in time


def _task_call(work: Work) -> Callable[[tuple[int, Any]], TaskOutcome]:
    """The task Dask sends: the workload pickled once into bytes, so that the scheduler
    (which unpickles task graphs, and may run in an environment without the test's
    modules) only sees this module's function; the workers unpickle the workload."""
    import functools

    import cloudpickle

    payload = cloudpickle.dumps((work.call, work.coroutine))
    return functools.partial(run_pickled_task, payload)


def run_pickled_task(payload: bytes, indexed_item: tuple[int, Any]) -> TaskOutcome:
    """Run one task of a workload pickled by :func:`_task_call` (on a Dask worker)."""
    import pickle

    call, coroutine = pickle.loads(payload)
    return run_task(call, coroutine, indexed_item)


def _kill_worker_processes(cluster: Any) -> None:
    """SIGKILL the worker processes of a local cluster's nannies and wait until they are
    reaped (by the nanny's own watcher)."""
    import signal

    processes = []
    for nanny in list(getattr(cluster, "workers", {}).values()):
        process = getattr(getattr(nanny, "process", None), "process", None)
        if process is not None and getattr(process, "pid", None):
            processes.append(process)
    for process in processes:
        with contextlib.suppress(Exception):
            if process.is_alive():
                os.kill(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5  # a deadline, not a measurement
    for process in processes:
        with contextlib.suppress(Exception):
            while process.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
