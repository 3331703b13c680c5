"""The hook objects of suite analysis: time tests and fixtures, merge what xdist
workers send, and contribute the ``suite`` section and the trace.

Registered by :func:`pytest_parallel_lab.suite_plugin.configure` only when a report,
a JSON file, a trace or a prediction from a file was asked for. Measurements become
plain-builtin payloads (``suite_timing.SuiteRecorder``); in an xdist worker each
payload rides on its test report as ``report.parallel_lab_suite``, so the controller
has everything a crashed worker reported before it died.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from pytest_parallel_lab import timing
from pytest_parallel_lab.document.run import DocumentError, load_document, write_atomically
from pytest_parallel_lab.marked.marker import usable_cpus
from pytest_parallel_lab.plugin import write_output
from pytest_parallel_lab.suite.recorder import (
    SHARED_SCOPES,
    SuiteRecorder,
    build_section,
    fixture_id,
)
from pytest_parallel_lab.suite.simulate import (
    DIST_MODES,
    STARTUP_RATIO,
    default_worker_counts,
    model_from_section,
    predict_all,
    predict_document_text,
    prediction_rows,
    recommend,
)
from pytest_parallel_lab.suite.trace import events_from_recording, trace_text
from pytest_parallel_lab.suite_plugin import REPORT_ATTRIBUTE, worker_counts_option


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


class SuiteTimingPlugin:
    """Times tests and fixtures in this process; on the controller, also merges what
    xdist workers sent and contributes the ``suite`` section.

    The per-test hooks only append tuples to logs (a few hundred nanoseconds each);
    turning them into payloads happens once at the end of a plain run, or per report
    in an xdist worker, whose payload must travel with each report.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        workerinput = getattr(config, "workerinput", None)
        self.is_worker = workerinput is not None
        # xdist's controller runs no tests: it merges what the workers send.
        self.is_controller = not self.is_worker and getattr(config.option, "dist", "no") != "no"
        self.worker_id = str(workerinput["workerid"]) if workerinput else "main"
        self.origin = timing.perf_counter()
        # Raw events are kept only for a trace (the controller's, or a plain run's).
        self.recorder = SuiteRecorder(
            self.origin, keep_events=bool(config.getoption("parallel_trace", None))
        )
        self.process_age = _process_age()
        self.collected: float | None = None
        self.meta_sent = False
        self.items: dict[str, tuple[int, pytest.Item]] = {}
        self.current = ""
        self.setup_stack: list[float] = []
        #: (nodeid, when, clock at the report, duration, outcome, (item, its fixture
        #: definitions) at teardown or None) per test phase
        self.report_log: list[tuple[str, str, float, float, str, tuple[Any, Any] | None]] = []
        #: (fixturedef, param, nodeid, when, start, own, total) per fixture setup/teardown
        self.fixture_log: list[tuple[Any, Any, str, str, float, float, float]] = []
        self.teardown_starts: dict[int, float] = {}
        #: per fixture definition: its (name, scope, baseid) when shared, else None
        self.shared_defs: dict[int, tuple[str, str, str] | None] = {}
        #: fixture ids by (definition, param)
        self.fixture_ids: dict[tuple[int, str | None], str] = {}
        self.extra_trace_events: list[dict[str, Any]] = []
        self.crashed_workers: list[str] = []
        self.wall_s: float | None = None

    # --- session -----------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.origin = self.recorder.origin = timing.perf_counter()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = timing.perf_counter()
        self.items = {item.nodeid: (i, item) for i, item in enumerate(session.items)}

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.current = nodeid

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
        for nodeid, when, end, duration, outcome, used in self.report_log:
            index = items.get(nodeid, (-1,))[0] if when == "setup" else -1
            uses = None
            if when == "teardown":
                uses = self._shared_fixtures_used(*used) if used is not None else []
            yield (nodeid, when, end - duration, duration, outcome, uses, index)

    # --- tests -------------------------------------------------------------------
    # Plain hooks, not a makereport wrapper: this runs for every phase of every test
    # and wrappers cost more. tryfirst so that in an xdist worker the payload is on the
    # report before xdist's own logreport hook serializes it for the controller.
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_controller:
            received = getattr(report, REPORT_ATTRIBUTE, None)
            if isinstance(received, dict):  # from an xdist worker
                self.recorder.ingest(received)
                return
            if getattr(report, "node", None) is not None:  # an xdist report without ours
                return
        nodeid, when, used = report.nodeid, report.when, None
        if when == "teardown":
            # Still inside the teardown's report: the item's request knows every
            # fixture the test used, those asked for by getfixturevalue included
            # (pytest drops the request once the test is over; the dict stays as is).
            entry = self.items.get(nodeid)
            if entry is not None:
                item = entry[1]
                used = (item, getattr(getattr(item, "_request", None), "_fixture_defs", None))
        self.report_log.append(
            (nodeid, when, timing.perf_counter(), report.duration, report.outcome, used)
        )
        if self.is_worker:
            setattr(report, REPORT_ATTRIBUTE, self._payload())

    def _payload(self) -> dict[str, Any]:
        """What was logged since the last payload, as plain builtins (for the controller)."""
        fixture_keys = ("name", "scope", "baseid", "param", "nodeid", "when", "start")
        payload: dict[str, Any] = {
            "worker": self.worker_id,
            "phases": [
                dict(
                    zip(
                        ("nodeid", "when", "start", "duration", "outcome", "uses", "index"),
                        fields,
                        strict=True,
                    )
                )
                for fields in self._phase_fields()
            ],
            "fixtures": [
                dict(zip((*fixture_keys, "own_s", "total_s"), fields, strict=True))
                for fields in self._fixture_fields()
            ],
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
    # trylast: inside pytest's own wrappers, so that a warning raised here is captured
    # and shown in the summary like any other.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        self.wall_s = timing.perf_counter() - self.origin
        if not self.is_worker and (self.report_log or self.fixture_log):
            self._record_plain_run()
        path = self.config.getoption("parallel_trace", None)
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
        self.items, self.report_log, self.fixture_log = {}, [], []
        self.shared_defs, self.fixture_ids, self.extra_trace_events = {}, {}, []
        self.recorder = SuiteRecorder(self.origin, keep_events=False)

    def write_trace(self, path: str) -> None:
        """Write the trace atomically (valid JSON whatever happened to the tests)."""
        meta = {
            w: {"started": s.started, "collected": s.collected}
            for w, s in self.recorder.workers.items()
        }
        events = events_from_recording(
            self.origin, self.recorder.phase_events, self.recorder.fixture_events, meta
        )
        write_atomically(path, trace_text(events + self.extra_trace_events))

    @pytest.hookimpl(optionalhook=True)
    def pytest_parallel_lab_document_sections(self, config: pytest.Config) -> dict[str, Any] | None:
        """The ``suite`` section (controller or plain run only)."""
        if self.is_worker:
            return None
        return {"suite": self.suite_section()}

    def suite_section(self) -> dict[str, Any]:
        wall = self.wall_s if self.wall_s is not None else timing.perf_counter() - self.origin
        numprocesses = getattr(self.config.option, "numprocesses", None)
        dist = getattr(self.config.option, "dist", "no")
        xdist_n = numprocesses if isinstance(numprocesses, int) and dist != "no" else 0
        section = build_section(self.recorder, wall, {"crashed_workers": self.crashed_workers})
        section["calibration"] = self._calibration(section, xdist_n)
        model = model_from_section(section)
        extra = list(self.config.getoption("parallel_predict", None) or [])
        ini = str(self.config.getini("parallel_predict") or "").strip()
        if ini and not extra:
            extra = worker_counts_option(ini)
        if xdist_n:
            extra.append(xdist_n)
        counts = default_worker_counts(model.calibration.cpus, extra)
        predictions = predict_all(model, counts, DIST_MODES)
        section["prediction"] = prediction_rows(predictions)
        if xdist_n:
            section["actual"] = {"workers": xdist_n, "dist": dist, "wall_s": wall}
            section["serial_wall_s"] = None
        else:
            section["serial_wall_s"] = wall
            section["recommended"] = recommend(predictions, wall)
        source = self.config.getoption("parallel_predict_from", None)
        if source:
            section["predicted_from"] = {"path": str(source), "text": self.predict_from_text()}
        return section

    def _calibration(self, section: dict[str, Any], xdist_n: int) -> dict[str, Any]:
        workers = section["workers"]
        tests = max(1, sum(w["tests"] for w in workers))
        cpus = usable_cpus()
        if xdist_n and workers:
            return {
                "startup_s": sum(w["startup_s"] for w in workers) / len(workers),
                "collection_s": sum(w["collection_s"] for w in workers) / len(workers),
                "per_test_overhead_s": sum(w["idle_s"] for w in workers) / tests,
                # measured under xdist: contention and per-report costs are already in
                "xdist_per_test_s": 0.0,
                "controller_load": 0.0,
                "cpus": cpus,
            }
        collection = workers[0]["collection_s"] if workers else 0.0
        busy = workers[0]["busy_s"] if workers else 0.0
        age = self.process_age if self.process_age is not None else 0.3
        return {
            # a worker starts much like this process did (interpreter, imports, plugins)
            "startup_s": age * STARTUP_RATIO,
            "collection_s": collection,
            "per_test_overhead_s": max(0.0, section["wall_s"] - collection - busy) / tests,
            "cpus": cpus,
        }

    def predict_from_text(self) -> str:
        source = self.config.getoption("parallel_predict_from", None)
        try:
            document = load_document(os.path.join(self.config.invocation_params.dir, source))
            return predict_document_text(document, self.config.getoption("parallel_predict", None))
        except DocumentError as exc:
            return f"--parallel-predict-from: {exc}"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or not self.config.getoption("parallel_predict_from", None):
            return
        terminalreporter.write_sep("=", "pytest-parallel-lab: prediction from a saved run")
        for line in self.predict_from_text().splitlines():
            terminalreporter.write_line(line)


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
