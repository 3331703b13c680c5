"""What a run measured of its whole suite: the ``suite`` section as frozen records.

Built once by the suite recorder (``suite/recorder.py``) and completed by the
prediction (``suite/simulate.py``); the same :class:`SuiteSection` feeds the model,
the reports and the JSON. Keys are described in ``docs/suite-analysis.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pytest_parallel_lab.vocabulary import Outcome

#: The -n N modes the prediction simulates, in the order reports list them.
DIST_MODES = ("load", "loadscope", "loadfile", "loadgroup", "worksteal")

#: Shutting the workers down after the last test (their sessionfinish, gateway exit)
#: when it was not measured (``suite/session_end.py`` times an interpreter's exit): the
#: fallback of runs where the probe could not run and of documents saved before it.
XDIST_SHUTDOWN_S = 0.15
#: A report's trip from a worker to the controller (serialise, execnet dumps and
#: loads, unserialise) when this run could not time its own reports.
DEFAULT_REPORT_ROUNDTRIP_S = 0.00015
#: The controller's CPU per report (receiving thread, unserialising, every plugin's
#: ``pytest_runtest_logreport``, the scheduler) over the timed round trip; and the
#: worker's extra cost of sending one, over the same. Fitted with
#: ``benchmarks/bench_controller_cost.py --repeats 5`` on a quiet 2-core Linux machine
#: (-n 1 against serial, CPU time, suites of 2,000 and 6,000 tests: 188 us and 127 us
#: per report against an 87 us round trip).
CONTROLLER_REPORT_RATIO = 2.16
WORKER_REPORT_RATIO = 1.46
#: A worker's start-up when nothing was measured (the serial process's age unknown).
DEFAULT_STARTUP_S = 0.5


@dataclass(frozen=True)
class TestTiming:
    """One test's phases on one worker; ``fixture_s`` is the own time of the shared
    fixtures set up or torn down inside its phases, ``uses`` the shared fixtures it needs."""

    __test__ = False  # not a pytest test class

    nodeid: str
    worker: str
    setup_s: float
    call_s: float
    teardown_s: float
    outcome: Outcome
    start_s: float = 0.0
    fixture_s: float = 0.0
    uses: tuple[str, ...] = ()
    #: Position in the worker's collection (the order a scheduler sees), -1 if unknown.
    index: int = -1
    #: CPU time of its phases (this process and the children it waited for); None
    #: when unknown (a document of an older version)
    cpu_s: float | None = None
    #: the reports it sent (its phases and its subtests)
    reports: int = 3
    #: its ``xdist_group`` (the groups' names joined as xdist joins them), or ""
    group: str = ""

    @property
    def total_s(self) -> float:
        """Setup, call and teardown together."""
        return self.setup_s + self.call_s + self.teardown_s


@dataclass(frozen=True)
class FixtureTiming:
    """All instances of one fixture (and param) on one worker, own time only."""

    id: str
    name: str
    scope: str
    baseid: str
    param: str | None
    worker: str
    setup_s: float
    teardown_s: float
    instances: int


@dataclass(frozen=True)
class WorkerTiming:
    """One process that ran tests: the main process (``main``) or an xdist worker."""

    id: str
    startup_s: float
    collection_s: float
    busy_s: float
    idle_s: float
    tests: int
    finish_s: float = 0.0


@dataclass(frozen=True)
class Imbalance:
    """The slowest worker's busy time over the mean, and the spread of finish times."""

    busy_max_over_mean: float
    finish_gap_s: float


@dataclass(frozen=True)
class FixtureDuplication:
    """A shared fixture's instances across xdist workers against one serial process."""

    id: str
    name: str
    scope: str
    workers: int
    instances: int
    total_s: float
    serial_s: float
    extra_s: float


@dataclass(frozen=True)
class ChainLink:
    """A test of the worker that finished last, with its whole cost."""

    nodeid: str
    total_s: float


@dataclass(frozen=True)
class WorkerChain:
    """The tests, in order, of the worker that finished last (what the wall time waited on)."""

    worker: str | None
    tests: tuple[ChainLink, ...] = ()


@dataclass(frozen=True)
class Calibration:
    """What a worker costs besides its tests, measured on this run."""

    startup_s: float = DEFAULT_STARTUP_S
    collection_s: float = 0.0
    per_test_overhead_s: float = 0.0
    cpus: int = 1
    #: a worker's session end (its exit), measured or XDIST_SHUTDOWN_S
    shutdown_s: float = XDIST_SHUTDOWN_S
    #: the timed trip of one of this run's reports from a worker to the controller
    report_roundtrip_s: float = DEFAULT_REPORT_ROUNDTRIP_S
    #: what the controller spends per report, and a worker per report it sends
    controller_report_s: float = DEFAULT_REPORT_ROUNDTRIP_S * CONTROLLER_REPORT_RATIO
    worker_report_s: float = DEFAULT_REPORT_ROUNDTRIP_S * WORKER_REPORT_RATIO
    #: the first-use costs found in tests (``suite/first_use.py``): how many units
    #: (modules, parametrized functions) and their costs once; each worker pays a
    #: unit's cost on its first test of it
    first_use_units: int = 0
    first_use_s: float = 0.0
    #: whether ``shutdown_s`` was measured on this machine (else it is the fallback)
    shutdown_measured: bool = False
    #: a remote gateway's (``--tx ssh=...``, ``socket=...``) start-up as the user gave
    #: it (``--parallel-predict-tx-startup``); None: like a local worker's
    remote_startup_s: float | None = None
    #: how many CPUs' worth of runnable work other processes brought while this (plain)
    #: run was measured (the machine's busy time minus this run's own): they compete
    #: with the workers as with the measured run (``suite/model.py``
    #: ``background_demand``); 0.0 when not measured
    background_demand: float = 0.0
    #: the saved ``-n N`` run that calibrated the prediction
    #: (``--parallel-calibrate-from``, ``suite/calibration_run.py``): its workers and
    #: the tests timed in both runs (0: not calibrated)
    calibration_workers: int = 0
    calibration_tests: int = 0
    #: per node id, the CPU seconds a test repeats on a worker that did not run the
    #: test that warmed it (a cache, an import) in this run, one full miss, as that run
    #: showed it (a worker of ``-n N`` misses ``1 - 1/N`` of it); only the tests found
    repeated: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    """The simulated wall time of ``pytest -n workers --dist dist``, and a lower bound."""

    workers: int
    dist: str
    wall_s: float
    lower_bound_s: float
    worker_finish_s: tuple[float, ...] = ()
    #: the estimated first-use work (suite/first_use.py) the workers repeat beyond the
    #: one time the measured run paid it, summed over the workers
    repeated_s: float = 0.0
    #: how many of the workers are remote gateways (``--tx ssh=...``, ``socket=...``)
    remote: int = 0
    #: the controller's CPU share the simulation found (busy handling reports over the
    #: session), before it is capped at one CPU
    controller_load: float = 0.0


@dataclass(frozen=True)
class ShardPrediction:
    """``K`` machines each running ``pytest -n workers --dist dist``: the slowest
    shard's time, and each shard's time and test count."""

    shards: int
    workers: int
    dist: str
    wall_s: float
    shard_wall_s: tuple[float, ...]
    shard_tests: tuple[int, ...]


@dataclass(frozen=True)
class ActualRun:
    """What an xdist run took, shown beside its prediction."""

    workers: int
    dist: str
    wall_s: float
    #: how many of its workers were remote gateways
    remote: int = 0


@dataclass(frozen=True)
class XdistAdvice:
    """The fastest predicted configuration (``workers`` 0: stay serial) and why."""

    workers: int
    dist: str | None
    wall_s: float | None
    message: str


@dataclass(frozen=True)
class PredictedFrom:
    """``--parallel-predict-from``: the saved run and the prediction made from it."""

    path: str
    text: str


@dataclass(frozen=True)
class SuiteSection:
    """Every test and fixture of the run timed, per worker, and the ``-n N`` prediction."""

    tests: tuple[TestTiming, ...] = ()
    fixtures: tuple[FixtureTiming, ...] = ()
    workers: tuple[WorkerTiming, ...] = ()
    wall_s: float = 0.0
    imbalance: Imbalance | None = None
    duplication: tuple[FixtureDuplication, ...] = ()
    last_worker_chain: WorkerChain | None = None
    prediction: tuple[Prediction, ...] = ()
    actual: ActualRun | None = None
    crashed_workers: tuple[str, ...] = ()
    calibration: Calibration | None = None
    #: the serial session's wall time (None for an xdist run)
    serial_wall_s: float | None = None
    recommended: XdistAdvice | None = None
    predicted_from: PredictedFrom | None = None
    #: ``--parallel-predict-shards=K``: 1..K machines each running -n N
    shards: tuple[ShardPrediction, ...] = ()
