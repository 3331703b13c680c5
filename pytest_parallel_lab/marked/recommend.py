"""Which concurrency model to use for each test, and one sentence from the measurements.

The winner is the backend with the best significant speedup (interval above 1.0,
estimate at least ``MIN_USEFUL_SPEEDUP``); among backends whose intervals overlap
the winner's, the cheapest model is chosen (asyncio for coroutines, then threads,
subinterpreters, processes, a Dask cluster). A cheaper model that this interpreter
could not run is named beside the choice. When nothing wins, ``serial`` is
recommended with the reason; when the evidence is too noisy, the backend is
``undecided``.

Pure: records in, :class:`~pytest_parallel_lab.document.records.Recommendation` out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from pytest_parallel_lab.capacity import CpuCapacity
from pytest_parallel_lab.document.records import Environment, Recommendation, ResultRecord
from pytest_parallel_lab.marked.diagnosis import (
    TestDiagnosis,
    best_rows,
    classify_test,
    could_change,
    percent,
    preference,
    ratio,
    runs_in_processes,
    scales,
    shown,
)
from pytest_parallel_lab.stats import format_speedup
from pytest_parallel_lab.vocabulary import Classification, Kind

#: The backend named by a recommendation that cannot be made (evidence too noisy).
UNDECIDED = "undecided"
#: The backend named when no backend beats running the tasks one after another.
SERIAL = "serial"
#: Below this many CPUs for the parallel side, a machine cannot show CPU work scaling.
MIN_CPUS_TO_SHOW = 1.5

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
        return _undecided(test, diagnosis.classification, diagnosis.reason)
    rows = best_rows(records)
    decided = {
        b: d
        for b, d in diagnosis.rows.items()
        if d.classification is not Classification.INCONCLUSIVE
    }
    unsure = [b for b in rows if b not in decided]
    candidates = [
        rows[b] for b in decided if scales(rows[b]) and (b != "asyncio" or rows[b].coroutine)
    ]
    if not candidates:
        cannot_show = _machine_cannot_show(diagnosis, rows, environment)
        if cannot_show is not None:
            return Recommendation(
                test, diagnosis.classification, "process", cannot_show, shown=False, why=cannot_show
            )
        could_scale = [diagnosis.rows[b].reason for b in unsure if could_change(rows, decided, b)]
        if could_scale:
            return _undecided(test, diagnosis.classification, "; ".join(could_scale))
        listed, why = _nothing_wins(diagnosis, rows, environment)
        return Recommendation(
            test,
            diagnosis.classification,
            SERIAL,
            f"no backend beats serial ({listed}): {why}",
            why=why,
        )
    chosen, ahead = _winner(candidates, rows)
    rivals = [diagnosis.rows[b].reason for b in unsure if could_change(rows, decided, b)]
    if rivals:
        winner = f"{shown(chosen)} wins unless this does as well: " + "; ".join(rivals)
        return _undecided(test, diagnosis.classification, winner)
    behind = sorted((r for r in rows.values() if r not in ahead), key=lambda r: -_estimate(r))
    sentence = ", ".join(shown(r) for r in ahead)
    if behind:
        sentence += " vs " + ", ".join(shown(r) for r in behind)
    why = _why(diagnosis, rows, environment) + _not_measured_here(chosen.backend, environment)
    return Recommendation(
        test, diagnosis.classification, chosen.backend, f"{sentence}: {why}", why=why
    )


def _not_measured_here(chosen: str, environment: Environment) -> str:
    """A clause naming the models cheaper than *chosen* that this interpreter could not
    run (an interpreter pool before 3.14, say), else "": elsewhere one may do as well for
    less. The report lists why each is unavailable."""
    rank = preference(chosen)
    cheaper = sorted(
        (name for name in environment.unavailable_backends if preference(name) < rank),
        key=preference,
    )
    if not cheaper:
        return ""
    return f"; {', '.join(cheaper)} not measured (unavailable on this interpreter)"


def _undecided(test: str, classification: Classification, reason: str) -> Recommendation:
    return Recommendation(test, classification, UNDECIDED, reason, why=reason)


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
        chosen = min(matching, key=lambda r: (preference(r.backend), -_estimate(r)))
    others = sorted((r for r in matching if r is not chosen), key=lambda r: -_estimate(r))
    return chosen, [chosen, *others]


def _machine_cannot_show(
    diagnosis: TestDiagnosis, rows: Mapping[str, ResultRecord], environment: Environment
) -> str | None:
    """For CPU work whose process rows could not show a speedup because of the machine
    (too few CPUs, such as a 1-CPU quota, or CPUs it did not deliver): why processes are
    still the model, else None."""
    if diagnosis.classification is not Classification.CPU_BOUND:
        return None
    given = [r.capacity.expected_cpus for r in rows.values() if r.capacity is not None]
    starved = [r for r in rows.values() if r.machine_busy and runs_in_processes(r)]
    if starved:
        shown_here = "; ".join(diagnosis.rows[r.backend].reason for r in starved)
    elif given and max(given) < MIN_CPUS_TO_SHOW:
        machine = CpuCapacity(
            environment.cpu_count, environment.cpu_capacity or max(given), environment.cpu_limit
        ).describe()
        shown_here = f"this machine cannot show the speedup ({machine})"
    else:
        return None
    return (
        f"{_why(diagnosis, rows, environment)}: processes are the model for it, but "
        f"{shown_here}; threads do as well if it is native code that releases the GIL"
    )


def _nothing_wins(
    diagnosis: TestDiagnosis, rows: Mapping[str, ResultRecord], environment: Environment
) -> tuple[str, str]:
    """The speedups that lost to serial, and why nothing wins."""
    listed = ", ".join(
        f"{r.backend} {format_speedup(r.speedup)}"
        for r in sorted(rows.values(), key=lambda r: r.backend)
        if r.speedup is not None
    )
    if diagnosis.classification is Classification.OVERHEAD_BOUND:
        why = "tasks too small for their dispatch cost: " + _batching(diagnosis, rows)
    else:
        why = _why(diagnosis, rows, environment)
    return listed, why


def _batching(diagnosis: TestDiagnosis, rows: Mapping[str, ResultRecord]) -> str:
    """What batching would help: chunk sizes per backend, or none at all."""
    sizes = {
        backend: (d.evidence.chunk_size, rows[backend].tasks)
        for backend, d in sorted(diagnosis.rows.items())
        if d.classification is Classification.OVERHEAD_BOUND and d.evidence.chunk_size
    }
    split = {b: size for b, (size, tasks) in sizes.items() if tasks is None or size < tasks}
    if not split:
        tasks = max((t for _, t in sizes.values() if t), default=0)
        return f"even all {tasks} tasks together cost less than dispatching them; run them serially"
    return "batch tasks into chunks of " + ", ".join(f"{s} for {b}" for b, s in split.items())


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
