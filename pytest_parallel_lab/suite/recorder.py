"""Suite timing: what every test and fixture cost, per worker, as plain data.

This module is pure (no pytest import). The pytest glue (``suite_plugin.py``) turns
each test report into a *payload* of plain builtins (the same payload travels from an
xdist worker to the controller as an attribute of the report), and a
:class:`SuiteRecorder` ingests payloads and builds the ``suite`` section of the run
document. All times in payloads are absolute ``timing.perf_counter`` readings
(CLOCK_MONOTONIC on Linux, so comparable across the processes of one machine); the
section holds durations and offsets from the session start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: Scopes whose fixture instances can be shared by several tests (and duplicated by xdist).
SHARED_SCOPES = ("session", "package", "module", "class")


@dataclass(frozen=True)
class TestTiming:
    """One test's phases on one worker; ``fixture_s`` is the own time of the shared
    fixtures set up or torn down inside its phases, ``uses`` the shared fixtures it needs."""

    __test__ = False  # not a pytest test class

    nodeid: str
    worker: str
    setup_s: float
    call_s: float
    teardown_s: float
    outcome: str
    start_s: float = 0.0
    fixture_s: float = 0.0
    uses: tuple[str, ...] = ()
    #: Position in the worker's collection (the order a scheduler sees), -1 if unknown.
    index: int = -1


@dataclass(frozen=True)
class FixtureTiming:
    """All instances of one fixture (and param) on one worker, own time only."""

    id: str
    name: str
    scope: str
    baseid: str
    param: str | None
    worker: str
    setup_s: float
    teardown_s: float
    instances: int


@dataclass(frozen=True)
class WorkerTiming:
    """One process that ran tests: the main process (``main``) or an xdist worker."""

    id: str
    startup_s: float
    collection_s: float
    busy_s: float
    idle_s: float
    tests: int
    finish_s: float = 0.0


def fixture_id(name: str, scope: str, baseid: str, param: str | None) -> str:
    """A stable key for a fixture definition and param, shared by tests and fixtures rows."""
    suffix = "" if param is None else f"[{param}]"
    return f"{baseid}::{name}{suffix}@{scope}"


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
    __slots__ = ("end", "fixture_s", "index", "outcome", "phases", "start", "uses", "worker")

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.phases: dict[str, float] = {}
        self.start: float | None = None
        self.end = 0.0
        self.outcome = "passed"
        self.fixture_s = 0.0
        self.uses: tuple[str, ...] = ()
        self.index = -1


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


#: ``SuiteRecorder.add_fixture_events`` rows: name, scope, baseid, param, nodeid, when,
#: start, own_s, total_s.
FixtureEventFields = tuple[str, str, str, "str | None", str, str, float, float, float]
#: ``SuiteRecorder.add_phases`` rows: nodeid, when, start, duration, outcome, uses, index.
PhaseFields = tuple[str, str, float, float, str, "Sequence[str] | None", int]


class SuiteRecorder:
    """Collects payloads (from this process or from xdist workers) into a section.

    Payload keys: ``worker`` (str); optionally ``meta`` ``{started, collected}``;
    ``phase`` ``{nodeid, when, start, duration, outcome}`` with ``uses`` (list of
    fixture ids) beside it, or ``phases``, a list of such phases each carrying its own
    optional ``uses`` and ``index``; ``fixtures``: events ``{name, scope, baseid, param,
    nodeid, when, start, own_s, total_s}``. :meth:`add_phases` and
    :meth:`add_fixture_events` take the same fields as tuples (a plain run feeds them
    straight from its logs). With ``keep_events`` the events are also kept for the trace.
    """

    def __init__(self, origin: float, keep_events: bool = True) -> None:
        self.origin = origin
        self.keep_events = keep_events
        self.tests: dict[tuple[str, str], _TestBuilder] = {}
        self.fixtures: dict[tuple[str, str | None, str, str, str], _FixtureBuilder] = {}
        self.workers: dict[str, _WorkerBuilder] = defaultdict(_WorkerBuilder)
        self.phase_events: list[dict[str, Any]] = []
        self.fixture_events: list[dict[str, Any]] = []

    def ingest(self, payload: dict[str, Any]) -> None:
        """Add one payload; unknown keys are ignored so that versions can differ."""
        worker = str(payload.get("worker", "main"))
        state = self.workers[worker]
        meta = payload.get("meta")
        if isinstance(meta, dict):
            state.started = meta.get("started", state.started)
            state.collected = meta.get("collected", state.collected)
        self.add_fixture_events(
            worker,
            [
                (
                    e["name"],
                    e["scope"],
                    e["baseid"],
                    e["param"],
                    e.get("nodeid", ""),
                    e["when"],
                    e["start"],
                    e["own_s"],
                    e.get("total_s", e["own_s"]),
                )
                for e in payload.get("fixtures", ())
            ],
        )
        phases = list(payload.get("phases", ()))
        phase = payload.get("phase")
        if isinstance(phase, dict):
            phases.append({**phase, "uses": payload.get("uses")})
        self.add_phases(
            worker,
            [
                (
                    p["nodeid"],
                    p["when"],
                    p["start"],
                    p["duration"],
                    p.get("outcome", "passed"),
                    p.get("uses"),
                    -1 if p.get("index") is None else int(p["index"]),
                )
                for p in phases
            ],
        )

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

    def add_phases(self, worker: str, phases: Iterable[PhaseFields]) -> None:
        """Test phases as pytest reported them, each ``(nodeid, when, start, duration,
        outcome, uses, index)``; ``uses`` may be None and ``index`` -1 when unknown."""
        tests, keep = self.tests, self.keep_events
        state = self.workers[worker]
        busy, last_end, count = state.busy_s, state.last_end, state.tests
        last_nodeid: str | None = None
        test = _TestBuilder(worker)  # replaced at the first phase
        for nodeid, when, start, duration, outcome, uses, index in phases:
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
            end = start + duration
            if test.start is None:
                test.start = start
                count += 1
            if end > test.end:
                test.end = end
            if outcome == "failed":
                test.outcome = "failed" if when == "call" else "error"
            elif outcome == "skipped" and test.outcome == "passed":
                test.outcome = "skipped"
            if uses:
                test.uses = tuple(uses)
            if index >= 0:
                test.index = index
            busy += duration
            if end > last_end:
                last_end = end
        state.busy_s, state.last_end, state.tests = busy, last_end, count

    def test_rows(self) -> list[dict[str, Any]]:
        """The ``suite.tests`` rows (``TestTiming`` fields as plain JSON types), in the
        order the tests started (each worker's order is preserved)."""
        origin = self.origin
        rows: list[dict[str, Any]] = [
            {
                "nodeid": nodeid,
                "worker": b.worker,
                "setup_s": b.phases.get("setup", 0.0),
                "call_s": b.phases.get("call", 0.0),
                "teardown_s": b.phases.get("teardown", 0.0),
                "outcome": b.outcome,
                "start_s": (origin if b.start is None else b.start) - origin,
                "fixture_s": b.fixture_s,
                "uses": list(b.uses),
                "index": b.index,
            }
            for (nodeid, _), b in self.tests.items()
        ]
        rows.sort(key=lambda r: float(r["start_s"]))
        return rows

    def test_timings(self) -> list[TestTiming]:
        """Tests in the order they started (each worker's order is preserved)."""
        return [TestTiming(**{**row, "uses": tuple(row["uses"])}) for row in self.test_rows()]

    def fixture_timings(self) -> list[FixtureTiming]:
        """Fixture rows per (fixture, param, worker)."""
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


def imbalance(workers: list[WorkerTiming]) -> dict[str, float] | None:
    """Slowest worker's busy time over the mean, and the spread of finish times."""
    if not workers:
        return None
    mean = sum(w.busy_s for w in workers) / len(workers)
    slowest = max(w.busy_s for w in workers)
    finishes = [w.finish_s for w in workers]
    return {
        "busy_max_over_mean": slowest / mean if mean > 0 else 1.0,
        "finish_gap_s": max(finishes) - min(finishes),
    }


def fixture_duplication(fixtures: list[FixtureTiming]) -> list[dict[str, Any]]:
    """For shared-scope fixtures: instances across workers and what they cost versus
    the instances one serial process would need (the most any single worker needed
    per scope node is unknown here, so the serial cost is the mean per instance times
    the number of distinct (fixture, param) instances of the busiest worker)."""
    grouped: dict[str, list[FixtureTiming]] = defaultdict(list)
    for row in fixtures:
        if row.scope in SHARED_SCOPES:
            grouped[row.id].append(row)
    result: list[dict[str, Any]] = []
    for fid, rows in grouped.items():
        instances = sum(r.instances for r in rows)
        total = sum(r.setup_s + r.teardown_s for r in rows)
        serial_instances = max(r.instances for r in rows)
        per_instance = total / instances if instances else 0.0
        result.append(
            {
                "id": fid,
                "name": rows[0].name,
                "scope": rows[0].scope,
                "workers": len(rows),
                "instances": instances,
                "total_s": total,
                "serial_s": per_instance * serial_instances,
                "extra_s": total - per_instance * serial_instances,
            }
        )
    result.sort(key=lambda d: -d["extra_s"])
    return result


def last_worker_chain(tests: list[TestTiming], workers: list[WorkerTiming]) -> dict[str, Any]:
    """The tests, in order, of the worker that finished last (what the wall time waited on)."""
    if not workers:
        return {"worker": None, "tests": []}
    last = max(workers, key=lambda w: w.finish_s)
    chain = [
        {"nodeid": t.nodeid, "total_s": t.setup_s + t.call_s + t.teardown_s}
        for t in tests
        if t.worker == last.id
    ]
    return {"worker": last.id, "tests": chain}


def build_section(
    recorder: SuiteRecorder, wall_s: float, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``suite`` section as plain JSON types."""
    rows = recorder.test_rows()
    fixtures = recorder.fixture_timings()
    workers = recorder.worker_timings()
    distributed = len(workers) > 1
    section: dict[str, Any] = {
        "tests": rows,
        "fixtures": [dict(vars(f)) for f in fixtures],
        "workers": [dict(vars(w)) for w in workers],
        "wall_s": wall_s,
        "imbalance": imbalance(workers) if distributed else None,
        "duplication": fixture_duplication(fixtures) if distributed else [],
        "last_worker_chain": (
            last_worker_chain(recorder.test_timings(), workers) if distributed else None
        ),
        "prediction": [],
        "actual": None,
    }
    if extra:
        section.update(extra)
    return section
