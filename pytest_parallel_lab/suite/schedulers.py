"""What pytest-xdist's schedulers see of a session, simulated: worker nodes and a config.

Pure. The prediction drives xdist's own scheduler classes (``LoadScheduling``,
``WorkStealingScheduling``, ``LoadScopeScheduling``, ``LoadFileScheduling``,
``LoadGroupScheduling`` or whatever ``pytest_xdist_make_scheduler`` returns) through
their ``Scheduling`` protocol, as xdist's own tests do with a mock node: a
:class:`SimNode` stands for a ``WorkerController`` and turns the scheduler's
commands into events of the simulation, a :class:`SimConfig` answers the few options
a scheduler reads. The classes come from a :data:`SchedulerFactory`
(``suite/xdist_schedulers.py`` builds one from the installed xdist), so the
predictions follow the installed xdist version and options.

:func:`run_cost` charges a worker its own instance of every shared fixture, set up
on first use and torn down when it leaves the fixture's scope, as pytest's SetupState
does, and its own first-use cost of each unit (``suite/first_use.py``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Protocol

from pytest_parallel_lab.suite.model import SimFixture, SuiteModel


class Scheduling(Protocol):
    """The part of pytest-xdist's ``Scheduling`` protocol the simulation calls."""

    @property
    def collection_is_completed(self) -> bool: ...

    @property
    def tests_finished(self) -> bool: ...

    def add_node(self, node: Any) -> None: ...

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None: ...

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None: ...

    def remove_pending_tests_from_node(self, node: Any, indices: Sequence[int]) -> None: ...

    def remove_node(self, node: Any) -> str | None: ...

    def schedule(self) -> None: ...


@dataclass(frozen=True)
class SchedulerOptions:
    """The xdist options that change how a scheduler hands out tests."""

    #: ``--maxschedchunk`` (None: xdist's default, no cap)
    maxschedchunk: int | None = None
    #: ``--loadscope-reorder`` (the default) or ``--no-loadscope-reorder``
    loadscope_reorder: bool = True


class _NoHooks:
    """A scheduler reports a collection mismatch through ``config.hook``; the simulated
    workers always collect the same tests."""

    def pytest_collectreport(self, **kwargs: Any) -> None:
        return None


class SimConfig:
    """The part of ``pytest.Config`` xdist's schedulers read: ``--tx`` (how many nodes),
    ``--dist``, ``--maxschedchunk`` and ``--loadscope-reorder``. Anything else is asked
    of *base* (the real config, for a third-party scheduler) when there is one."""

    def __init__(
        self, workers: int, dist: str, options: SchedulerOptions, base: Any = None
    ) -> None:
        self.option = SimpleNamespace(
            dist=dist,
            tx=[f"{workers}*popen"],
            numprocesses=workers,
            maxschedchunk=options.maxschedchunk,
            loadscopereorder=options.loadscope_reorder,
            loadgroup=dist == "loadgroup",
        )
        self.base = base
        self.hook: Any = _NoHooks() if base is None else base.hook

    def getvalue(self, name: str) -> Any:
        if hasattr(self.option, name) or self.base is None:
            return getattr(self.option, name)
        return self.base.getvalue(name)

    def getoption(self, name: str, default: Any = None, skip: bool = False) -> Any:
        if hasattr(self.option, name) or self.base is None:
            return getattr(self.option, name, default)
        return self.base.getoption(name, default, skip)


class IndexedCollection(list[str]):
    """A worker's collection whose ``index`` takes constant time.

    xdist's scope schedulers look every test they hand out up in the worker's
    collection with ``list.index``: quadratic in the suite's size, half a second of a
    7,000-test suite's simulation. Their behaviour is the same with this list; a
    lookup the table cannot answer (the list changed) falls back to ``list.index``."""

    def __init__(self, items: Sequence[str]) -> None:
        super().__init__(items)
        self._positions: dict[str, int] = {}
        for position, nodeid in enumerate(self):
            self._positions.setdefault(nodeid, position)  # the first, as list.index

    def index(self, value: str, *args: Any) -> int:
        position = self._positions.get(value)
        if args or position is None or position >= len(self) or self[position] != value:
            return super().index(value, *args)
        return position


def index_collections(scheduler: object, node: object) -> None:
    """Give the node's collection as the scope schedulers keep it (their own copy, in
    ``registered_collections``) a constant-time ``index``; other schedulers keep theirs."""
    registered = getattr(scheduler, "registered_collections", None)
    if isinstance(registered, dict):
        collection = registered.get(node)
        if type(collection) is list:
            registered[node] = IndexedCollection(collection)


#: How often the counted ``_pending_of`` checks itself against the scheduler's own.
PENDING_CHECK_EVERY = 32


def count_pending(scheduler: Any) -> None:
    """Give a scope scheduler (xdist's ``LoadScopeScheduling`` and its subclasses) a
    ``_pending_of`` that reads the simulated worker's count of unfinished tests.

    Theirs counts the unfinished tests of a worker's every scope after every test, a
    list of each scope's flags at a time: with a few big files, ``loadfile`` on 7,000
    tests took 0.7 s of the prediction. The count is the same number (what was sent to
    the worker and not marked complete); every :data:`PENDING_CHECK_EVERY`-th call is
    checked against the scheduler's own, and a difference (a version of xdist that
    keeps its books otherwise) puts theirs back for good."""
    own = getattr(type(scheduler), "_pending_of", None)
    assigned = getattr(scheduler, "assigned_work", None)
    if own is None or not isinstance(assigned, dict):
        return
    calls = 0
    #: the node of each workload met so far (checked on each use: the dict may change)
    owners: dict[int, Any] = {}

    def pending_of(workload: Any) -> int:
        nonlocal calls
        calls += 1
        node = owners.get(id(workload))
        if node is None or assigned.get(node) is not workload:
            node = next((n for n, w in assigned.items() if w is workload), None)
            owners[id(workload)] = node
        if node is None or not isinstance(node, SimNode):
            return int(own(scheduler, workload))
        if calls % PENDING_CHECK_EVERY == 0:
            theirs = int(own(scheduler, workload))
            if theirs != node.pending:
                del scheduler._pending_of  # the class's own from now on
                return theirs
        return node.pending

    scheduler._pending_of = pending_of


#: Makes the scheduler of one simulated session: ``(dist, config) -> Scheduling``.
SchedulerFactory = Callable[[str, SimConfig], Scheduling]

#: What a worker is told after its last test: no more tests will come.
SHUTDOWN = -1


class Gateway:
    """``node.gateway``: the worker's id (gw0, gw1, ...) and its spec."""

    def __init__(self, index: int, remote: bool = False) -> None:
        self.id = f"gw{index}"
        self.spec = "ssh" if remote else "popen"


class SimNode:
    """A simulated xdist worker, as its ``WorkerController`` appears to a scheduler,
    with the worker's own state: its queue of test indices (``torun``), the next test
    it holds, the shared fixtures it has set up, and its clock."""

    def __init__(
        self,
        index: int,
        count: int,
        deliver: Callable[[SimNode, Sequence[int]], None],
        remote: bool = False,
    ) -> None:
        self.index = index
        self.count = count
        #: a remote gateway (``--tx ssh=...``): its CPU is its own, not one of this machine's
        self.remote = remote
        self.gateway = Gateway(index, remote)
        self._deliver = deliver
        self._shutdown_sent = False
        #: what the worker was sent and has not taken yet (SHUTDOWN at its end)
        self.torun: deque[int] = deque()
        #: the test taken from ``torun`` and waiting for the one after it (xdist's
        #: worker runs a test only once it knows its ``nextitem``)
        self.held: int | None = None
        self.running = False
        #: the test it runs came with its shutdown: it is the worker's last
        self.last_was_final = False
        self.finished = False
        self.ran = 0
        #: tests sent to it and not yet marked complete with the scheduler
        self.pending = 0
        self.active: dict[str, tuple[SimFixture, str]] = {}  # key -> (fixture, scope node)
        self.context: object = None  # SuiteModel.contexts of the last test run
        #: the first-use units (SuiteModel.first_use) it has paid, and what they cost it
        self.first_used: set[str] = set()
        self.first_use_s = 0.0
        self.started = 0.0
        self.finish = 0.0
        #: the CPU share of the test it runs (for the contention of the others)
        self.cpu_share = 0.0
        #: the test it runs: its index, cost, the slowdown of its CPU part now, the
        #: fraction of it done when that pace began, and when it began (processor
        #: sharing); its version moves with each rescheduled end
        self.current = -1
        self.cost = 0.0
        self.pace = 1.0
        self.done = 0.0
        self.since = 0.0
        self.version = 0
        #: answers to steal requests, handed to the scheduler as xdist's "unscheduled"
        self.stolen: list[list[int]] = []
        self.refused_steal = False

    @property
    def shutting_down(self) -> bool:
        return self._shutdown_sent

    def send_runtest_some(self, indices: Sequence[int]) -> None:
        self.pending += len(indices)
        self._deliver(self, list(indices))

    def send_runtest_all(self) -> None:
        self.pending += self.count
        self._deliver(self, range(self.count))

    def shutdown(self) -> None:
        if not self._shutdown_sent:
            self._shutdown_sent = True
            self._deliver(self, [SHUTDOWN])

    def send_steal(self, indices: Sequence[int]) -> None:
        # xdist's worker gives back all the requested tests it has not taken, or none.
        wanted = set(indices)
        queued = [i for i in self.torun if i in wanted]
        if len(queued) == len(wanted):
            self.torun = deque(i for i in self.torun if i not in wanted)
            self.stolen.append(queued)
        else:
            # It took some already (the scheduler counts a test as pending until its
            # reports are handled). The scheduler asks again on the refusal; on a
            # clock where nothing else happens meanwhile it would ask forever, so the
            # refusal arrives when this worker's state next changes (its next test end).
            self.refused_steal = True

    def __repr__(self) -> str:
        return f"<SimNode {self.gateway.id}>"


def run_cost(model: SuiteModel, worker: SimNode, index: int) -> float:
    """Test *index* run next on *worker*: its cost, with the fixture setups and teardowns
    that moving there takes (pytest's SetupState rules), and the first-use cost of each
    unit of the test the worker has not run a test of yet."""
    cost = model.test_costs[index]
    units = model.tests[index].first_use_units
    if units:
        for unit in units:
            if unit not in worker.first_used:
                worker.first_used.add(unit)
                worker.first_use_s += model.first_use[unit]
                cost += model.first_use[unit]
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
