"""Predict the wall time of ``pytest -n N`` from a measured run, by simulation.

Pure. A :class:`~pytest_parallel_lab.suite.model.SuiteModel` is replayed on N
simulated workers on an event clock, with pytest-xdist's own scheduler classes
handing out the tests (:mod:`pytest_parallel_lab.suite.schedulers`; the factory that
makes them is given, ``suite/xdist_schedulers.py`` builds it from the installed
xdist). The rules the scheduler does not own are the simulation's: every worker
starts and collects before the first test is scheduled (the collection barrier), a
worker runs a test only once it holds the next one or its shutdown (xdist's worker
needs ``nextitem``), each worker sets up its own instance of every shared fixture,
the controller handles every report on one CPU in arrival order before the scheduler
hears a test is done, and only the CPU part of a test slows down when the busy
workers' CPU demand (and the controller's) outnumbers the CPUs, at a pace that changes
whenever a test starts or ends (processor sharing). :func:`advise` turns
the predictions into a recommendation, or advice to stay serial.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections import deque
from collections.abc import Iterable, Sequence

from pytest_parallel_lab.document.codec import DocumentError
from pytest_parallel_lab.document.run import RunDocument
from pytest_parallel_lab.document.suite import DIST_MODES, Calibration, Prediction, XdistAdvice
from pytest_parallel_lab.suite.model import SuiteModel, model_from_section
from pytest_parallel_lab.suite.schedulers import (
    SHUTDOWN,
    SchedulerFactory,
    SchedulerOptions,
    SimConfig,
    SimNode,
    count_pending,
    index_collections,
    run_cost,
)

#: Below this predicted gain a run with -n is not recommended.
MIN_USEFUL_GAIN = 0.95
#: The controller's CPU share below which a second pass (with its load) is not worth it.
MIN_CONTROLLER_LOAD = 0.02


def contention(demand: float, cpus: int) -> float:
    """How much slower CPU work runs when the CPU demand (busy workers' CPU shares and
    the controller's) outnumbers the CPUs."""
    return max(1.0, demand / max(1, cpus))


@dataclasses.dataclass
class _Run:
    """One simulated session's outcome."""

    finishes: tuple[float, ...]
    wall_s: float
    controller_busy_s: float
    #: first-use work charged beyond once per unit, over every worker
    repeated_s: float = 0.0


def predict_xdist_wall_time(
    model: SuiteModel,
    workers: int,
    dist: str,
    factory: SchedulerFactory | None = None,
    options: SchedulerOptions | None = None,
    remote: int = 0,
    controller_load: float | None = None,
) -> Prediction:
    """Simulate ``pytest -n workers --dist dist`` on the model with the schedulers
    *factory* makes (the installed xdist's classes when None). The last *remote* of the
    workers are remote gateways (``--tx ssh=...``, ``socket=...``): they start in the
    calibration's ``remote_startup_s`` and compute on CPUs of their own.

    The controller's CPU share comes from a first pass without it; a *controller_load*
    given (:attr:`Prediction.controller_load` of another mode with as many workers: the
    controller handles the same reports in about the same time) saves that pass."""
    if dist not in DIST_MODES:
        raise ValueError(f"unknown dist mode {dist!r}; expected one of {', '.join(DIST_MODES)}")
    if not 0 <= remote <= workers:
        raise ValueError(f"{remote} remote gateways among {workers} workers")
    if factory is None:
        from pytest_parallel_lab.suite.xdist_schedulers import xdist_scheduler_factory

        factory = xdist_scheduler_factory()
    options = options or SchedulerOptions()
    # The controller's CPU takes from the local workers' when they fill the CPUs: a
    # second pass with its share from the first, when it is worth one.
    filled = workers - remote + 1 > model.calibration.cpus
    if controller_load is None:
        run = _simulate(model, workers, dist, factory, options, 0.0, remote)
        load = run.controller_busy_s / run.wall_s if run.wall_s > 0 else 0.0
        if load >= MIN_CONTROLLER_LOAD and filled:
            run = _simulate(model, workers, dist, factory, options, min(1.0, load), remote)
    else:
        load = controller_load
        used = min(1.0, load) if load >= MIN_CONTROLLER_LOAD and filled else 0.0
        run = _simulate(model, workers, dist, factory, options, used, remote)
    return Prediction(
        workers,
        dist,
        run.wall_s,
        lower_bound(model, workers, dist, remote),
        run.finishes,
        run.repeated_s,
        remote,
        load,
    )


def _simulate(
    model: SuiteModel,
    workers: int,
    dist: str,
    factory: SchedulerFactory,
    options: SchedulerOptions,
    controller_load: float,
    remote: int = 0,
) -> _Run:
    cal = model.calibration
    cpus = cal.cpus
    # Other processes' demand competes with the workers as it did with the measured
    # run, whose times are already slowed by it: slowdowns are relative to that run's.
    background = cal.background_demand
    measured_slow = contention(1.0 + background, cpus)
    divisor = max(1, cpus)

    def slowdown(demand: float) -> float:
        # never faster than measured (a test's own demand was below one CPU then too);
        # contention() inlined: this runs twice for every simulated test
        slow = (demand + background) / divisor
        slow = (slow if slow > 1.0 else 1.0) / measured_slow
        return slow if slow > 1.0 else 1.0

    shares, reports = model.cpu_shares, model.report_counts
    test_costs, contexts, first_use_units = model.test_costs, model.contexts, model.first_use_units
    # A test's repeated work (calibrated by a saved -n run): its worker missed the test
    # that warmed it with a chance of 1 - 1/N; that work is CPU work.
    repeats = model.repeated
    miss = 1.0 - 1.0 / workers
    # (time, sequence, kind, node, test, the test's version when done, else its duration)
    events: list[tuple[float, int, int, SimNode, int, float]] = []
    sequence = 0
    now = 0.0
    woken: set[int] = set()  # workers that got something: they may start a test
    done_kind, handled_kind = 0, 1
    heappush, heappop = heapq.heappush, heapq.heappop

    def deliver(node: SimNode, indices: Sequence[int]) -> None:
        node.torun.extend(indices)
        woken.add(node.index)

    def take(node: SimNode) -> int | None:
        """The test the worker starts now, if it can: it needs the one after it too."""
        if node.running or node.finished:
            return None
        torun = node.torun
        if node.held is None:
            if not torun:
                return None
            first = torun.popleft()
            if first == SHUTDOWN:
                finish(node)
                return None
            node.held = first
        if not torun:
            return None  # waits for its next test or its shutdown
        index, following = node.held, torun.popleft()
        node.held = None if following == SHUTDOWN else following
        node.last_was_final = following == SHUTDOWN
        return index

    # The CPU shares of the tests the local workers run now (a remote gateway computes
    # on its own CPUs: it neither slows nor is slowed), kept as tests start and end.
    running_demand = 0.0
    #: the slowdown of the CPU part of the local tests that run now
    pace_now = 1.0

    def repace(pace: float) -> None:
        """Processor sharing: when the CPU demand changes, the CPU part of every test
        that runs on goes on at the new pace from now (its share done so far kept).
        *pace* is ``slowdown(running_demand + controller_load)``."""
        nonlocal sequence, pace_now
        if pace == pace_now:
            return  # every test that runs on goes at this pace already
        pace_now = pace
        for node in pool:
            if not node.running or node.remote or node.pace == pace or node.cpu_share <= 0.0:
                continue
            cost, share = node.cost, node.cpu_share
            length = cost * (1.0 - share) + cost * share * node.pace
            if length > 0.0:
                node.done = min(1.0, node.done + (now - node.since) / length)
            node.pace, node.since = pace, now
            node.version += 1
            sequence += 1
            left = (1.0 - node.done) * (cost * (1.0 - share) + cost * share * pace)
            heappush(events, (now + left, sequence, done_kind, node, node.current, node.version))

    def start_woken() -> bool:
        """Start what the woken workers can; True when one did (the CPU demand and
        the others' pace are brought up to date then)."""
        # Workers that start together contend with each other from the start.
        nonlocal running_demand, sequence
        starting = []
        # the common case is one: the worker whose test just ended
        for worker in sorted(woken) if len(woken) > 1 else woken:
            node = pool[worker]
            index = take(node)
            if index is not None:
                if node.context is contexts[index] and not first_use_units[index]:
                    cost = test_costs[index]  # run_cost's answer: nothing to set up
                else:
                    cost = run_cost(model, node, index)
                # a test that takes no time demands no CPU
                share = shares[index] if cost > 0.0 else 0.0
                if repeats is not None and repeats[index]:
                    extra = miss * repeats[index]
                    share = (share * cost + extra) / (cost + extra)
                    cost += extra
                starting.append((node, index, cost, share))
                if not node.remote:
                    running_demand += share
        woken.clear()
        if not starting:
            return False
        pace = slowdown(running_demand + controller_load)
        for node, index, cost, share in starting:
            own = 1.0 if node.remote else pace
            node.running, node.cpu_share, node.started = True, share, now
            node.current, node.cost, node.pace, node.done, node.since = index, cost, own, 0.0, now
            node.ran += 1
            node.version += 1
            sequence += 1
            end = now + cost * (1.0 - share) + cost * share * own
            heappush(events, (end, sequence, done_kind, node, index, node.version))
        if pace != pace_now:
            repace(pace)
        return True

    def finish(node: SimNode) -> None:
        # The worker's session ends: what it still has set up is torn down.
        demand = running_demand
        slow = 1.0 if node.remote else slowdown(demand + 1.0 + controller_load)
        node.finished = True
        node.finish = now + slow * sum(f.teardown_s for f, _ in node.active.values())

    local = workers - remote
    pool = [SimNode(i, len(model.tests), deliver, i >= local) for i in range(workers)]
    scheduler = factory(dist, SimConfig(workers, dist, options))
    count_pending(scheduler)
    # Every worker starts and collects at once, the local ones contending for the CPUs;
    # the scheduler hands out tests once every worker has collected.
    begin = (cal.startup_s + cal.collection_s) * slowdown(local) if local else 0.0
    if remote:
        begin = max(begin, remote_startup(cal) + cal.collection_s)
    now = begin
    collection = model.collection(dist)
    for node in pool:
        node.finish = begin
        scheduler.add_node(node)
        scheduler.add_node_collection(node, collection)
        index_collections(scheduler, node)
    if scheduler.collection_is_completed:
        scheduler.schedule()
    start_woken()
    controller_free = begin
    controller_busy = 0.0
    per_report = cal.controller_report_s
    # The controller handles reports in arrival order, each once it is free: its events
    # come in time order, a queue beside the heap of the workers' test ends.
    handled: deque[tuple[float, int, SimNode, int, float]] = deque()
    while events or handled:
        if handled and (
            not events
            or handled[0][0] < events[0][0]
            or (handled[0][0] == events[0][0] and handled[0][1] < events[0][1])
        ):
            now, _, node, index, value = handled.popleft()
            kind = handled_kind
        else:
            now, _, kind, node, index, value = heappop(events)
        if kind == done_kind:
            if value != node.version:
                continue  # the test's end moved since (its pace changed)
            duration = now - node.started
            node.running = False
            if not node.remote:
                running_demand -= node.cpu_share
                if running_demand < 0.0:
                    running_demand = 0.0
            node.cpu_share = 0.0
            node.finish = now
            if node.refused_steal:
                node.refused_steal = False
                node.stolen.append([])
            if node.last_was_final:
                finish(node)
                repace(slowdown(running_demand + controller_load))
            else:
                woken.add(node.index)
                if not start_woken():
                    repace(slowdown(running_demand + controller_load))
            # The controller handles the test's reports in arrival order, then tells
            # the scheduler; meanwhile the worker goes on with the test it holds. Its
            # work is CPU: it shares the CPUs with the tests the local workers run now.
            cost = per_report * reports[index]
            if cost and running_demand:
                cost *= slowdown(running_demand + 1.0)
            controller_free = (now if now > controller_free else controller_free) + cost
            controller_busy += cost
            sequence += 1
            handled.append((controller_free, sequence, node, index, duration))
        else:
            node.pending -= 1  # before the scheduler asks how many are left
            scheduler.mark_test_complete(node, index, value)
            for other in pool:
                if other.stolen:  # a worker answered a steal request (worksteal)
                    _hand_back_stolen(scheduler, pool)
                    break
            if scheduler.tests_finished:  # DSession.loop_once: every worker is told to stop
                for other in pool:
                    other.shutdown()
            if woken:
                start_woken()
    for node in pool:
        if not node.finished:  # a scheduler that never shut it down: it stops here
            finish(node)
    # A worker the scheduler left without tests (more workers than scopes) is shown
    # as xdist shows it: not at all.
    finishes = tuple(node.finish for node in pool if node.ran) or (begin,)
    # The workers exit together: each local exit needs one of the CPUs.
    wall = max(max(node.finish for node in pool), controller_free)
    wall += cal.shutdown_s * (slowdown(local) if local else 1.0)
    used: set[str] = set().union(*(node.first_used for node in pool))
    once = sum(model.first_use[unit] for unit in used)
    repeated = max(0.0, sum(node.first_use_s for node in pool) - once)
    return _Run(finishes, wall, controller_busy, repeated)


def _hand_back_stolen(scheduler: object, pool: Sequence[SimNode]) -> None:
    """xdist's "unscheduled" events: what workers gave back to a steal request."""
    remove = getattr(scheduler, "remove_pending_tests_from_node", None)
    again = True
    while again:
        again = False
        for node in pool:
            while node.stolen:
                assert remove is not None
                remove(node, node.stolen.pop(0))
                again = True


def remote_startup(calibration: Calibration) -> float:
    """A remote gateway's start-up: as given, else a local worker's."""
    given = calibration.remote_startup_s
    return calibration.startup_s if given is None else given


def lower_bound(model: SuiteModel, workers: int, dist: str, remote: int = 0) -> float:
    """No schedule beats one worker's start-up and collection plus the largest of: the
    biggest indivisible unit (a test, or a scope for scope modes), the work spread
    evenly over the workers, the CPU part of the work spread over the CPUs, and the
    controller's handling of every report. Nothing is slowed down here: every cost is
    at its measured minimum (each shared fixture instance and each first-use cost
    counted once, no session end: a measured exit may be slower than a real one), so
    it is a bound under the model, not a second prediction. Remote gateways add their
    CPUs, and the start-up is the quicker of a local worker's and a remote one's."""
    cal = model.calibration
    if dist in ("loadscope", "loadfile", "loadgroup"):
        units = model.units(dist)
        biggest = max((model.unit_cost(unit) for unit in units), default=0.0)
        count = len(units)
    else:
        biggest = model.biggest_test_s
        count = len(model.tests)
    active = min(workers, max(1, count))
    work = max(
        biggest,
        model.total_work_s / active,
        model.total_cpu_s / min(active, max(1, cal.cpus) + remote),
        cal.controller_report_s * sum(model.report_counts),
    )
    startup = min(cal.startup_s, remote_startup(cal)) if remote else cal.startup_s
    return startup + cal.collection_s + work


def default_worker_counts(cpus: int, extra: Iterable[int] = ()) -> list[int]:
    """2 up to the usable CPUs (every count up to 8, then powers of two and the CPU
    count, so that a 64-CPU machine does not simulate 63 counts), plus any requested."""
    top = max(2, cpus)
    counts = set(range(2, min(top, 8) + 1))
    counts |= {2**k for k in range(3, 32) if 2**k <= top} | {top}
    counts |= {n for n in extra if n >= 1}
    return sorted(counts)


def predict_all(
    model: SuiteModel,
    workers: Iterable[int],
    dists: Iterable[str] | None = None,
    factory: SchedulerFactory | None = None,
    options: SchedulerOptions | None = None,
) -> list[Prediction]:
    """Every (N, dist) combination, in N then dist order; by default every mode, but
    ``loadgroup`` only for a suite with ``xdist_group`` marks (without them it runs
    every test as its own unit, which nobody chooses)."""
    if dists is None:
        dists = [d for d in DIST_MODES if d != "loadgroup" or model.has_groups]
    dists = list(dists)
    if factory is None:
        from pytest_parallel_lab.suite.xdist_schedulers import xdist_scheduler_factory

        factory = xdist_scheduler_factory()
    # Without test classes, a module is a file: loadscope and loadfile schedule alike.
    alike = {"loadscope", "loadfile"} <= set(dists) and model.units("loadscope") == model.units(
        "loadfile"
    )
    predictions = []
    for n in workers:
        done: dict[str, Prediction] = {}
        load: float | None = None  # the controller's share, from the first mode's pass
        for dist in dists:
            twin = {"loadscope": "loadfile", "loadfile": "loadscope"}.get(dist, "")
            if alike and twin in done:
                done[dist] = dataclasses.replace(done[twin], dist=dist)
            else:
                done[dist] = predict_xdist_wall_time(
                    model, n, dist, factory, options, controller_load=load
                )
                load = done[dist].controller_load if load is None else load
            predictions.append(done[dist])
    return predictions


def predict_gateways(
    model: SuiteModel,
    local: int,
    remote: int,
    dists: Iterable[str] | None = None,
    factory: SchedulerFactory | None = None,
) -> list[Prediction]:
    """``--tx`` with *local* popen workers and *remote* gateways (ssh, socket), in every
    mode :func:`predict_all` would simulate."""
    if dists is None:
        dists = [d for d in DIST_MODES if d != "loadgroup" or model.has_groups]
    return [
        predict_xdist_wall_time(model, local + remote, dist, factory, remote=remote)
        for dist in dists
    ]


def advise(predictions: Sequence[Prediction], serial_wall_s: float | None) -> XdistAdvice:
    """The fastest predicted local configuration (-n N), or advice to stay serial;
    predictions with remote gateways are shown, not advised."""
    predictions = [p for p in predictions if not p.remote]
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
    if best.wall_s <= 0.0:
        # A suite whose recorded times are all zero: no ratio to speak of.
        return XdistAdvice(
            0, None, serial_wall_s, "every predicted time is 0 s: nothing to choose between"
        )
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
    document: RunDocument,
    workers: Sequence[int] = (),
    dists: Sequence[str] = (),
    gateways: tuple[int, int] = (0, 0),
    remote_startup_s: float | None = None,
) -> SavedPrediction:
    """Predict from a saved run's suite section (2..its CPUs when *workers* is empty),
    and for ``--tx`` *gateways* (local, remote) when some are remote, each remote one
    starting in *remote_startup_s* (else the saved calibration's, else like a local
    worker)."""
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
    if remote_startup_s is not None:
        model = dataclasses.replace(
            model,
            calibration=dataclasses.replace(model.calibration, remote_startup_s=remote_startup_s),
        )
    cpus = document.environment.usable_cpus or model.calibration.cpus
    predictions = predict_all(model, workers or default_worker_counts(cpus), dists or None)
    local, remote = gateways
    if remote:
        predictions += predict_gateways(model, local, remote, dists or None)
    return SavedPrediction(
        tuple(predictions), advise(predictions, model.serial_wall_s), model.serial_wall_s
    )
