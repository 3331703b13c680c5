"""Chrome trace-event JSON (Perfetto, chrome://tracing) for a run.

Pure module. One track (thread) per process that ran tests (``main`` or ``gw0``,
``gw1``, ...) holding its collection, each test's setup/call/teardown and each
fixture's setup/teardown, nested by time. Other features add their own tracks to a
run's :class:`TraceLog` (the marked tests: one track per pool worker's tasks).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

PROCESS_ID = 1


def complete_event(
    name: str,
    track: str,
    start_s: float,
    duration_s: float,
    category: str,
    args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``ph: X`` event; *start_s* is seconds since the session start. *track* is
    turned into a thread id by :func:`build_trace`."""
    event: dict[str, Any] = {
        "name": name,
        "cat": category,
        "ph": "X",
        "ts": round(start_s * 1e6, 3),
        "dur": round(max(0.0, duration_s) * 1e6, 3),
        "pid": PROCESS_ID,
        "track": track,
    }
    if args:
        event["args"] = dict(args)
    return event


class TraceLog:
    """The events features add to one run's trace as they happen.

    Times given to :meth:`add` are absolute ``timing.perf_counter`` readings; the log
    makes them relative to its ``origin`` (the session start).
    """

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.events: list[dict[str, Any]] = []

    def add(
        self,
        name: str,
        track: str,
        start: float,
        duration_s: float,
        category: str,
        args: Mapping[str, Any] | None = None,
    ) -> None:
        """One event that started at the absolute time *start*."""
        self.events.append(
            complete_event(name, track, start - self.origin, duration_s, category, args)
        )


def events_from_recording(
    origin: float,
    phase_events: Iterable[Mapping[str, Any]],
    fixture_events: Iterable[Mapping[str, Any]],
    worker_meta: Mapping[str, Mapping[str, float | None]],
) -> list[dict[str, Any]]:
    """Trace events from what :class:`~pytest_parallel_lab.suite.recorder.SuiteRecorder`
    kept (absolute ``perf_counter`` times, made relative to *origin*)."""
    events = []
    for worker, meta in worker_meta.items():
        started, collected = meta.get("started"), meta.get("collected")
        if started is not None and started > origin:
            events.append(complete_event("start-up", worker, 0.0, started - origin, "session"))
        if started is not None and collected is not None:
            events.append(
                complete_event(
                    "collection", worker, started - origin, collected - started, "session"
                )
            )
    for p in phase_events:
        events.append(
            complete_event(
                f"{p['when']} {p['nodeid']}",
                str(p["worker"]),
                p["start"] - origin,
                p["duration"],
                "test",
                {"nodeid": p["nodeid"], "outcome": p.get("outcome")},
            )
        )
    for f in fixture_events:
        label = f["name"] if f.get("param") is None else f"{f['name']}[{f['param']}]"
        events.append(
            complete_event(
                f"{f['when']} {label}",
                str(f["worker"]),
                f["start"] - origin,
                f.get("total_s", f["own_s"]),
                "fixture",
                {"scope": f["scope"], "own_s": f["own_s"], "test": f.get("nodeid")},
            )
        )
    return events


def build_trace(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The whole trace document: thread ids assigned per track, names as metadata,
    events sorted by start (longer first, so that nesting renders)."""
    tracks: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for event in events:
        track = str(event.get("track", "main"))
        tid = tracks.setdefault(track, len(tracks) + 1)
        item = {k: v for k, v in event.items() if k != "track"}
        item["tid"] = tid
        out.append(item)
    out.sort(key=lambda e: (e.get("ts", 0.0), -e.get("dur", 0.0)))
    meta = [
        {"name": "thread_name", "ph": "M", "pid": PROCESS_ID, "tid": tid, "args": {"name": track}}
        for track, tid in tracks.items()
    ]
    meta.append(
        {"name": "process_name", "ph": "M", "pid": PROCESS_ID, "tid": 0, "args": {"name": "pytest"}}
    )
    return {"traceEvents": meta + out, "displayTimeUnit": "ms"}


def trace_text(events: Iterable[Mapping[str, Any]]) -> str:
    """The trace as JSON text (never NaN, so every reader accepts it)."""
    return json.dumps(build_trace(events), allow_nan=False) + "\n"
