"""The suite as the ``-n N`` simulation sees it: tests, shared fixtures, and calibration.

Pure. :func:`model_from_section` turns a recorded
:class:`~pytest_parallel_lab.document.suite.SuiteSection` (this run's, or a saved
one's) into a :class:`SuiteModel`; :func:`calibrate` measures the costs that belong
to no test (a worker's start-up and collection, the per-test overhead) from the same
section. What does not depend on the worker count or the mode is computed once per
model and shared by every simulation (a 64-CPU machine simulates dozens of them).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pytest_parallel_lab.document.suite import Calibration, SuiteSection
from pytest_parallel_lab.suite.recorder import SHARED_SCOPES, fixture_key, scope_node

#: A worker's start-up (from the controller's session start to the worker's) as a
#: fraction of the serial process's own start-up: execnet starts workers while the
#: controller finishes its own start; fitted on a quiet 2-core Linux machine (0.5-0.8).
STARTUP_RATIO = 0.75
#: The serial process's start-up when its age could not be read (no /proc).
DEFAULT_PROCESS_AGE_S = 0.3


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


def scope_units(nodeids: Sequence[str], dist: str) -> list[list[int]]:
    """Indivisible units of ``loadscope`` (module or class) or ``loadfile`` (file)."""
    units: dict[str, list[int]] = {}
    for index, nodeid in enumerate(nodeids):
        key = nodeid.split("::")[0] if dist == "loadfile" else nodeid.rsplit("::", 1)[0]
        units.setdefault(key, []).append(index)
    return list(units.values())


@dataclass(frozen=True)
class SuiteModel:
    """Tests in collection order, the shared fixtures they use, and the calibration."""

    tests: tuple[SimTest, ...]
    fixtures: Mapping[str, SimFixture] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)
    serial_wall_s: float | None = None

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
        return self.unit_cost(range(len(self.tests)))

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

    def unit_cost(self, indices: Iterable[int]) -> float:
        """The tests at *indices* run together: each once, each fixture instance once."""
        costs, per_test = self.test_costs, self.test_instances
        cost = 0.0
        instances: set[tuple[str, str]] = set()
        for i in indices:
            cost += costs[i]
            for fixture, node in per_test[i]:
                instances.add((fixture.id, node))
        for fid, _ in instances:
            cost += self.fixtures[fid].setup_s + self.fixtures[fid].teardown_s
        return cost

    @functools.cached_property
    def _units(self) -> dict[str, list[list[int]]]:
        return {}

    def units(self, dist: str) -> list[list[int]]:
        """The indivisible units of a scope mode (cached per mode)."""
        if dist not in self._units:
            self._units[dist] = scope_units([t.nodeid for t in self.tests], dist)
        return self._units[dist]


def model_from_section(section: SuiteSection) -> SuiteModel:
    """Build the model from a ``suite`` section (serial run or xdist run)."""
    totals: dict[str, list[float]] = {}
    meta: dict[str, tuple[str, str]] = {}
    for f in section.fixtures:
        acc = totals.setdefault(f.id, [0.0, 0.0, 0.0])
        acc[0] += f.setup_s
        acc[1] += f.teardown_s
        acc[2] += f.instances
        meta[f.id] = (fixture_key(f.name, f.scope, f.baseid), f.scope)
    fixtures = {
        fid: SimFixture(fid, meta[fid][0], meta[fid][1], s / max(1.0, n), t / max(1.0, n))
        for fid, (s, t, n) in totals.items()
    }
    known_uses: dict[tuple[str, ...], tuple[str, ...]] = {}  # most tests share a few lists

    def uses(listed: tuple[str, ...]) -> tuple[str, ...]:
        kept = known_uses.get(listed)
        if kept is None:
            kept = known_uses[listed] = tuple(u for u in listed if u in fixtures)
        return kept

    rows = sorted(section.tests, key=lambda r: (r.index, r.start_s))
    tests = tuple(
        SimTest(r.nodeid, max(0.0, r.total_s - r.fixture_s), uses(r.uses), r.fixture_s)
        for r in rows
    )
    return SuiteModel(tests, fixtures, section.calibration or Calibration(), serial_wall_s(section))


def serial_wall_s(section: SuiteSection) -> float | None:
    """The serial session's time: a plain run's own; unknown for an xdist run, whose
    wall time is the -n N run's and no baseline for the advice."""
    if section.serial_wall_s is not None:
        return section.serial_wall_s
    return section.wall_s if section.actual is None else None


def calibrate(
    section: SuiteSection, *, xdist_workers: int, process_age_s: float | None, cpus: int
) -> Calibration:
    """What a worker costs besides its tests, from this run's section.

    Under xdist the workers' own start-up, collection and idle time were measured,
    contention and per-report costs included. A serial run shows one process: a
    worker starts much like it did (interpreter, imports, plugins), and its idle time
    between tests is the per-test overhead.
    """
    workers = section.workers
    tests = max(1, sum(w.tests for w in workers))
    if xdist_workers and workers:
        return Calibration(
            startup_s=sum(w.startup_s for w in workers) / len(workers),
            collection_s=sum(w.collection_s for w in workers) / len(workers),
            per_test_overhead_s=sum(w.idle_s for w in workers) / tests,
            xdist_per_test_s=0.0,
            controller_load=0.0,
            cpus=cpus,
        )
    collection = workers[0].collection_s if workers else 0.0
    busy = workers[0].busy_s if workers else 0.0
    age = process_age_s if process_age_s is not None else DEFAULT_PROCESS_AGE_S
    return Calibration(
        startup_s=age * STARTUP_RATIO,
        collection_s=collection,
        per_test_overhead_s=max(0.0, section.wall_s - collection - busy) / tests,
        cpus=cpus,
    )
