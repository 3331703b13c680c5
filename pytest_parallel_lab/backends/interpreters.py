"""The ``interpreter`` backend: ``concurrent.futures.InterpreterPoolExecutor`` (Python 3.14+,
PEP 734), one isolated interpreter with its own GIL per worker thread.

The task's callable, its arguments and its result are pickled between interpreters, as
for worker processes, but everything stays in this process: start-up creates
interpreters rather than processes, and a task cannot be killed. A run past the timeout
abandons the pool's threads (daemon threads, as for the ``thread`` backend). A task that
calls ``os._exit`` or ``os.abort`` fails instead (each interpreter's ``os`` has them
replaced); one that segfaults, or kills its own process by a signal, still ends pytest
with it: that is what the process backends are for.

An extension module that does not support subinterpreters (single-phase init, such as
``_curses`` or many older C extensions) cannot be imported there: the item fails naming
the module and suggesting ``backend="process"``.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import re
import sys
import threading
from typing import Any

from pytest_parallel_lab import timing
from pytest_parallel_lab.backends.base import (
    BatchResult,
    TaskError,
    Work,
    collect_outcomes,
    submit_and_wait,
)
from pytest_parallel_lab.backends.errors import BackendError
from pytest_parallel_lab.backends.inprocess import (
    THREAD_PREFIX,
    abandon_thread_executor,
    start_daemon,
)

#: What CPython says when a module cannot load in a subinterpreter (3.12+).
_NOT_IN_SUBINTERPRETER = re.compile(
    r"module (?P<module>[\w.]+) does not support loading in subinterpreters"
)
#: How long start-up may take to create every interpreter (seconds).
_STARTUP_TIMEOUT_S = 120.0


def interpreter_pool_support(version: tuple[int, int] = sys.version_info[:2]) -> str | None:
    """Why ``InterpreterPoolExecutor`` cannot be used here, or None when it can."""
    if version[:2] < (3, 14):
        found = ".".join(str(v) for v in version[:2])
        return f"concurrent.futures.InterpreterPoolExecutor needs Python 3.14+ (this is {found})"
    try:
        importlib.import_module("concurrent.futures.interpreter")
    except ImportError as exc:
        return f"this interpreter has no InterpreterPoolExecutor ({exc})"
    return None


#: What a task that calls ``os._exit`` or ``os.abort`` in a subinterpreter gets instead
#: of ending pytest's process (the workers are threads of it).
PROCESS_EXIT_REFUSED = (
    "os.{name}() called under the interpreter backend: subinterpreters run in pytest's own "
    "process, which it would end. Fix: measure a workload that exits or aborts with "
    'backend="process"'
)


def worker_prelude(path: list[str]) -> str:
    """The code each new interpreter runs first: this process's ``sys.path``, so that it
    imports the test's module (pytest puts its rootdir there) as the process does; and
    ``os._exit``/``os.abort`` replaced in that interpreter's own ``os`` module by a
    function that raises, so that a task calling them fails instead of ending pytest.
    (A segfault cannot be caught this way: it still ends the process.)"""
    return (
        f"import sys\nsys.path[:] = {path!r}\n"
        "import os\n"
        "def _refuse(name):\n"
        "    def refused(*args, **kwargs):\n"
        f"        raise RuntimeError({PROCESS_EXIT_REFUSED!r}.format(name=name))\n"
        "    refused.__name__ = name\n"
        "    return refused\n"
        "os._exit = _refuse('_exit')\n"
        "os.abort = _refuse('abort')\n"
        "del _refuse\n"
    )


def subinterpreter_import_error(text: str) -> str | None:
    """The module named by a "does not support loading in subinterpreters" error, if any."""
    found = _NOT_IN_SUBINTERPRETER.search(text)
    return found.group("module") if found else None


def unsupported_module_message(module: str) -> str:
    """What to tell the user when the workload imports *module*, which cannot load here."""
    return (
        f"the workload imports module {module!r}, which cannot be loaded in a subinterpreter "
        "(an extension module without multi-phase init or per-interpreter state). "
        'Fix: use backend="process" (or "thread"), or an extension version that supports '
        "subinterpreters"
    )


def _first_unsupported_module(errors: list[TaskError]) -> str | None:
    for error in errors:
        module = subinterpreter_import_error(f"{error.message}\n{error.traceback}")
        if module is not None:
            return module
    return None


def _chain_text(exc: BaseException) -> str:
    """An exception and its causes as one text (the executor wraps the worker's error)."""
    parts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


class InterpreterRunner:
    """``InterpreterPoolExecutor`` with every interpreter created (and timed) up front."""

    #: CPython 3.14: a process forked while subinterpreters are alive segfaults in
    #: PyOS_AfterFork_Child (seen in the tox matrix's fork envs), so the runner cache
    #: closes this pool before it hands out any other runner.
    fork_unsafe = True

    def __init__(self, workers: int) -> None:
        # mypy checks as Python 3.10, whose typeshed has no InterpreterPoolExecutor.
        from concurrent.futures import InterpreterPoolExecutor  # type: ignore[attr-defined,unused-ignore]

        self.workers = workers
        started = timing.perf_counter()
        self.executor: concurrent.futures.ThreadPoolExecutor = InterpreterPoolExecutor(
            max_workers=workers,
            thread_name_prefix=f"{THREAD_PREFIX}-interpreter",
            initializer=exec,
            initargs=(worker_prelude(list(sys.path)),),
        )
        # Submitted from a daemon thread: the executor's threads inherit the flag, so a
        # stuck task never keeps pytest from exiting (see inprocess.py).
        probes: list[concurrent.futures.Future[Any]] = []
        warm = start_daemon(lambda: self._start_all(probes), "interpreter-start")
        try:
            warm.join(timeout=_STARTUP_TIMEOUT_S)
            for probe in probes:
                probe.result(timeout=_STARTUP_TIMEOUT_S)
        except BaseException:
            self.abandon()  # Ctrl-C while starting: no half-started pool stays behind
            raise
        self.startup_s = timing.perf_counter() - started

    def _start_all(self, probes: list[concurrent.futures.Future[Any]]) -> None:
        # A worker thread starts on each submit while none is idle: `workers` probes
        # submitted at once start them all (creating an interpreter takes far longer
        # than a submit), and more are sent if one finished early.
        for _attempt in range(3):
            if len(getattr(self.executor, "_threads", ())) >= self.workers:
                return
            batch = [self.executor.submit(threading.get_ident) for _ in range(self.workers)]
            probes.extend(batch)
            concurrent.futures.wait(batch)

    def run(self, work: Work, timeout: float) -> BatchResult:
        futures, wall = submit_and_wait(self.executor, work, timeout, "interpreter")
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:
                raise BackendError(_run_failure(exc)) from None
        outcomes, cpu = collect_outcomes(results)
        module = _first_unsupported_module([o.error for o in outcomes if o.error is not None])
        if module is not None:
            raise BackendError(unsupported_module_message(module))
        return BatchResult(wall, cpu, outcomes)

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def abandon(self) -> None:
        # As for the thread backend: a stuck worker must not be joined at exit.
        abandon_thread_executor(self.executor)


def _run_failure(exc: BaseException) -> str:
    """Why a task could not even start or report back: its call or result did not cross
    between interpreters (an import that fails there, an unpicklable value)."""
    text = _chain_text(exc)
    module = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    module = subinterpreter_import_error(text) or module
    if module is not None and "subinterpreter" in text:
        return unsupported_module_message(module)
    return (
        "a task's call or result could not cross between interpreters "
        f"({text.splitlines()[0]}). Fix: send and return picklable data, import only "
        'modules that load in subinterpreters, or use backend="process"'
    )
