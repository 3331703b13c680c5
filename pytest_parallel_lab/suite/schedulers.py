"""Copies of pytest-xdist's scheduling rules, run on simulated workers.

Pure. Each scheduler hands test indices to :class:`SimWorker` queues as xdist's does
(``load``, ``worksteal``, ``loadscope``/``loadfile``); :func:`test_cost` charges a
worker its own instance of every shared fixture, set up on first use and torn down
when it leaves the fixture's scope, as pytest's SetupState does.
"""

from __future__ import annotations

from collections import deque

from pytest_parallel_lab.suite.model import SimFixture, SuiteModel


class SimWorker:
    """A simulated xdist worker: its queue, its active fixture instances, its clock."""

    def __init__(self) -> None:
        self.queue: deque[int] = deque()
        self.active: dict[str, tuple[SimFixture, str]] = {}  # key -> (fixture, scope node)
        self.context: object = None  # SuiteModel.contexts of the last test run
        self.running = False
        self.started = 0.0
        self.finish = 0.0


def run_cost(model: SuiteModel, worker: SimWorker, index: int) -> float:
    """Test *index* run next on *worker*: its cost, with the fixture setups and teardowns
    that moving there takes (pytest's SetupState rules)."""
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


class Scheduler:
    """What an xdist scheduler does for the simulation: hand out tests to workers."""

    def __init__(self, workers: list[SimWorker], count: int) -> None:
        self.workers = workers
        self.pending: deque[int] = deque(range(count))

    def send(self, worker: SimWorker, num: int) -> None:
        for _ in range(min(num, len(self.pending))):
            worker.queue.append(self.pending.popleft())

    def start(self) -> None:
        raise NotImplementedError

    def completed(self, worker: SimWorker, duration: float) -> None:
        raise NotImplementedError


class LoadScheduler(Scheduler):
    """``--dist load``: initial chunks of a quarter of each node's share, refills between
    a quarter and a half of the remaining share, no refill after a test of 0.1 s or
    more while two are still queued (pytest-xdist's ``LoadScheduling``)."""

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

    def completed(self, worker: SimWorker, duration: float) -> None:
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


class WorkStealScheduler(Scheduler):
    """``--dist worksteal``: an even contiguous split, then halves stolen from the busiest
    node (pytest-xdist's ``WorkStealingScheduling``)."""

    def start(self) -> None:
        self.balance()

    def completed(self, worker: SimWorker, duration: float) -> None:
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


class LoadScopeScheduler(Scheduler):
    """``--dist loadscope``/``loadfile``: whole scopes, largest first, a new scope when two
    or fewer tests remain (pytest-xdist's ``LoadScopeScheduling``)."""

    def __init__(self, workers: list[SimWorker], units: list[list[int]]) -> None:
        super().__init__(workers, 0)
        self.units = deque(sorted(units, key=lambda u: -len(u)))  # --loadscope-reorder
        del self.workers[len(self.units) :]  # extra nodes are shut down

    def assign(self, worker: SimWorker) -> None:
        worker.queue.extend(self.units.popleft())

    def start(self) -> None:
        for worker in self.workers:
            self.assign(worker)
        for worker in self.workers:
            self.completed(worker, 0.0)

    def completed(self, worker: SimWorker, duration: float) -> None:
        if self.units and len(worker.queue) <= 2:
            self.assign(worker)
