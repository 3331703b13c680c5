"""Turn a test's workload into a measured :class:`ResultRecord`, in small steps.

Pure of pytest: the glue passes the workload, the resolved :class:`Settings` and
the session's :class:`RunnerCache`; :func:`measure` checks what a process backend
must pickle, takes the rounds (more while a gate is undecided), builds the record
once, classifies it and applies the gates. Every failure also gets a record, so
that no result is lost.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_parallel_lab import stats, timing
from pytest_parallel_lab.backends import (
    Backend,
    BackendError,
    RunnerCache,
    StartedRunner,
    WorkerCrashed,
    WorkloadTimeout,
)
from pytest_parallel_lab.backends.base import BatchResult, Work, call_test_body
from pytest_parallel_lab.backends.protocol import pickler, pickles_tasks
from pytest_parallel_lab.document.records import Environment, Gate, ResultRecord
from pytest_parallel_lab.marked.delivery import (
    ONE_THREAD_BACKENDS,
    STARVED_SHARE,
    Delivery,
    assess,
    delivered_cpus,
    round_fed,
    task_slowdown,
    window_too_short,
)
from pytest_parallel_lab.marked.diagnosis import (
    MIN_USEFUL_SPEEDUP,
    classify_result,
    cpu_ceiling,
    straddles,
)
from pytest_parallel_lab.marked.gates import (
    expect_note,
    expect_verdict,
    gate_verdict,
    judged_interval,
    rounds_to_add,
)
from pytest_parallel_lab.marked.marker import ParallelSpec
from pytest_parallel_lab.marked.rounds import (
    Measurement,
    MeasurementFailure,
    Measurer,
    OutcomeRequest,
    PicklingProblem,
    find_unpicklable,
    pickled_size,
)
from pytest_parallel_lab.vocabulary import GateVerdict, Kind, Outcome, Verdict

#: Serial CPU over wall above which the work counts as CPU work (parallelism capped by CPUs).
CPU_WORK_RATIO = 0.5
#: How often the rounds of a starved measurement are taken again, and within how long.
MAX_RETRIES = 2
#: How many times the spec's rounds an item whose interval straddles the verdict may take.
UNDECIDED_ROUNDS_FACTOR = 2
RETRY_BUDGET_S = 10.0


@dataclass(frozen=True)
class Settings:
    """One measurement: a marked item's spec, the backend and worker count it runs
    under, and the CPUs it shares."""

    spec: ParallelSpec
    nodeid: str
    test: str
    backend: str
    workers: int
    usable_cpus: int = 1
    #: the CPU time per second the machine gives this process (a quota can be a fraction)
    machine_cpus: float = 1.0
    xdist_workers: int = 0
    xdist_worker: str | None = None
    kind: Kind = Kind.BODY
    call_index: int = 0

    def map_call(self, index: int) -> Settings:
        """The settings of the test's *index*-th ``parallel_map`` call."""
        return replace(self, kind=Kind.MAP, call_index=index)


@dataclass
class Measured:
    """A measured record, the backend's task values, and the failure if any."""

    record: ResultRecord
    values: list[Any] = field(default_factory=list)
    failure: MeasurementFailure | None = None
    #: a min_speedup gate that is inconclusive: the warning saying why, and what to do
    gate_warning: str | None = None


def is_coroutine_function(function: Callable[..., Any]) -> bool:
    """True for ``async def`` functions (also behind functools.partial)."""
    while isinstance(function, functools.partial):
        function = function.func
    return inspect.iscoroutinefunction(function)


def body_work(function: Callable[..., Any], kwargs: dict[str, Any], tasks: int) -> Work:
    """The test body as *tasks* identical tasks, each given the fixture values."""
    return Work(
        call=functools.partial(call_test_body, function, kwargs),
        items=tuple(range(tasks)),
        coroutine=is_coroutine_function(function),
    )


def map_work(function: Callable[[Any], Any], items: Sequence[Any]) -> Work:
    """``parallel_map(fn, iterable)``: one task per item."""
    return Work(call=function, items=tuple(items), coroutine=is_coroutine_function(function))


def measure(
    settings: Settings,
    backend: Backend,
    serial_backend: Backend,
    cache: RunnerCache,
    work: Work,
    *,
    named_objects: Sequence[tuple[str, Any]] = (),
    on_batch: Callable[[str, BatchResult], None] | None = None,
    environment: Environment | None = None,
    on_stopped: Callable[[ResultRecord], None] | None = None,
    environment_at_end: Callable[[], Environment] | None = None,
) -> Measured:
    """Measure *work* serially and under *backend*; never raises for workload problems.

    With a ``min_speedup``, rounds are added while the gate is inconclusive (up to the
    spec's ``max_rounds``); the record carries the gate and the classification, and a
    failed gate or a contradicted ``expect`` is the outcome's failure.

    Ctrl-C, or a plugin that stops the test (pytest-timeout), is re-raised after the
    pools are torn down and *on_stopped* got the row of what was measured so far.

    *environment_at_end*, when given, says what the interpreter is once measured: the
    classification reads it (a free-threaded build's GIL may have been turned on by an
    import in the workload).
    """
    identity = _identity(settings, work)
    started: list[StartedRunner] = []
    measurer: Measurer | None = None
    try:
        pickled = _check_transport(settings, backend, work, named_objects)
        # The A/A check runs the serial baseline against itself: the very same runner.
        a_a = backend is serial_backend
        for which, workers, method in (
            (backend, 1 if a_a else settings.workers, None if a_a else settings.spec.start_method),
            (serial_backend, 1, None),
        ):
            started.append(cache.get(which, workers, method, keep=started))
        candidate, serial = started
        measurer = Measurer(
            serial=serial.runner,
            candidate=candidate.runner,
            backend=settings.backend,
            work=work,
            timeout=settings.spec.timeout_s,
            compare_results=settings.spec.compare_results,
            on_batch=on_batch,
            fed=_round_fed(len(work.items), backend.uses_processes, settings.backend),
            retakes=settings.spec.rounds,
        )
        # The serial runner that just measured this very workload (another backend's item
        # of the same test) is warm for it.
        warm_key = f"{settings.test}|{settings.kind}|{settings.call_index}"
        warm_wall = serial.warm_wall_s if serial.warm_for == warm_key else None
        serial.warm_for = None
        estimate, gate, delivery = _take_rounds(
            measurer, settings, len(work.items), backend.uses_processes, warm_wall
        )
    except Exception as exc:
        return _failed(settings, identity, exc, cache, started)
    except BaseException as exc:
        # Ctrl-C, or a plugin stopping the test (pytest-timeout's failure): the pools are
        # mid-run, so they are torn down at once rather than reused or waited for.
        if on_stopped is not None:
            on_stopped(stopped_record(identity, measurer, exc))
        for runner in started:
            cache.discard(runner)
        raise
    m = measurer.measurement
    serial.warm_for, serial.warm_wall_s = warm_key, estimate.baseline_median_s
    record = _record(identity, settings, backend, candidate, m, estimate, pickled, delivery)
    judged_in = environment_at_end() if environment_at_end is not None else environment
    return _judge(settings, record, gate, judged_in or Environment(), m.values)


def _check_transport(
    settings: Settings, backend: Backend, work: Work, named_objects: Sequence[tuple[str, Any]]
) -> int | None:
    """For a process backend: fail naming what cannot be pickled, else the bytes a task sends."""
    if not pickles_tasks(backend):
        return None
    problem = find_unpicklable(named_objects, pickler(backend))
    if problem is not None:
        description, obj, exc = problem
        raise PicklingProblem(
            f"{description} cannot be pickled for the {settings.backend} backend, which sends "
            f"every task's function and arguments to {_workers_of(backend)}.\n"
            f"  object: {obj!r}\n  error:  {type(exc).__name__}: {exc}\n"
            f'Fix: {_picklable_fix(backend)}, or use backend="thread".'
        )
    return pickled_size((work.call, work.items[0] if work.items else None), pickler(backend))


def _picklable_fix(backend: Backend) -> str:
    if pickler(backend) == "cloudpickle":
        # cloudpickle sends lambdas and closures by value; the rest is as for pickle.
        return (
            "make the fixture values and what the workload holds picklable "
            "(plain data, not locks, sockets or open files)"
        )
    return (
        "make the workload a module-level function and its fixture values picklable "
        "(plain data, not locks, sockets, open files or lambdas)"
    )


def _workers_of(backend: Backend) -> str:
    """Where a pickling backend sends its tasks, in words."""
    return "worker processes" if backend.uses_processes else "other interpreters"


def _take_rounds(
    measurer: Measurer,
    settings: Settings,
    tasks: int,
    in_processes: bool,
    warm_serial_s: float | None = None,
) -> tuple[stats.SpeedupEstimate, GateVerdict | None, Delivery]:
    """Warm up (the serial side only when its runner is not warm for this work), repeat
    runs too short to time alone, take the rounds the machine feeds (:func:`_fed_rounds`),
    more while a gate is inconclusive, and the dispatch cost; the final estimate and
    gate verdict, each computed once per round count."""
    spec = settings.spec
    measurer.warm_up(warm_serial_s)
    measurer.calibrate_loops()
    delivery = _fed_rounds(measurer, settings, tasks, in_processes)
    estimate = _covering_cpu_speed(measurer.measurement, tasks, in_processes)
    verdict = None
    if spec.min_speedup is not None:
        verdict = gate_verdict(estimate.speedup, spec.min_speedup)
        taken = len(measurer.measurement.serial_s)
        # A starved machine would starve the added rounds too: the gate waits for an idle one.
        while not delivery.starved and (more := rounds_to_add(taken, spec.max_rounds, verdict)):
            measurer.add_rounds(more)
            taken += more
            estimate = _covering_cpu_speed(measurer.measurement, tasks, in_processes)
            verdict = gate_verdict(estimate.speedup, spec.min_speedup)
        if taken > spec.rounds:
            delivery = _assess(measurer, settings, tasks, in_processes)
    measurer.measure_dispatch()
    return estimate, verdict, delivery


def _covering_cpu_speed(m: Measurement, tasks: int, in_processes: bool) -> stats.SpeedupEstimate:
    """The speedup of *m*, its interval stretched by how much slower (or faster) the
    machine ran the worker processes' tasks than the serial side's: a speed that holds
    for a whole run (a host's load, the CPUs a hypervisor gives) is the same in all its
    rounds, so only this covers the noise between runs (issue 10's interval overlap)."""
    estimate = m.estimate()
    slowdown = task_slowdown(m, tasks, in_processes)
    return estimate if slowdown is None else stats.stretched(estimate, slowdown)


def _assess(measurer: Measurer, settings: Settings, tasks: int, in_processes: bool) -> Delivery:
    return assess(
        measurer.measurement,
        backend=settings.backend,
        workers=settings.workers,
        tasks=tasks,
        machine_cpus=settings.machine_cpus,
        in_processes=in_processes,
    )


def _fed_rounds(measurer: Measurer, settings: Settings, tasks: int, in_processes: bool) -> Delivery:
    """The spec's rounds; taken again (up to ``MAX_RETRIES`` times, within
    ``RETRY_BUDGET_S``) while the machine starves them, in case its load was passing.
    The least starved attempt is kept."""
    started = timing.perf_counter()
    _rounds_until_clear(measurer, settings.spec)
    attempt_s = timing.perf_counter() - started
    delivery = _assess(measurer, settings, tasks, in_processes)
    best = (delivery, measurer.measurement.copy())
    retries = 0
    while (
        delivery.starved
        and retries < MAX_RETRIES
        and timing.perf_counter() - started + attempt_s <= RETRY_BUDGET_S
    ):
        retries += 1
        measurer.measurement.drop_rounds()
        _rounds_until_clear(measurer, settings.spec)
        delivery = _assess(measurer, settings, tasks, in_processes)
        if _fed_share(delivery) > _fed_share(best[0]):
            best = (delivery, measurer.measurement.copy())
    if best[0] is not delivery:
        measurer.measurement = best[1]
    return best[0]


def _rounds_until_clear(measurer: Measurer, spec: ParallelSpec) -> None:
    """Sequential stopping: the fewest rounds that can show their noise, then one more at
    a time while the speedup is noisy, or while the rounds are too short for the
    machine's counters to tell whether others took its CPUs, up to the spec's rounds;
    then, while the interval still leaves open whether the backend scales, up to
    ``UNDECIDED_ROUNDS_FACTOR`` times as many, within the spec's ``max_rounds`` (one stray
    round among few would make the verdict). A clean measurement (a narrow interval,
    steady sides) stops early."""
    measurer.add_rounds(min(stats.FEWEST_ROUNDS, spec.rounds))
    m = measurer.measurement
    while len(m.serial_s) < spec.rounds and (m.estimate().noisy or window_too_short(m)):
        measurer.add_rounds(1)
    cap = min(spec.max_rounds, UNDECIDED_ROUNDS_FACTOR * spec.rounds)
    while len(m.serial_s) < cap and _undecided(m):
        measurer.add_rounds(1)


def _undecided(m: Measurement) -> bool:
    """The rounds so far leave open whether the backend scales, and it could: CPU work
    whose parallel side kept only the CPUs its serial side did busy (threads that hold
    the GIL) cannot show a useful speedup, whatever more rounds say."""
    estimate = m.estimate()
    if not estimate.noisy or not straddles(estimate.speedup):
        return False
    busy = delivered_cpus(m.backend_s, m.backend_cpu_s)
    return cpu_ceiling(busy, delivered_cpus(m.serial_s, m.serial_cpu_s)) >= MIN_USEFUL_SPEEDUP


def _round_fed(
    tasks: int, in_processes: bool, backend: str
) -> Callable[[BatchResult, BatchResult], bool] | None:
    """The check of a round's CPU speed: for worker processes, and for threads (when
    they ran in parallel); a backend with one thread has no parallel side to judge."""
    if backend in ONE_THREAD_BACKENDS:
        return None

    def fed(serial: BatchResult, candidate: BatchResult) -> bool:
        threads_wall = None if in_processes else candidate.wall_s
        return round_fed(serial.wall_s, serial.cpu_s, candidate.cpu_s, tasks, threads_wall)

    return fed


def _fed_share(delivery: Delivery) -> float:
    """How much of what it could use the parallel side got (1 when not starved)."""
    if not delivery.starved:
        return 1.0
    capacity = delivery.capacity
    return capacity.delivered_cpus / capacity.expected_cpus if capacity.expected_cpus else 0.0


def _failed(
    settings: Settings,
    identity: ResultRecord,
    exc: Exception,
    cache: RunnerCache,
    started: Sequence[StartedRunner],
) -> Measured:
    """The record and failure of a measurement that raised *exc*."""
    if isinstance(exc, OutcomeRequest):
        # pytest.skip()/fail()/xfail()/exit() in a task: the item takes that outcome.
        outcome = Outcome.SKIPPED if exc.kind == "Skipped" else Outcome.FAILED
        return Measured(replace(identity, outcome=outcome, error=str(exc)), failure=exc)
    if _runner_suspect(exc):
        for runner in started:
            cache.discard(runner)
    failure = _failure_of(settings, exc)
    return Measured(replace(identity, outcome=Outcome.FAILED, error=str(failure)), failure=failure)


def stopped_record(
    identity: ResultRecord, measurer: Measurer | None, exc: BaseException
) -> ResultRecord:
    """The row of a measurement stopped from outside by *exc*, with the rounds it took."""
    m = measurer.measurement if measurer is not None else None
    rounds = min(len(m.serial_s), len(m.backend_s)) if m is not None else 0
    interrupted = isinstance(exc, KeyboardInterrupt)
    cause = "interrupted (Ctrl-C)" if interrupted else f"stopped ({type(exc).__name__}: {exc})"
    return replace(
        identity,
        outcome=Outcome.INTERRUPTED if interrupted else Outcome.FAILED,
        error=f"{cause} after {rounds} complete round{'s' if rounds != 1 else ''}; "
        "nothing was concluded",
        rounds=rounds,
        serial_rounds_s=tuple(m.serial_s[:rounds]) if m is not None else (),
        backend_rounds_s=tuple(m.backend_s[:rounds]) if m is not None else (),
    )


def _runner_suspect(exc: Exception) -> bool:
    """A runner that timed out, lost a worker or raised something unforeseen may be in
    any state: it is replaced rather than reused."""
    if isinstance(exc, (WorkloadTimeout, WorkerCrashed)):
        return True
    return not isinstance(exc, (BackendError, MeasurementFailure))


def _failure_of(settings: Settings, exc: Exception) -> MeasurementFailure:
    """*exc* as the failure the user reads, naming the backend."""
    if isinstance(exc, MeasurementFailure):
        return exc
    if isinstance(exc, (WorkloadTimeout, WorkerCrashed)):
        return MeasurementFailure(f"{settings.backend} backend: {exc}")
    if isinstance(exc, BackendError):
        return MeasurementFailure(f"{settings.backend} backend could not run the workload: {exc}")
    # Whatever a backend (ours or a plugin's) raised: the item fails with it, its row kept.
    return MeasurementFailure(
        f"the {settings.backend} backend failed unexpectedly: {type(exc).__name__}: {exc}\n"
        + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    )


def _identity(settings: Settings, work: Work) -> ResultRecord:
    """The fields that say what was measured, shared by measured and failed records."""
    return ResultRecord(
        nodeid=settings.nodeid,
        test=settings.test,
        backend=settings.backend,
        kind=settings.kind,
        call_index=settings.call_index,
        coroutine=work.coroutine,
        workers=settings.workers,
        tasks=len(work.items),
        start_method=settings.spec.start_method,
        xdist_worker=settings.xdist_worker,
    )


def _record(
    identity: ResultRecord,
    settings: Settings,
    backend: Backend,
    candidate: StartedRunner,
    m: Measurement,
    estimate: stats.SpeedupEstimate,
    pickled: int | None,
    delivery: Delivery,
) -> ResultRecord:
    """The measured record, built once from the rounds."""
    tasks = max(identity.tasks or 0, 1)
    serial_cpu = stats.median(m.serial_cpu_s)
    parallelism = _parallelism(settings, tasks, estimate, serial_cpu)
    # The serial backend is the baseline against itself (an A/A check of the noise): it
    # has no pool, no workers to start and no efficiency to speak of.
    a_a = settings.backend == "serial"
    return replace(
        identity,
        workers=1 if a_a else identity.workers,
        rounds=len(m.serial_s),
        loops=m.loops,
        retaken_rounds=m.retaken,
        start_method=_start_method_of(candidate) if backend.uses_processes else None,
        serial_s=estimate.baseline_median_s,
        backend_s=estimate.candidate_median_s,
        serial_rounds_s=tuple(m.serial_s),
        backend_rounds_s=tuple(m.backend_s),
        speedup=estimate.speedup,
        efficiency=None if a_a else estimate.speedup.estimate / parallelism,
        parallelism=parallelism,
        startup_s=None if a_a else candidate.runner.startup_s,
        pool_reused=candidate.uses > 1 and not a_a,
        noisy=estimate.noisy,
        verdict=estimate.verdict,
        serial_cpu_s=serial_cpu,
        cpu_s=stats.median(m.backend_cpu_s),
        pickled_bytes=pickled,
        dispatch_s=m.dispatch_s,
        task_s=estimate.baseline_median_s / tasks,
        capacity=delivery.capacity,
        machine_busy=delivery.starved,
        notes=(
            *_runner_notes(candidate),
            *_notes(settings, backend, identity, estimate, candidate.uses > 1, delivery, m.retaken),
        ),
    )


def _runner_notes(started: StartedRunner) -> tuple[str, ...]:
    """What a runner says about itself (a Dask cluster: its workers and threads), from an
    optional ``note`` attribute."""
    note = getattr(started.runner, "note", None)
    return (note,) if isinstance(note, str) and note else ()


def _parallelism(
    settings: Settings, tasks: int, estimate: stats.SpeedupEstimate, serial_cpu: float
) -> int:
    """How many tasks can run at once: the workers, the tasks, and for CPU work the CPUs."""
    if settings.backend == "serial":
        return 1
    parallelism = min(settings.workers, tasks)
    serial = estimate.baseline_median_s
    cpu_work = serial > 0 and serial_cpu / serial > CPU_WORK_RATIO
    if cpu_work and settings.backend != "asyncio":
        parallelism = min(parallelism, settings.usable_cpus)
    return parallelism


def _notes(
    settings: Settings,
    backend: Backend,
    identity: ResultRecord,
    estimate: stats.SpeedupEstimate,
    reused: bool,
    delivery: Delivery,
    retaken: int = 0,
) -> tuple[str, ...]:
    """The short remarks of the report's notes column."""
    notes = []
    a_a = settings.backend == "serial"
    if delivery.starved:
        capacity = delivery.capacity
        notes.append(
            f"machine busy: {capacity.delivered_cpus:.1f} of {capacity.expected_cpus:g} CPUs "
            "delivered"
        )
    elif (delivery.capacity.task_slowdown or 0.0) > 1.1:
        notes.append(f"tasks ran {delivery.capacity.task_slowdown:.1f}x slower than serially")
    if retaken:
        notes.append(f"{retaken} slow-CPU round{'s' if retaken > 1 else ''} retaken")
    if reused and not a_a:
        notes.append("pool reused")
    if estimate.noisy:
        notes.append("noisy")
    if estimate.verdict is Verdict.NO_CLEAR_DIFFERENCE and settings.backend != "serial":
        notes.append("no clear speedup")
    if settings.backend == "asyncio" and not identity.coroutine:
        notes.append("sync body blocks the event loop")
    if backend.uses_processes and settings.workers > settings.usable_cpus:
        notes.append(f"{settings.workers} workers > {settings.usable_cpus} CPUs")
    if settings.xdist_workers > 1:
        notes.append(f"CPUs shared with {settings.xdist_workers} xdist workers")
    return tuple(notes)


def _judge(
    settings: Settings,
    record: ResultRecord,
    gate: GateVerdict | None,
    environment: Environment,
    values: list[Any],
) -> Measured:
    """Classify the record and apply the min_speedup and expect gates."""
    spec = settings.spec
    diagnosis = classify_result(record, environment)
    record = replace(
        record,
        classification=diagnosis.classification,
        classification_reason=diagnosis.reason,
    )
    failures, notes = [], []
    gate_note = warning = None
    speedup = record.speedup
    if gate is not None and spec.min_speedup is not None and speedup is not None:
        measured = judged_interval(speedup, record.rounds)
        cannot_show = _gate_cannot_show(settings, record, spec.min_speedup)
        if cannot_show is not None and (record.machine_busy or gate is not GateVerdict.PASSED):
            gate, gate_note = GateVerdict.INCONCLUSIVE, f"{measured}, but {cannot_show}"
            warning = gate_note
        elif gate is GateVerdict.INCONCLUSIVE:
            gate_note = f"{measured} straddles {spec.min_speedup:g}x"
            warning = f"{gate_note}; rerun on a quieter machine or raise --parallel-max-rounds"
        record = replace(record, gate=Gate(spec.min_speedup, gate))
        if gate is GateVerdict.FAILED:
            failures.append(
                f"speedup under the {settings.backend} backend is below "
                f"min_speedup={spec.min_speedup:g}: {measured}"
            )
        if gate_note is not None:
            notes.append(f"gate inconclusive: {gate_note}")
            warning = f"min_speedup={spec.min_speedup:g} is inconclusive: {warning}"
    if spec.expect is not None:
        contradiction = expect_verdict(spec.expect, diagnosis.classification)
        if contradiction is not None:
            failures.append(f"{contradiction} ({diagnosis.reason})")
        note = expect_note(spec.expect, diagnosis.classification)
        if note is not None:
            notes.append(note)
    record = replace(record, notes=(*record.notes, *notes))
    if failures:
        failure = MeasurementFailure("\n".join(failures))
        return Measured(replace(record, outcome=Outcome.FAILED), values, failure, warning)
    return Measured(record, values, gate_warning=warning)


def _gate_cannot_show(settings: Settings, record: ResultRecord, min_speedup: float) -> str | None:
    """Why this machine cannot judge a gate of *min_speedup*, or None when it can: it
    starved the measurement, or CPU work scaled as far as its CPUs allow and they are
    too few to reach the gate."""
    capacity = record.capacity
    if capacity is None:
        return None
    delivered = f"{capacity.delivered_cpus:.1f} of {capacity.expected_cpus:g} CPUs"
    if record.machine_busy:
        return f"the machine delivered {delivered}; rerun on an idle runner"
    serial = record.serial_s or 0.0
    cpu_work = serial > 0 and (record.serial_cpu_s or 0.0) / serial > CPU_WORK_RATIO
    # Only a workload that went as far as the machine allows is held back by it: one that
    # stays well below what these CPUs could show fails its gate here as anywhere.
    at_ceiling = record.speedup is not None and record.speedup.high >= (
        STARVED_SHARE * capacity.expected_cpus
    )
    if cpu_work and at_ceiling and capacity.expected_cpus < min_speedup:
        return (
            f"this machine gives the {settings.backend} backend {capacity.expected_cpus:g} "
            f"CPUs, too few to show a {min_speedup:g}x speedup of CPU work"
        )
    return None


def _start_method_of(started: StartedRunner) -> str | None:
    method = getattr(started.runner, "start_method", None)
    return method if isinstance(method, str) else None
