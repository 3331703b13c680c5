"""pytest glue for suite analysis: time tests and fixtures, merge what xdist workers
send, and contribute the ``suite`` section and the trace.

Registered by ``plugin.py`` only when a report, a JSON file, a trace or a prediction
from a file was asked for. Measurements become rows of plain builtins
(:class:`~pytest_parallel_lab.suite.recorder.SuiteRecorder`); in an xdist worker
each payload rides on its test report as ``report.parallel_lab_suite``, so the
controller has everything a crashed worker reported before it died.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import warnings
from collections.abc import Generator, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_parallel_lab import timing
from pytest_parallel_lab.document.files import write_atomically
from pytest_parallel_lab.options import LabOptions, write_output
from pytest_parallel_lab.output.trace import TraceLog, events_from_recording, trace_text
from pytest_parallel_lab.stats import EvenSample
from pytest_parallel_lab.suite.recorder import SHARED_SCOPES, SuiteRecorder, fixture_id
from pytest_parallel_lab.suite.session_end import (
    CACHE_KEY,
    InterpreterExitProbe,
    cache_entry,
    cached_exit,
    probe_identity,
    session_end_s,
)
from pytest_parallel_lab.vocabulary import Outcome, Role

# The calibration, the simulation and the run document's records are imported where
# the section is made (the controller's or a plain run's end): not by every xdist worker
# as it starts.
if TYPE_CHECKING:
    from pytest_parallel_lab.document.run import RunDocument
    from pytest_parallel_lab.document.suite import Prediction, SuiteSection
    from pytest_parallel_lab.suite.simulate import SavedPrediction

#: The attribute of a test report that carries an xdist worker's suite timing.
REPORT_ATTRIBUTE = "parallel_lab_suite"


def _machine_and_own_cpu() -> tuple[float, float] | None:
    """(the machine's busy CPU seconds, this process's with its children and live
    descendants): their difference over a run is what other processes took (Linux)."""
    machine = timing.machine_cpu_seconds()
    descendants = timing.own_cpu_seconds()
    if machine is None or descendants is None:
        return None
    # own_cpu_seconds: this process and its live descendants; cpu_time adds the children
    # already waited for (a test's subprocess.run)
    return machine[0], descendants + timing.cpu_time() - timing.process_time()


def _process_age() -> float | None:
    """Seconds since this process started (interpreter start-up, imports, configure)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        age = timing.perf_counter() - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return age if 0.0 < age < 600.0 else None


def _is_direct_parametrization(fixturedef: Any) -> bool:
    # `@pytest.mark.parametrize("x", ...)` makes a pseudo fixture; it is not a fixture
    # anyone wrote, so it is not reported.
    return getattr(fixturedef.func, "__name__", "") == "get_direct_param_fixture_func"


_NO_PARAM = object()


#: The report classes of subtests (pytest >= 9; the pytest-subtests plugin).
_SUBTEST_REPORTS = frozenset({"SubtestReport", "SubTestReport"})
#: The run's reports kept to time their trip to an xdist controller: fewer than this,
#: evenly spaced over the run.
REPORT_SAMPLE = 48


def report_roundtrip_s(config: pytest.Config, reports: list[pytest.TestReport]) -> float | None:
    """The mean time one of *reports* takes to travel as xdist sends it: serialised
    by ``pytest_report_to_serializable``, through execnet's dumps and loads, and
    rebuilt by ``pytest_report_from_serializable`` (None without execnet or reports).
    It scales with the machine's speed and the reports' size (captured output,
    tracebacks), which is what the controller's cost per report follows."""
    try:
        import execnet
    except ImportError:  # pragma: no cover - execnet comes with pytest-xdist
        return None
    if not reports:
        return None
    hook = config.hook
    start = timing.perf_counter()
    for report in reports:
        data = hook.pytest_report_to_serializable(config=config, report=report)
        hook.pytest_report_from_serializable(config=config, data=execnet.loads(execnet.dumps(data)))
    return (timing.perf_counter() - start) / len(reports)


def plugin_modules(config: pytest.Config) -> list[str]:
    """The modules of the plugins installed from distributions (this one, xdist...):
    what every xdist worker imports. Conftest files are left out: importing one in a
    probe could have side effects."""
    names = []
    for plugin, _ in config.pluginmanager.list_plugin_distinfo():
        name = getattr(plugin, "__name__", None)
        if isinstance(name, str):
            names.append(name)
    return names


def item_groups(items: Iterable[pytest.Item]) -> dict[str, str]:
    """The ``xdist_group`` of each of *items* that has one, by node id: as xdist's
    worker appends it to the node id under ``--dist loadgroup`` (the names of every
    ``xdist_group`` mark on the item and its parents, as ``iter_markers`` finds them,
    sorted and joined by "_").

    Each parent's names are read once, not once per test below it (``iter_markers``
    walks the whole chain for every item: 3.7 ms of a 2,000-test run's end)."""
    by_node: dict[int, frozenset[str]] = {}

    def chain_names(node: pytest.Item | pytest.Collector | None) -> frozenset[str]:
        if node is None:
            return frozenset()
        names = by_node.get(id(node))
        if names is None:
            names = by_node[id(node)] = chain_names(node.parent) | _own_groups(node)
        return names

    groups = {}
    for item in items:
        names = chain_names(item.parent) | _own_groups(item)
        if names:
            groups[item.nodeid] = "_".join(sorted(names))
    return groups


def _own_groups(node: pytest.Item | pytest.Collector) -> frozenset[str]:
    """The group names of the node's own ``xdist_group`` marks."""
    return frozenset(
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in node.own_markers
        if mark.name == "xdist_group"
    )


class SuiteTimingPlugin:
    """Times tests and fixtures in this process; on the controller, also merges what
    xdist workers sent and contributes the ``suite`` section.

    The per-test hooks only append tuples to logs (a few hundred nanoseconds each);
    turning them into payloads happens once at the end of a plain run, or per test in
    an xdist worker, whose payload travels with the test's teardown report.
    """

    def __init__(
        self,
        config: pytest.Config,
        options: LabOptions,
        saved: SavedPrediction | None = None,
        calibrating: SuiteSection | None = None,
    ) -> None:
        self.config = config
        self.options = options
        #: ``--parallel-predict-from``'s saved run, predicted at configure time
        self.saved = saved
        #: ``--parallel-calibrate-from``'s saved -n N run, checked at configure time
        self.calibrating = calibrating
        self.is_worker = options.xdist.role is Role.WORKER
        # xdist's controller runs no tests: it merges what the workers send.
        self.is_controller = options.xdist.role is Role.CONTROLLER
        self.worker_id = options.xdist.worker_id or "main"
        self.origin = timing.perf_counter()
        # Raw events are kept only for a trace (the controller's, or a plain run's).
        keep = bool(options.trace) and not self.is_worker
        self.recorder = SuiteRecorder(self.origin, keep_events=keep)
        #: what other features add to the trace (the marked tests' pool tasks)
        self.trace = TraceLog(self.origin) if keep else None
        self.process_age = _process_age()
        self.collected: float | None = None
        self.meta_sent = False
        #: the collected items, and each one's index by node id: str to int, a dict the
        #: garbage collector does not track (tuples holding the items would be thousands
        #: of tracked objects, enough to set off an extra full collection in a worker)
        self.collected_items: list[pytest.Item] = []
        self.items: dict[str, int] = {}
        self.current = ""
        #: the test between its logstart and logfinish (None between tests)
        self.running: str | None = None
        self.setup_stack: list[float] = []
        #: (nodeid, when, clock at the report, duration, outcome, (item, its fixture
        #: definitions) at teardown or None, the test's CPU seconds at teardown or None)
        #: per test phase
        self.report_log: list[
            tuple[str, str, float, float, str, tuple[Any, Any] | None, float | None]
        ] = []
        #: (fixturedef, param, nodeid, when, start, own, total) per fixture setup/teardown
        self.fixture_log: list[tuple[Any, Any, str, str, float, float, float]] = []
        self.teardown_starts: dict[int, float] = {}
        #: per fixture definition: its (name, scope, baseid) when shared, else None
        self.shared_defs: dict[int, tuple[str, str, str] | None] = {}
        #: fixture ids by (definition, param)
        self.fixture_ids: dict[tuple[int, str | None], str] = {}
        self.crashed_workers: list[str] = []
        #: the ``xdist_group`` of each test with one, as xdist workers sent them
        self.received_groups: dict[str, str] = {}
        #: this process's CPU clock at the running test's logstart, and its children's
        #: at the last test's teardown report (read once a test: every CPU clock is a
        #: system call, and under -n each one lets the busy CPUs switch processes)
        self.cpu_mark = 0.0
        self.children_mark = 0.0
        #: a few of this run's reports, to time their trip to an xdist controller
        self.report_sample: EvenSample[pytest.TestReport] = EvenSample(REPORT_SAMPLE)
        #: the controller's CPU clock at the session start
        self.controller_cpu_start = 0.0
        #: when Ctrl-C (or pytest.exit) stopped the session, if it did
        self.interrupted_at: float | None = None
        self.wall_s: float | None = None
        self.controller_cpu_s = 0.0
        #: an interpreter like a worker's, whose exit calibrates the session end
        self.exit_probe: InterpreterExitProbe | None = None
        #: what the probe is measured for, and its exit as pytest's cache kept it
        self.probe_identity = ""
        self.cached_exit: tuple[float, int] | None = None
        #: a plain run's (machine busy, own) CPU seconds at its start, and the CPU
        #: time other processes took during it (None: not measured)
        self.machine_start: tuple[float, float] | None = None
        self.other_cpu_s: float | None = None

    # --- session -----------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.origin = self.recorder.origin = timing.perf_counter()
        self.controller_cpu_start = timing.process_time()
        if self.trace is not None:
            self.trace.origin = self.origin
        if not self.is_worker and not self.is_controller:
            self.machine_start = _machine_and_own_cpu()
            # Started now, it imports while the tests run, on a CPU they leave free;
            # timed at the session end. With one usable CPU (a container's quota) there
            # is none: its imports would slow the collection and the tests it calibrates
            # from (twice the collection time under a quota of one CPU), so the session
            # end keeps the default. Under -n the workers' own ends are measured instead
            # (_workers_end_s).
            # A day of runs on this machine measures it once (pytest's cache).
            modules = plugin_modules(self.config)
            self.probe_identity = probe_identity(modules)
            cache = getattr(self.config, "cache", None)
            if cache is not None:
                found = cache.get(CACHE_KEY, None)
                self.cached_exit = cached_exit(found, self.probe_identity, time.time())
            if self.options.cpus >= 2 and self.cached_exit is None:
                self.exit_probe = InterpreterExitProbe(modules)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = timing.perf_counter()
        if not self.is_controller:
            self.children_mark = timing.children_cpu_time()
        self.collected_items = list(session.items)
        self.items = {item.nodeid: i for i, item in enumerate(session.items)}

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.current = self.running = nodeid
        if not self.is_controller:  # the controller runs no test: no CPU to mark
            self.cpu_mark = timing.process_time()

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.running = None

    # --- fixtures ----------------------------------------------------------------
    # These run for every fixture setup and teardown: they only read the clock and
    # append to a log; names, params and ids are worked out once, at the end.
    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Generator[None, Any, Any]:
        if _is_direct_parametrization(fixturedef):
            return (yield)
        stack = self.setup_stack
        stack.append(0.0)
        start = timing.perf_counter()
        try:
            return (yield)
        finally:
            total = timing.perf_counter() - start
            nested = stack.pop()
            if stack:
                stack[-1] += total
            param = _NO_PARAM if fixturedef.params is None else getattr(request, "param", _NO_PARAM)
            self.fixture_log.append(
                (fixturedef, param, self.current, "setup", start, total - nested, total)
            )
            # Registered after the fixture's own finalizers and before those of the
            # fixtures that depend on it, so it runs once the dependents are torn
            # down, just before this fixture's own teardown code.
            fixturedef.addfinalizer(functools.partial(self._teardown_started, id(fixturedef)))

    def _teardown_started(self, key: int) -> None:
        self.teardown_starts[key] = timing.perf_counter()

    def pytest_fixture_post_finalizer(self, fixturedef: Any, request: Any) -> None:
        start = self.teardown_starts.pop(id(fixturedef), None)
        if start is None:
            return
        own = timing.perf_counter() - start
        param = _NO_PARAM if fixturedef.params is None else getattr(request, "param", _NO_PARAM)
        self.fixture_log.append((fixturedef, param, self.current, "teardown", start, own, own))

    def _fixture_fields(self) -> Iterator[tuple[Any, ...]]:
        """The fixture log as ``SuiteRecorder.add_fixture_events`` rows."""
        names: dict[int, tuple[str, str, str]] = {}
        for fixturedef, param, nodeid, when, start, own, total in self.fixture_log:
            name = names.get(id(fixturedef))
            if name is None:
                name = names[id(fixturedef)] = (
                    fixturedef.argname,
                    fixturedef.scope,
                    fixturedef.baseid,
                )
            yield (
                *name,
                None if param is _NO_PARAM else _short(param),
                nodeid,
                when,
                start,
                own,
                total,
            )

    def _phase_fields(self) -> Iterator[tuple[Any, ...]]:
        """The report log as ``SuiteRecorder.add_phases`` rows."""
        items = self.items
        for nodeid, when, end, duration, outcome, used, cpu in self.report_log:
            index = items.get(nodeid, -1) if when == "setup" else -1
            uses = None
            if when == "teardown":
                uses = self._shared_fixtures_used(*used) if used is not None else []
            yield (nodeid, when, end - duration, duration, outcome, uses, index, cpu)

    # --- tests -------------------------------------------------------------------
    # Plain hooks, not a makereport wrapper: this runs for every phase of every test
    # and wrappers cost more. tryfirst so that in an xdist worker the payload is on the
    # report before xdist's own logreport hook serializes it for the controller.
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_controller:
            received = getattr(report, REPORT_ATTRIBUTE, None)
            if isinstance(received, str):  # from an xdist worker, as JSON text
                payload = _decoded(received)
                if payload is not None:
                    self.recorder.ingest(payload)
                return
            if getattr(report, "node", None) is not None:  # an xdist report without ours
                return
        nodeid, when, used = report.nodeid, report.when, None
        if when == "teardown":
            # Still inside the teardown's report: the item's request knows every
            # fixture the test used, those asked for by getfixturevalue included
            # (pytest drops the request once the test is over; the dict stays as is).
            index = self.items.get(nodeid)
            if index is not None:
                item = self.collected_items[index]
                used = (item, getattr(getattr(item, "_request", None), "_fixture_defs", None))
        outcome: str = report.outcome
        if hasattr(report, "wasxfail"):  # pytest reports an xfail as skipped, an xpass as passed
            outcome = "xfailed" if report.skipped else "xpassed" if report.passed else outcome
        # A subtest's report (pytest 9's subtests, the pytest-subtests plugin) comes inside
        # its test's call, whose own report's duration already has its time: its outcome
        # counts, its duration would count twice.
        cpu: float | None = None  # the test's CPU goes on its teardown row
        if type(report).__name__ in _SUBTEST_REPORTS:
            duration = 0.0
        else:
            duration = report.duration
            if when == "teardown":
                # Since its logstart, and the children it waited for since the last test.
                children = timing.children_cpu_time()
                cpu = timing.process_time() - self.cpu_mark + children - self.children_mark
                self.children_mark = children
        if not self.is_worker:
            # Spread over the whole run, subtests' reports among the rest: the first
            # tests' reports alone may be unlike the run's (output, tracebacks).
            self.report_sample.offer(report)
        self.report_log.append((nodeid, when, timing.perf_counter(), duration, outcome, used, cpu))
        if self.is_worker and when == "teardown":
            # One payload per test, on its last report: a third of the dicts to build,
            # send and merge. A worker that dies inside a test loses only that test's
            # phases, which the controller ends as crashed (pytest_handlecrashitem);
            # what an interrupted worker still holds goes with its workerfinished.
            # As one JSON string: execnet (de)serializes nested lists object by object
            # in Python, on the controller that every report waits for; json is C.
            setattr(report, REPORT_ATTRIBUTE, _encode_payload(self._payload()))

    def _payload(self) -> dict[str, Any]:
        """What was logged since the last payload, as rows of plain builtins (the
        fields of ``SuiteRecorder.add_phases`` and ``add_fixture_events``)."""
        payload: dict[str, Any] = {
            "worker": self.worker_id,
            "phases": list(self._phase_fields()),
            "fixtures": list(self._fixture_fields()),
        }
        self.report_log, self.fixture_log = [], []
        if not self.meta_sent:
            self.meta_sent = True
            payload["meta"] = {
                "started": self.origin,
                "collected": self.collected,
                "process_age": self.process_age,
            }
        return payload

    @staticmethod
    def _other_cpu_since(start: tuple[float, float] | None) -> float | None:
        """The CPU seconds the machine's other processes took since *start*."""
        now = _machine_and_own_cpu()
        if start is None or now is None:
            return None
        return max(0.0, (now[0] - start[0]) - (now[1] - start[1]))

    def _session_end_s(self, now: float) -> float | None:
        """A worker's session end: a plain run's from its exit probe (or the one this
        machine measured today, from pytest's cache; a new measurement goes there), an
        xdist run's from its own workers (:meth:`_workers_end_s`)."""
        if self.is_controller:
            return self._workers_end_s(now)
        timed = self.cached_exit
        if timed is None and self.exit_probe is not None:
            timed = self.exit_probe.measure_exit()
            cache = getattr(self.config, "cache", None)
            if timed is not None and cache is not None:
                cache.set(CACHE_KEY, cache_entry(self.probe_identity, *timed, time.time()))
        if timed is None:
            return None
        return session_end_s(*timed, sys.getallocatedblocks())

    def _workers_end_s(self, now: float) -> float | None:
        """Under -n: from the last test's end on any worker to *now*, the report's
        session finish, which comes after xdist's controller has torn its workers down
        (their plugins' end of session, their interpreters' exit: pytest's session time
        has it); None in a plain run, or when no worker ran a test."""
        if not self.is_controller:
            return None
        ends = [state.last_end for state in self.recorder.workers.values() if state.last_end > 0.0]
        return max(0.0, now - max(ends)) if ends else None

    def _send_session_end(self) -> None:
        """What a worker tells the controller once, with its ``workerfinished``
        (``config.workeroutput``, plain builtins): when it was interrupted, and the
        ``xdist_group`` of its tests (worked out here, not per test: the reports only
        carry timings)."""
        output = getattr(self.config, "workeroutput", None)
        if not isinstance(output, dict):
            return
        sent: dict[str, Any] = {}
        if self.interrupted_at is not None:
            # The controller ends the interrupted test when it hears the worker is down.
            sent["interrupted_at"] = self.interrupted_at
        groups = item_groups(self.collected_items)
        if groups:
            sent["groups"] = groups
        if self.report_log or self.fixture_log:
            # Phases of a test stopped inside (Ctrl-C): its teardown report never came.
            sent["rest"] = self._payload()
        if sent:
            output[REPORT_ATTRIBUTE] = sent

    def _record_plain_run(self) -> None:
        """A plain run's logs go straight into the recorder, once, at the end."""
        recorder, worker = self.recorder, self.worker_id
        state = recorder.workers[worker]
        state.started, state.collected = self.origin, self.collected
        recorder.add_fixture_events(worker, self._fixture_fields())
        recorder.add_phases(worker, self._phase_fields())
        self.report_log, self.fixture_log = [], []

    def _shared_fixtures_used(self, item: pytest.Item, defs: Any) -> list[str]:
        """The ids of the shared fixtures in *defs*, the fixture definitions the item's
        request resolved (pytest's private API: anything unexpected means "unknown",
        empty)."""
        if not isinstance(defs, dict):
            return []
        used = []
        shared_defs, ids = self.shared_defs, self.fixture_ids
        params = None
        for fixturedef in defs.values():
            key = id(fixturedef)
            if key in shared_defs:
                shared = shared_defs[key]
            else:
                shared = shared_defs[key] = (
                    (fixturedef.argname, fixturedef.scope, fixturedef.baseid)
                    if fixturedef.scope in SHARED_SCOPES
                    and not _is_direct_parametrization(fixturedef)
                    else None
                )
            if shared is None:
                continue
            param = None
            if fixturedef.params is not None:
                # The item's own param: at the last test of a scope the instance is
                # already torn down when its teardown is reported.
                if params is None:
                    params = getattr(getattr(item, "callspec", None), "params", {})
                if fixturedef.argname in params:
                    param = _short(params[fixturedef.argname])
                elif fixturedef.cached_result is not None:
                    param = _short(fixturedef.cached_result[1])  # the cache key is the param
            fid = ids.get((key, param))
            if fid is None:
                fid = ids[(key, param)] = fixture_id(*shared, param)
            used.append(fid)
        return used

    # --- end of session ----------------------------------------------------------
    # tryfirst: before the terminal reporter formats the traceback (a tenth of a second
    # that belongs to no test).
    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        self.interrupted_at = timing.perf_counter()

    # trylast: inside pytest's own wrappers, so that a warning raised here is captured
    # and shown in the summary like any other.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        end = timing.perf_counter()
        self.wall_s = end - self.origin
        self.controller_cpu_s = timing.process_time() - self.controller_cpu_start
        self.other_cpu_s = self._other_cpu_since(self.machine_start)
        if self.is_worker:
            self._send_session_end()
        if not self.is_worker:
            if self.report_log or self.fixture_log:
                self._record_plain_run()
            # Issue 14: a test stopped inside (Ctrl-C, pytest.exit) has no teardown
            # report; what it reported so far must not make it "passed".
            running = self.running
            started = [] if running is None or self.is_controller else [(self.worker_id, running)]
            stopped = end if self.interrupted_at is None else self.interrupted_at
            self.recorder.end_unfinished(stopped, Outcome.INTERRUPTED, started)
        path = self.options.trace
        if path and not self.is_worker:
            # Before the other sessionfinish hooks: every test is over, and a warning
            # raised here still reaches the terminal summary.
            write_output(session, "parallel_trace", path, self.write_trace)
        return (yield)

    # tryfirst: before pytest's own unconfigure runs a full garbage collection, which
    # would otherwise walk every logged report and row of a large suite.
    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Drop what was measured: the section is written and printed by now."""
        if self.exit_probe is not None:
            self.exit_probe.close()
        self.items, self.report_log, self.fixture_log = {}, [], []
        self.collected_items = []
        self.shared_defs, self.fixture_ids = {}, {}
        self.report_sample = EvenSample(REPORT_SAMPLE)
        self.recorder = SuiteRecorder(self.origin, keep_events=False)
        if self.trace is not None:
            self.trace.events = []

    def write_trace(self, path: str) -> None:
        """Write the trace atomically (valid JSON whatever happened to the tests)."""
        meta = {
            w: {"started": s.started, "collected": s.collected}
            for w, s in self.recorder.workers.items()
        }
        events = events_from_recording(
            self.origin, self.recorder.phase_events, self.recorder.fixture_events, meta
        )
        extra = self.trace.events if self.trace is not None else []
        write_atomically(path, trace_text(events + extra))

    def contribute(self, document: RunDocument) -> RunDocument:
        """The ``suite`` section of the run document (controller or plain run only)."""
        return replace(document, suite=self.suite_section())

    def suite_section(self) -> SuiteSection:
        """What was recorded, calibrated, with the prediction for every -n N and mode.

        A run in which no test ran (``--co``, everything deselected) has nothing to
        predict from: no calibration, prediction or recommendation (issue 14).
        """
        from pytest_parallel_lab.document.suite import ActualRun, PredictedFrom
        from pytest_parallel_lab.suite.gateways import count_gateways
        from pytest_parallel_lab.suite.model import calibrate, model_from_section
        from pytest_parallel_lab.suite.recorder import build_section
        from pytest_parallel_lab.suite.simulate import (
            advise,
            default_worker_counts,
            predict_all,
            predict_gateways,
        )
        from pytest_parallel_lab.suite.xdist_schedulers import xdist_scheduler_factory

        # Under -n, until now: xdist's controller waits for its workers to go down in
        # its own sessionfinish, before the report's (trylast), and the run's time has it.
        now = timing.perf_counter()
        wall = now - self.origin if self.is_controller or self.wall_s is None else self.wall_s
        xdist = self.options.xdist
        xdist_n = xdist.workers if self.is_controller else 0
        # A plain run's own items; under -n, what the workers sent at their end.
        groups = self.received_groups if self.is_controller else item_groups(self.collected_items)
        self.recorder.set_groups(groups)
        section = build_section(self.recorder, wall, self.crashed_workers)
        predictions: tuple[Prediction, ...] = ()
        local, remote = count_gateways(self.options.tx)
        if section.tests:
            calibration = calibrate(
                section,
                xdist_workers=xdist_n,
                process_age_s=self.process_age,
                cpus=self.options.cpus,
                report_roundtrip_s=report_roundtrip_s(self.config, self.report_sample.items),
                controller_cpu_s=self.controller_cpu_s if xdist_n else None,
                other_cpu_s=self.other_cpu_s,
                session_end_s=self._session_end_s(now),
            )
            calibration = replace(calibration, remote_startup_s=self.options.tx_startup)
            section = replace(section, calibration=calibration)
            if self.calibrating is not None:
                section = self._calibrated(section)
                calibration = section.calibration or calibration
            model = model_from_section(section)
            if model.first_use:  # estimated by the model from the tests: in the report too
                calibration = replace(
                    calibration,
                    first_use_units=len(model.first_use),
                    first_use_s=sum(model.first_use.values()),
                )
                section = replace(section, calibration=calibration)
            # A run on remote gateways is predicted as one: -n of its count is another.
            own = [xdist_n] if xdist_n and not remote else []
            counts = default_worker_counts(calibration.cpus, [*self.options.predict, *own])
            factory = xdist_scheduler_factory(self.config)
            predictions = tuple(predict_all(model, counts, factory=factory))
            if remote:
                predictions += tuple(predict_gateways(model, local, remote, factory=factory))
            if self.options.predict_shards and not xdist_n:
                from pytest_parallel_lab.suite.shards import predict_shards

                section = replace(
                    section,
                    shards=tuple(
                        predict_shards(model, k, n, "load", factory)
                        for k in range(1, self.options.predict_shards + 1)
                        for n in counts
                    ),
                )
        if xdist_n:
            section = replace(
                section,
                prediction=predictions,
                actual=ActualRun(xdist_n, xdist.dist, wall, remote),
                serial_wall_s=None,
            )
        else:
            section = replace(
                section,
                prediction=predictions,
                serial_wall_s=wall,
                recommended=advise(predictions, wall) if predictions else None,
            )
        source = self.options.predict_from
        if source and self.saved is not None:
            section = replace(section, predicted_from=PredictedFrom(source, self.predict_from_text))
        return section

    def _calibrated(self, section: SuiteSection) -> SuiteSection:
        """*section* with what ``--parallel-calibrate-from``'s run measured; as it was,
        with a warning, when that run has none of this run's tests."""
        from pytest_parallel_lab.document.codec import DocumentError
        from pytest_parallel_lab.suite.calibration_run import calibrate_with_run

        assert self.calibrating is not None
        try:
            return calibrate_with_run(section, self.calibrating)
        except DocumentError as exc:
            given = self.options.calibrate_from
            warnings.warn(
                pytest.PytestWarning(
                    f"--parallel-calibrate-from={given}: {exc}; the prediction is not "
                    "calibrated. Fix: save a -n 2 run of this suite's tests with "
                    "pytest -n 2 --parallel-report-json=PATH"
                ),
                stacklevel=1,
            )
            return section

    @functools.cached_property
    def predict_from_text(self) -> str:
        """The prediction from ``--parallel-predict-from``'s saved run, as text (made
        once: the section and the terminal summary both show it)."""
        from pytest_parallel_lab.output.suite_text import render_prediction

        saved = self.saved
        if saved is None:
            return ""
        return render_prediction(saved.predictions, saved.advice, saved.serial_wall_s)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.saved is None:
            return
        terminalreporter.write_sep("=", "pytest-parallel-lab: prediction from a saved run")
        for line in self.predict_from_text.splitlines():
            terminalreporter.write_line(line)


#: A worker's payload as compact JSON; one encoder for every payload (json.dumps with
#: separators builds a new one each call).
_encode_payload = json.JSONEncoder(separators=(",", ":")).encode


def _decoded(text: str) -> dict[str, Any] | None:
    """A worker's payload, or None when it is not one (another plugin's attribute)."""
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


class XdistSuiteHooks:
    """Controller-side xdist hooks; registered only when pytest-xdist is installed."""

    def __init__(self, plugin: SuiteTimingPlugin) -> None:
        self.plugin = plugin

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        if error:
            self.plugin.crashed_workers.append(str(node.gateway.id))
        output = getattr(node, "workeroutput", None)  # set when the worker finished
        sent = output.get(REPORT_ATTRIBUTE) if isinstance(output, dict) else None
        # pop: xdist calls this hook twice for a worker stopped by Ctrl-C
        rest = sent.pop("rest", None) if isinstance(sent, dict) else None
        if isinstance(rest, dict):
            self.plugin.recorder.ingest(rest)
        groups = sent.get("groups") if isinstance(sent, dict) else None
        if isinstance(groups, dict):
            self.plugin.received_groups.update(
                (str(nodeid), str(group)) for nodeid, group in groups.items()
            )

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: Any, sched: Any) -> None:
        """The test a worker was running when it went down: xdist's report of it
        carries no timing of ours, and what the worker sent before (its setup) must not
        make it "passed". A worker that finished with pytest's "interrupted" exit status
        was stopped by Ctrl-C; any other went down while it ran (issue 14)."""
        node = getattr(report, "node", None)
        gateway = getattr(node, "gateway", None)
        worker = str(getattr(gateway, "id", "main"))
        output = getattr(node, "workeroutput", None)  # set when the worker finished
        if not isinstance(output, dict):
            output = {}
        interrupted = output.get("exitstatus") == pytest.ExitCode.INTERRUPTED
        outcome = Outcome.INTERRUPTED if interrupted else Outcome.CRASHED
        at = timing.perf_counter()
        sent = output.get(REPORT_ATTRIBUTE)
        if interrupted and isinstance(sent, dict) and isinstance(sent.get("interrupted_at"), float):
            at = min(at, sent["interrupted_at"])
        self.plugin.recorder.end_test(worker, crashitem, at, outcome)
