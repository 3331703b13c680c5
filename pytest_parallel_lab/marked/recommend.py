"""Which concurrency model to use for each test, and one sentence from the measurements.

The winner is the backend with the best significant speedup (interval above 1.0,
estimate at least ``MIN_USEFUL_SPEEDUP``); among backends whose intervals overlap
the winner's, the cheapest model is chosen (asyncio for coroutines, then threads,
then processes). When nothing wins, ``serial`` is recommended with the reason;
when the evidence is too noisy, the backend is ``undecided``.

Pure: records in, :class:`~pytest_parallel_lab.document.records.Recommendation` out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from pytest_parallel_lab.document.records import Environment, Recommendation, ResultRecord
from pytest_parallel_lab.marked.diagnosis import (
    TestDiagnosis,
    best_rows,
    classify_test,
    percent,
    ratio,
    scales,
    shown,
)
from pytest_parallel_lab.stats import format_speedup
from pytest_parallel_lab.vocabulary import Classification, Kind

#: The backend named by a recommendation that cannot be made (evidence too noisy).
UNDECIDED = "undecided"
#: The backend named when no backend beats running the tasks one after another.
SERIAL = "serial"

#: Which model is cheapest when two backends match (intervals overlap): an event
#: loop costs less than threads, threads less than processes (no start-up, no pickling).
PREFERENCE = {"asyncio": 0, "thread": 1, "process": 2, "multiprocessing": 2}
#: Where a backend of another plugin stands in that order: after the built-ins.
OTHER_PREFERENCE = 3

EXPLANATION = {
    Classification.CPU_BOUND: "GIL-bound CPU work",
    Classification.GIL_RELEASING: "native code releases the GIL",
    Classification.IO_BOUND: "mostly waiting",
    Classification.OVERHEAD_BOUND: "tasks too small for their dispatch cost",
    Classification.BLOCKING_IN_LOOP: "blocking call inside the event loop",
    Classification.INCONCLUSIVE: "too noisy to decide",
}


def recommend(records: Sequence[ResultRecord], environment: Environment) -> Recommendation:
    """The backend to use for one test's records, and one sentence saying why."""
    test = records[0].test if records else ""
    diagnosis = classify_test(records, environment)
    if diagnosis.classification is Classification.INCONCLUSIVE:
        return Recommendation(test, Classification.INCONCLUSIVE, UNDECIDED, diagnosis.reason)
    rows = best_rows(records)
    candidates = [
        row
        for backend, row in rows.items()
        if scales(row) and (backend != "asyncio" or row.coroutine)
    ]
    if not candidates:
        return Recommendation(
            test, diagnosis.classification, SERIAL, _nothing_wins(diagnosis, rows, environment)
        )
    chosen, ahead = _winner(candidates, rows)
    behind = sorted((r for r in rows.values() if r not in ahead), key=lambda r: -_estimate(r))
    sentence = ", ".join(shown(r) for r in ahead)
    if behind:
        sentence += " vs " + ", ".join(shown(r) for r in behind)
    return Recommendation(
        test,
        diagnosis.classification,
        chosen.backend,
        f"{sentence}: {_why(diagnosis, rows, environment)}",
    )


def _winner(
    candidates: Sequence[ResultRecord], rows: Mapping[str, ResultRecord]
) -> tuple[ResultRecord, list[ResultRecord]]:
    """The chosen row, and it with the rows that match it, best first."""
    best = max(candidates, key=_estimate)
    assert best.speedup is not None
    matching = [
        r for r in candidates if r.speedup is not None and r.speedup.high >= best.speedup.low
    ]
    coroutine = any(row.coroutine for row in rows.values())
    if coroutine and rows.get("asyncio") in matching:
        chosen = rows["asyncio"]
    else:
        chosen = min(matching, key=lambda r: (_preference(r.backend), -_estimate(r)))
    others = sorted((r for r in matching if r is not chosen), key=lambda r: -_estimate(r))
    return chosen, [chosen, *others]


def _nothing_wins(
    diagnosis: TestDiagnosis, rows: Mapping[str, ResultRecord], environment: Environment
) -> str:
    listed = ", ".join(
        f"{r.backend} {format_speedup(r.speedup)}"
        for r in sorted(rows.values(), key=lambda r: r.backend)
        if r.speedup is not None
    )
    if diagnosis.classification is Classification.OVERHEAD_BOUND:
        chunks = ", ".join(
            f"{d.evidence.chunk_size} for {backend}"
            for backend, d in sorted(diagnosis.rows.items())
            if d.classification is Classification.OVERHEAD_BOUND and d.evidence.chunk_size
        )
        why = f"tasks too small for their dispatch cost: batch tasks into chunks of {chunks}"
    else:
        why = _why(diagnosis, rows, environment)
    return f"no backend beats serial ({listed}): {why}"


def _why(
    diagnosis: TestDiagnosis, rows: Mapping[str, ResultRecord], environment: Environment
) -> str:
    """The class in words, with the CPU number that decided it."""
    classification = diagnosis.classification
    words = EXPLANATION[classification]
    serial_ratio = next(
        (r for row in rows.values() if (r := ratio(row.serial_cpu_s, row.serial_s)) is not None),
        None,
    )
    cpu = "" if serial_ratio is None else f" (CPU {percent(serial_ratio)} of wall)"
    thread = rows.get("thread")
    if classification is Classification.GIL_RELEASING and thread is not None:
        busy = ratio(thread.cpu_s, thread.backend_s)
        if busy is not None:
            return f"{words} ({busy:.1f} CPUs busy under threads)"
    if classification is Classification.BLOCKING_IN_LOOP:
        return (
            f"{words}{cpu}: replace time.sleep with await asyncio.sleep "
            "and wrap other blocking calls in asyncio.to_thread"
        )
    if classification is Classification.CPU_BOUND and (thread is None or scales(thread)):
        if thread is not None and not environment.gil_enabled:
            return f"CPU work, threads run in parallel with the GIL disabled{cpu}"
        return f"CPU work{cpu}"
    if classification in (Classification.CPU_BOUND, Classification.IO_BOUND):
        return f"{words}{cpu}"
    return words


def _preference(backend: str) -> int:
    return PREFERENCE.get(backend, OTHER_PREFERENCE)


def _estimate(record: ResultRecord) -> float:
    return record.speedup.estimate if record.speedup is not None else 0.0


def recommendations(
    records: Sequence[ResultRecord], environment: Environment
) -> list[Recommendation]:
    """One recommendation per test, in first-seen order.

    A test whose ``parallel_map`` calls were measured separately gets one per call,
    with its ``call_index`` (each call is a different workload).
    """
    groups: dict[tuple[str, int | None], list[ResultRecord]] = {}
    for record in records:
        call = record.call_index if record.kind is Kind.MAP else None
        groups.setdefault((record.test, call), []).append(record)
    return [
        replace(recommend(members, environment), call_index=call_index)
        for (_, call_index), members in groups.items()
    ]
