"""Predict the wall time of ``pytest -n N`` from a measured run, by simulation.

Pure module. A :class:`SuiteModel` (tests in collection order, the shared fixtures
they use, and a :class:`Calibration` of per-worker start-up and collection) is
replayed on N simulated workers with the same scheduling rules as pytest-xdist's
``LoadScheduling`` (initial chunks of a quarter of each node's share, refills between
a quarter and a half of the remaining share, no refill after a test of 0.1 s or more
while two are still queued), ``LoadScopeScheduling``/``LoadFileScheduling`` (whole
scopes, largest first, a new scope when two or fewer tests remain) and
``WorkStealingScheduling`` (even contiguous split, then halves stolen from the
busiest node). Each worker sets up its own instance of every shared fixture and
tears it down when it leaves the fixture's scope, as pytest's SetupState does.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_parallel_lab.document.run import DocumentError, RunDocument
from pytest_parallel_lab.suite.recorder import SHARED_SCOPES, scope_node

DIST_MODES = ("load", "loadscope", "loadfile", "worksteal")
#: A CPU share the controller takes while it receives reports and starts workers;
#: measured on a 2-core Linux machine (workers' busy time grows by about 1.2x at -n 2).
CONTROLLER_LOAD = 0.4
#: A worker's start-up (from the controller's session start to the worker's) as a
#: fraction of the serial process's own start-up: execnet starts workers while the
#: controller finishes its own start; fitted on a quiet 2-core Linux machine (0.5-0.8).
STARTUP_RATIO = 0.75
#: Shutting the workers down after the last test (their sessionfinish, gateway exit):
#: pytest's reported time exceeds the controller's session end by 0.13-0.15 s here.
XDIST_SHUTDOWN_S = 0.15
#: Extra cost per test under xdist (report serialisation on the worker, and the
#: controller's handling of it on a CPU the workers also need).
XDIST_PER_TEST_S = 0.0004
#: Below this predicted gain a run with -n is not recommended.
MIN_USEFUL_GAIN = 0.95


@dataclass(frozen=True)
class SimTest:
    """A test: its own cost (phases minus shared fixtures) and the shared fixtures it uses."""

    nodeid: str
    base_s: float
    uses: tuple[str, ...] = ()
    serial_fixture_s: float = 0.0


@dataclass(frozen=True)
class SimFixture:
    """Per-instance own cost of a shared fixture; ``key`` identifies it without its param."""

    id: str
    key: str
    scope: str
    setup_s: float
    teardown_s: float


@dataclass(frozen=True)
class Calibration:
    """Costs that do not belong to any test."""

    startup_s: float = 0.5
    collection_s: float = 0.0
    per_test_overhead_s: float = 0.0
    cpus: int = 1
    xdist_per_test_s: float = XDIST_PER_TEST_S
    controller_load: float = CONTROLLER_LOAD
    shutdown_s: float = XDIST_SHUTDOWN_S


@dataclass(frozen=True)
class SuiteModel:
    tests: tuple[SimTest, ...]
    fixtures: Mapping[str, SimFixture] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)
    serial_wall_s: float | None = None

    # What does not depend on the worker count or the mode is computed once per model
    # and shared by every simulation (a 64-CPU machine simulates dozens of them).

    @functools.cached_property
    def scope_nodes(self) -> list[dict[str, str]]:
        """Per test, the node owning each shared scope (one dict per parent node, shared
        by its tests)."""
        by_parent: dict[str, dict[str, str]] = {}
        nodes = []
        for t in self.tests:
            parent = t.nodeid.rsplit("::", 1)[0]
            owners = by_parent.get(parent)
            if owners is None:
                owners = by_parent[parent] = {
                    scope: scope_node(t.nodeid, scope) for scope in SHARED_SCOPES
                }
            nodes.append(owners)
        return nodes

    @functools.cached_property
    def contexts(self) -> list[object]:
        """Per test, a token for its scope nodes and shared fixtures: two tests with the
        same token (the same object) need no fixture setup or teardown between them."""
        tokens: dict[tuple[int, tuple[str, ...]], object] = {}
        return [
            tokens.setdefault((id(nodes), t.uses), object())
            for t, nodes in zip(self.tests, self.scope_nodes, strict=True)
        ]

    @functools.cached_property
    def test_costs(self) -> list[float]:
        """Per test, its own cost plus the per-test overheads of a worker."""
        per_test = self.calibration.per_test_overhead_s + self.calibration.xdist_per_test_s
        return [t.base_s + per_test for t in self.tests]

    @functools.cached_property
    def test_instances(self) -> list[tuple[tuple[SimFixture, str], ...]]:
        """Per test, the shared fixtures it uses, each with the node owning its instance."""
        fixtures = self.fixtures
        return [
            tuple((fixtures[fid], nodes[fixtures[fid].scope]) for fid in t.uses if fid in fixtures)
            for t, nodes in zip(self.tests, self.scope_nodes, strict=True)
        ]

    @functools.cached_property
    def total_work_s(self) -> float:
        """Every test once and every shared fixture instance once: a serial run's work."""
        return _unit_cost(self, range(len(self.tests)))

    @functools.cached_property
    def biggest_test_s(self) -> float:
        """The most expensive single test, with the fixtures it uses."""
        return max(
            (
                cost + sum(f.setup_s + f.teardown_s for f, _ in instances)
                for cost, instances in zip(self.test_costs, self.test_instances, strict=True)
            ),
            default=0.0,
        )

    @functools.cached_property
    def _units(self) -> dict[str, list[list[int]]]:
        return {}

    def units(self, dist: str) -> list[list[int]]:
        """The indivisible units of a scope mode (cached per mode)."""
        if dist not in self._units:
            self._units[dist] = scope_units([t.nodeid for t in self.tests], dist)
        return self._units[dist]


@dataclass(frozen=True)
class Prediction:
    workers: int
    dist: str
    wall_s: float
    lower_bound_s: float
    worker_finish_s: tuple[float, ...] = ()


class _Worker:
    def __init__(self) -> None:
        self.queue: deque[int] = deque()
        self.active: dict[str, tuple[SimFixture, str]] = {}  # key -> (fixture, scope node)
        self.context: object = None  # SuiteModel.contexts of the last test run
        self.running = False
        self.started = 0.0
        self.finish = 0.0


def _test_cost(model: SuiteModel, worker: _Worker, index: int) -> float:
    cost = model.test_costs[index]
    context = model.contexts[index]
    if worker.context is context:
        return cost  # same scopes and fixtures as the worker's last test: all set up
    worker.context = context
    nodes = model.scope_nodes[index]
    active = worker.active
    # Leave scopes this test is not in (pytest tears down on the previous item's
    # teardown; the worker's total is the same).
    if active:
        for key in [k for k, (fixture, node) in active.items() if nodes[fixture.scope] != node]:
            cost += active.pop(key)[0].teardown_s
    for fixture, node in model.test_instances[index]:
        current = active.get(fixture.key)
        if current is not None:
            if current[0] is fixture and current[1] == node:
                continue
            cost += current[0].teardown_s  # another param of the same fixture
        cost += fixture.setup_s
        active[fixture.key] = (fixture, node)
    return cost


class _Scheduler:
    def __init__(self, workers: list[_Worker], count: int) -> None:
        self.workers = workers
        self.pending: deque[int] = deque(range(count))

    def send(self, worker: _Worker, num: int) -> None:
        for _ in range(min(num, len(self.pending))):
            worker.queue.append(self.pending.popleft())

    def start(self) -> None:
        raise NotImplementedError

    def completed(self, worker: _Worker, duration: float) -> None:
        raise NotImplementedError


class _Load(_Scheduler):
    def start(self) -> None:
        n = len(self.workers)
        if len(self.pending) < 2 * n:
            i = 0
            while self.pending:
                self.send(self.workers[i % n], 1)
                i += 1
            return
        chunk = max(len(self.pending) // n // 4, 2)
        for worker in self.workers:
            self.send(worker, chunk)

    def completed(self, worker: _Worker, duration: float) -> None:
        if not self.pending:
            return
        n = len(self.workers)
        low = max(2, len(self.pending) // n // 4)
        high = max(2, len(self.pending) // n // 2)
        queued = len(worker.queue)
        if queued < low:
            if duration >= 0.1 and queued >= 2:
                return
            self.send(worker, high - queued)


class _WorkSteal(_Scheduler):
    def start(self) -> None:
        self.balance()

    def completed(self, worker: _Worker, duration: float) -> None:
        self.balance()

    def balance(self) -> None:
        idle = [w for w in self.workers if len(w.queue) < 2]
        if not idle:
            return
        if self.pending:
            for i, worker in enumerate(idle):
                self.send(worker, len(self.pending) // (len(idle) - i))
            if not [w for w in self.workers if len(w.queue) < 2]:
                return
        victim = max(self.workers, key=lambda w: len(w.queue))
        steal = min(len(victim.queue) // 2, max(0, len(victim.queue) - 2))
        if steal == 0:
            return
        stolen = [victim.queue.pop() for _ in range(steal)][::-1]
        self.pending.extend(stolen)
        idle = [w for w in self.workers if len(w.queue) < 2]
        for i, worker in enumerate(idle):
            self.send(worker, len(self.pending) // (len(idle) - i))


class _LoadScope(_Scheduler):
    def __init__(self, workers: list[_Worker], units: list[list[int]]) -> None:
        super().__init__(workers, 0)
        self.units = deque(sorted(units, key=lambda u: -len(u)))  # --loadscope-reorder
        del self.workers[len(self.units) :]  # extra nodes are shut down

    def assign(self, worker: _Worker) -> None:
        worker.queue.extend(self.units.popleft())

    def start(self) -> None:
        for worker in self.workers:
            self.assign(worker)
        for worker in self.workers:
            self.completed(worker, 0.0)

    def completed(self, worker: _Worker, duration: float) -> None:
        if self.units and len(worker.queue) <= 2:
            self.assign(worker)


def scope_units(nodeids: Sequence[str], dist: str) -> list[list[int]]:
    """Indivisible units of ``loadscope`` (module or class) or ``loadfile`` (file)."""
    units: dict[str, list[int]] = {}
    for index, nodeid in enumerate(nodeids):
        key = nodeid.split("::")[0] if dist == "loadfile" else nodeid.rsplit("::", 1)[0]
        units.setdefault(key, []).append(index)
    return list(units.values())


def contention(workers: int, cpus: int, controller_load: float = 0.0) -> float:
    """How much slower each worker runs when workers (and the controller's share of a
    CPU) outnumber CPUs."""
    return max(1.0, (workers + controller_load) / max(1, cpus))


def predict_xdist_wall_time(model: SuiteModel, workers: int, dist: str) -> Prediction:
    """Simulate ``pytest -n workers --dist dist`` on the model."""
    if dist not in DIST_MODES:
        raise ValueError(f"unknown dist mode {dist!r}; expected one of {', '.join(DIST_MODES)}")
    cal = model.calibration
    pool = [_Worker() for _ in range(workers)]
    count = len(model.tests)
    scheduler: _Scheduler
    if dist in ("loadscope", "loadfile"):
        scheduler = _LoadScope(pool, model.units(dist))
    elif dist == "worksteal":
        scheduler = _WorkSteal(pool, count)
    else:
        scheduler = _Load(pool, count)
    active = len(scheduler.workers)
    slow = contention(active, cal.cpus, cal.controller_load)  # for the final teardowns
    begin = (cal.startup_s + cal.collection_s) * contention(workers, cal.cpus, cal.controller_load)
    scheduler.start()
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
            cost = _test_cost(model, worker, worker.queue[0]) * slowdown[running]
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
                cost = _test_cost(model, other, other.queue[0]) * slowdown[running]
                other.running = True
                other.started = now
                idle.discard(j)
                heapq.heappush(events, (now + cost, j))
    finishes = []
    for worker in scheduler.workers:
        final = sum(fixture.teardown_s for fixture, _ in worker.active.values())
        finishes.append(worker.finish + final * slow)
    wall = (max(finishes) if finishes else begin) + cal.shutdown_s
    return Prediction(workers, dist, wall, lower_bound(model, workers, dist), tuple(finishes))


def lower_bound(model: SuiteModel, workers: int, dist: str) -> float:
    """No schedule beats start-up plus the larger of the even share of the work and the
    biggest indivisible unit (a test, or a scope for scope modes); the work counts
    each shared fixture instance once, as a serial run would."""
    cal = model.calibration
    if dist in ("loadscope", "loadfile"):
        units = model.units(dist)
        biggest = max((_unit_cost(model, unit) for unit in units), default=0.0)
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


def _unit_cost(model: SuiteModel, indices: Iterable[int]) -> float:
    costs = model.test_costs
    per_test = model.test_instances
    cost = 0.0
    instances: set[tuple[str, str]] = set()
    for i in indices:
        cost += costs[i]
        for fixture, node in per_test[i]:
            instances.add((fixture.id, node))
    for fid, _ in instances:
        cost += model.fixtures[fid].setup_s + model.fixtures[fid].teardown_s
    return cost


def model_from_section(section: Mapping[str, Any]) -> SuiteModel:
    """Build the model from a ``suite`` section (serial run or xdist run)."""
    rows = list(section.get("tests", []))
    rows.sort(key=lambda r: (r.get("index", 0), r.get("start_s", 0.0)))
    fixtures: dict[str, list[float]] = {}
    meta: dict[str, tuple[str, str]] = {}
    for f in section.get("fixtures", []):
        acc = fixtures.setdefault(f["id"], [0.0, 0.0, 0.0])
        acc[0] += f["setup_s"]
        acc[1] += f["teardown_s"]
        acc[2] += f["instances"]
        meta[f["id"]] = (f"{f['baseid']}::{f['name']}@{f['scope']}", f["scope"])
    sim_fixtures = {
        fid: SimFixture(fid, meta[fid][0], meta[fid][1], s / max(1.0, n), t / max(1.0, n))
        for fid, (s, t, n) in fixtures.items()
    }
    known_uses: dict[tuple[str, ...], tuple[str, ...]] = {}  # most tests share a few lists

    def uses(listed: Iterable[str]) -> tuple[str, ...]:
        key = tuple(listed)
        kept = known_uses.get(key)
        if kept is None:
            kept = known_uses[key] = tuple(u for u in key if u in sim_fixtures)
        return kept

    tests = tuple(
        SimTest(
            r["nodeid"],
            max(0.0, r["setup_s"] + r["call_s"] + r["teardown_s"] - r.get("fixture_s", 0.0)),
            uses(r.get("uses", ())),
            r.get("fixture_s", 0.0),
        )
        for r in rows
    )
    cal_data = section.get("calibration") or {}
    calibration = Calibration(
        startup_s=float(cal_data.get("startup_s", 0.5)),
        collection_s=float(cal_data.get("collection_s", 0.0)),
        per_test_overhead_s=float(cal_data.get("per_test_overhead_s", 0.0)),
        cpus=int(cal_data.get("cpus", 1)),
        xdist_per_test_s=float(cal_data.get("xdist_per_test_s", XDIST_PER_TEST_S)),
        controller_load=float(cal_data.get("controller_load", CONTROLLER_LOAD)),
        shutdown_s=float(cal_data.get("shutdown_s", XDIST_SHUTDOWN_S)),
    )
    return SuiteModel(tests, sim_fixtures, calibration, section.get("wall_s"))


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


def recommend(predictions: Sequence[Prediction], serial_wall_s: float | None) -> dict[str, Any]:
    """The fastest predicted configuration, or advice to stay serial."""
    if not predictions:
        return {
            "workers": 0,
            "dist": None,
            "wall_s": serial_wall_s,
            "message": "nothing to predict",
        }
    best = min(predictions, key=lambda p: (p.wall_s, p.workers))
    if serial_wall_s is not None and best.wall_s >= serial_wall_s * MIN_USEFUL_GAIN:
        return {
            "workers": 0,
            "dist": None,
            "wall_s": serial_wall_s,
            "message": (
                f"-n would make this suite slower or no faster: best predicted "
                f"{best.wall_s:.2f}s (-n {best.workers} --dist {best.dist}) vs "
                f"{serial_wall_s:.2f}s serial; run without -n"
            ),
        }
    gain = f" ({serial_wall_s / best.wall_s:.2f}x)" if serial_wall_s else ""
    return {
        "workers": best.workers,
        "dist": best.dist,
        "wall_s": best.wall_s,
        "message": f"use -n {best.workers} --dist {best.dist}: predicted {best.wall_s:.2f}s{gain}",
    }


def prediction_rows(predictions: Sequence[Prediction]) -> list[dict[str, Any]]:
    """``suite.prediction`` rows as plain JSON types."""
    return [
        {"workers": p.workers, "dist": p.dist, "wall_s": p.wall_s, "lower_bound_s": p.lower_bound_s}
        for p in predictions
    ]


def predict_document_text(
    document: RunDocument, workers: list[int] | None = None, dists: list[str] | None = None
) -> str:
    """The prediction for a saved run, as plain text (used by the CLI ``predict``)."""
    section = document.sections.get("suite")
    if not isinstance(section, dict) or not section.get("tests"):
        raise DocumentError(
            "the document has no 'suite' section with tests: record it with "
            "pytest --parallel-report-json=PATH (suite timing is on with the report)"
        )
    for dist in dists or ():
        if dist not in DIST_MODES:
            raise DocumentError(f"unknown dist mode {dist!r}; expected one of {DIST_MODES}")
    from pytest_parallel_lab.output.suite_text import render_prediction

    model = model_from_section(section)
    cpus = document.environment.usable_cpus or model.calibration.cpus
    counts = workers or default_worker_counts(cpus)
    predictions = predict_all(model, counts, dists or DIST_MODES)
    advice = recommend(predictions, model.serial_wall_s)
    return render_prediction(prediction_rows(predictions), advice, model.serial_wall_s)
