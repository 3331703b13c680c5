"""The pure suite-timing model: payloads in, rows and summaries out."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_parallel_lab.suite.recorder import (
    SuiteRecorder,
    WorkerTiming,
    build_section,
    fixture_id,
    imbalance,
    scope_node,
)


def phase(
    nodeid: str,
    when: str,
    start: float,
    duration: float,
    outcome: str = "passed",
    worker: str = "main",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "worker": worker,
        "phase": {
            "nodeid": nodeid,
            "when": when,
            "start": start,
            "duration": duration,
            "outcome": outcome,
        },
        **extra,
    }


def fixture_event(
    name: str,
    scope: str,
    when: str,
    own: float,
    nodeid: str,
    start: float = 0.0,
    param: str | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "scope": scope,
        "baseid": "t.py",
        "param": param,
        "nodeid": nodeid,
        "when": when,
        "start": start,
        "own_s": own,
        "total_s": own,
    }


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
    ("whens", "outcome"),
    [
        ([("setup", "passed"), ("call", "passed"), ("teardown", "passed")], "passed"),
        ([("setup", "passed"), ("call", "failed"), ("teardown", "passed")], "failed"),
        ([("setup", "failed"), ("teardown", "passed")], "error"),
        ([("setup", "skipped"), ("teardown", "passed")], "skipped"),
        ([("setup", "passed"), ("call", "passed"), ("teardown", "failed")], "error"),
    ],
)
def test_a_test_outcome_follows_its_phases(whens: list[tuple[str, str]], outcome: str) -> None:
    recorder = SuiteRecorder(origin=0.0)
    for i, (when, result) in enumerate(whens):
        recorder.ingest(phase("t.py::a", when, float(i), 0.5, result))
    (row,) = recorder.test_timings()
    assert row.outcome == outcome


def test_phases_are_summed_per_test_and_shared_fixture_time_is_attributed() -> None:
    recorder = SuiteRecorder(origin=10.0)
    recorder.ingest(
        {
            **phase("t.py::a", "setup", 11.0, 1.5, uses=["x"]),
            "fixtures": [
                fixture_event("s", "session", "setup", 1.0, "t.py::a"),
                fixture_event("f", "function", "setup", 0.5, "t.py::a"),
            ],
            "meta": {"started": 10.0, "collected": 11.0},
        }
    )
    recorder.ingest(phase("t.py::a", "call", 12.5, 2.0))
    recorder.ingest(phase("t.py::a", "teardown", 14.5, 0.25))
    (row,) = recorder.test_timings()
    assert (row.setup_s, row.call_s, row.teardown_s) == (1.5, 2.0, 0.25)
    assert row.fixture_s == 1.0  # only the shared (session) fixture
    assert row.start_s == 1.0
    assert row.uses == ("x",)
    (worker,) = recorder.worker_timings()
    assert worker == WorkerTiming("main", 0.0, 1.0, 3.75, 0.0, 1, 4.75)


def test_fixture_instances_are_counted_per_worker_and_param() -> None:
    recorder = SuiteRecorder(origin=0.0)
    for worker in ("gw0", "gw1"):
        recorder.ingest(
            {
                "worker": worker,
                "fixtures": [
                    fixture_event("m", "module", "setup", 1.0, "t.py::a", param="1"),
                    fixture_event("m", "module", "teardown", 0.5, "t.py::a", param="1"),
                    fixture_event("m", "module", "setup", 1.0, "t.py::b", param="2"),
                ],
            }
        )
    rows = {(f.worker, f.param): f for f in recorder.fixture_timings()}
    assert set(rows) == {("gw0", "1"), ("gw0", "2"), ("gw1", "1"), ("gw1", "2")}
    assert rows[("gw0", "1")].instances == 1
    assert rows[("gw0", "1")].teardown_s == 0.5
    assert rows[("gw0", "1")].id == fixture_id("m", "module", "t.py", "1")


def test_a_payload_with_unknown_keys_is_accepted() -> None:
    recorder = SuiteRecorder(origin=0.0)
    recorder.ingest({"worker": "gw0", "future": {"x": 1}})
    assert recorder.test_timings() == []


def test_imbalance_compares_the_slowest_worker_to_the_mean() -> None:
    workers = [WorkerTiming("gw0", 0, 0, 3.0, 0, 3, 4.0), WorkerTiming("gw1", 0, 0, 1.0, 0, 1, 2.5)]
    assert imbalance(workers) == {"busy_max_over_mean": 1.5, "finish_gap_s": 1.5}


def test_the_section_of_an_xdist_run_explains_duplication_and_the_last_worker() -> None:
    recorder = SuiteRecorder(origin=0.0)
    for worker, start in (("gw0", 1.0), ("gw1", 1.0)):
        recorder.ingest(
            {
                **phase(f"t.py::{worker}", "setup", start, 2.0, worker=worker),
                "fixtures": [fixture_event("s", "session", "setup", 1.0, f"t.py::{worker}")],
            }
        )
    recorder.ingest(phase("t.py::late", "call", 3.0, 5.0, worker="gw1"))
    section = build_section(recorder, wall_s=9.0)
    (dup,) = section["duplication"]
    assert (dup["name"], dup["workers"], dup["instances"]) == ("s", 2, 2)
    assert dup["total_s"] == 2.0
    assert dup["serial_s"] == 1.0
    assert section["last_worker_chain"]["worker"] == "gw1"
    assert [t["nodeid"] for t in section["last_worker_chain"]["tests"]] == [
        "t.py::gw1",
        "t.py::late",
    ]
    assert section["wall_s"] == 9.0
    assert {"tests", "fixtures", "workers", "prediction", "actual"} <= set(section)


def test_a_serial_section_has_no_cross_worker_summaries() -> None:
    recorder = SuiteRecorder(origin=0.0)
    recorder.ingest(phase("t.py::a", "call", 0.0, 1.0))
    section = build_section(recorder, wall_s=1.0)
    assert section["imbalance"] is None
    assert section["duplication"] == []
