"""The Chrome trace builder."""

from __future__ import annotations

import json

from pytest_parallel_lab.output.trace import (
    TraceLog,
    build_trace,
    complete_event,
    events_from_recording,
    trace_text,
)


def test_a_complete_event_is_in_microseconds() -> None:
    event = complete_event("call t", "gw0", 1.5, 0.25, "test", {"a": 1})
    assert (event["ph"], event["ts"], event["dur"]) == ("X", 1_500_000.0, 250_000.0)
    assert event["args"] == {"a": 1}


def test_a_negative_duration_is_clamped_to_zero_and_no_args_means_no_args_key() -> None:
    event = complete_event("odd", "main", 0.0, -0.5, "test")
    assert event["dur"] == 0.0
    assert "args" not in event


def test_a_trace_log_keeps_events_relative_to_its_origin() -> None:
    log = TraceLog(origin=100.0)
    assert log.events == []
    log.add("task 0", "pool 1", 101.25, 0.5, "task", {"index": 0})
    log.add("task 1", "pool 2", 100.0, 0.125, "task")
    first, second = log.events
    assert first == complete_event("task 0", "pool 1", 1.25, 0.5, "task", {"index": 0})
    assert (first["ts"], first["dur"], first["track"]) == (1_250_000.0, 500_000.0, "pool 1")
    assert first["args"] == {"index": 0}
    assert (second["ts"], second["dur"], second["track"]) == (0.0, 125_000.0, "pool 2")
    assert "args" not in second
    tracks = {e["args"]["name"] for e in build_trace(log.events)["traceEvents"] if e["ph"] == "M"}
    assert tracks == {"pool 1", "pool 2", "pytest"}


def test_each_track_gets_its_own_named_thread() -> None:
    trace = build_trace(
        [
            complete_event("a", "gw0", 0, 1, "test"),
            complete_event("b", "gw1", 0, 1, "test"),
            complete_event("c", "gw0", 1, 1, "test"),
        ]
    )
    names = {
        e["tid"]: e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"
    }
    assert sorted(names.values()) == ["gw0", "gw1"]
    tids = {e["name"]: e["tid"] for e in trace["traceEvents"] if e["ph"] == "X"}
    assert tids["a"] == tids["c"] != tids["b"]
    assert all("track" not in e for e in trace["traceEvents"])


def test_events_are_sorted_so_that_enclosing_events_come_first() -> None:
    trace = build_trace(
        [
            complete_event("inner", "main", 1, 1, "fixture"),
            complete_event("outer", "main", 1, 3, "test"),
        ]
    )
    ordered = [e["name"] for e in trace["traceEvents"] if e["ph"] == "X"]
    assert ordered == ["outer", "inner"]


def test_a_recording_becomes_collection_test_and_fixture_events_relative_to_the_origin() -> None:
    events = events_from_recording(
        origin=100.0,
        phase_events=[
            {
                "nodeid": "t.py::a",
                "when": "setup",
                "start": 101.0,
                "duration": 0.5,
                "outcome": "passed",
                "worker": "main",
            }
        ],
        fixture_events=[
            {
                "name": "db",
                "scope": "session",
                "param": "x",
                "nodeid": "t.py::a",
                "when": "setup",
                "start": 101.1,
                "own_s": 0.1,
                "total_s": 0.3,
                "worker": "main",
            }
        ],
        worker_meta={"main": {"started": 100.0, "collected": 100.5}},
    )
    by_name = {e["name"]: e for e in events}
    assert by_name["collection"]["dur"] == 500_000.0
    assert by_name["setup t.py::a"]["ts"] == 1_000_000.0
    assert by_name["setup db[x]"]["dur"] == 300_000.0  # nested total, own time in args
    assert by_name["setup db[x]"]["args"]["own_s"] == 0.1


def test_the_trace_text_is_valid_json_even_when_empty() -> None:
    assert json.loads(trace_text([]))["traceEvents"][0]["name"] == "process_name"
