"""measure() with scripted backends: the record built once, the gate's rounds, every failure."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from pytest_parallel_lab import timing
from pytest_parallel_lab.backends import (
    BackendError,
    BatchResult,
    RunnerCache,
    TaskError,
    TaskOutcome,
    Work,
    WorkerCrashed,
    WorkloadTimeout,
)
from pytest_parallel_lab.backends.base import empty_task
from pytest_parallel_lab.document.records import Environment, Gate
from pytest_parallel_lab.marked.marker import Defaults, parse_marker
from pytest_parallel_lab.marked.measure import Measured, Settings, map_work, measure
from pytest_parallel_lab.marked.rounds import OutcomeRequest, PicklingProblem
from pytest_parallel_lab.vocabulary import Classification, GateVerdict, Kind, Outcome, Verdict

NAMES = ["serial", "thread", "process", "scripted"]
GIL = Environment(gil_enabled=True, usable_cpus=2)


@pytest.fixture(autouse=True)
def silent_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's counters do not tell (as off Linux): the scripted rounds take no real
    time, and the real machine's load must not decide these tests."""
    monkeypatch.setattr(timing, "machine_cpu_seconds", lambda: None)


class Counters:
    """Machine counters that read as an idle machine: busy exactly by this process."""

    def __init__(self) -> None:
        self.own = 0.0

    def machine(self) -> tuple[float, float]:
        self.own += 0.001
        return self.own, 0.0

    def process(self) -> float:
        return self.own


@dataclass
class ScriptedRunner:
    """Runs no task: answers each run with the next wall time of its script."""

    walls: Iterator[float]
    cpu_share: float = 1.0
    fails_with: BaseException | None = None
    startup_s: float = 0.004
    runs: int = 0
    closed: bool = False
    abandoned: bool = False

    def run(self, work: Work, timeout: float) -> BatchResult:
        if work.call is empty_task:
            return BatchResult(1e-4 * len(work.items), 0.0, self._outcomes(work))
        self.runs += 1
        if self.fails_with is not None and self.runs > 1:  # after the warm-up
            raise self.fails_with
        wall = next(self.walls)
        return BatchResult(wall, wall * self.cpu_share, self._outcomes(work))

    @staticmethod
    def _outcomes(work: Work) -> tuple[TaskOutcome, ...]:
        return tuple(TaskOutcome(i, value=i) for i in range(len(work.items)))

    def close(self) -> None:
        self.closed = True

    def abandon(self) -> None:
        self.abandoned = True


@dataclass
class ScriptedBackend:
    """A backend whose runner is handed in by the test."""

    runner: Any
    name: str = "scripted"
    description: str = "a runner that answers from a script"
    uses_processes: bool = False
    started: list[tuple[int, str | None]] = field(default_factory=list)

    def unavailable_reason(self) -> str | None:
        return None

    def start(self, workers: int, start_method: str | None) -> Any:
        self.started.append((workers, start_method))
        return self.runner


def settings(marker: str = "", **kwargs: Any) -> Settings:
    spec = parse_marker(
        (),
        {"backend": "scripted", "tasks": 4, "rounds": 5, **kwargs},
        defaults=Defaults(),
        registered=NAMES,
        unavailable={},
    )
    return Settings(
        spec=spec,
        nodeid="t.py::test_x[scripted]",
        test="t.py::test_x",
        backend="scripted",
        workers=2,
        usable_cpus=2,
        machine_cpus=2.0,
    )


WORK = map_work(abs, [1, 2, 3, 4])


def run(
    serial_walls: Sequence[float],
    candidate_walls: Sequence[float],
    config: Settings | None = None,
    *,
    cache: RunnerCache | None = None,
    candidate: ScriptedRunner | None = None,
    uses_processes: bool = False,
    named: Sequence[tuple[str, Any]] = (),
) -> tuple[Measured, ScriptedRunner, ScriptedRunner]:
    serial = ScriptedRunner(itertools.cycle(serial_walls))
    candidate = candidate or ScriptedRunner(itertools.cycle(candidate_walls))
    backend = ScriptedBackend(candidate, uses_processes=uses_processes)
    measured = measure(
        config or settings(),
        backend,
        ScriptedBackend(serial, name="serial"),
        cache or RunnerCache(),
        WORK,
        named_objects=named,
        environment=GIL,
    )
    return measured, serial, candidate


def test_a_steady_twofold_speedup_is_recorded_with_everything_the_report_shows() -> None:
    measured, serial, candidate = run([0.4], [0.2])
    record = measured.record
    assert measured.failure is None
    assert measured.values == [0, 1, 2, 3]
    assert record.outcome is Outcome.PASSED
    assert record.kind is Kind.BODY
    # Sequential stopping: three steady rounds are enough to know.
    assert (record.rounds, record.tasks, record.workers, record.loops) == (3, 4, 2, 1)
    assert record.serial_rounds_s == (0.4,) * 3
    assert record.backend_rounds_s == (0.2,) * 3
    assert record.speedup is not None
    assert (record.speedup.estimate, record.speedup.low, record.speedup.high) == (2.0, 2.0, 2.0)
    assert record.verdict is Verdict.FASTER
    # CPU work: parallelism is capped by the CPUs (2), the tasks (4) and the workers (2).
    assert (record.parallelism, record.efficiency) == (2, 1.0)
    assert (record.task_s, record.dispatch_s) == (0.1, 1e-4)
    assert record.startup_s == candidate.startup_s
    assert record.classification is Classification.CPU_BOUND
    assert record.classification_reason == "scripted 2.0x: busy CPU (CPU 100% of wall)"
    assert record.gate is None
    # A warm-up of each side, then three paired rounds.
    assert (serial.runs, candidate.runs) == (4, 4)


def test_computing_rounds_too_short_for_the_machines_counters_take_all_their_rounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counters = Counters()
    monkeypatch.setattr(timing, "machine_cpu_seconds", counters.machine)
    monkeypatch.setattr(timing, "own_cpu_seconds", counters.process)
    measured, _, _ = run([0.4], [0.2])  # scripted: no real time passes at all
    assert measured.record.rounds == 5
    assert measured.record.capacity is not None
    assert measured.record.capacity.foreign_cpus is None  # still too short to tell
    assert measured.record.machine_busy is False


@dataclass
class SlowCpuRunner(ScriptedRunner):
    """Workers whose CPU time per task is scripted too: 2.0 is two workers computing
    at full speed; more is shared CPUs running them slower."""

    cpu_shares: Iterator[float] = field(default_factory=lambda: itertools.repeat(2.0))

    def run(self, work: Work, timeout: float) -> BatchResult:
        self.cpu_share = next(self.cpu_shares)
        return super().run(work, timeout)


def test_rounds_whose_worker_tasks_ran_slower_are_taken_again_and_noted() -> None:
    # Warm-up, a fed round, a round whose workers paid 1.5x the CPU, then fed rounds.
    candidate = SlowCpuRunner(
        itertools.cycle([0.2]), cpu_shares=itertools.chain([2.0, 2.0, 3.0], itertools.repeat(2.0))
    )
    measured, _, _ = run([0.4], [], candidate=candidate, uses_processes=True)
    record = measured.record
    assert record.retaken_rounds == 1
    assert record.rounds == 3
    assert candidate.runs == 1 + 3 + 1
    assert "1 slow-CPU round retaken" in record.notes
    assert record.machine_busy is False


def test_an_interval_covers_the_speedup_at_the_serial_cpu_speed_when_workers_ran_slower() -> None:
    # Every round alike (2x), but the workers' tasks cost 1.1x their serial CPU time: a
    # speed that holds for the whole run, which a run on faster CPUs would not have.
    candidate = SlowCpuRunner(itertools.cycle([0.2]), cpu_shares=itertools.repeat(2.2))
    measured, _, _ = run([0.4], [], candidate=candidate, uses_processes=True)
    speedup = measured.record.speedup
    assert speedup is not None
    assert (speedup.estimate, speedup.low) == (pytest.approx(2.0), pytest.approx(2.0))
    assert speedup.high == pytest.approx(2.2)
    assert measured.record.retaken_rounds == 0


def test_threads_that_ran_in_parallel_on_slower_cpus_stretch_their_interval_too() -> None:
    candidate = SlowCpuRunner(itertools.cycle([0.2]), cpu_shares=itertools.repeat(2.2))
    measured, _, _ = run([0.4], [], candidate=candidate)
    speedup = measured.record.speedup
    assert speedup is not None
    assert speedup.high == pytest.approx(2.2)


def test_threads_holding_the_gil_keep_the_interval_of_their_rounds() -> None:
    # One CPU busy: their CPU time per task does not tell the machine's speed.
    candidate = SlowCpuRunner(itertools.cycle([0.2]), cpu_shares=itertools.repeat(1.0))
    measured, _, _ = run([0.4], [], candidate=candidate)
    speedup = measured.record.speedup
    assert speedup is not None
    assert speedup.high == pytest.approx(2.0)


def test_thread_rounds_run_in_parallel_on_slower_cpus_are_taken_again() -> None:
    # Two threads busy (the GIL released), one round at 1.5x the serial CPU per task.
    candidate = SlowCpuRunner(
        itertools.cycle([0.2]), cpu_shares=itertools.chain([2.0, 2.0, 3.0], itertools.repeat(2.0))
    )
    measured, _, _ = run([0.4], [], candidate=candidate)
    assert measured.record.retaken_rounds == 1


def test_threads_that_kept_one_cpu_busy_are_not_judged_by_their_cpu_per_task() -> None:
    candidate = SlowCpuRunner(
        itertools.cycle([0.4]), cpu_shares=itertools.chain([1.0, 1.0, 1.3], itertools.repeat(1.0))
    )
    measured, _, _ = run([0.4], [], candidate=candidate)
    assert measured.record.retaken_rounds == 0


def test_an_interval_that_straddles_the_verdict_takes_up_to_twice_the_rounds() -> None:
    # Ratios 2x with one stray 0.8x among the first five: more rounds settle it. (The
    # warm-up takes the first wall time; 1.45 CPUs busy: threads that could scale.)
    walls = itertools.chain([0.2, 0.2, 0.5, 0.2, 0.2, 0.2], itertools.repeat(0.2))
    candidate = ScriptedRunner(walls, cpu_share=1.45)
    measured, _, _ = run([0.4], [], candidate=candidate)
    record = measured.record
    assert record.rounds is not None
    assert 5 < record.rounds < 10
    assert record.speedup is not None
    assert record.speedup.low > 1.0


def test_the_extra_rounds_of_a_straddling_interval_stay_within_the_round_budget() -> None:
    candidate = ScriptedRunner(itertools.cycle([0.5, 0.3]), cpu_share=1.4)
    spec = parse_marker(
        (),
        {"backend": "scripted", "tasks": 4, "rounds": 5},
        defaults=Defaults(max_rounds=7),
        registered=NAMES,
        unavailable={},
    )
    measured, _, _ = run([0.4], [], replace(settings(), spec=spec), candidate=candidate)
    assert measured.record.rounds == 7


def test_gil_bound_threads_take_no_extra_rounds_for_a_noisy_interval() -> None:
    # One CPU busy for CPU work: no number of rounds makes it scale.
    measured, _, _ = run([0.4], [0.5, 0.3])
    assert measured.record.rounds == 5


def test_a_pool_used_a_second_time_is_noted_as_reused() -> None:
    cache = RunnerCache()
    first, _, candidate = run([0.4], [0.2], cache=cache)
    second, _, _ = run([0.4], [0.2], cache=cache, candidate=candidate)
    assert (first.record.pool_reused, second.record.pool_reused) == (False, True)
    assert "pool reused" in second.record.notes


def test_a_clear_gate_takes_no_extra_rounds() -> None:
    measured, _, _ = run([0.4], [0.1], settings(min_speedup=2.0))
    assert measured.failure is None
    assert measured.record.gate == Gate(2.0, GateVerdict.PASSED)
    assert measured.record.rounds == 3


def test_a_straddling_gate_doubles_its_rounds_up_to_the_budget_and_says_inconclusive() -> None:
    # Ratios alternate 2.5x and 1.6x: the interval always straddles 2.0.
    measured, _, candidate = run([0.4], [0.16, 0.25], settings(min_speedup=2.0))
    record = measured.record
    assert measured.failure is None
    assert record.gate == Gate(2.0, GateVerdict.INCONCLUSIVE)
    assert record.rounds == 30  # 5, 10, 20, then the default budget of 30
    assert candidate.runs == 31
    (note,) = [n for n in record.notes if n.startswith("gate ")]
    assert note == (
        "gate inconclusive: 2.05x [1.60-2.50] (95% interval) over 30 rounds straddles 2x"
    )


def test_a_gate_below_its_threshold_fails_the_item_with_the_measured_interval() -> None:
    measured, _, _ = run([0.4], [0.4], settings(min_speedup=1.5))
    assert measured.record.outcome is Outcome.FAILED
    assert measured.record.gate == Gate(1.5, GateVerdict.FAILED)
    assert str(measured.failure) == (
        "speedup under the scripted backend is below min_speedup=1.5: "
        "1.00x [1.00-1.00] (95% interval) over 3 rounds"
    )


def test_a_contradicted_expectation_fails_the_item_and_says_why() -> None:
    measured, _, _ = run([0.4], [0.2], settings(expect="io-bound"))
    assert measured.record.outcome is Outcome.FAILED
    assert str(measured.failure) == (
        "expected io-bound, measured cpu-bound (scripted 2.0x: busy CPU (CPU 100% of wall))"
    )


def test_an_expectation_the_measurement_cannot_check_is_a_note_not_a_failure() -> None:
    # Ratios 0.8x and 1.33x: too noisy to tell whether it scales, so inconclusive (with
    # 1.4 CPUs busy it could: one busy CPU would show that it does not).
    candidate = ScriptedRunner(itertools.cycle([0.5, 0.3]), cpu_share=1.4)
    measured, _, _ = run([0.4], [], settings(expect="cpu-bound"), candidate=candidate)
    assert measured.record.rounds == 10  # twice the spec's rounds: it stays undecided
    assert measured.failure is None
    assert measured.record.classification is Classification.INCONCLUSIVE
    assert "expected cpu-bound, but the measurements were inconclusive: not checked" in (
        measured.record.notes
    )


def test_a_process_backend_names_the_value_it_cannot_pickle_and_starts_no_pool() -> None:
    lock = threading.Lock()
    cache = RunnerCache()
    measured, _, candidate = run(
        [0.4], [0.2], cache=cache, uses_processes=True, named=[("the value of fixture 'db'", lock)]
    )
    assert isinstance(measured.failure, PicklingProblem)
    assert "the value of fixture 'db' cannot be pickled for the scripted backend" in str(
        measured.failure
    )
    assert measured.record.outcome is Outcome.FAILED
    assert measured.record.error == str(measured.failure)
    assert candidate.runs == 0


def test_a_process_backend_records_the_bytes_a_task_sends() -> None:
    measured, _, _ = run([0.4], [0.2], uses_processes=True)
    assert measured.record.pickled_bytes is not None
    assert measured.record.pickled_bytes > 0


@pytest.mark.parametrize(
    ("error", "message", "replaced"),
    [
        pytest.param(
            WorkloadTimeout("4 of 4 tasks did not finish within the timeout of 1s"),
            "scripted backend: 4 of 4 tasks did not finish within the timeout of 1s",
            True,
            id="timeout-replaces-the-runners",
        ),
        pytest.param(
            WorkerCrashed("a worker died: exit code 3"),
            "scripted backend: a worker died: exit code 3",
            True,
            id="crash-replaces-the-runners",
        ),
        pytest.param(
            BackendError("a result could not be sent back"),
            "scripted backend could not run the workload: a result could not be sent back",
            False,
            id="backend-error-keeps-the-runners",
        ),
        pytest.param(
            RuntimeError("plugin bug"),
            "the scripted backend failed unexpectedly: RuntimeError: plugin bug",
            True,
            id="anything-else-replaces-the-runners",
        ),
    ],
)
def test_a_failing_backend_fails_the_item_naming_it_and_keeps_the_row(
    error: BaseException, message: str, replaced: bool
) -> None:
    cache = RunnerCache()
    candidate = ScriptedRunner(itertools.cycle([0.2]), fails_with=error)
    measured, serial, _ = run([0.4], [], cache=cache, candidate=candidate)
    assert str(measured.failure).startswith(message)
    assert measured.record.outcome is Outcome.FAILED
    assert measured.record.error == str(measured.failure)
    assert measured.record.speedup is None
    assert (candidate.abandoned, serial.abandoned) == (replaced, replaced)


def test_a_task_that_asked_to_skip_gives_a_skipped_row() -> None:
    class Skipping(ScriptedRunner):
        def run(self, work: Work, timeout: float) -> BatchResult:
            error = TaskError(0, "Skipped", "not here", "tb", control="Skipped")
            return BatchResult(0.1, 0.0, (TaskOutcome(0, error=error),))

    measured, _, _ = run([0.4], [], candidate=Skipping(iter(())))
    assert isinstance(measured.failure, OutcomeRequest)
    assert measured.record.outcome is Outcome.SKIPPED
    assert measured.record.error == "not here"


def test_a_map_call_is_recorded_as_that_call() -> None:
    measured, _, _ = run([0.4], [0.2], replace(settings(), kind=Kind.MAP, call_index=2))
    assert (measured.record.kind, measured.record.call_index) == (Kind.MAP, 2)


def test_the_workers_and_start_method_reach_the_backend() -> None:
    serial = ScriptedRunner(itertools.cycle([0.4]))
    backend = ScriptedBackend(ScriptedRunner(itertools.cycle([0.2])))
    measure(
        replace(settings(), workers=3),
        backend,
        ScriptedBackend(serial, name="serial"),
        RunnerCache(),
        WORK,
    )
    assert backend.started == [(3, None)]


def test_more_process_workers_than_cpus_and_shared_xdist_cpus_are_noted() -> None:
    config = replace(settings(), workers=4, xdist_workers=2)
    measured, _, _ = run([0.4], [0.2], config, uses_processes=True)
    assert "4 workers > 2 CPUs" in measured.record.notes
    assert "CPUs shared with 2 xdist workers" in measured.record.notes


def test_a_noisy_measurement_takes_every_round_the_spec_allows() -> None:
    # Ratios 2.0, 1.0, 1.33, 2.0, ...: too noisy to stop early.
    measured, _, _ = run([0.4], [0.2, 0.4, 0.3])
    assert measured.record.noisy is True
    assert measured.record.rounds == 5


def test_a_serial_runner_warm_from_the_same_test_is_not_warmed_again() -> None:
    cache = RunnerCache()
    _, serial, candidate = run([0.4], [0.2], cache=cache)
    assert (serial.runs, candidate.runs) == (1 + 3, 1 + 3)  # a warm-up, then three rounds
    # The next item of the same test: the cache hands out the same runners, and the
    # serial one just ran this workload: it takes its three rounds without a warm-up.
    second, _, _ = run([0.4], [0.2], cache=cache)
    assert (serial.runs, candidate.runs) == (4 + 3, 4 + 1 + 3)
    assert second.record.rounds == 3


def test_runs_too_short_to_time_alone_are_repeated_in_each_sample() -> None:
    # 10 µs a run serially, 50 µs under the backend: 200 runs make a 2 ms sample, and
    # the longer side stays within 50 ms (1000 runs at most).
    measured, serial, candidate = run([1e-5], [5e-5])
    assert measured.record.loops == 200
    assert measured.record.serial_s == pytest.approx(1e-5)
    assert (serial.runs, candidate.runs) == (1 + 200 * 3, 1 + 200 * 3)
