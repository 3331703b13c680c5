"""Predict the wall time of ``pytest -n N`` from a measured run, by simulation.

Pure. A :class:`~pytest_parallel_lab.suite.model.SuiteModel` is replayed on N
simulated workers with the scheduling rules of pytest-xdist
(:mod:`pytest_parallel_lab.suite.schedulers`) on an event clock, slowed by CPU
contention when workers (and the controller's share of a CPU) outnumber the CPUs.
:func:`advise` turns the predictions into a recommendation, or advice to stay serial.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterable, Sequence

from pytest_parallel_lab.document.codec import DocumentError
from pytest_parallel_lab.document.run import RunDocument
from pytest_parallel_lab.document.suite import DIST_MODES, Prediction, XdistAdvice
from pytest_parallel_lab.suite.model import SuiteModel, model_from_section
from pytest_parallel_lab.suite.schedulers import (
    LoadScheduler,
    LoadScopeScheduler,
    Scheduler,
    SimWorker,
    WorkStealScheduler,
    run_cost,
)

#: Below this predicted gain a run with -n is not recommended.
MIN_USEFUL_GAIN = 0.95


def contention(workers: int, cpus: int, controller_load: float = 0.0) -> float:
    """How much slower each worker runs when workers (and the controller's share of a
    CPU) outnumber CPUs."""
    return max(1.0, (workers + controller_load) / max(1, cpus))


def _scheduler(model: SuiteModel, workers: int, dist: str) -> Scheduler:
    if dist not in DIST_MODES:
        raise ValueError(f"unknown dist mode {dist!r}; expected one of {', '.join(DIST_MODES)}")
    pool = [SimWorker() for _ in range(workers)]
    if dist in ("loadscope", "loadfile"):
        return LoadScopeScheduler(pool, model.units(dist))
    if dist == "worksteal":
        return WorkStealScheduler(pool, len(model.tests))
    return LoadScheduler(pool, len(model.tests))


def predict_xdist_wall_time(model: SuiteModel, workers: int, dist: str) -> Prediction:
    """Simulate ``pytest -n workers --dist dist`` on the model."""
    cal = model.calibration
    scheduler = _scheduler(model, workers, dist)
    # Every worker starts and collects at once, all of them contending for the CPUs.
    begin = (cal.startup_s + cal.collection_s) * contention(workers, cal.cpus, cal.controller_load)
    scheduler.start()
    _run_until_drained(model, scheduler, begin)
    slow = contention(len(scheduler.workers), cal.cpus, cal.controller_load)
    finishes = tuple(
        worker.finish + slow * sum(fixture.teardown_s for fixture, _ in worker.active.values())
        for worker in scheduler.workers
    )
    wall = (max(finishes) if finishes else begin) + cal.shutdown_s
    return Prediction(workers, dist, wall, lower_bound(model, workers, dist), finishes)


def _run_until_drained(model: SuiteModel, scheduler: Scheduler, begin: float) -> None:
    """Run the scheduled tests on an event clock until no worker has any left."""
    cal = model.calibration
    pool = scheduler.workers
    # Contention counts the workers busy when a test starts: a worker left alone at
    # the end of the run has a CPU to itself.
    slowdown = [contention(busy, cal.cpus, cal.controller_load) for busy in range(len(pool) + 2)]
    events: list[tuple[float, int]] = []
    idle: set[int] = set()  # workers with no test running
    for i, worker in enumerate(pool):
        worker.finish = begin
        if worker.queue:  # all start together
            worker.running = True
            worker.started = begin
        else:
            idle.add(i)
    running = len(pool) - len(idle)
    for i, worker in enumerate(pool):
        if worker.running:
            cost = run_cost(model, worker, worker.queue[0]) * slowdown[running]
            heapq.heappush(events, (begin + cost, i))
    while events:
        now, i = heapq.heappop(events)
        worker = pool[i]
        worker.queue.popleft()
        worker.running = False
        running -= 1
        idle.add(i)
        worker.finish = now
        scheduler.completed(worker, now - worker.started)
        # Only workers without a test can start one (in worker order, like xdist).
        for j in sorted(idle) if len(idle) > 1 else tuple(idle):
            other = pool[j]
            if other.queue:
                running += 1
                cost = run_cost(model, other, other.queue[0]) * slowdown[running]
                other.running = True
                other.started = now
                idle.discard(j)
                heapq.heappush(events, (now + cost, j))


def lower_bound(model: SuiteModel, workers: int, dist: str) -> float:
    """No schedule beats start-up plus the larger of the even share of the work and the
    biggest indivisible unit (a test, or a scope for scope modes); the work counts
    each shared fixture instance once, as a serial run would."""
    cal = model.calibration
    if dist in ("loadscope", "loadfile"):
        units = model.units(dist)
        biggest = max((model.unit_cost(unit) for unit in units), default=0.0)
        count = len(units)
    else:
        biggest = model.biggest_test_s
        count = len(model.tests)
    active = min(workers, max(1, count))
    share = model.total_work_s / active
    start = (cal.startup_s + cal.collection_s) * contention(workers, cal.cpus, cal.controller_load)
    # The even share runs with every worker busy; the biggest unit may end up running
    # alone (the simulation slows a test only by the workers busy beside it).
    work = max(
        share * contention(active, cal.cpus, cal.controller_load),
        biggest * contention(1, cal.cpus, cal.controller_load),
    )
    return start + work + cal.shutdown_s


def default_worker_counts(cpus: int, extra: Iterable[int] = ()) -> list[int]:
    """2 up to the usable CPUs (every count up to 8, then powers of two and the CPU
    count, so that a 64-CPU machine does not simulate 63 counts), plus any requested."""
    top = max(2, cpus)
    counts = set(range(2, min(top, 8) + 1))
    counts |= {2**k for k in range(3, 32) if 2**k <= top} | {top}
    counts |= {n for n in extra if n >= 1}
    return sorted(counts)


def predict_all(
    model: SuiteModel, workers: Iterable[int], dists: Iterable[str] = DIST_MODES
) -> list[Prediction]:
    """Every (N, dist) combination, in N then dist order."""
    dists = list(dists)
    # Without test classes, a module is a file: loadscope and loadfile schedule alike.
    alike = {"loadscope", "loadfile"} <= set(dists) and model.units("loadscope") == model.units(
        "loadfile"
    )
    predictions = []
    for n in workers:
        done: dict[str, Prediction] = {}
        for dist in dists:
            twin = {"loadscope": "loadfile", "loadfile": "loadscope"}.get(dist, "")
            if alike and twin in done:
                done[dist] = dataclasses.replace(done[twin], dist=dist)
            else:
                done[dist] = predict_xdist_wall_time(model, n, dist)
            predictions.append(done[dist])
    return predictions


def advise(predictions: Sequence[Prediction], serial_wall_s: float | None) -> XdistAdvice:
    """The fastest predicted configuration, or advice to stay serial."""
    if not predictions:
        return XdistAdvice(0, None, serial_wall_s, "nothing to predict")
    best = min(predictions, key=lambda p: (p.wall_s, p.workers))
    if serial_wall_s is not None and best.wall_s >= serial_wall_s * MIN_USEFUL_GAIN:
        return XdistAdvice(
            0,
            None,
            serial_wall_s,
            f"-n would make this suite slower or no faster: best predicted "
            f"{best.wall_s:.2f}s (-n {best.workers} --dist {best.dist}) vs "
            f"{serial_wall_s:.2f}s serial; run without -n",
        )
    fastest = f"-n {best.workers} --dist {best.dist}: predicted {best.wall_s:.2f}s"
    if not serial_wall_s:
        # A saved xdist run: its own time is no serial baseline to weigh the gain against.
        return XdistAdvice(
            best.workers,
            best.dist,
            best.wall_s,
            f"fastest predicted: {fastest}; no serial time to compare with (the run used -n)",
        )
    return XdistAdvice(
        best.workers,
        best.dist,
        best.wall_s,
        f"use {fastest} ({serial_wall_s / best.wall_s:.2f}x)",
    )


@dataclasses.dataclass(frozen=True)
class SavedPrediction:
    """The prediction made from a saved run: every (N, dist), the advice, the serial time."""

    predictions: tuple[Prediction, ...]
    advice: XdistAdvice
    serial_wall_s: float | None


def predict_saved_run(
    document: RunDocument, workers: Sequence[int] = (), dists: Sequence[str] = ()
) -> SavedPrediction:
    """Predict from a saved run's suite section (2..its CPUs when *workers* is empty)."""
    section = document.suite
    if section is None or not section.tests:
        raise DocumentError(
            "the document has no 'suite' section with tests: record it with "
            "pytest --parallel-report-json=PATH (suite timing is on with the report)"
        )
    for dist in dists:
        if dist not in DIST_MODES:
            raise DocumentError(f"unknown dist mode {dist!r}; expected one of {DIST_MODES}")
    model = model_from_section(section)
    cpus = document.environment.usable_cpus or model.calibration.cpus
    predictions = predict_all(model, workers or default_worker_counts(cpus), dists or DIST_MODES)
    return SavedPrediction(
        tuple(predictions), advise(predictions, model.serial_wall_s), model.serial_wall_s
    )
