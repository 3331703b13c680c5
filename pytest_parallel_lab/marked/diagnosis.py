"""Why a workload scales or not, and which concurrency model to use for it.

This is the "choosing the right tool" table decided from measurements instead of
folklore: multiprocessing for CPU-bound Python, threads for native code that
releases the GIL and for blocking I/O, asyncio for waiting inside ``async def``
code, and nothing at all when the tasks are too small to pay for their dispatch.

Everything here is pure: it reads :class:`~pytest_parallel_lab.document.run.ResultRecord`
and :class:`~pytest_parallel_lab.document.run.Environment` and returns frozen
dataclasses or plain JSON, so every rule is tested with tables of cases.

Rules, per measured result (:func:`classify_result`), first match wins:

1. not measured (failed, skipped, no speedup, no serial time) -> ``inconclusive``;
2. a synchronous task under the ``asyncio`` backend -> ``blocking-in-loop``;
3. one task costs less than ``OVERHEAD_TASK_TO_DISPATCH`` empty dispatches ->
   ``overhead-bound`` (with the chunk size that would amortise the dispatch);
4. a noisy result whose interval cannot tell "scales" from "does not" ->
   ``inconclusive`` (never guess: add rounds);
5. no CPU time measured -> ``inconclusive``;
6. the serial CPU-to-wall ratio says whether the task computes or waits; a
   coroutine that waits but does not overlap under asyncio -> ``blocking-in-loop``;
   threads that scale on computing work with more than ``GIL_RELEASE_CPU_RATIO``
   CPUs busy (or no backend CPU measured) -> ``gil-releasing``, but ``cpu-bound``
   when the GIL is disabled, since then plain Python scales under threads too.
   Work between ``WAITING_RATIO`` and ``CPU_BUSY_RATIO`` is mixed and goes with
   the side it is closer to (``MIXED_SPLIT_RATIO``).

Per test (:func:`classify_test`): the ``asyncio`` row of a *synchronous* test is
``blocking-in-loop`` only as a statement about that backend (sync code cannot
overlap on an event loop); the test's class comes from its other backends. For a
*coroutine* test a blocked loop is the test's class, because the fix is in the
test's code (``time.sleep`` inside ``async def``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_parallel_lab.document.run import Environment, ResultRecord

CPU_BOUND = "cpu-bound"
GIL_RELEASING = "gil-releasing"
IO_BOUND = "io-bound"
OVERHEAD_BOUND = "overhead-bound"
BLOCKING_IN_LOOP = "blocking-in-loop"
INCONCLUSIVE = "inconclusive"

#: Every classification, in the order the docs list them.
CLASSIFICATIONS = (
    CPU_BOUND,
    GIL_RELEASING,
    IO_BOUND,
    OVERHEAD_BOUND,
    BLOCKING_IN_LOOP,
    INCONCLUSIVE,
)

#: The backend named by a recommendation that cannot be made (evidence too noisy).
UNDECIDED = "undecided"

#: Serial CPU/wall at or above which the task is computing: the rest (<20%) is
#: allocation, page faults and timer jitter, not waiting.
CPU_BUSY_RATIO = 0.8
#: Serial CPU/wall at or below which the task is mostly waiting (sleep, socket,
#: disk): 70% of its wall time the thread is off-CPU.
WAITING_RATIO = 0.3
#: Between the two a task is mixed; it is put with the side it is closer to.
MIXED_SPLIT_RATIO = (CPU_BUSY_RATIO + WAITING_RATIO) / 2
#: Backend CPU/wall under threads above which more than one core computed at once:
#: with the GIL held the sum of the threads' CPU cannot exceed ~1.0 of wall, so
#: 1.3 leaves room for measurement slop and still needs a third of a second core.
GIL_RELEASE_CPU_RATIO = 1.3
#: A backend "scales" when its speedup interval lies above 1.0 and the estimate is at
#: least this: a 1.05x inside the noise is no reason to change concurrency model.
MIN_USEFUL_SPEEDUP = 1.2
#: One task taking less than this many empty-task dispatches is dominated by
#: dispatch, pickling and wake-ups: at 3x, at least a quarter of the time is overhead.
OVERHEAD_TASK_TO_DISPATCH = 3.0
#: Batching target: each chunk should cost this many dispatches so the overhead
#: falls under ~5% of the chunk's time.
CHUNK_DISPATCH_MULTIPLE = 20.0

#: Which model is cheapest when two backends match (intervals overlap): an event
#: loop costs less than threads, threads less than processes (no start-up, no pickling).
_PREFERENCE = {"asyncio": 0, "thread": 1, "process": 2, "multiprocessing": 2}
_OTHER_PREFERENCE = 3

_EXPLANATION = {
    CPU_BOUND: "GIL-bound CPU work",
    GIL_RELEASING: "native code releases the GIL",
    IO_BOUND: "mostly waiting",
    OVERHEAD_BOUND: "tasks too small for their dispatch cost",
    BLOCKING_IN_LOOP: "blocking call inside the event loop",
    INCONCLUSIVE: "too noisy to decide",
}


@dataclass(frozen=True)
class Diagnosis:
    """A classification with the numbers that decided it and one line saying why."""

    classification: str
    evidence: dict[str, float]
    reason: str


@dataclass(frozen=True)
class Recommendation:
    """The concurrency model to use for one test, and one sentence from the measurements."""

    test: str
    classification: str
    backend: str
    reason: str


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _measured(record: ResultRecord) -> bool:
    # A row failed by a gate or by expect= was measured all the same; rows that
    # failed before measuring have no speedup.
    return record.speedup is not None and record.serial_s is not None and record.serial_s > 0


def _scales(record: ResultRecord) -> bool:
    assert record.speedup is not None
    return record.speedup.ci_low > 1.0 and record.speedup.estimate >= MIN_USEFUL_SPEEDUP


def _undecided(record: ResultRecord) -> bool:
    """A noisy interval that straddles the line between "scales" and "does not"."""
    assert record.speedup is not None
    if not record.noisy:
        return False
    low, high = record.speedup.ci_low, record.speedup.ci_high
    return low <= 1.0 < high or low < MIN_USEFUL_SPEEDUP <= high


def _free_threaded(environment: Environment) -> bool:
    """The GIL is off in this process (a free-threaded build run without PYTHON_GIL=1)."""
    return not environment.gil_enabled


def chunk_size(task_s: float, dispatch_s: float) -> int:
    """Tasks per chunk so that one chunk costs ``CHUNK_DISPATCH_MULTIPLE`` dispatches."""
    if task_s <= 0:
        raise ValueError(f"task time must be positive, got {task_s}")
    # Rounded first so that float noise (4000.0000001) does not add a task.
    return max(2, math.ceil(round(CHUNK_DISPATCH_MULTIPLE * dispatch_s / task_s, 6)))


def _percent(ratio: float) -> str:
    # "0%" would read as "not measured": a sleeping task still burns a little CPU.
    if 0 < ratio < 0.01:
        return "<1%"
    return f"{ratio * 100:.0f}%"


def _times(speedup: float) -> str:
    """'1.9x', or '0.04x' below 0.1x, where one decimal would round to nothing."""
    return f"{speedup:.2f}x" if speedup < 0.1 else f"{speedup:.1f}x"


def classify_result(record: ResultRecord, environment: Environment) -> Diagnosis:
    """Classify one measured result (one backend of one test); see the module rules."""
    evidence: dict[str, float] = {}
    if not _measured(record):
        why = record.error or f"outcome {record.outcome}, no speedup measured"
        return Diagnosis(INCONCLUSIVE, evidence, f"{record.backend}: not measured ({why})")
    assert record.speedup is not None
    speedup = record.speedup
    evidence.update(speedup=speedup.estimate, ci_low=speedup.ci_low, ci_high=speedup.ci_high)
    serial_ratio = _ratio(record.serial_cpu_s, record.serial_s)
    backend_ratio = _ratio(record.cpu_s, record.backend_s)
    if serial_ratio is not None:
        evidence["serial_cpu_ratio"] = serial_ratio
    if backend_ratio is not None:
        evidence["backend_cpu_ratio"] = backend_ratio
    shown = f"{record.backend} {_times(speedup.estimate)}"

    if record.backend == "asyncio" and not record.coroutine:
        return Diagnosis(
            BLOCKING_IN_LOOP,
            evidence,
            f"{shown}: a synchronous task runs on the event loop thread, so nothing overlaps",
        )

    if record.task_s is not None and record.dispatch_s is not None and record.dispatch_s > 0:
        per_dispatch = record.task_s / record.dispatch_s
        evidence.update(task_s=record.task_s, dispatch_s=record.dispatch_s)
        evidence["task_to_dispatch"] = per_dispatch
        # A backend that scales anyway is helping, whatever its overhead.
        if per_dispatch < OVERHEAD_TASK_TO_DISPATCH and record.task_s > 0 and not _scales(record):
            chunk = chunk_size(record.task_s, record.dispatch_s)
            evidence["chunk_size"] = float(chunk)
            return Diagnosis(
                OVERHEAD_BOUND,
                evidence,
                f"{shown}: one task takes {per_dispatch:.1f}x an empty dispatch; "
                f"batch tasks into chunks of {chunk}",
            )

    if _undecided(record):
        return Diagnosis(
            INCONCLUSIVE,
            evidence,
            f"{shown} [{speedup.ci_low:.2f}-{speedup.ci_high:.2f}] is too noisy to tell "
            "whether it scales; add rounds",
        )
    if serial_ratio is None:
        return Diagnosis(INCONCLUSIVE, evidence, f"{shown}: serial CPU time not measured")

    scales = _scales(record)
    if serial_ratio >= MIXED_SPLIT_RATIO:
        computing = f"CPU {_percent(serial_ratio)} of wall"
        # Threads that scale on computing work ran it on several cores at once; the
        # backend CPU ratio confirms it when measured (a missing one cannot refute it).
        parallel_threads = (
            record.backend == "thread"
            and scales
            and (backend_ratio is None or backend_ratio > GIL_RELEASE_CPU_RATIO)
        )
        if parallel_threads and _free_threaded(environment):
            return Diagnosis(
                CPU_BOUND,
                evidence,
                f"{shown}: CPU work running in parallel threads with the GIL disabled",
            )
        if parallel_threads:
            return Diagnosis(
                GIL_RELEASING,
                evidence,
                f"{shown}: threads scale on CPU work"
                + ("" if backend_ratio is None else f" ({backend_ratio:.1f} CPUs busy)")
                + ", so the work releases the GIL",
            )
        if record.backend == "thread" and not scales:
            return Diagnosis(
                CPU_BOUND, evidence, f"{shown}: threads do not scale on CPU work ({computing})"
            )
        return Diagnosis(CPU_BOUND, evidence, f"{shown}: busy CPU ({computing})")

    waiting = f"CPU {_percent(serial_ratio)} of wall"
    if record.backend == "asyncio" and not scales and (record.parallelism or 2) > 1:
        return Diagnosis(
            BLOCKING_IN_LOOP,
            evidence,
            f"{shown}: the coroutines wait ({waiting}) but do not overlap: "
            "a blocking call (time.sleep?) inside async def",
        )
    return Diagnosis(IO_BOUND, evidence, f"{shown}: mostly waiting ({waiting})")


def _by_backend(records: Iterable[ResultRecord]) -> dict[str, ResultRecord]:
    """Per backend the measured row with the best speedup (a sweep has several)."""
    best: dict[str, ResultRecord] = {}
    for record in records:
        if not _measured(record) or record.backend == "serial":
            continue
        assert record.speedup is not None
        current = best.get(record.backend)
        if current is None or (
            current.speedup is not None and record.speedup.estimate > current.speedup.estimate
        ):
            best[record.backend] = record
    return best


def classify_test(records: Sequence[ResultRecord], environment: Environment) -> Diagnosis:
    """Classify one test across its backends (the rule is in the module docstring)."""
    rows = _by_backend(records)
    if not rows:
        return Diagnosis(INCONCLUSIVE, {}, "no backend was measured")
    diagnoses = {backend: classify_result(row, environment) for backend, row in rows.items()}
    evidence: dict[str, float] = {}
    for backend, diagnosis in diagnoses.items():
        for key, value in diagnosis.evidence.items():
            evidence[f"{backend}.{key}"] = value
    coroutine = any(row.coroutine for row in rows.values())
    loop = diagnoses.get("asyncio")
    thread = rows.get("thread")
    # A coroutine test whose loop does not overlap its waits blocks its own loop, unless
    # threads do not overlap them either (then the loop is not what holds it back).
    if (
        coroutine
        and loop is not None
        and loop.classification == BLOCKING_IN_LOOP
        and (thread is None or _scales(thread))
    ):
        return Diagnosis(BLOCKING_IN_LOOP, evidence, loop.reason)

    deciding = {
        backend: diagnosis
        for backend, diagnosis in diagnoses.items()
        if not (backend == "asyncio" and diagnosis.classification == BLOCKING_IN_LOOP)
    }
    if not deciding:
        assert loop is not None
        return Diagnosis(BLOCKING_IN_LOOP, evidence, loop.reason)
    unsure = [d for d in deciding.values() if d.classification == INCONCLUSIVE]
    if unsure:
        return Diagnosis(INCONCLUSIVE, evidence, "; ".join(d.reason for d in unsure))
    anyone_scales = any(_scales(rows[backend]) for backend in deciding)
    classes = Counter(d.classification for d in deciding.values())
    if classes[OVERHEAD_BOUND] and not anyone_scales:
        chosen = OVERHEAD_BOUND
    elif classes[GIL_RELEASING]:
        # Only threads can show the GIL being released; the process row cannot tell.
        chosen = GIL_RELEASING
    else:
        remaining = [c for c in classes if c != OVERHEAD_BOUND] or [OVERHEAD_BOUND]
        # Rows share the serial side, so they disagree only for mixed work; the most
        # common class wins, ties go to the order of CLASSIFICATIONS.
        chosen = min(remaining, key=lambda c: (-classes[c], CLASSIFICATIONS.index(c)))
    reason = next(d.reason for d in deciding.values() if d.classification == chosen)
    return Diagnosis(chosen, evidence, reason)


def _preference(backend: str) -> int:
    return _PREFERENCE.get(backend, _OTHER_PREFERENCE)


def _shown(record: ResultRecord) -> str:
    assert record.speedup is not None
    return f"{record.backend} {_times(record.speedup.estimate)}"


def _why(diagnosis: Diagnosis, rows: dict[str, ResultRecord], environment: Environment) -> str:
    """The class in words, with the CPU number that decided it."""
    classification = diagnosis.classification
    words = _EXPLANATION[classification]
    serial_ratio = next(
        (
            ratio
            for row in rows.values()
            if (ratio := _ratio(row.serial_cpu_s, row.serial_s)) is not None
        ),
        None,
    )
    cpu = "" if serial_ratio is None else f" (CPU {_percent(serial_ratio)} of wall)"
    thread = rows.get("thread")
    if classification == GIL_RELEASING and thread is not None:
        ratio = _ratio(thread.cpu_s, thread.backend_s)
        if ratio is not None:
            return f"{words} ({ratio:.1f} CPUs busy under threads)"
    if classification == BLOCKING_IN_LOOP:
        return (
            f"{words}{cpu}: replace time.sleep with await asyncio.sleep "
            "and wrap other blocking calls in asyncio.to_thread"
        )
    if classification == CPU_BOUND and thread is not None and _scales(thread):
        if _free_threaded(environment):
            return f"CPU work, threads run in parallel with the GIL disabled{cpu}"
        return f"CPU work{cpu}"
    if classification == CPU_BOUND and thread is None:
        return f"CPU work{cpu}"
    if classification in (CPU_BOUND, IO_BOUND):
        return f"{words}{cpu}"
    return words


def recommend(records: Sequence[ResultRecord], environment: Environment) -> Recommendation:
    """The backend to use for one test's records, and one sentence saying why.

    The winner is the backend with the best significant speedup (interval above 1.0,
    estimate at least ``MIN_USEFUL_SPEEDUP``); among backends whose intervals overlap
    the winner's, the cheapest model is chosen (asyncio for coroutines, then threads,
    then processes). When nothing wins, ``serial`` is recommended with the reason;
    when the evidence is too noisy, the backend is ``undecided``.
    """
    test = records[0].test if records else ""
    diagnosis = classify_test(records, environment)
    rows = _by_backend(records)
    if diagnosis.classification == INCONCLUSIVE:
        return Recommendation(test, INCONCLUSIVE, UNDECIDED, diagnosis.reason)
    coroutine = any(row.coroutine for row in rows.values())
    candidates = [
        row
        for backend, row in rows.items()
        if _scales(row) and (backend != "asyncio" or row.coroutine)
    ]
    if not candidates:
        listed = ", ".join(
            f"{_shown(r)} [{r.speedup.ci_low:.2f}-{r.speedup.ci_high:.2f}]"
            for r in sorted(rows.values(), key=lambda r: r.backend)
            if r.speedup is not None
        )
        if diagnosis.classification == OVERHEAD_BOUND:
            chunks = ", ".join(
                f"{value:.0f} for {key.removesuffix('.chunk_size')}"
                for key, value in sorted(diagnosis.evidence.items())
                if key.endswith(".chunk_size")
            )
            why = f"tasks too small for their dispatch cost: batch tasks into chunks of {chunks}"
        else:
            why = _why(diagnosis, rows, environment)
        return Recommendation(
            test,
            diagnosis.classification,
            "serial",
            f"no backend beats serial ({listed}): {why}",
        )
    best = max(candidates, key=lambda r: r.speedup.estimate if r.speedup else 0.0)
    assert best.speedup is not None
    matching = [
        r for r in candidates if r.speedup is not None and r.speedup.ci_high >= best.speedup.ci_low
    ]
    if coroutine and "asyncio" in rows and rows["asyncio"] in matching:
        chosen = rows["asyncio"]
    else:
        chosen = min(matching, key=lambda r: (_preference(r.backend), -_estimate(r)))
    others = sorted((r for r in matching if r is not chosen), key=lambda r: -_estimate(r))
    ahead = [chosen, *others]
    behind = sorted((r for r in rows.values() if r not in ahead), key=lambda r: -_estimate(r))
    sentence = ", ".join(_shown(r) for r in ahead)
    if behind:
        sentence += " vs " + ", ".join(_shown(r) for r in behind)
    return Recommendation(
        test,
        diagnosis.classification,
        chosen.backend,
        f"{sentence}: {_why(diagnosis, rows, environment)}",
    )


def _estimate(record: ResultRecord) -> float:
    return record.speedup.estimate if record.speedup is not None else 0.0


def _group_key(record: ResultRecord) -> tuple[str, int]:
    return (record.test, record.call_index if record.kind == "map" else -1)


def recommendations_section(
    records: Sequence[ResultRecord], environment: Environment
) -> list[dict[str, Any]]:
    """The ``recommendations`` JSON section: one entry per test, in first-seen order.

    A test whose ``parallel_map`` calls were measured separately gets one entry per
    call, with an extra ``call_index`` key (each call is a different workload).
    """
    groups: dict[tuple[str, int], list[ResultRecord]] = {}
    for record in records:
        groups.setdefault(_group_key(record), []).append(record)
    section: list[dict[str, Any]] = []
    for (test, call_index), members in groups.items():
        recommendation = recommend(members, environment)
        entry: dict[str, Any] = {
            "test": test,
            "classification": recommendation.classification,
            "backend": recommendation.backend,
            "reason": recommendation.reason,
        }
        if call_index >= 0:
            entry["call_index"] = call_index
        section.append(entry)
    return section
