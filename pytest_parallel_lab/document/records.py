"""What a run measured of its marked tests: frozen records, built once and reported as is.

A :class:`ResultRecord` is made by the measurement (``marked/measure.py``), travels
from xdist workers as JSON, and is what every report reads; :class:`Recommendation`
and :class:`Sweep` are the per-test analyses made from the records at the end of the
run. The JSON layout is in ``docs/json-schema.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_parallel_lab.stats import Interval
from pytest_parallel_lab.vocabulary import Classification, GateVerdict, Kind, Outcome, Verdict


@dataclass(frozen=True)
class Gate:
    """A ``min_speedup`` gate and what the speedup interval said about it."""

    min_speedup: float
    verdict: GateVerdict


@dataclass(frozen=True)
class Capacity:
    """What the machine gave the parallel side of a measurement, in CPUs."""

    #: the CPUs the parallel side could use here: its workers, its tasks and the
    #: machine's capacity (a quota included), whichever is least
    expected_cpus: float
    #: the CPUs' worth of work its tasks got done per second of wall time: their CPU time
    #: per second (median over the rounds), less what they spent beyond the serial side's
    #: CPU time for the same tasks (CPUs that ran them slower, see ``task_slowdown``)
    delivered_cpus: float
    #: what other processes (and a hypervisor's steal) took meanwhile; None where the
    #: platform does not tell
    foreign_cpus: float | None = None
    #: CPU time per task in worker processes over the serial side's, for CPU work: well
    #: above 1 when the machine's CPUs ran the parallel tasks slower (shared cores, a busy
    #: host); None where it says nothing (waiting work, threads sharing a GIL)
    task_slowdown: float | None = None


@dataclass(frozen=True)
class ResultRecord:
    """One measured workload: a marked test under one backend (or one parallel_map call)."""

    nodeid: str
    test: str
    backend: str
    outcome: Outcome = Outcome.PASSED
    kind: Kind = Kind.BODY
    call_index: int = 0
    coroutine: bool = False
    workers: int | None = None
    tasks: int | None = None
    rounds: int | None = None
    #: runs of the workload in one timed sample (more than 1 for runs too short to time)
    loops: int = 1
    #: rounds taken again because the machine ran the worker processes' tasks slower
    retaken_rounds: int = 0
    start_method: str | None = None
    serial_s: float | None = None
    backend_s: float | None = None
    serial_rounds_s: tuple[float, ...] = ()
    backend_rounds_s: tuple[float, ...] = ()
    #: serial / backend, the median of per-round ratios, with its interval
    speedup: Interval | None = None
    efficiency: float | None = None
    parallelism: int | None = None
    startup_s: float | None = None
    pool_reused: bool = False
    noisy: bool = False
    verdict: Verdict | None = None
    serial_cpu_s: float | None = None
    cpu_s: float | None = None
    pickled_bytes: int | None = None
    dispatch_s: float | None = None
    task_s: float | None = None
    classification: Classification | None = None
    #: the measured numbers that decided the classification, in one sentence
    classification_reason: str | None = None
    gate: Gate | None = None
    capacity: Capacity | None = None
    #: the machine gave the measurement clearly less CPU than it needed, also on a retry:
    #: its speedup says nothing about the workload
    machine_busy: bool = False
    error: str | None = None
    xdist_worker: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def measured(self) -> bool:
        """Whether there is a speedup to reason about (a row failed by a gate or by
        ``expect=`` was measured all the same; one that failed before has none)."""
        return self.speedup is not None and self.serial_s is not None and self.serial_s > 0


@dataclass(frozen=True)
class Environment:
    """What distinguishes one run from another in a matrix."""

    python_version: str = ""
    implementation: str = ""
    gil_enabled: bool = True
    free_threaded_build: bool = False
    cpu_count: int = 0
    usable_cpus: int = 0
    #: the CPU time per second this process may get (below ``usable_cpus`` under a
    #: fractional quota); 0 when not known (an older file)
    cpu_capacity: float = 0.0
    #: what limits the CPUs, in words ("cgroup quota 100000/100000"), "" when nothing does
    cpu_limit: str = ""
    platform: str = ""
    machine: str = ""
    pytest_version: str = ""
    plugin_version: str = ""
    xdist_workers: int = 0
    start_method: str | None = None
    tox_env: str | None = None
    label: str | None = None
    #: the registered backends that cannot run on this interpreter, each with why (the
    #: version it needs, the install command); filled when marked tests ran
    unavailable_backends: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recommendation:
    """The concurrency model to use for one test (or one of its ``parallel_map`` calls)."""

    test: str
    classification: Classification
    #: a backend name, ``serial`` when none beats serial, ``undecided`` when too noisy
    backend: str
    reason: str
    #: which ``parallel_map`` call, for a test whose calls were measured one by one
    call_index: int | None = None
    #: False when the machine could not show the model's advantage (too few CPUs): the
    #: model follows from the measured class of work, not from a measured speedup
    shown: bool = True
    #: the reason without the speedups it cites (for a table that shows them beside it)
    why: str = ""


@dataclass(frozen=True)
class SweepPoint:
    """One worker count of a sweep: the speedup with its interval (flat in JSON)."""

    workers: int
    speedup: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Sweep:
    """A test measured at several worker counts, and its Amdahl's-law fit.

    The fit values are ``None`` when fewer than two counts fit within the usable
    CPUs; ``max_speedup`` is ``None`` when unbounded (a serial fraction of 0).
    """

    test: str
    backend: str
    points: tuple[SweepPoint, ...]
    serial_fraction: float | None = None
    max_speedup: float | None = None
    fit_r2: float | None = None
    capped_by_cpus: bool = False
    usable_cpus: int = 0
    call_index: int | None = None
