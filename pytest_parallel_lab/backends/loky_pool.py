"""The ``loky`` backend: joblib's process pool (``loky``), which pickles with cloudpickle,
so lambdas and closures travel to its workers.

``loky.get_reusable_executor`` keeps one executor per process and resizes it when asked
for another worker count; the runner cache keeps a pool per worker count, so two
items' pools would resize each other. Each runner therefore owns a
``loky.ProcessPoolExecutor`` (the class behind the reusable executor) with its
workers started up front, and closes it itself. Workers start with loky's own method
(fork then exec, ``"loky"``), are tied to pytest as the other pool workers are, and a
dying worker is reported with loky's ``TerminatedWorkerError`` and its exit codes.
"""

from __future__ import annotations

import contextlib
import importlib.util
from typing import Any

from pytest_parallel_lab import timing
from pytest_parallel_lab.backends.base import BatchResult, Work, collect_outcomes, submit_and_wait
from pytest_parallel_lab.backends.errors import BackendError, WorkerCrashed
from pytest_parallel_lab.backends.lifetime import owner_for, tie_to_owner
from pytest_parallel_lab.backends.processes import unpicklable_result_message

INSTALL_HINT = "pip install 'pytest-parallel-lab[loky]'"
#: loky's own start method: fork, then exec a fresh interpreter (no inherited state).
LOKY_START_METHOD = "loky"
_STARTUP_TIMEOUT_S = 120.0


def loky_support() -> str | None:
    """Why the loky backend cannot run here (loky not installed), else None."""
    if importlib.util.find_spec("loky") is None:
        return f"needs the loky package: {INSTALL_HINT}"
    return None


def _ready_probe(item: Any) -> int:
    import os

    return os.getpid()


class LokyRunner:
    """A ``loky.ProcessPoolExecutor`` of its own, every worker started (and timed) first."""

    def __init__(self, workers: int) -> None:
        from loky import ProcessPoolExecutor
        from loky.backend.context import get_context

        self.workers = workers
        self.start_method = LOKY_START_METHOD
        started = timing.perf_counter()
        self.executor: Any = ProcessPoolExecutor(
            max_workers=workers,
            context=get_context(LOKY_START_METHOD),
            initializer=tie_to_owner,
            # loky's workers are children of this process (fork, then exec): the
            # parent-death signal applies, as under "fork", but they inherit nothing.
            initargs=(owner_for(LOKY_START_METHOD),),
        )
        try:
            probes = [self.executor.submit(_ready_probe, i) for i in range(workers)]
            for probe in probes:
                probe.result(timeout=_STARTUP_TIMEOUT_S)
        except BaseException:
            self.abandon()
            raise
        self.startup_s = timing.perf_counter() - started

    @property
    def broken(self) -> bool:
        """A worker died (between items, too): the pool must be replaced."""
        return bool(getattr(self.executor, "_broken", False)) or any(
            not p.is_alive() for p in self._processes()
        )

    def _processes(self) -> list[Any]:
        return list((getattr(self.executor, "_processes", None) or {}).values())

    def run(self, work: Work, timeout: float) -> BatchResult:
        from loky.process_executor import BrokenProcessPool

        try:
            futures, wall = submit_and_wait(self.executor, work, timeout, "loky")
            results = [f.result() for f in futures]
        except BrokenProcessPool as exc:
            message = f"a worker process of the loky backend died: {_first_line(exc)}"
            raise WorkerCrashed(message) from None
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(unpicklable_result_message("loky", exc)) from None
        outcomes, cpu = collect_outcomes(results)
        return BatchResult(wall, cpu, outcomes)

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def abandon(self) -> None:
        processes = self._processes()
        with contextlib.suppress(Exception):
            self.executor.shutdown(wait=False, kill_workers=True)
        for process in processes:
            with contextlib.suppress(Exception):
                if process.is_alive():
                    process.kill()
                process.join(timeout=5)


def _first_line(exc: BaseException) -> str:
    """What loky says died, and with which exit codes, without its advice."""
    import re

    text = " ".join(str(exc).split())
    codes = re.search(r"exit codes of the workers are (\{[^}]*\})", text)
    if codes is not None:
        return f"{type(exc).__name__}: the exit codes of the workers are {codes.group(1)}"
    return f"{type(exc).__name__}: {text}"
