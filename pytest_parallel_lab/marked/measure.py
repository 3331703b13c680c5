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

from pytest_parallel_lab import stats
from pytest_parallel_lab.backends import (
    Backend,
    BackendError,
    RunnerCache,
    StartedRunner,
    WorkerCrashed,
    WorkloadTimeout,
)
from pytest_parallel_lab.backends.base import BatchResult, Work, call_test_body
from pytest_parallel_lab.document.records import Environment, Gate, ResultRecord
from pytest_parallel_lab.marked.diagnosis import classify_result
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
) -> Measured:
    """Measure *work* serially and under *backend*; never raises for workload problems.

    With a ``min_speedup``, rounds are added while the gate is inconclusive (up to the
    spec's ``max_rounds``); the record carries the gate and the classification, and a
    failed gate or a contradicted ``expect`` is the outcome's failure.
    """
    identity = _identity(settings, work)
    started: list[StartedRunner] = []
    try:
        pickled = _check_transport(settings, backend, work, named_objects)
        for which, workers, method in (
            (backend, settings.workers, settings.spec.start_method),
            (serial_backend, 1, None),
        ):
            started.append(cache.get(which, workers, method))
        candidate, serial = started
        measurer = Measurer(
            serial=serial.runner,
            candidate=candidate.runner,
            backend=settings.backend,
            work=work,
            timeout=settings.spec.timeout_s,
            compare_results=settings.spec.compare_results,
            on_batch=on_batch,
        )
        estimate, gate = _take_rounds(measurer, settings.spec)
    except Exception as exc:
        return _failed(settings, identity, exc, cache, started)
    m = measurer.measurement
    record = _record(identity, settings, backend, candidate, m, estimate, pickled)
    return _judge(settings, record, gate, environment or Environment(), m.values)


def _check_transport(
    settings: Settings, backend: Backend, work: Work, named_objects: Sequence[tuple[str, Any]]
) -> int | None:
    """For a process backend: fail naming what cannot be pickled, else the bytes a task sends."""
    if not backend.uses_processes:
        return None
    problem = find_unpicklable(named_objects)
    if problem is not None:
        description, obj, exc = problem
        raise PicklingProblem(
            f"{description} cannot be pickled for the {settings.backend} backend, which sends "
            f"every task's function and arguments to worker processes.\n"
            f"  object: {obj!r}\n  error:  {type(exc).__name__}: {exc}\n"
            "Fix: make the workload a module-level function and its fixture values picklable "
            '(plain data, not locks, sockets, open files or lambdas), or use backend="thread".'
        )
    return pickled_size((work.call, work.items[0] if work.items else None))


def _take_rounds(
    measurer: Measurer, spec: ParallelSpec
) -> tuple[stats.SpeedupEstimate, GateVerdict | None]:
    """Warm up, take the rounds (more while a gate is inconclusive) and the dispatch
    cost; the final estimate and gate verdict, each computed once per round count."""
    measurer.warm_up()
    measurer.add_rounds(spec.rounds)
    estimate = measurer.measurement.estimate()
    verdict = None
    if spec.min_speedup is not None:
        verdict = gate_verdict(estimate.speedup, spec.min_speedup)
        taken = len(measurer.measurement.serial_s)
        while more := rounds_to_add(taken, spec.max_rounds, verdict):
            measurer.add_rounds(more)
            taken += more
            estimate = measurer.measurement.estimate()
            verdict = gate_verdict(estimate.speedup, spec.min_speedup)
    measurer.measure_dispatch()
    return estimate, verdict


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
) -> ResultRecord:
    """The measured record, built once from the rounds."""
    tasks = max(identity.tasks or 0, 1)
    serial_cpu = stats.median(m.serial_cpu_s)
    parallelism = _parallelism(settings, tasks, estimate, serial_cpu)
    return replace(
        identity,
        rounds=len(m.serial_s),
        start_method=_start_method_of(candidate) if backend.uses_processes else None,
        serial_s=estimate.baseline_median_s,
        backend_s=estimate.candidate_median_s,
        serial_rounds_s=tuple(m.serial_s),
        backend_rounds_s=tuple(m.backend_s),
        speedup=estimate.speedup,
        efficiency=estimate.speedup.estimate / parallelism,
        parallelism=parallelism,
        startup_s=candidate.runner.startup_s,
        pool_reused=candidate.uses > 1,
        noisy=estimate.noisy,
        verdict=estimate.verdict,
        serial_cpu_s=serial_cpu,
        cpu_s=stats.median(m.backend_cpu_s),
        pickled_bytes=pickled,
        dispatch_s=m.dispatch_s,
        task_s=estimate.baseline_median_s / tasks,
        notes=_notes(settings, backend, identity, estimate, candidate.uses > 1),
    )


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
) -> tuple[str, ...]:
    """The short remarks of the report's notes column."""
    notes = []
    if reused:
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
    speedup = record.speedup
    if gate is not None and spec.min_speedup is not None and speedup is not None:
        record = replace(record, gate=Gate(spec.min_speedup, gate))
        measured = judged_interval(speedup, record.rounds)
        if gate is GateVerdict.FAILED:
            failures.append(
                f"speedup under the {settings.backend} backend is below "
                f"min_speedup={spec.min_speedup:g}: {measured}"
            )
        elif gate is GateVerdict.INCONCLUSIVE:
            notes.append(f"gate inconclusive: {measured} straddles {spec.min_speedup:g}x")
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
        return Measured(replace(record, outcome=Outcome.FAILED), values, failure)
    return Measured(record, values)


def _start_method_of(started: StartedRunner) -> str | None:
    method = getattr(started.runner, "start_method", None)
    return method if isinstance(method, str) else None
