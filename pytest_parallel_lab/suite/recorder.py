"""Suite timing: what every test and fixture cost, per worker, as a typed section.

Pure (no pytest import). The glue (``suite/hooks.py``) logs each test phase and
fixture event as a tuple of fields (:data:`PhaseFields`, :data:`FixtureEventFields`);
a plain run feeds its logs straight to a :class:`SuiteRecorder` at the end, an xdist
worker sends them as a *payload* of plain builtins with each test report, which the
controller's recorder ingests. :func:`build_section` turns what was recorded into
the document's :class:`~pytest_parallel_lab.document.suite.SuiteSection`, once. All
times in payloads are absolute ``timing.perf_counter`` readings (CLOCK_MONOTONIC on
Linux, so comparable across the processes of one machine); the section holds
durations and offsets from the session start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_parallel_lab.vocabulary import Outcome

# The section's records are imported where the section is made (a plain run's or the
# controller's end): an xdist worker only logs and sends rows, and defining the records'
# dataclasses would cost each worker ~10 ms as it starts.
if TYPE_CHECKING:
    from pytest_parallel_lab.document.suite import (
        FixtureDuplication,
        FixtureTiming,
        Imbalance,
        SuiteSection,
        TestTiming,
        WorkerChain,
        WorkerTiming,
    )

#: Scopes whose fixture instances can be shared by several tests (and duplicated by xdist).
SHARED_SCOPES = ("session", "package", "module", "class")


def fixture_key(name: str, scope: str, baseid: str) -> str:
    """A fixture definition, whatever its param: one instance of it is active at a time."""
    return f"{baseid}::{name}@{scope}"


def fixture_id(name: str, scope: str, baseid: str, param: str | None) -> str:
    """A fixture definition and param: the key of a shared instance in tests and fixtures rows."""
    if param is None:
        return fixture_key(name, scope, baseid)
    return f"{baseid}::{name}[{param}]@{scope}"


def scope_node(nodeid: str, scope: str) -> str:
    """The collection node that owns an instance of a *scope* fixture used by *nodeid*."""
    if scope == "session":
        return ""
    parts = nodeid.split("::")
    if scope == "package":
        return parts[0].rpartition("/")[0]
    if scope == "class" and len(parts) > 2:
        return "::".join(parts[:2])
    return parts[0]


# The builders are plain slotted classes, not dataclasses: one is made per test and
# per fixture, and a dataclass costs a few hundred microseconds to define at import.


class _TestBuilder:
    __slots__ = (
        "cpu",
        "end",
        "fixture_s",
        "group",
        "index",
        "outcome",
        "phases",
        "reports",
        "start",
        "uses",
        "worker",
    )

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.phases: dict[str, float] = {}
        self.start: float | None = None
        self.end = 0.0
        self.outcome = Outcome.PASSED
        self.fixture_s = 0.0
        self.uses: tuple[str, ...] = ()
        self.index = -1
        self.cpu: float | None = None
        self.reports = 0
        self.group = ""


class _FixtureBuilder:
    __slots__ = ("baseid", "instances", "name", "param", "scope", "setup_s", "teardown_s")

    def __init__(self, name: str, scope: str, baseid: str, param: str | None) -> None:
        self.name, self.scope, self.baseid, self.param = name, scope, baseid, param
        self.setup_s = 0.0
        self.teardown_s = 0.0
        self.instances = 0


class _WorkerBuilder:
    __slots__ = ("busy_s", "collected", "last_end", "started", "tests")

    def __init__(self) -> None:
        self.started: float | None = None
        self.collected: float | None = None
        self.busy_s = 0.0
        self.tests = 0
        self.last_end = 0.0


#: Outcomes of a test that never finished: nothing pytest reports after them changes them.
_ENDED_OUTCOMES = (Outcome.CRASHED, Outcome.INTERRUPTED)
#: What a phase's report can say besides passed and failed (xfail: see SuiteTimingPlugin).
_QUIET_OUTCOMES = (Outcome.SKIPPED, Outcome.XFAILED, Outcome.XPASSED)

#: ``SuiteRecorder.add_fixture_events`` rows: name, scope, baseid, param, nodeid, when,
#: start, own_s, total_s.
FixtureEventFields = tuple[str, str, str, "str | None", str, str, float, float, float]
#: ``SuiteRecorder.add_phases`` rows: nodeid, when, start, duration, outcome, uses, index,
#: and optionally the phase's CPU time (None or left out: unknown).
PhaseFields = tuple[str, str, float, float, str, "Sequence[str] | None", int, "float | None"]


class SuiteRecorder:
    """Collects what this process or xdist workers measured, per worker.

    :meth:`add_phases` and :meth:`add_fixture_events` take rows of fields (a plain run
    feeds them straight from its logs); :meth:`ingest` takes a worker's payload:
    ``worker`` (str), optionally ``meta`` ``{started, collected, process_age}``,
    ``phases`` (a list of :data:`PhaseFields`) and ``fixtures`` (a list of
    :data:`FixtureEventFields`). With ``keep_events`` the events are also kept for
    the trace.
    """

    def __init__(self, origin: float, keep_events: bool = True) -> None:
        self.origin = origin
        self.keep_events = keep_events
        self.tests: dict[tuple[str, str], _TestBuilder] = {}
        self.fixtures: dict[tuple[str, str | None, str, str, str], _FixtureBuilder] = {}
        self.workers: dict[str, _WorkerBuilder] = defaultdict(_WorkerBuilder)
        self.phase_events: list[dict[str, Any]] = []
        self.fixture_events: list[dict[str, Any]] = []

    def ingest(self, payload: Mapping[str, Any]) -> None:
        """Add one payload from an xdist worker; unknown keys are ignored."""
        worker = str(payload.get("worker", "main"))
        state = self.workers[worker]
        meta = payload.get("meta")
        if isinstance(meta, dict):
            state.started = meta.get("started", state.started)
            state.collected = meta.get("collected", state.collected)
        self.add_fixture_events(worker, map(tuple, payload.get("fixtures", ())))
        self.add_phases(worker, map(tuple, payload.get("phases", ())))

    def add_fixture_events(self, worker: str, events: Iterable[FixtureEventFields]) -> None:
        """Fixture setups and teardowns, each ``(name, scope, baseid, param, nodeid, when,
        start, own_s, total_s)``; *own_s* excludes the fixtures it depends on."""
        fixtures, tests, keep = self.fixtures, self.tests, self.keep_events
        for event in events:
            name, scope, baseid, param, nodeid, when, start, own_s, total_s = event
            if keep:
                self.fixture_events.append(
                    {
                        "name": name,
                        "scope": scope,
                        "baseid": baseid,
                        "param": param,
                        "nodeid": nodeid,
                        "when": when,
                        "start": start,
                        "own_s": own_s,
                        "total_s": total_s,
                        "worker": worker,
                    }
                )
            key = (name, param, scope, baseid, worker)
            builder = fixtures.get(key)
            if builder is None:
                builder = fixtures[key] = _FixtureBuilder(name, scope, baseid, param)
            if when == "setup":
                builder.setup_s += own_s
                builder.instances += 1
            else:
                builder.teardown_s += own_s
            if nodeid and scope in SHARED_SCOPES:
                test = tests.get((nodeid, worker))
                if test is None:
                    test = tests[(nodeid, worker)] = _TestBuilder(worker)
                test.fixture_s += own_s

    def add_phases(self, worker: str, phases: Iterable[Sequence[Any]]) -> None:
        """Test phases as pytest reported them, each ``(nodeid, when, start, duration,
        outcome, uses, index[, cpu])``; ``uses`` may be None, ``index`` -1 and ``cpu``
        None (or left out) when unknown. Each row is one report (a subtest's too)."""
        tests, keep = self.tests, self.keep_events
        state = self.workers[worker]
        busy, last_end, count = state.busy_s, state.last_end, state.tests
        last_nodeid: str | None = None
        test = _TestBuilder(worker)  # replaced at the first phase
        for row in phases:
            nodeid, when, start, duration, outcome, uses, index = row[:7]
            cpu = row[7] if len(row) > 7 else None
            if keep:
                self.phase_events.append(
                    {
                        "nodeid": nodeid,
                        "when": when,
                        "start": start,
                        "duration": duration,
                        "outcome": outcome,
                        "worker": worker,
                    }
                )
            if nodeid is not last_nodeid:  # a test's phases come one after another
                found = tests.get((nodeid, worker))
                if found is None:
                    found = tests[(nodeid, worker)] = _TestBuilder(worker)
                test, last_nodeid = found, nodeid
            test.phases[when] = test.phases.get(when, 0.0) + duration
            test.reports += 1
            if cpu is not None:
                test.cpu = cpu if test.cpu is None else test.cpu + cpu
            end = start + duration
            if test.start is None:
                test.start = start
                count += 1
            if end > test.end:
                test.end = end
            if outcome in _ENDED_OUTCOMES:
                test.outcome = Outcome(outcome)
            elif test.outcome in _ENDED_OUTCOMES:
                pass  # a crash or an interrupt is what the test ended with
            elif outcome == "failed":
                test.outcome = Outcome.FAILED if when == "call" else Outcome.ERROR
            elif outcome in _QUIET_OUTCOMES and test.outcome is Outcome.PASSED:
                test.outcome = Outcome(outcome)
            if uses:
                test.uses = tuple(uses)
            if index >= 0:
                test.index = index
            busy += duration
            if end > last_end:
                last_end = end
        state.busy_s, state.last_end, state.tests = busy, last_end, count

    def set_groups(self, groups: Mapping[str, str]) -> None:
        """The ``xdist_group`` of tests that have one, by node id."""
        for (nodeid, _), test in self.tests.items():
            group = groups.get(nodeid)
            if group:
                test.group = group

    def end_test(self, worker: str, nodeid: str, at: float, outcome: Outcome) -> None:
        """A test that ended without pytest's reports of its remaining phases: its
        worker crashed or the run was interrupted. The phase it was in (the one after
        its last reported phase) lasts until *at*, and the test ends with *outcome*."""
        test = self.tests.get((nodeid, worker))
        if test is not None and test.start is not None:
            start = test.end
            # After its setup it was in its call, unless the setup failed or skipped it.
            past_call = "call" in test.phases or test.outcome is not Outcome.PASSED
            when = "teardown" if past_call else "call"
        else:
            # Nothing reported yet: it started when its worker finished the test before.
            state = self.workers[worker]
            start = max(state.last_end, state.collected or 0.0) or at
            when = "setup"
        start = min(start, at)
        self.add_phases(worker, [(nodeid, when, start, at - start, outcome, None, -1, None)])

    def end_unfinished(
        self, at: float, outcome: Outcome, running: Iterable[tuple[str, str]] = ()
    ) -> list[str]:
        """End every test that started but was not torn down (pytest reports every
        started test's teardown, unless the run stopped inside it); *running* adds
        ``(worker, nodeid)`` of tests known to have started without any report.
        Returns the node ids it ended."""
        for worker, nodeid in running:
            self.tests.setdefault((nodeid, worker), _TestBuilder(worker))
        unfinished = [
            (nodeid, worker)
            for (nodeid, worker), test in self.tests.items()
            if "teardown" not in test.phases and test.outcome not in _ENDED_OUTCOMES
        ]
        for nodeid, worker in unfinished:
            self.end_test(worker, nodeid, at, outcome)
        return [nodeid for nodeid, _ in unfinished]

    def test_timings(self) -> list[TestTiming]:
        """Tests in the order they started (each worker's order is preserved)."""
        from pytest_parallel_lab.document.suite import TestTiming

        origin = self.origin
        rows = [
            TestTiming(
                nodeid,
                b.worker,
                b.phases.get("setup", 0.0),
                b.phases.get("call", 0.0),
                b.phases.get("teardown", 0.0),
                b.outcome,
                (origin if b.start is None else b.start) - origin,
                b.fixture_s,
                b.uses,
                b.index,
                b.cpu,
                max(1, b.reports),
                b.group,
            )
            for (nodeid, _), b in self.tests.items()
        ]
        rows.sort(key=lambda r: r.start_s)
        return rows

    def fixture_timings(self) -> list[FixtureTiming]:
        """Fixture rows per (fixture, param, worker)."""
        from pytest_parallel_lab.document.suite import FixtureTiming

        return [
            FixtureTiming(
                fixture_id(b.name, b.scope, b.baseid, b.param),
                b.name,
                b.scope,
                b.baseid,
                b.param,
                worker,
                b.setup_s,
                b.teardown_s,
                b.instances,
            )
            for (*_, worker), b in self.fixtures.items()
        ]

    def worker_timings(self) -> list[WorkerTiming]:
        """One row per process; idle is the time between collection and the last test
        end not spent in a test phase."""
        from pytest_parallel_lab.document.suite import WorkerTiming

        rows = []
        for worker, s in sorted(self.workers.items()):
            started = s.started if s.started is not None else self.origin
            collected = s.collected if s.collected is not None else started
            end = max(s.last_end, collected)
            rows.append(
                WorkerTiming(
                    id=worker,
                    startup_s=max(0.0, started - self.origin),
                    collection_s=max(0.0, collected - started),
                    busy_s=s.busy_s,
                    idle_s=max(0.0, end - collected - s.busy_s),
                    tests=s.tests,
                    finish_s=end - self.origin,
                )
            )
        return rows


def imbalance(workers: Sequence[WorkerTiming]) -> Imbalance | None:
    """Slowest worker's busy time over the mean, and the spread of finish times."""
    from pytest_parallel_lab.document.suite import Imbalance

    if not workers:
        return None
    mean = sum(w.busy_s for w in workers) / len(workers)
    slowest = max(w.busy_s for w in workers)
    finishes = [w.finish_s for w in workers]
    return Imbalance(slowest / mean if mean > 0 else 1.0, max(finishes) - min(finishes))


def fixture_duplication(fixtures: Sequence[FixtureTiming]) -> list[FixtureDuplication]:
    """For shared-scope fixtures: instances across workers and what they cost versus
    the instances one serial process would need (the most any single worker needed
    per scope node is unknown here, so the serial cost is the mean per instance times
    the number of distinct (fixture, param) instances of the busiest worker)."""
    from pytest_parallel_lab.document.suite import FixtureDuplication

    grouped: dict[str, list[FixtureTiming]] = defaultdict(list)
    for row in fixtures:
        if row.scope in SHARED_SCOPES:
            grouped[row.id].append(row)
    result = []
    for fid, rows in grouped.items():
        instances = sum(r.instances for r in rows)
        total = sum(r.setup_s + r.teardown_s for r in rows)
        serial = total / instances * max(r.instances for r in rows) if instances else 0.0
        result.append(
            FixtureDuplication(
                fid,
                rows[0].name,
                rows[0].scope,
                len(rows),
                instances,
                total,
                serial,
                total - serial,
            )
        )
    result.sort(key=lambda d: -d.extra_s)
    return result


def last_worker_chain(tests: Sequence[TestTiming], workers: Sequence[WorkerTiming]) -> WorkerChain:
    """The tests, in order, of the worker that finished last (what the wall time waited on)."""
    from pytest_parallel_lab.document.suite import ChainLink, WorkerChain

    if not workers:
        return WorkerChain(None)
    last = max(workers, key=lambda w: w.finish_s)
    return WorkerChain(
        last.id, tuple(ChainLink(t.nodeid, t.total_s) for t in tests if t.worker == last.id)
    )


def build_section(
    recorder: SuiteRecorder, wall_s: float, crashed_workers: Sequence[str] = ()
) -> SuiteSection:
    """What was recorded, as the ``suite`` section (without the prediction)."""
    from pytest_parallel_lab.document.suite import SuiteSection

    tests = recorder.test_timings()
    fixtures = recorder.fixture_timings()
    workers = recorder.worker_timings()
    distributed = len(workers) > 1
    return SuiteSection(
        tests=tuple(tests),
        fixtures=tuple(fixtures),
        workers=tuple(workers),
        wall_s=wall_s,
        imbalance=imbalance(workers) if distributed else None,
        duplication=tuple(fixture_duplication(fixtures)) if distributed else (),
        last_worker_chain=last_worker_chain(tests, workers) if distributed else None,
        crashed_workers=tuple(crashed_workers),
    )
