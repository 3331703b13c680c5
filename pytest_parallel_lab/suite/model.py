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
from typing import Any

from pytest_parallel_lab.document.suite import (
    CONTROLLER_REPORT_RATIO,
    DEFAULT_REPORT_ROUNDTRIP_S,
    WORKER_REPORT_RATIO,
    Calibration,
    SuiteSection,
)
from pytest_parallel_lab.suite.first_use import estimate_first_use
from pytest_parallel_lab.suite.recorder import SHARED_SCOPES, fixture_key, scope_node

#: A worker's start-up (from the controller's session start to the worker's) over the
#: serial process's own start-up (its age at the session start): execnet starts the
#: workers one after another, and each then imports and configures what the serial
#: process did. ``benchmarks/bench_worker_startup.py`` on five real suites on a 2-CPU VM:
#: median 1.17 (0.83-1.46, contention for the CPUs taken out); 0.75 before, fitted on a
#: quiet machine, left every suite's collection barrier early.
STARTUP_RATIO = 1.17
#: The serial process's start-up when its age could not be read (no /proc).
DEFAULT_PROCESS_AGE_S = 0.3


@dataclass(frozen=True)
class SimTest:
    """A test: its own cost (phases minus shared fixtures) and the shared fixtures it uses."""

    nodeid: str
    base_s: float
    uses: tuple[str, ...] = ()
    serial_fixture_s: float = 0.0
    #: the share of its time that was CPU (1.0 when unknown: it contends fully)
    cpu_share: float = 1.0
    #: the reports a worker sends for it (3 phases, plus one per subtest)
    reports: int = 3
    #: its xdist_group, or ""
    group: str = ""
    #: the first-use cost it paid in the measured run (in ``base_s``; suite/first_use.py)
    first_use_s: float = 0.0
    #: the units (SuiteModel.first_use) whose cost a worker pays on its first test of them
    first_use_units: tuple[str, ...] = ()
    #: CPU seconds of work it repeats on a worker that did not run the test that
    #: warmed it (``suite/calibration_run.py``); a worker of ``-n N`` pays ``1 - 1/N``
    repeated_s: float = 0.0


@dataclass(frozen=True)
class SimFixture:
    """Per-instance own cost of a shared fixture; ``key`` identifies it without its param."""

    id: str
    key: str
    scope: str
    setup_s: float
    teardown_s: float


def scope_units(nodeids: Sequence[str], dist: str) -> list[list[int]]:
    """Indivisible units of ``loadscope`` (module or class), ``loadfile`` (file) or
    ``loadgroup`` (an ``@group`` suffix, else the test alone), as xdist splits them."""
    units: dict[str, list[int]] = {}
    for index, nodeid in enumerate(nodeids):
        if dist == "loadgroup":
            key = nodeid.rsplit("@", 1)[-1] if "@" in nodeid else nodeid
        elif dist == "loadfile":
            key = nodeid.split("::")[0]
        else:
            key = nodeid.rsplit("::", 1)[0]
        units.setdefault(key, []).append(index)
    return list(units.values())


@dataclass(frozen=True)
class SuiteModel:
    """Tests in collection order, the shared fixtures they use, and the calibration."""

    tests: tuple[SimTest, ...]
    fixtures: Mapping[str, SimFixture] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)
    serial_wall_s: float | None = None
    #: the estimated first-use cost of each unit (module or parametrized function),
    #: paid by every worker on its first test of the unit
    first_use: Mapping[str, float] = field(default_factory=dict)

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
    def first_use_units(self) -> list[tuple[str, ...]]:
        """Per test, its first-use units (read once per simulated test)."""
        return [t.first_use_units for t in self.tests]

    @functools.cached_property
    def test_costs(self) -> list[float]:
        """Per test, its own cost without the first-use cost it paid (a worker pays
        that on its first test of the unit, see :func:`run_cost`), plus the per-test
        overheads of a worker (pytest's own, and sending its reports to the controller)."""
        cal = self.calibration
        return [
            t.base_s - t.first_use_s + cal.per_test_overhead_s + cal.worker_report_s * t.reports
            for t in self.tests
        ]

    @functools.cached_property
    def cpu_shares(self) -> list[float]:
        """Per test, the share of its cost that contends for a CPU."""
        return [t.cpu_share for t in self.tests]

    @functools.cached_property
    def repeated(self) -> list[float] | None:
        """Per test, the work it repeats on a worker that missed what warmed it; None
        when no test has any (the model is not calibrated by a saved -n run)."""
        found = [t.repeated_s for t in self.tests]
        return found if any(found) else None

    @functools.cached_property
    def report_counts(self) -> list[int]:
        """Per test, the reports the controller handles."""
        return [t.reports for t in self.tests]

    @functools.cached_property
    def total_cpu_s(self) -> float:
        """The CPU part of every test's own cost (shared fixtures left out)."""
        return sum(c * t.cpu_share for c, t in zip(self.test_costs, self.tests, strict=True))

    @functools.cached_property
    def has_groups(self) -> bool:
        """Whether any test has an ``xdist_group`` (else ``loadgroup`` is not predicted)."""
        return any(t.group for t in self.tests)

    def collection(self, dist: str) -> list[str]:
        """The node ids a worker reports as its collection: with ``@group`` suffixes
        under ``loadgroup``, as xdist's worker adds them."""
        if dist == "loadgroup":
            return [f"{t.nodeid}@{t.group}" if t.group else t.nodeid for t in self.tests]
        return [t.nodeid for t in self.tests]

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
        """The tests at *indices* run together: each once, each fixture instance once,
        each first-use cost once."""
        costs, per_test, tests = self.test_costs, self.test_instances, self.tests
        cost = 0.0
        instances: set[tuple[str, str]] = set()
        first_used: set[str] = set()
        for i in indices:
            cost += costs[i]
            for fixture, node in per_test[i]:
                instances.add((fixture.id, node))
            first_used.update(tests[i].first_use_units)
        for fid, _ in instances:
            cost += self.fixtures[fid].setup_s + self.fixtures[fid].teardown_s
        return cost + sum(self.first_use[unit] for unit in first_used)

    @functools.cached_property
    def _units(self) -> dict[str, list[list[int]]]:
        return {}

    def units(self, dist: str) -> list[list[int]]:
        """The indivisible units of a scope mode (cached per mode)."""
        if dist not in self._units:
            self._units[dist] = scope_units(self.collection(dist), dist)
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
    calibration = section.calibration or Calibration()
    repeated = calibration.repeated
    first_use = estimate_first_use(rows)
    paid = first_use.paid_s or (0.0,) * len(rows)
    units = first_use.units or ((),) * len(rows)
    tests = tuple(
        SimTest(
            r.nodeid,
            max(0.0, r.total_s - r.fixture_s),
            uses(r.uses),
            r.fixture_s,
            cpu_share(r.cpu_s, r.total_s),
            max(1, r.reports),
            r.group,
            min(p, max(0.0, r.total_s - r.fixture_s)),
            u,
            repeated.get(r.nodeid, 0.0),
        )
        for r, p, u in zip(rows, paid, units, strict=True)
    )
    return SuiteModel(
        tests,
        fixtures,
        calibration,
        serial_wall_s(section),
        first_use.costs,
    )


def cpu_share(cpu_s: float | None, total_s: float) -> float:
    """The CPU share of a test's time: 1.0 when unknown, 0..1 otherwise (a clock's
    granularity can put a short test's CPU time above its wall time)."""
    if cpu_s is None:
        return 1.0
    if total_s <= 0.0:
        return 1.0 if cpu_s > 0.0 else 0.0
    return min(1.0, max(0.0, cpu_s / total_s))


def serial_wall_s(section: SuiteSection) -> float | None:
    """The serial session's time: a plain run's own; unknown for an xdist run, whose
    wall time is the -n N run's and no baseline for the advice."""
    if section.serial_wall_s is not None:
        return section.serial_wall_s
    return section.wall_s if section.actual is None else None


#: The most background demand estimated, in CPUs per usable CPU: a machine that gave
#: the measured run almost nothing says "very busy", not "infinitely".
MAX_BACKGROUND_PER_CPU = 4.0


def background_demand(other_cpu_s: float, wall_s: float, cpus: int) -> float:
    """The runnable demand (in CPUs) of other processes that kept *other_cpu_s* of the
    machine's CPU time busy over *wall_s* while a serial run (one CPU of demand) ran on
    *cpus* CPUs. Below ``cpus - 1`` CPUs each got a CPU of its own: the demand is what
    they used; beyond, the CPUs were shared fairly among 1 + K runnable tasks, so the
    others' use ``L = K * cpus / (1 + K)`` gives ``K = L / (cpus - L)``."""
    if wall_s <= 0 or other_cpu_s <= 0 or cpus < 1:
        return 0.0
    used = other_cpu_s / wall_s
    cap = MAX_BACKGROUND_PER_CPU * cpus
    if used <= cpus - 1:
        return min(cap, used)
    if used >= cpus:
        return cap
    return min(cap, used / (cpus - used))


def calibrate(
    section: SuiteSection,
    *,
    xdist_workers: int,
    process_age_s: float | None,
    cpus: int,
    report_roundtrip_s: float | None = None,
    controller_cpu_s: float | None = None,
    session_end_s: float | None = None,
    other_cpu_s: float | None = None,
) -> Calibration:
    """What a worker costs besides its tests, from this run's section.

    Under xdist the workers' own start-up, collection and idle time were measured,
    contention and the cost of sending reports included, and the controller's CPU
    time over the reports it received is its cost per report. A serial run shows one
    process: a worker starts much like it did (interpreter, imports, plugins), its
    idle time between tests is the per-test overhead, and the timed round trip of a
    sample of its own reports (*report_roundtrip_s*) scales to what the controller
    and a worker spend per report. A worker's session end is *session_end_s* when it
    was measured (``suite/session_end.py``), else the documented fallback. In a serial
    run, *other_cpu_s* (the CPU time other processes of the machine took meanwhile)
    gives the background demand the workers will compete with.
    """
    end: dict[str, Any] = {}
    if session_end_s is not None:
        end = {"shutdown_s": session_end_s, "shutdown_measured": True}
    workers = section.workers
    tests = max(1, sum(w.tests for w in workers))
    reports = sum(t.reports for t in section.tests)
    roundtrip = DEFAULT_REPORT_ROUNDTRIP_S if report_roundtrip_s is None else report_roundtrip_s
    if xdist_workers and workers:
        per_report = roundtrip * CONTROLLER_REPORT_RATIO
        if controller_cpu_s is not None and reports:
            per_report = controller_cpu_s / reports
        return Calibration(
            startup_s=sum(w.startup_s for w in workers) / len(workers),
            collection_s=sum(w.collection_s for w in workers) / len(workers),
            per_test_overhead_s=sum(w.idle_s for w in workers) / tests,
            cpus=cpus,
            report_roundtrip_s=roundtrip,
            controller_report_s=per_report,
            worker_report_s=0.0,  # in the workers' measured idle time already
            **end,
        )
    collection = workers[0].collection_s if workers else 0.0
    busy = workers[0].busy_s if workers else 0.0
    age = process_age_s if process_age_s is not None else DEFAULT_PROCESS_AGE_S
    return Calibration(
        startup_s=age * STARTUP_RATIO,
        collection_s=collection,
        per_test_overhead_s=max(0.0, section.wall_s - collection - busy) / tests,
        cpus=cpus,
        report_roundtrip_s=roundtrip,
        controller_report_s=roundtrip * CONTROLLER_REPORT_RATIO,
        worker_report_s=roundtrip * WORKER_REPORT_RATIO,
        background_demand=(
            background_demand(other_cpu_s, section.wall_s, cpus) if other_cpu_s else 0.0
        ),
        **end,
    )
