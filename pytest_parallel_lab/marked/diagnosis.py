"""Why a workload scales or not: each measured result and each test classified.

This is the "choosing the right tool" table decided from measurements instead of
folklore: multiprocessing for CPU-bound Python, threads for native code that
releases the GIL and for blocking I/O, asyncio for waiting inside ``async def``
code, and nothing at all when the tasks are too small to pay for their dispatch.
Which backend to use follows in :mod:`pytest_parallel_lab.marked.recommend`.

Rules, per measured result (:func:`classify_result`), first match wins:

1. not measured (failed, skipped, no speedup, no serial time) -> inconclusive;
2. a synchronous task under the ``asyncio`` backend -> blocking-in-loop;
3. one task costs less than ``OVERHEAD_TASK_TO_DISPATCH`` empty dispatches and the
   backend does not scale anyway -> overhead-bound (with a chunk size that would
   amortise the dispatch);
4. a noisy result whose interval cannot tell "scales" from "does not" (it reaches
   below 1.0, or its estimate is under ``MIN_USEFUL_SPEEDUP`` while its top is not) ->
   inconclusive (never guess: add rounds); a wide interval wholly above 1.0 around a
   useful estimate scales;
5. no serial CPU time measured -> inconclusive;
6. the serial CPU-to-wall ratio says whether the task computes or waits (mixed
   work, between ``WAITING_RATIO`` and ``CPU_BUSY_RATIO``, goes with the side it is
   closer to). Computing: threads that scale with more than
   ``GIL_RELEASE_CPU_RATIO`` CPUs busy (or no backend CPU measured) ->
   gil-releasing, but cpu-bound when the GIL is disabled, since then plain Python
   scales under threads too; otherwise cpu-bound. Waiting: a coroutine that does not
   overlap under asyncio -> blocking-in-loop; otherwise io-bound.

Per test (:func:`classify_test`): the ``asyncio`` row of a *synchronous* test is
blocking-in-loop only as a statement about that backend (sync code cannot overlap
on an event loop); the test's class comes from its other backends. For a
*coroutine* test a blocked loop is the test's class, because the fix is in the
test's code (``time.sleep`` inside ``async def``).

Pure: records and the environment in, frozen dataclasses out.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pytest_parallel_lab.document.records import Environment, ResultRecord
from pytest_parallel_lab.stats import Interval, format_speedup
from pytest_parallel_lab.vocabulary import Classification

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
#: loop costs less than threads, threads less than subinterpreters (pickling, but no
#: process to start or feed), those less than processes, and a local machine's
#: processes less than a Dask cluster (a scheduler between the caller and its workers).
PREFERENCE = {
    "asyncio": 0,
    "thread": 1,
    "interpreter": 2,
    "process": 3,
    "multiprocessing": 3,
    "loky": 3,
    "dask": 4,
}
#: Backends whose workers each have an interpreter (and GIL) of their own, although
#: their rows have no start method: CPU-bound Python scales there as under processes.
ISOLATED_WORKER_BACKENDS = frozenset({"interpreter", "dask"})


@dataclass(frozen=True)
class Evidence:
    """The numbers of one result that the rules read (None: not measured)."""

    serial_cpu_ratio: float | None = None
    backend_cpu_ratio: float | None = None
    #: one task's serial time over one empty dispatch through the backend
    task_to_dispatch: float | None = None
    #: tasks per chunk that would amortise the dispatch cost
    chunk_size: int | None = None


@dataclass(frozen=True)
class Diagnosis:
    """A result's classification, one line saying why, and the numbers behind it."""

    classification: Classification
    reason: str
    evidence: Evidence = field(default_factory=Evidence)


@dataclass(frozen=True)
class TestDiagnosis:
    """A test's classification across its backends, and the diagnosis of each."""

    __test__ = False  # not a pytest test class

    classification: Classification
    reason: str
    #: per backend, the diagnosis of its best measured row
    rows: Mapping[str, Diagnosis] = field(default_factory=dict)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """*numerator* / *denominator*; None when either is unknown or the divisor not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def scales(record: ResultRecord) -> bool:
    """The backend is worth using: its interval lies above 1 and the estimate is useful."""
    assert record.speedup is not None
    return record.speedup.low > 1.0 and record.speedup.estimate >= MIN_USEFUL_SPEEDUP


def chunk_size(task_s: float, dispatch_s: float, tasks: int | None = None) -> int:
    """Tasks per chunk so that one chunk costs ``CHUNK_DISPATCH_MULTIPLE`` dispatches,
    rounded up to 1, 2 or 5 times a power of ten (timings of tiny tasks vary from run
    to run; the advice should not), and never more than the *tasks* there are."""
    if task_s <= 0:
        raise ValueError(f"task time must be positive, got {task_s}")
    # Rounded first so that float noise (4000.0000001) does not add a task.
    needed = max(2, math.ceil(round(CHUNK_DISPATCH_MULTIPLE * dispatch_s / task_s, 6)))
    steps = (step * 10**power for power in range(20) for step in (1, 2, 5))
    size = next(int(s) for s in steps if s >= needed)
    return min(size, tasks) if tasks else size


def evidence_of(record: ResultRecord) -> Evidence:
    """The ratios the rules read, from the record's measured times."""
    per_dispatch = ratio(record.task_s, record.dispatch_s)
    return Evidence(
        serial_cpu_ratio=ratio(record.serial_cpu_s, record.serial_s),
        backend_cpu_ratio=ratio(record.cpu_s, record.backend_s),
        task_to_dispatch=per_dispatch,
        chunk_size=(
            chunk_size(record.task_s, record.dispatch_s, record.tasks)
            if per_dispatch is not None and record.task_s and record.dispatch_s
            else None
        ),
    )


def percent(value: float) -> str:
    """A share in percent; '<1%' rather than '0%', which would read as "not measured"."""
    if 0 < value < 0.01:
        return "<1%"
    return f"{value * 100:.0f}%"


def times(speedup: float) -> str:
    """'1.9x', or '0.04x' below 0.1x, where one decimal would round to nothing."""
    return f"{speedup:.2f}x" if speedup < 0.1 else f"{speedup:.1f}x"


def shown(record: ResultRecord) -> str:
    """'process 1.9x': a backend with its speedup, as reasons name them."""
    assert record.speedup is not None
    return f"{record.backend} {times(record.speedup.estimate)}"


def classify_result(record: ResultRecord, environment: Environment) -> Diagnosis:
    """Classify one measured result (one backend of one test); see the module rules."""
    if not record.measured:
        why = record.error or f"outcome {record.outcome}, no speedup measured"
        return Diagnosis(Classification.INCONCLUSIVE, f"{record.backend}: not measured ({why})")
    evidence = evidence_of(record)
    if record.machine_busy:
        return Diagnosis(Classification.INCONCLUSIVE, starved_reason(record), evidence)
    for rule in (_sync_task_on_a_loop, _overhead, _too_noisy):
        diagnosis = rule(record, evidence)
        if diagnosis is not None:
            return diagnosis
    if evidence.serial_cpu_ratio is None:
        return Diagnosis(
            Classification.INCONCLUSIVE, f"{shown(record)}: serial CPU time not measured", evidence
        )
    if evidence.serial_cpu_ratio >= MIXED_SPLIT_RATIO:
        return _computing(record, evidence, environment)
    return _waiting(record, evidence)


def starved_reason(record: ResultRecord) -> str:
    """'process 1.0x: the machine delivered 1.0 of 2 CPUs; rerun on an idle runner'."""
    return (
        f"{shown(record)}: the machine delivered {delivered_words(record)}; rerun on an idle runner"
    )


def delivered_words(record: ResultRecord) -> str:
    """'1.2 of 2 CPUs (they ran its tasks 1.6x slower than serially)'."""
    capacity = record.capacity
    if capacity is None:
        return "too little CPU"
    words = f"{capacity.delivered_cpus:.1f} of {capacity.expected_cpus:g} CPUs"
    slowdown = capacity.task_slowdown
    if slowdown is not None and slowdown > 1.1:
        words += f" (they ran its tasks {slowdown:.1f}x slower than serially)"
    return words


def _sync_task_on_a_loop(record: ResultRecord, evidence: Evidence) -> Diagnosis | None:
    if record.backend != "asyncio" or record.coroutine:
        return None
    return Diagnosis(
        Classification.BLOCKING_IN_LOOP,
        f"{shown(record)}: a synchronous task runs on the event loop thread, so nothing overlaps",
        evidence,
    )


def _overhead(record: ResultRecord, evidence: Evidence) -> Diagnosis | None:
    per_dispatch, chunk = evidence.task_to_dispatch, evidence.chunk_size
    # A backend that scales anyway is helping, whatever its overhead.
    if per_dispatch is None or chunk is None or per_dispatch >= OVERHEAD_TASK_TO_DISPATCH:
        return None
    if scales(record):
        return None
    advice = (
        f"batch tasks into chunks of {chunk}"
        if record.tasks is None or chunk < record.tasks
        else f"even all {record.tasks} tasks together are too small: run them serially"
    )
    return Diagnosis(
        Classification.OVERHEAD_BOUND,
        f"{shown(record)}: one task takes {per_dispatch:.1f}x an empty dispatch; {advice}",
        evidence,
    )


def straddles(speedup: Interval) -> bool:
    """Whether an interval leaves open if the speedup scales: it reaches below 1.0 and
    above it, or its estimate is under ``MIN_USEFUL_SPEEDUP`` while its top is not.
    An interval wholly above 1 around a useful estimate scales however wide it is."""
    low, estimate, high = speedup.low, speedup.estimate, speedup.high
    return low <= 1.0 < high or (low < MIN_USEFUL_SPEEDUP <= high and estimate < MIN_USEFUL_SPEEDUP)


def _too_noisy(record: ResultRecord, evidence: Evidence) -> Diagnosis | None:
    """A noisy interval that straddles the line between "scales" and "does not", for a
    row that could show a useful speedup here at all (:func:`most_shown`)."""
    assert record.speedup is not None
    if not record.noisy or not straddles(record.speedup):
        return None
    if most_shown(record) < MIN_USEFUL_SPEEDUP:
        return None
    return Diagnosis(
        Classification.INCONCLUSIVE,
        f"{record.backend} {format_speedup(record.speedup)} is too noisy to tell whether it "
        "scales; add rounds",
        evidence,
    )


def _computing(record: ResultRecord, evidence: Evidence, environment: Environment) -> Diagnosis:
    assert evidence.serial_cpu_ratio is not None
    computing = f"CPU {percent(evidence.serial_cpu_ratio)} of wall"
    busy = evidence.backend_cpu_ratio
    # Threads that scale on computing work ran it on several cores at once; the
    # backend CPU ratio confirms it when measured (a missing one cannot refute it).
    parallel_threads = (
        record.backend == "thread"
        and scales(record)
        and (busy is None or busy > GIL_RELEASE_CPU_RATIO)
    )
    if parallel_threads and not environment.gil_enabled:
        reason = f"{shown(record)}: CPU work running in parallel threads with the GIL disabled"
        return Diagnosis(Classification.CPU_BOUND, reason, evidence)
    if parallel_threads:
        cpus = "" if busy is None else f" ({busy:.1f} CPUs busy)"
        reason = f"{shown(record)}: threads scale on CPU work{cpus}, so the work releases the GIL"
        return Diagnosis(Classification.GIL_RELEASING, reason, evidence)
    if record.backend == "thread" and not scales(record):
        reason = f"{shown(record)}: threads do not scale on CPU work ({computing})"
        return Diagnosis(Classification.CPU_BOUND, reason, evidence)
    return Diagnosis(Classification.CPU_BOUND, f"{shown(record)}: busy CPU ({computing})", evidence)


def _waiting(record: ResultRecord, evidence: Evidence) -> Diagnosis:
    assert evidence.serial_cpu_ratio is not None
    waiting = f"CPU {percent(evidence.serial_cpu_ratio)} of wall"
    if record.backend == "asyncio" and not scales(record) and (record.parallelism or 2) > 1:
        return Diagnosis(
            Classification.BLOCKING_IN_LOOP,
            f"{shown(record)}: the coroutines wait ({waiting}) but do not overlap: "
            "a blocking call (time.sleep?) inside async def",
            evidence,
        )
    return Diagnosis(
        Classification.IO_BOUND, f"{shown(record)}: mostly waiting ({waiting})", evidence
    )


def row_diagnosis(record: ResultRecord, environment: Environment) -> Diagnosis:
    """The classification the measurement gave *record*; a record without one (made by
    hand, or by an older version) is classified now."""
    if record.classification is not None and record.classification_reason is not None:
        return Diagnosis(record.classification, record.classification_reason, evidence_of(record))
    return classify_result(record, environment)


def best_rows(records: Iterable[ResultRecord]) -> dict[str, ResultRecord]:
    """Per backend the measured row with the best speedup (a sweep has several)."""
    best: dict[str, ResultRecord] = {}
    for record in records:
        if not record.measured or record.backend == "serial":
            continue
        assert record.speedup is not None
        current = best.get(record.backend)
        if current is None or record.speedup.estimate > _estimate(current):
            best[record.backend] = record
    return best


def _estimate(record: ResultRecord) -> float:
    return record.speedup.estimate if record.speedup is not None else 0.0


def classify_test(records: Sequence[ResultRecord], environment: Environment) -> TestDiagnosis:
    """Classify one test across its backends (the rule is in the module docstring)."""
    rows = best_rows(records)
    if not rows:
        return TestDiagnosis(Classification.INCONCLUSIVE, "no backend was measured")
    diagnoses = {backend: row_diagnosis(row, environment) for backend, row in rows.items()}
    coroutine = any(row.coroutine for row in rows.values())
    loop = diagnoses.get("asyncio")
    thread = rows.get("thread")
    blocked = loop is not None and loop.classification is Classification.BLOCKING_IN_LOOP
    # A coroutine test whose loop does not overlap its waits blocks its own loop, unless
    # threads do not overlap them either (then the loop is not what holds it back).
    if blocked and coroutine and (thread is None or scales(thread)):
        assert loop is not None
        return TestDiagnosis(Classification.BLOCKING_IN_LOOP, loop.reason, diagnoses)
    deciding = {b: d for b, d in diagnoses.items() if not (b == "asyncio" and blocked)}
    if not deciding:
        assert loop is not None
        return TestDiagnosis(Classification.BLOCKING_IN_LOOP, loop.reason, diagnoses)
    decided = {
        b: d for b, d in deciding.items() if d.classification is not Classification.INCONCLUSIVE
    }
    unsure = [b for b in deciding if b not in decided]
    # An undecided row (noisy, or starved by a busy machine) blocks the verdict only if it
    # could change it: a noisy loser wholly below the best decided row does not, nor a
    # process row beside decided ones (processes scale for every class but overhead;
    # whether they win is the recommendation's question).
    blocking = [
        deciding[b]
        for b in unsure
        if could_change(rows, decided, b) and not _cannot_change_class(rows[b], decided)
    ]
    if blocking or not decided:
        reason = "; ".join(d.reason for d in (blocking or [deciding[b] for b in unsure]))
        return TestDiagnosis(Classification.INCONCLUSIVE, reason, diagnoses)
    chosen = _test_class(decided, any(scales(rows[b]) for b in decided))
    reason = next(d.reason for d in decided.values() if d.classification is chosen)
    return TestDiagnosis(chosen, reason, diagnoses)


def runs_in_processes(record: ResultRecord) -> bool:
    """The row's backend ran its tasks where each worker has its own GIL: worker
    processes (it has a start method), subinterpreters or a Dask cluster's workers."""
    return record.start_method is not None or record.backend in ISOLATED_WORKER_BACKENDS


def _cannot_change_class(record: ResultRecord, decided: Mapping[str, Diagnosis]) -> bool:
    overhead = any(d.classification is Classification.OVERHEAD_BOUND for d in decided.values())
    return runs_in_processes(record) and not overhead


def preference(backend: str) -> int:
    """Cheapness of a model, lowest first: an event loop, threads, subinterpreters, then
    processes, then a cluster (see ``PREFERENCE``); another plugin's backend after the
    built-ins."""
    return PREFERENCE.get(backend, len(PREFERENCE))


def could_change(
    rows: Mapping[str, ResultRecord], decided: Mapping[str, Diagnosis], backend: str
) -> bool:
    """Whether the undecided row of *backend* could change what the decided rows say:
    beat the best of them, or match it as a cheaper model; when none of them scales,
    whether it might scale at all. A row whose backend cannot show a useful speedup on
    this machine (:func:`most_shown`) changes nothing, however noisy."""
    speedup = rows[backend].speedup
    assert speedup is not None
    if most_shown(rows[backend]) < MIN_USEFUL_SPEEDUP:
        return False
    scaling = [rows[b] for b in decided if scales(rows[b])]
    if not scaling:
        return speedup.high > 1.0
    best = max(scaling, key=_estimate)
    assert best.speedup is not None
    if speedup.high > best.speedup.high:
        return True
    return speedup.high >= best.speedup.low and preference(backend) < preference(best.backend)


def most_shown(record: ResultRecord) -> float:
    """The largest speedup *record*'s backend could show here for CPU work: the CPUs it
    kept busy over the share of a CPU its serial side computes (the same tasks cost the
    same CPU time on both sides). Its wall-time ratio may be noisy; this accounting is
    not: CPU work under threads that hold the GIL, or on one usable CPU, keeps one CPU
    busy and cannot show more than about 1x. A row the machine starved may show more on
    an idle one: it is judged by the CPUs it could use. Infinite when not known or for
    work that mostly waits."""
    if record.capacity is None:
        return math.inf
    cpus = record.capacity.expected_cpus
    if not record.machine_busy:
        cpus = min(cpus, record.capacity.delivered_cpus)
    return cpu_ceiling(cpus, evidence_of(record).serial_cpu_ratio)


def cpu_ceiling(busy_cpus: float, serial_cpu_ratio: float | None) -> float:
    """The most a side that keeps *busy_cpus* busy can run faster than a serial side that
    computes *serial_cpu_ratio* of its wall time, when the tasks are CPU work (the same
    tasks cost the same CPU time); infinite for work that mostly waits or is not known."""
    if not serial_cpu_ratio or serial_cpu_ratio < CPU_BUSY_RATIO:
        return math.inf
    return busy_cpus / min(serial_cpu_ratio, 1.0)


def _test_class(deciding: Mapping[str, Diagnosis], anyone_scales: bool) -> Classification:
    """The test's class from its deciding rows."""
    classes = Counter(d.classification for d in deciding.values())
    if classes[Classification.OVERHEAD_BOUND] and not anyone_scales:
        return Classification.OVERHEAD_BOUND
    if classes[Classification.GIL_RELEASING]:
        # Only threads can show the GIL being released; the process row cannot tell.
        return Classification.GIL_RELEASING
    remaining: list[Classification] = [c for c in classes if c is not Classification.OVERHEAD_BOUND]
    # Rows share the serial side, so they disagree only for mixed work; the most
    # common class wins, ties go to the order of the classifications.
    order = list(Classification)
    return min(
        remaining or [Classification.OVERHEAD_BOUND], key=lambda c: (-classes[c], order.index(c))
    )
