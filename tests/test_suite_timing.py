"""The pure suite-timing model: payloads and logged rows in, typed rows and summaries out."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_parallel_lab.document.suite import (
    ChainLink,
    FixtureDuplication,
    Imbalance,
    SuiteSection,
    TestTiming,
    WorkerChain,
    WorkerTiming,
)
from pytest_parallel_lab.suite.recorder import (
    FixtureEventFields,
    PhaseFields,
    SuiteRecorder,
    build_section,
    fixture_duplication,
    fixture_id,
    fixture_key,
    imbalance,
    last_worker_chain,
    scope_node,
)
from pytest_parallel_lab.vocabulary import Outcome


def phase(
    nodeid: str,
    when: str,
    start: float,
    duration: float,
    outcome: str = "passed",
    *,
    uses: Sequence[str] | None = None,
    index: int = -1,
) -> PhaseFields:
    """One test phase as the glue logs it (and a worker sends it)."""
    return (nodeid, when, start, duration, outcome, uses, index)


def fixture_event(
    name: str,
    scope: str,
    when: str,
    own: float,
    nodeid: str,
    start: float = 0.0,
    param: str | None = None,
) -> FixtureEventFields:
    """One fixture setup or teardown as the glue logs it (and a worker sends it)."""
    return (name, scope, "t.py", param, nodeid, when, start, own, own)


def payload(
    worker: str = "main",
    *,
    phases: Sequence[PhaseFields] = (),
    fixtures: Sequence[FixtureEventFields] = (),
    meta: dict[str, float] | None = None,
) -> dict[str, Any]:
    """What an xdist worker sends with a test report."""
    sent: dict[str, Any] = {"worker": worker, "phases": list(phases), "fixtures": list(fixtures)}
    if meta is not None:
        sent["meta"] = meta
    return sent


@pytest.mark.parametrize(
    ("nodeid", "scope", "node"),
    [
        ("pkg/t.py::test_a", "session", ""),
        ("pkg/t.py::test_a", "package", "pkg"),
        ("pkg/t.py::test_a", "module", "pkg/t.py"),
        ("pkg/t.py::C::test_a", "class", "pkg/t.py::C"),
        ("pkg/t.py::test_a", "class", "pkg/t.py"),
    ],
)
def test_scope_node_names_the_owner_of_a_shared_fixture_instance(
    nodeid: str, scope: str, node: str
) -> None:
    assert scope_node(nodeid, scope) == node


@pytest.mark.parametrize(
    ("name", "scope", "baseid", "param", "key", "identity"),
    [
        ("db", "session", "", None, "::db@session", "::db@session"),
        ("m", "module", "t.py", "1", "t.py::m@module", "t.py::m[1]@module"),
        ("c", "class", "t.py::C", None, "t.py::C::c@class", "t.py::C::c@class"),
    ],
)
def test_a_fixture_key_ignores_the_param_and_a_fixture_id_adds_it(
    name: str, scope: str, baseid: str, param: str | None, key: str, identity: str
) -> None:
    assert fixture_key(name, scope, baseid) == key
    assert fixture_id(name, scope, baseid, param) == identity


@pytest.mark.parametrize(
    ("whens", "outcome"),
    [
        ([("setup", "passed"), ("call", "passed"), ("teardown", "passed")], Outcome.PASSED),
        ([("setup", "passed"), ("call", "failed"), ("teardown", "passed")], Outcome.FAILED),
        ([("setup", "failed"), ("teardown", "passed")], Outcome.ERROR),
        ([("setup", "skipped"), ("teardown", "passed")], Outcome.SKIPPED),
        ([("setup", "passed"), ("call", "passed"), ("teardown", "failed")], Outcome.ERROR),
    ],
)
def test_a_test_outcome_follows_its_phases(whens: list[tuple[str, str]], outcome: Outcome) -> None:
    recorder = SuiteRecorder(origin=0.0)
    for i, (when, result) in enumerate(whens):
        recorder.ingest(payload(phases=[phase("t.py::a", when, float(i), 0.5, result)]))
    (row,) = recorder.test_timings()
    assert row.outcome is outcome


@pytest.mark.parametrize(
    ("whens", "outcome", "phases"),
    [
        pytest.param([("setup", "passed")], Outcome.CRASHED, (1.0, 8.0, 0.0), id="in-call"),
        # Nothing reported: it started when the worker's test before it ended (at 1.0).
        pytest.param([], Outcome.INTERRUPTED, (9.0, 0.0, 0.0), id="in-setup"),
        pytest.param(
            [("setup", "passed"), ("call", "failed")],
            Outcome.INTERRUPTED,
            (1.0, 1.0, 7.0),
            id="in-teardown",
        ),
        # pytest runs no call after a failed or skipped setup: it was in its teardown.
        pytest.param([("setup", "failed")], Outcome.CRASHED, (1.0, 0.0, 8.0), id="failed-setup"),
        pytest.param([("setup", "skipped")], Outcome.CRASHED, (1.0, 0.0, 8.0), id="skipped"),
    ],
)
def test_a_test_ended_without_reports_lasts_until_then_in_the_phase_it_was_in(
    whens: list[tuple[str, str]], outcome: Outcome, phases: tuple[float, float, float]
) -> None:
    recorder = SuiteRecorder(origin=0.0)
    recorder.ingest(payload("gw0", phases=[phase("t.py::before", "teardown", 0.5, 0.5)]))
    for i, (when, result) in enumerate(whens):
        recorder.ingest(payload("gw0", phases=[phase("t.py::a", when, 1.0 + i, 1.0, result)]))
    recorder.end_test("gw0", "t.py::a", 10.0, outcome)
    # Nothing reported afterwards changes how it ended.
    recorder.ingest(payload("gw0", phases=[phase("t.py::a", "teardown", 10.0, 0.0)]))
    row = next(r for r in recorder.test_timings() if r.nodeid == "t.py::a")
    assert row.outcome is outcome
    assert (row.setup_s, row.call_s, row.teardown_s) == phases
    assert row.start_s == 1.0
    (worker,) = recorder.worker_timings()
    assert (worker.tests, worker.finish_s, worker.busy_s) == (2, 10.0, 9.5)


def test_tests_that_were_not_torn_down_end_interrupted_and_finished_ones_keep_theirs() -> None:
    recorder = SuiteRecorder(origin=0.0)
    recorder.add_phases(
        "main",
        [
            phase("t.py::done", "setup", 0.0, 0.1),
            phase("t.py::done", "call", 0.1, 0.1, "failed"),
            phase("t.py::done", "teardown", 0.2, 0.1),
            phase("t.py::stopped", "setup", 0.3, 0.1),
        ],
    )
    recorder.end_test("main", "t.py::crashed", 0.5, Outcome.CRASHED)
    ended = recorder.end_unfinished(2.0, Outcome.INTERRUPTED, [("main", "t.py::unreported")])
    assert sorted(ended) == ["t.py::stopped", "t.py::unreported"]
    outcomes = {r.nodeid: r.outcome for r in recorder.test_timings()}
    assert outcomes == {
        "t.py::done": Outcome.FAILED,
        "t.py::stopped": Outcome.INTERRUPTED,
        "t.py::crashed": Outcome.CRASHED,
        "t.py::unreported": Outcome.INTERRUPTED,
    }
    assert recorder.end_unfinished(3.0, Outcome.INTERRUPTED) == []  # once


def test_phases_are_summed_per_test_and_shared_fixture_time_is_attributed() -> None:
    recorder = SuiteRecorder(origin=10.0)
    recorder.ingest(
        payload(
            phases=[phase("t.py::a", "setup", 11.0, 1.5, uses=["x"])],
            fixtures=[
                fixture_event("s", "session", "setup", 1.0, "t.py::a"),
                fixture_event("f", "function", "setup", 0.5, "t.py::a"),
            ],
            meta={"started": 10.0, "collected": 11.0},
        )
    )
    recorder.ingest(payload(phases=[phase("t.py::a", "call", 12.5, 2.0)]))
    recorder.ingest(payload(phases=[phase("t.py::a", "teardown", 14.5, 0.25)]))
    (row,) = recorder.test_timings()
    assert isinstance(row, TestTiming)
    assert (row.setup_s, row.call_s, row.teardown_s) == (1.5, 2.0, 0.25)
    assert row.total_s == 3.75
    assert row.fixture_s == 1.0  # only the shared (session) fixture
    assert row.start_s == 1.0
    assert row.uses == ("x",)
    assert row.index == -1
    (worker,) = recorder.worker_timings()
    assert worker == WorkerTiming("main", 0.0, 1.0, 3.75, 0.0, 1, 4.75)


def test_rows_fed_straight_from_the_logs_count_as_a_payload_would() -> None:
    logged = SuiteRecorder(origin=10.0)
    logged.add_fixture_events("main", [fixture_event("s", "session", "setup", 1.0, "t.py::a")])
    logged.add_phases(
        "main",
        [
            phase("t.py::a", "setup", 11.0, 1.5, uses=["x"], index=0),
            phase("t.py::a", "call", 12.5, 2.0),
            phase("t.py::b", "call", 14.5, 1.0, index=1),
        ],
    )
    sent = SuiteRecorder(origin=10.0)
    sent.ingest(
        payload(
            phases=[
                phase("t.py::a", "setup", 11.0, 1.5, uses=["x"], index=0),
                phase("t.py::a", "call", 12.5, 2.0),
                phase("t.py::b", "call", 14.5, 1.0, index=1),
            ],
            fixtures=[fixture_event("s", "session", "setup", 1.0, "t.py::a")],
        )
    )
    assert logged.test_timings() == sent.test_timings()
    assert [(t.nodeid, t.index, t.fixture_s) for t in logged.test_timings()] == [
        ("t.py::a", 0, 1.0),
        ("t.py::b", 1, 0.0),
    ]
    assert logged.worker_timings() == sent.worker_timings()
    assert logged.fixture_timings() == sent.fixture_timings()


def test_a_payload_that_travelled_as_json_is_ingested_like_the_original() -> None:
    original = payload(
        "gw0",
        phases=[phase("t.py::a", "call", 1.0, 2.0, uses=["t.py::m@module"], index=3)],
        fixtures=[fixture_event("m", "module", "setup", 0.5, "t.py::a", param="1")],
        meta={"started": 0.25, "collected": 0.75},
    )
    travelled = json.loads(json.dumps(original))  # tuples arrive as lists
    direct, decoded = SuiteRecorder(origin=0.0), SuiteRecorder(origin=0.0)
    direct.ingest(original)
    decoded.ingest(travelled)
    assert decoded.test_timings() == direct.test_timings()
    assert decoded.fixture_timings() == direct.fixture_timings()
    assert decoded.worker_timings() == direct.worker_timings()
    (row,) = decoded.test_timings()
    assert (row.worker, row.uses, row.index) == ("gw0", ("t.py::m@module",), 3)
    (worker,) = decoded.worker_timings()
    assert (worker.startup_s, worker.collection_s) == (0.25, 0.5)


def test_fixture_instances_are_counted_per_worker_and_param() -> None:
    recorder = SuiteRecorder(origin=0.0)
    for worker in ("gw0", "gw1"):
        recorder.ingest(
            payload(
                worker,
                fixtures=[
                    fixture_event("m", "module", "setup", 1.0, "t.py::a", param="1"),
                    fixture_event("m", "module", "teardown", 0.5, "t.py::a", param="1"),
                    fixture_event("m", "module", "setup", 1.0, "t.py::b", param="2"),
                ],
            )
        )
    rows = {(f.worker, f.param): f for f in recorder.fixture_timings()}
    assert set(rows) == {("gw0", "1"), ("gw0", "2"), ("gw1", "1"), ("gw1", "2")}
    assert rows[("gw0", "1")].instances == 1
    assert rows[("gw0", "1")].setup_s == 1.0
    assert rows[("gw0", "1")].teardown_s == 0.5
    assert rows[("gw0", "1")].id == fixture_id("m", "module", "t.py", "1")


def test_fixture_events_are_kept_for_the_trace_only_when_asked() -> None:
    events = [fixture_event("s", "session", "setup", 1.0, "t.py::a")]
    phases = [phase("t.py::a", "call", 1.0, 2.0)]
    kept, dropped = SuiteRecorder(origin=0.0), SuiteRecorder(origin=0.0, keep_events=False)
    for recorder in (kept, dropped):
        recorder.ingest(payload("gw0", phases=phases, fixtures=events))
    assert [(e["name"], e["worker"]) for e in kept.fixture_events] == [("s", "gw0")]
    assert [(e["nodeid"], e["worker"]) for e in kept.phase_events] == [("t.py::a", "gw0")]
    assert (dropped.fixture_events, dropped.phase_events) == ([], [])
    assert dropped.test_timings() == kept.test_timings()


def test_a_payload_with_unknown_keys_is_accepted() -> None:
    recorder = SuiteRecorder(origin=0.0)
    recorder.ingest({"worker": "gw0", "future": {"x": 1}})
    assert recorder.test_timings() == []


def test_imbalance_compares_the_slowest_worker_to_the_mean() -> None:
    workers = [WorkerTiming("gw0", 0, 0, 3.0, 0, 3, 4.0), WorkerTiming("gw1", 0, 0, 1.0, 0, 1, 2.5)]
    assert imbalance(workers) == Imbalance(busy_max_over_mean=1.5, finish_gap_s=1.5)


def test_imbalance_of_no_workers_is_none_and_of_idle_workers_is_one() -> None:
    assert imbalance([]) is None
    idle = [WorkerTiming("gw0", 0, 0, 0.0, 0, 0, 1.0), WorkerTiming("gw1", 0, 0, 0.0, 0, 0, 1.0)]
    assert imbalance(idle) == Imbalance(1.0, 0.0)


def test_fixture_duplication_is_sorted_by_the_extra_time_and_ignores_function_scope() -> None:
    recorder = SuiteRecorder(origin=0.0)
    for worker in ("gw0", "gw1", "gw2"):
        recorder.ingest(
            payload(
                worker,
                fixtures=[
                    fixture_event("cheap", "module", "setup", 0.1, "t.py::a"),
                    fixture_event("dear", "session", "setup", 2.0, "t.py::a"),
                    fixture_event("f", "function", "setup", 5.0, "t.py::a"),
                ],
            )
        )
    found = fixture_duplication(recorder.fixture_timings())
    assert [d.name for d in found] == ["dear", "cheap"]
    assert found[0] == FixtureDuplication(
        id="t.py::dear@session",
        name="dear",
        scope="session",
        workers=3,
        instances=3,
        total_s=6.0,
        serial_s=2.0,
        extra_s=4.0,
    )
    assert found[1].extra_s == pytest.approx(0.2)


def test_the_last_worker_chain_lists_the_tests_of_the_worker_that_finished_last() -> None:
    tests = [
        TestTiming("t.py::a", "gw0", 0.5, 1.0, 0.5, Outcome.PASSED),
        TestTiming("t.py::b", "gw1", 0.0, 3.0, 0.0, Outcome.PASSED),
        TestTiming("t.py::c", "gw0", 0.0, 0.25, 0.0, Outcome.FAILED),
    ]
    workers = [
        WorkerTiming("gw0", 0, 0, 2.25, 0, 2, 5.0),
        WorkerTiming("gw1", 0, 0, 3.0, 0, 1, 3.0),
    ]
    assert last_worker_chain(tests, workers) == WorkerChain(
        "gw0", (ChainLink("t.py::a", 2.0), ChainLink("t.py::c", 0.25))
    )
    assert last_worker_chain(tests, []) == WorkerChain(None)


def test_the_section_of_an_xdist_run_explains_duplication_and_the_last_worker() -> None:
    recorder = SuiteRecorder(origin=0.0)
    for worker, start in (("gw0", 1.0), ("gw1", 1.0)):
        recorder.ingest(
            payload(
                worker,
                phases=[phase(f"t.py::{worker}", "setup", start, 2.0)],
                fixtures=[fixture_event("s", "session", "setup", 1.0, f"t.py::{worker}")],
            )
        )
    recorder.ingest(payload("gw1", phases=[phase("t.py::late", "call", 3.0, 5.0)]))
    section = build_section(recorder, wall_s=9.0, crashed_workers=["gw2"])
    assert isinstance(section, SuiteSection)
    (dup,) = section.duplication
    assert (dup.name, dup.workers, dup.instances) == ("s", 2, 2)
    assert dup.total_s == 2.0
    assert dup.serial_s == 1.0
    assert dup.extra_s == 1.0
    assert section.last_worker_chain is not None
    assert section.last_worker_chain.worker == "gw1"
    assert [t.nodeid for t in section.last_worker_chain.tests] == ["t.py::gw1", "t.py::late"]
    assert section.imbalance == Imbalance(busy_max_over_mean=7.0 / 4.5, finish_gap_s=5.0)
    assert section.wall_s == 9.0
    assert section.crashed_workers == ("gw2",)
    assert [t.nodeid for t in section.tests] == ["t.py::gw0", "t.py::gw1", "t.py::late"]
    assert [w.id for w in section.workers] == ["gw0", "gw1"]
    assert {f.worker for f in section.fixtures} == {"gw0", "gw1"}
    # The prediction is added later, from the section.
    assert (section.prediction, section.actual, section.calibration) == ((), None, None)


def test_a_serial_section_has_no_cross_worker_summaries() -> None:
    recorder = SuiteRecorder(origin=0.0)
    recorder.ingest(payload(phases=[phase("t.py::a", "call", 0.0, 1.0)]))
    section = build_section(recorder, wall_s=1.0)
    assert section.imbalance is None
    assert section.duplication == ()
    assert section.last_worker_chain is None
    assert section.crashed_workers == ()
    assert [w.id for w in section.workers] == ["main"]


def test_the_glue_an_xdist_worker_loads_to_time_tests_leaves_the_analysis_out() -> None:
    # Every worker imports the suite glue as it starts: the calibration, the simulation
    # and the run document are the controller's (or a plain run's), at the end.
    code = (
        "import sys, pytest_parallel_lab.suite.hooks\n"
        "print(sorted(m for m in sys.modules if m.startswith('pytest_parallel_lab')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "'pytest_parallel_lab.suite.recorder'" in loaded
    for analysis in (
        "suite.model",
        "suite.simulate",
        "suite.shards",
        "suite.xdist_schedulers",
        "document.run",
        "document.records",
    ):
        assert f"'pytest_parallel_lab.{analysis}'" not in loaded


def test_the_timing_glue_imports_none_of_the_records_an_xdist_worker_never_builds() -> None:
    # A worker only logs and sends rows; the section's dataclasses, the simulation and
    # the run document are made at the end by the controller (each costs import time
    # in every worker otherwise). A fresh interpreter: this one has them all loaded.
    code = (
        "import sys, pytest_parallel_lab.suite.hooks\n"
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'pytest_parallel_lab.document.suite', 'pytest_parallel_lab.document.run', "
        "'pytest_parallel_lab.document.records', 'pytest_parallel_lab.suite.simulate', "
        "'pytest_parallel_lab.suite.model', 'xdist.scheduler'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
