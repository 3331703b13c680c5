"""Turn a test's workload into a measured :class:`ResultRecord`.

Pure of pytest: the plugin passes the function, its fixture values and the resolved
settings; this module checks what a process backend must pickle, runs the
:class:`Measurer` with runners from the session's :class:`RunnerCache`, and builds
the record — for failures too, so that no result is lost.
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
    Work,
    WorkerCrashed,
    WorkloadTimeout,
)
from pytest_parallel_lab.backends.base import BatchResult, call_test_body
from pytest_parallel_lab.document.run import Environment, ResultRecord, SpeedupRecord
from pytest_parallel_lab.marked import gates
from pytest_parallel_lab.marked.diagnosis import classify_result
from pytest_parallel_lab.marked.rounds import (
    MeasurementFailure,
    Measurer,
    OutcomeRequest,
    PicklingProblem,
    find_unpicklable,
    pickled_size,
)

#: Serial CPU over wall above which the work counts as CPU work (parallelism capped by CPUs).
CPU_WORK_RATIO = 0.5


@dataclass(frozen=True)
class Settings:
    """Everything resolved for one measurement of one item under one backend."""

    nodeid: str
    test: str
    backend: str
    workers: int
    tasks: int
    rounds: int
    timeout_s: float
    start_method: str | None
    compare_results: bool = True
    usable_cpus: int = 1
    xdist_workers: int = 0
    xdist_worker: str | None = None
    kind: str = "body"
    call_index: int = 0
    min_speedup: float | None = None
    max_rounds: int = 30
    expect: str | None = None


@dataclass
class Outcome:
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


def check_picklable(settings: Settings, named_objects: Sequence[tuple[str, Any]]) -> None:
    """Raise PicklingProblem naming the first object a process worker cannot receive."""
    problem = find_unpicklable(named_objects)
    if problem is None:
        return
    description, obj, exc = problem
    raise PicklingProblem(
        f"{description} cannot be pickled for the {settings.backend} backend, which sends "
        f"every task's function and arguments to worker processes.\n"
        f"  object: {obj!r}\n  error:  {type(exc).__name__}: {exc}\n"
        "Fix: make the workload a module-level function and its fixture values picklable "
        '(plain data, not locks, sockets, open files or lambdas), or use backend="thread".'
    )


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
) -> Outcome:
    """Measure *work* serially and under *backend*; never raises for workload problems.

    With ``settings.min_speedup``, rounds are added while the gate is inconclusive (up
    to ``settings.max_rounds``); the record carries the gate and the classification,
    and a failed gate or a contradicted ``expect`` is the outcome's failure.
    """
    notes: list[str] = []
    pickled: int | None = None
    started: dict[str, StartedRunner] = {}
    try:
        if backend.uses_processes:
            check_picklable(settings, named_objects)
            pickled = pickled_size((work.call, work.items[0] if work.items else None))
        started["candidate"] = cache.get(backend, settings.workers, settings.start_method)
        started["serial"] = cache.get(serial_backend, 1, None)
        measurer = Measurer(
            serial=started["serial"].runner,
            candidate=started["candidate"].runner,
            backend=settings.backend,
            work=work,
            timeout=settings.timeout_s,
            compare_results=settings.compare_results,
            on_batch=on_batch,
        )
        measurer.warm_up()
        measurer.add_rounds(settings.rounds)
        if settings.min_speedup is not None:
            while True:
                verdict = gates.gate_verdict(
                    measurer.measurement.estimate().speedup, settings.min_speedup
                )
                more = gates.rounds_to_add(
                    len(measurer.measurement.serial_s), settings.max_rounds, verdict
                )
                if more == 0:
                    break
                measurer.add_rounds(more)
        measurer.measure_dispatch()
    except (WorkloadTimeout, WorkerCrashed) as exc:
        for runner in started.values():
            cache.discard(runner)
        failure = MeasurementFailure(f"{settings.backend} backend: {exc}")
        return Outcome(_failed_record(settings, failure, work), failure=failure)
    except BackendError as exc:
        failure = MeasurementFailure(
            f"{settings.backend} backend could not run the workload: {exc}"
        )
        return Outcome(_failed_record(settings, failure, work), failure=failure)
    except OutcomeRequest as exc:
        outcome = "skipped" if exc.kind == "Skipped" else "failed"
        return Outcome(replace(_failed_record(settings, exc, work), outcome=outcome), failure=exc)
    except MeasurementFailure as exc:
        return Outcome(_failed_record(settings, exc, work), failure=exc)
    except Exception as exc:
        # Whatever a backend (ours or a plugin's) raised: the item fails with it and
        # its row is kept; the runners may be in any state, so they are replaced.
        for runner in started.values():
            cache.discard(runner)
        failure = MeasurementFailure(
            f"the {settings.backend} backend failed unexpectedly: {type(exc).__name__}: {exc}\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        )
        return Outcome(_failed_record(settings, failure, work), failure=failure)

    m = measurer.measurement
    estimate = m.estimate()
    serial_cpu = stats.median(m.serial_cpu_s)
    cpu_work = (
        estimate.baseline_median_s > 0 and serial_cpu / estimate.baseline_median_s > CPU_WORK_RATIO
    )
    parallelism = (
        1 if settings.backend == "serial" else min(settings.workers, max(len(work.items), 1))
    )
    if cpu_work and settings.backend != "asyncio":
        parallelism = min(parallelism, settings.usable_cpus)
    candidate = started["candidate"]
    if candidate.uses > 1:
        notes.append("pool reused")
    if estimate.noisy:
        notes.append("noisy")
    if estimate.verdict == "no clear difference" and settings.backend != "serial":
        notes.append("no clear speedup")
    if settings.backend == "asyncio" and not work.coroutine:
        notes.append("sync body blocks the event loop")
    if backend.uses_processes and settings.workers > settings.usable_cpus:
        notes.append(f"{settings.workers} workers > {settings.usable_cpus} CPUs")
    if settings.xdist_workers > 1:
        notes.append(f"CPUs shared with {settings.xdist_workers} xdist workers")
    record = replace(
        _identity(settings, work),
        outcome="passed",
        rounds=len(m.serial_s),
        start_method=_start_method_of(candidate) if backend.uses_processes else None,
        serial_s=estimate.baseline_median_s,
        backend_s=estimate.candidate_median_s,
        serial_rounds_s=tuple(m.serial_s),
        backend_rounds_s=tuple(m.backend_s),
        speedup=SpeedupRecord(
            estimate=estimate.speedup.estimate,
            ci_low=estimate.speedup.low,
            ci_high=estimate.speedup.high,
            confidence=estimate.speedup.confidence,
        ),
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
        task_s=estimate.baseline_median_s / max(len(work.items), 1),
        xdist_worker=settings.xdist_worker,
        notes=tuple(notes),
    )
    return _judge(settings, record, environment or Environment(), m.values)


def _judge(
    settings: Settings, record: ResultRecord, environment: Environment, values: list[Any]
) -> Outcome:
    """Classify the record and apply the min_speedup and expect gates."""
    diagnosis = classify_result(record, environment)
    record = replace(record, classification=diagnosis.classification)
    failures = []
    if settings.min_speedup is not None and record.speedup is not None:
        s = record.speedup
        verdict = gates.gate_verdict(s, settings.min_speedup)
        record = replace(record, gate={"min_speedup": settings.min_speedup, "verdict": verdict})
        measured = (
            f"{s.estimate:.2f}x [95% CI {s.ci_low:.2f}-{s.ci_high:.2f}] over {record.rounds} rounds"
        )
        if verdict == gates.FAILED:
            failures.append(
                f"speedup under the {settings.backend} backend is below "
                f"min_speedup={settings.min_speedup:g}: {measured}"
            )
        elif verdict == gates.GATE_INCONCLUSIVE:
            record = replace(
                record,
                notes=(
                    *record.notes,
                    f"gate inconclusive: {measured} straddles {settings.min_speedup:g}x",
                ),
            )
    if settings.expect is not None:
        contradiction = gates.expect_verdict(settings.expect, diagnosis.classification)
        if contradiction is not None:
            failures.append(f"{contradiction} ({diagnosis.reason})")
    if failures:
        return Outcome(
            replace(record, outcome="failed"), values, MeasurementFailure("\n".join(failures))
        )
    return Outcome(record, values=values)


def _start_method_of(started: StartedRunner) -> str | None:
    method = getattr(started.runner, "start_method", None)
    return method if isinstance(method, str) else None


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
        start_method=settings.start_method,
        xdist_worker=settings.xdist_worker,
    )


def _failed_record(settings: Settings, failure: Exception, work: Work) -> ResultRecord:
    return replace(_identity(settings, work), outcome="failed", error=str(failure))
