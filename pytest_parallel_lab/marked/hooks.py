"""pytest glue for marked tests: one item per backend, the body (or each ``parallel_map``
call) as the measured workload, and its results on the test reports (xdist-safe).

Registered as a plugin module by ``plugin.py`` at configure time, with its state in a
:class:`~pytest_parallel_lab.marked.session.MarkedSession`. The hooks that run for
every test (:class:`ItemHooks`) are added only once a marked test is collected (or
on the xdist controller, where the results arrive), and the measurement machinery
is imported with the first marked item: a run without marked tests pays for neither.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import threading
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_parallel_lab.environment import GilWatch, gil_enabled, gil_reenabling_module
from pytest_parallel_lab.marked.marker import MARKER_HELP, MarkerError
from pytest_parallel_lab.marked.session import (
    BACKEND_ARG,
    MARKED_KEY,
    REPORT_ATTRIBUTE,
    WORKERS_ARG,
    ItemPlan,
    MarkedSession,
    marked_session,
    user_nodeid,
)
from pytest_parallel_lab.vocabulary import Outcome, Role

if TYPE_CHECKING:
    from pytest_parallel_lab.backends.base import BatchResult, Work
    from pytest_parallel_lab.document.records import ResultRecord
    from pytest_parallel_lab.marked.measure import Measured, Settings

ITEM_HOOKS_NAME = "parallel-lab-marked-items"
ITEM_RESULTS_KEY = pytest.StashKey[list["ResultRecord"]]()


def marker_help(session: MarkedSession) -> str:
    """The marker's ``pytest --markers`` line, from the defaults the parser uses."""
    defaults = session.options.defaults
    return MARKER_HELP.format(
        tasks=defaults.tasks,
        rounds=defaults.rounds,
        timeout=defaults.timeout_s,
        backends=", ".join(session.registry.names()),
    )


# --- collection: one item per backend ---------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    session = marked_session(metafunc.config)
    marker = session.marker_of(metafunc.definition)
    if marker is None:
        return
    session.marked_collected = True
    try:
        spec = session.spec_for(marker)
    except MarkerError:
        return  # the item fails at setup with the marker's message (ItemHooks)
    metafunc.fixturenames.append(BACKEND_ARG)
    metafunc.parametrize(BACKEND_ARG, [pytest.param(name, id=name) for name in spec.backends])
    if spec.workers_sweep:
        metafunc.fixturenames.append(WORKERS_ARG)
        metafunc.parametrize(WORKERS_ARG, [pytest.param(n, id=f"w{n}") for n in spec.workers_sweep])


@pytest.fixture
def _parallel_lab_backend(request: pytest.FixtureRequest) -> str:
    """The backend this item measures (the id part ``[thread]``)."""
    return str(request.param)


@pytest.fixture
def _parallel_lab_workers(request: pytest.FixtureRequest) -> int:
    """The worker count of a sweep item (the id part ``[w4]``)."""
    return int(request.param)


@pytest.fixture
def parallel_map(request: pytest.FixtureRequest) -> ParallelMap:
    """Measure ``map(fn, iterable)`` serially and under the test's backend.

    In a test marked ``@pytest.mark.parallel``, the body runs once and every call of
    ``parallel_map(fn, iterable)`` is the measured workload; it returns the results in
    order, like ``Pool.map`` and ``executor.map``.
    """
    assert isinstance(request.node, pytest.Function)
    return ParallelMap(marked_session(request.config), request.node)


#: pytest-run-parallel's names (its entry point, its plugin object): it runs test bodies
#: in several threads at once.
RUN_PARALLEL_PLUGINS = ("run-parallel", "_run-parallel")
#: What a measured item tells pytest-run-parallel (its marker): run it in one thread.
ONE_THREAD_REASON = "measured by pytest-parallel-lab, which runs the body in its own pools"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    session = marked_session(config)
    if session.marked_collected:
        listen_for_results(session)
        if session.options.xdist.role is Role.WORKER:
            from pytest_parallel_lab.backends.lifetime import set_foreign_fds

            set_foreign_fds(xdist_channel_fds(config))
        if any(config.pluginmanager.has_plugin(name) for name in RUN_PARALLEL_PLUGINS):
            # Its threads would run the measured body (or parallel_map) several times at
            # once: each measured item runs once, in pytest's thread.
            for item in items:
                if isinstance(item, pytest.Function) and BACKEND_ARG in getattr(
                    getattr(item, "callspec", None), "params", {}
                ):
                    item.add_marker(pytest.mark.thread_unsafe(reason=ONE_THREAD_REASON))


def xdist_channel_fds(config: pytest.Config) -> list[int]:
    """The descriptors of this xdist worker's channel to its controller (execnet's pipes).

    A forked pool worker that kept them open would hide this worker's crash from the
    controller, which waits for the channel to close; the pool workers close them.
    """
    fds = []
    for plugin in config.pluginmanager.get_plugins():
        channel = (
            getattr(plugin, "channel", None)
            if type(plugin).__name__ == "WorkerInteractor"
            else None
        )
        io = getattr(getattr(channel, "gateway", None), "_io", None)
        for stream in (getattr(io, "infile", None), getattr(io, "outfile", None)):
            with contextlib.suppress(AttributeError, OSError, ValueError):
                fds.append(int(stream.fileno()))  # type: ignore[union-attr]
    return fds


def listen_for_results(session: MarkedSession) -> None:
    """Register the per-test hooks (once): only runs with marked tests pay for them."""
    manager = session.config.pluginmanager
    if not manager.has_plugin(ITEM_HOOKS_NAME):
        manager.register(ItemHooks(session), ITEM_HOOKS_NAME)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # After Ctrl-C the pools go down at once: no waiting for queued or running tasks.
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    marked_session(session.config).runners.close_all(wait=not interrupted)


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(MARKED_KEY, None)
    if state is not None:
        state.runners.close_all(wait=False)  # what a session that never finished left
        if state.sigint_before is not None:
            signal.signal(signal.SIGINT, state.sigint_before[0])
            state.sigint_before = None


# --- running: the body, or each parallel_map call, as the workload ------------------------


def _original_function(item: pytest.Function) -> Callable[..., Any]:
    """The test function, seen through an async plugin's synchronous wrapper."""
    from pytest_parallel_lab.marked.measure import is_coroutine_function

    function: Callable[..., Any] = item.obj
    if not is_coroutine_function(function):
        unwrapped: Callable[..., Any] = inspect.unwrap(function)
        if is_coroutine_function(unwrapped):
            return unwrapped
    return function


def _task_tracer(
    session: MarkedSession, item: pytest.Item
) -> Callable[[str, BatchResult], None] | None:
    """With --parallel-trace: every task of every measured run, on a track per pool worker."""
    trace = session.trace
    if trace is None:
        return None

    def record(side: str, batch: BatchResult) -> None:
        for o in batch.outcomes:
            if o.worker:
                trace.add(
                    f"{item.name} task {o.index}",
                    f"{side} {o.worker}",
                    o.started,
                    o.ended - o.started,
                    "task",
                    {"test": item.nodeid, "side": side},
                )

    return record


def _measure(
    session: MarkedSession,
    item: pytest.Function,
    settings: Settings,
    work: Work,
    named_objects: list[tuple[str, Any]],
) -> Measured:
    from pytest_parallel_lab.marked.measure import measure

    registry = session.registry
    backend, serial = registry.get(settings.backend), registry.get("serial")
    assert backend is not None
    assert serial is not None
    watch = session.gil_watch
    gil_before = gil_enabled()
    environment = session.options.environment
    with _measuring(item):
        measured = measure(
            settings,
            backend,
            serial,
            session.runners,
            work,
            named_objects=named_objects,
            environment=environment,
            on_batch=_task_tracer(session, item),
            on_stopped=lambda record: _keep_stopped(session, item, record),
            environment_at_end=lambda: replace(environment, gil_enabled=gil_enabled()),
        )
    if watch is not None and watch.reenabled(gil_enabled()) and not gil_before:
        # This item's workload turned the GIL on (an import): its threads ran under it.
        # (CPython's warning naming the module reaches pytest's hooks only after the
        # test's call: the summary section names it.)
        note = "GIL re-enabled during this test (an import): threads ran under it from then on"
        measured.record = replace(measured.record, notes=(*measured.record.notes, note))
    return measured


class GilWatchPlugin:
    """On a free-threaded build: notes the modules that turn the GIL on at import (from
    CPython's RuntimeWarning) and says at the end when the GIL was on, as
    pytest-run-parallel does. Registered only on a free-threaded build."""

    def __init__(self, session: MarkedSession, watch: GilWatch) -> None:
        self.session = session
        self.watch = watch

    def pytest_warning_recorded(self, warning_message: warnings.WarningMessage) -> None:
        if not issubclass(warning_message.category, RuntimeWarning):
            return
        module = gil_reenabling_module(str(warning_message.message))
        if module is not None and module not in self.session.gil_modules:
            self.session.gil_modules.append(module)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        words = self.watch.describe(gil_enabled(), self.session.gil_modules)
        if words is None:
            return
        title = "GIL re-enabled" if self.watch.reenabled(gil_enabled()) else "GIL enabled"
        terminalreporter.section(title, sep="=", red=True, bold=True)
        terminalreporter.line(words)


_MEASURING_KEY = pytest.StashKey[bool]()


@contextlib.contextmanager
def _measuring(item: pytest.Item) -> Iterator[None]:
    """One measurement of an item at a time: a plugin that runs the test body in several
    threads at once (pytest-run-parallel) would measure each pool against itself."""
    if item.stash.get(_MEASURING_KEY, False):
        pytest.fail(
            f"{item.nodeid}: the test body is being run in several threads at once, by "
            "another plugin (pytest-run-parallel's --parallel-threads or alike), and "
            "pytest-parallel-lab measures a marked test once per item. Fix: run the marked "
            "tests in one thread (pytest-run-parallel: mark them "
            "@pytest.mark.thread_unsafe), or without that plugin's option",
            pytrace=False,
        )
    item.stash[_MEASURING_KEY] = True
    try:
        yield
    finally:
        item.stash[_MEASURING_KEY] = False


def exit_on_second_interrupt(session: MarkedSession) -> None:
    """After a Ctrl-C: a second one ends the process at once, without a traceback.

    The pools are being torn down and the report written; a user who presses Ctrl-C
    again wants out now. Pool workers die with this process (see backends.lifetime).
    The previous handler comes back at unconfigure (an in-process pytester run).
    """
    if session.sigint_before is not None:
        return
    if threading.current_thread() is not threading.main_thread():
        return

    def exit_now(signum: int, frame: object) -> None:
        os.write(2, b"\npytest-parallel-lab: interrupted again, exiting at once\n")
        os._exit(128 + signal.SIGINT)

    session.sigint_before = (signal.signal(signal.SIGINT, exit_now),)


def _keep_stopped(session: MarkedSession, item: pytest.Item, record: ResultRecord) -> None:
    """The row of a measurement stopped from outside: a failure (pytest-timeout) gets a
    report, which adds the row; Ctrl-C gets none, so the row goes to the session now."""
    if record.outcome is Outcome.INTERRUPTED:
        exit_on_second_interrupt(session)
        if session.options.xdist.role is not Role.WORKER:
            session.results.append(record)
        return
    item.stash.setdefault(ITEM_RESULTS_KEY, []).append(record)


def _settle(item: pytest.Item, plan: ItemPlan, measured: Measured) -> None:
    """Keep the record, then turn the outcome into pytest's pass, skip, warning or failure."""
    from pytest_parallel_lab.marked.rounds import OutcomeRequest, PicklingProblem

    record, failure = measured.record, measured.failure
    if not plan.explicit and isinstance(failure, PicklingProblem):
        # --parallel-all: the test cannot run under this backend; that is no failure of
        # the user's code.
        item.stash.setdefault(ITEM_RESULTS_KEY, []).append(replace(record, outcome=Outcome.SKIPPED))
        pytest.skip(f"cannot run under the {record.backend} backend: {failure}")
    item.stash.setdefault(ITEM_RESULTS_KEY, []).append(record)
    if failure is None and measured.gate_warning is not None:
        warnings.warn(pytest.PytestWarning(f"{item.nodeid}: {measured.gate_warning}"), stacklevel=1)
    if isinstance(failure, OutcomeRequest):
        # pytest.skip()/fail()/xfail()/exit() inside a task: the item takes that outcome.
        if failure.kind == "Skipped":
            pytest.skip(str(failure))
        if failure.kind == "XFailed":
            pytest.xfail(str(failure))
        if failure.kind == "Exit":
            pytest.exit(str(failure))
    if failure is not None:
        pytest.fail(f"{item.nodeid}: {failure}", pytrace=False)


class ParallelMap:
    """``parallel_map(fn, iterable)``: a measured ``map`` returning the results in order."""

    def __init__(self, session: MarkedSession, item: pytest.Function) -> None:
        self._session = session
        self._item = item
        self._calls = 0

    def __call__(self, function: Callable[[Any], Any], iterable: Iterable[Any]) -> list[Any]:
        items = list(iterable)
        plan = self._session.plan_for(self._item)
        if plan is None:
            return self._unmeasured(function, items)
        from pytest_parallel_lab.marked.measure import map_work

        settings = plan.settings.map_call(self._calls)
        self._calls += 1
        sample = [("the mapped function", function)]
        if items:
            sample.append(("the first item of the iterable", items[0]))
        measured = _measure(self._session, self._item, settings, map_work(function, items), sample)
        _settle(self._item, plan, measured)
        return measured.values

    def _unmeasured(self, function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        warnings.warn(
            pytest.PytestWarning(
                f"{self._item.nodeid}: parallel_map was used in a test without "
                "@pytest.mark.parallel; it ran serially and nothing was measured"
            ),
            stacklevel=3,
        )
        from pytest_parallel_lab.marked.measure import is_coroutine_function

        if is_coroutine_function(function):
            import asyncio

            return [asyncio.run(function(item)) for item in items]
        return [function(item) for item in items]


class ItemHooks:
    """The hooks that run for every test, registered only when marked tests exist
    (or on the xdist controller): a run without marked tests pays nothing per test."""

    def __init__(self, session: MarkedSession) -> None:
        self.session = session

    def pytest_keyboard_interrupt(self) -> None:
        """Ctrl-C in a run with marked tests: a second one exits at once."""
        exit_on_second_interrupt(self.session)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """An item whose marker did not parse fails here with the parser's message."""
        try:
            self.session.plan_for(item)
        except MarkerError as exc:
            pytest.fail(f"{item.nodeid}: {exc}", pytrace=False)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> Generator[None, object, object]:
        """Around pytest's call of a marked test: the body becomes the measured workload."""
        plan = self.session.plan_for(pyfuncitem)
        if plan is None or "parallel_map" in pyfuncitem._fixtureinfo.argnames:
            return (yield)
        from pytest_parallel_lab.marked.measure import body_work

        session, settings = self.session, plan.settings
        function = _original_function(pyfuncitem)

        def measured(**kwargs: Any) -> None:
            named = [("the test function", function)]
            named += [(f"the value of fixture {name!r}", value) for name, value in kwargs.items()]
            work = body_work(function, kwargs, settings.spec.tasks)
            _settle(pyfuncitem, plan, _measure(session, pyfuncitem, settings, work, named))

        original = pyfuncitem.obj
        pyfuncitem.obj = measured
        try:
            return (yield)
        finally:
            pyfuncitem.obj = original

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """The item's records get the test's outcome and go to the session (a plain run)
        or onto the report, as plain builtins (an xdist worker)."""
        report = yield
        records = item.stash.get(ITEM_RESULTS_KEY, [])
        if call.when == "call" and records:
            outcome = Outcome(report.outcome)
            xfail = hasattr(report, "wasxfail")  # pytest: skipped for an xfail, passed for xpass
            if xfail:
                outcome = Outcome.XFAILED if report.skipped else Outcome.XPASSED
            records = [
                replace(r, outcome=outcome) if xfail or r.outcome is Outcome.PASSED else r
                for r in records
            ]
        elif call.when == "setup" and report.failed and self._marked(item):
            records = [self._setup_error(item, call)]
        else:
            return report
        if self.session.options.xdist.role is Role.WORKER:
            from pytest_parallel_lab.document.run import result_to_json

            setattr(report, REPORT_ATTRIBUTE, [result_to_json(r) for r in records])
        else:
            self.session.results.extend(records)
        return report

    def _marked(self, item: pytest.Item) -> bool:
        return isinstance(item, pytest.Function) and self.session.marker_of(item) is not None

    def _setup_error(self, item: pytest.Item, call: pytest.CallInfo[None]) -> ResultRecord:
        """The row of a marked item whose setup failed (a bad marker, a fixture error)."""
        from pytest_parallel_lab.document.records import ResultRecord

        params = getattr(getattr(item, "callspec", None), "params", {})
        measured_item = isinstance(item, pytest.Function) and BACKEND_ARG in params
        return ResultRecord(
            nodeid=item.nodeid,
            test=user_nodeid(item)
            if isinstance(item, pytest.Function) and measured_item
            else item.nodeid,
            backend=str(params[BACKEND_ARG]) if measured_item else "-",
            outcome=Outcome.ERROR,
            error=str(call.excinfo.value) if call.excinfo else "setup failed",
            xdist_worker=self.session.options.xdist.worker_id,
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """On the xdist controller: the results that arrived on a worker's report."""
        data = getattr(report, REPORT_ATTRIBUTE, None)
        if not data or self.session.options.xdist.role is not Role.CONTROLLER:
            return
        from pytest_parallel_lab.document.run import result_from_json

        for entry in data:
            self.session.results.append(result_from_json(entry, f"report of {report.nodeid}"))
