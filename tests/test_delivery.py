"""What the machine delivered, and when a measurement was starved: hand-made rounds and
fake machine figures, no timing."""

from __future__ import annotations

import pytest

from pytest_parallel_lab.document.records import Capacity
from pytest_parallel_lab.marked.delivery import (
    MIN_WINDOW_S,
    SLOWDOWN_LIMIT,
    assess,
    expected_cpus,
    foreign_cpus,
    round_fed,
    task_slowdown,
    window_too_short,
)
from pytest_parallel_lab.marked.rounds import Measurement


def rounds(
    *,
    serial_ratio: float,
    delivered: float,
    foreign: float | None,
    rounds: int = 5,
    serial_s: float = 0.2,
    speedup: float = 1.0,
) -> Measurement:
    """Rounds whose sides got *serial_ratio* and *delivered* CPUs, while other processes
    took *foreign* CPUs (None: the platform does not tell)."""
    backend_s = serial_s / speedup
    wall = rounds * (serial_s + backend_s)
    own = rounds * (serial_s * serial_ratio + backend_s * delivered)
    machine = None if foreign is None else (own + foreign * wall, 0.0, own)
    return Measurement(
        "process",
        serial_s=[serial_s] * rounds,
        backend_s=[backend_s] * rounds,
        serial_cpu_s=[serial_s * serial_ratio] * rounds,
        backend_cpu_s=[backend_s * delivered] * rounds,
        machine=machine,
        machine_wall_s=wall,
    )


@pytest.mark.parametrize(
    ("backend", "workers", "tasks", "cpus", "expected"),
    [
        ("process", 2, 8, 2.0, 2.0),
        ("process", 8, 8, 2.0, 2.0),
        ("thread", 4, 3, 8.0, 3.0),
        ("process", 2, 8, 1.0, 1.0),  # a 1-CPU quota
        ("process", 2, 8, 1.5, 1.5),  # a fractional quota
        ("asyncio", 8, 8, 2.0, 1.0),  # one event loop thread
        ("serial", 1, 8, 2.0, 1.0),
    ],
)
def test_the_expected_cpus_are_the_least_of_workers_tasks_and_the_machine(
    backend: str, workers: int, tasks: int, cpus: float, expected: float
) -> None:
    assert expected_cpus(backend, workers, tasks, cpus) == expected


def test_cpu_work_on_an_idle_machine_is_fed() -> None:
    delivery = assess(
        rounds(serial_ratio=1.0, delivered=1.96, foreign=0.05, speedup=1.96),
        backend="process",
        workers=2,
        tasks=8,
        machine_cpus=2.0,
    )
    assert delivery.starved is False
    assert delivery.capacity == Capacity(
        2.0, pytest.approx(1.96), pytest.approx(0.05), task_slowdown=pytest.approx(1.0)
    )


def test_cpu_work_beside_a_hog_that_took_a_cpu_is_starved() -> None:
    delivery = assess(
        rounds(serial_ratio=1.0, delivered=1.04, foreign=0.95),
        backend="process",
        workers=2,
        tasks=8,
        machine_cpus=2.0,
    )
    assert delivery.starved is True
    assert delivery.capacity.delivered_cpus == pytest.approx(1.04)


def test_threads_held_by_the_gil_on_an_idle_machine_are_not_starved() -> None:
    # One CPU used of two, but nobody else took the other one: the GIL, not the machine.
    delivery = assess(
        rounds(serial_ratio=1.0, delivered=1.0, foreign=0.02),
        backend="thread",
        workers=2,
        tasks=8,
        machine_cpus=2.0,
    )
    assert delivery.starved is False


def test_cpu_work_under_a_one_cpu_quota_expects_one_cpu_and_is_fed() -> None:
    delivery = assess(
        rounds(serial_ratio=1.0, delivered=0.99, foreign=0.0),
        backend="process",
        workers=2,
        tasks=8,
        machine_cpus=1.0,
    )
    assert delivery.starved is False
    assert delivery.capacity.expected_cpus == 1.0


def test_waiting_work_cannot_be_starved_of_cpu() -> None:
    delivery = assess(
        rounds(serial_ratio=0.01, delivered=0.05, foreign=1.9, speedup=7.8),
        backend="thread",
        workers=8,
        tasks=8,
        machine_cpus=2.0,
    )
    assert delivery.starved is False


def test_a_serial_side_that_the_others_left_less_than_a_cpu_is_starved() -> None:
    # Three hogs on two CPUs: the serial side got 0.6 of a CPU.
    delivery = assess(
        rounds(serial_ratio=0.6, delivered=0.7, foreign=1.4),
        backend="process",
        workers=2,
        tasks=8,
        machine_cpus=2.0,
    )
    assert delivery.starved is True


def test_without_the_machine_figures_nothing_is_called_starved() -> None:
    delivery = assess(
        rounds(serial_ratio=1.0, delivered=0.5, foreign=None),
        backend="process",
        workers=2,
        tasks=8,
        machine_cpus=2.0,
    )
    assert (delivery.starved, delivery.capacity.foreign_cpus) == (False, None)


def test_rounds_too_short_for_the_machine_ticks_are_not_judged() -> None:
    assert foreign_cpus((1.0, 0.0, 0.0), MIN_WINDOW_S / 2) is None
    assert foreign_cpus((1.0, 0.0, 0.0), 2 * MIN_WINDOW_S) == pytest.approx(2.0)


def test_stolen_time_counts_as_taken_by_others() -> None:
    assert foreign_cpus((0.5, 0.5, 0.5), 1.0) == pytest.approx(0.5)


def slowed(slowdown: float) -> Measurement:
    """CPU work whose tasks cost *slowdown* times their serial CPU time in the workers."""
    m = rounds(serial_ratio=1.0, delivered=1.9, foreign=0.02, speedup=1.9 / slowdown)
    m.backend_cpu_s = [cpu * slowdown for cpu in m.serial_cpu_s]
    m.backend_s = [cpu / 1.9 for cpu in m.backend_cpu_s]
    return m


def test_process_workers_whose_cpus_ran_the_tasks_slower_are_starved() -> None:
    # All CPU time delivered, but each task took 1.6x its serial CPU time: the machine's
    # CPUs (shared cores, a busy host) gave 1.2 CPUs' worth of work, not 2.
    delivery = assess(
        slowed(1.6), backend="process", workers=2, tasks=8, machine_cpus=2.0, in_processes=True
    )
    assert delivery.starved is True
    assert delivery.capacity.task_slowdown == pytest.approx(1.6)
    assert delivery.capacity.delivered_cpus == pytest.approx(1.9 / 1.6)


def test_a_small_slowdown_in_processes_is_no_starvation() -> None:
    delivery = assess(
        slowed(1.05), backend="process", workers=2, tasks=8, machine_cpus=2.0, in_processes=True
    )
    assert delivery.starved is False


def test_threads_holding_the_gil_are_not_judged_by_their_cpu_time_per_task() -> None:
    # Threads that hand the GIL over spend more CPU per task whatever the machine does.
    m = rounds(serial_ratio=1.0, delivered=1.0, foreign=0.02, speedup=1 / 1.6)
    delivery = assess(m, backend="thread", workers=2, tasks=8, machine_cpus=2.0)
    assert delivery.starved is False
    assert delivery.capacity.task_slowdown is None


def test_threads_that_ran_in_parallel_are_judged_by_their_cpu_time_per_task() -> None:
    delivery = assess(slowed(1.6), backend="thread", workers=2, tasks=8, machine_cpus=2.0)
    assert delivery.capacity.task_slowdown == pytest.approx(1.6)
    assert delivery.starved is True


def test_tasks_of_microseconds_are_not_judged_by_their_cpu_time() -> None:
    tiny = slowed(3.0)
    tiny.serial_cpu_s = [1e-5] * 5
    tiny.backend_cpu_s = [3e-5] * 5
    delivery = assess(
        tiny, backend="process", workers=2, tasks=8, machine_cpus=2.0, in_processes=True
    )
    assert delivery.capacity.task_slowdown is None


def test_a_serial_side_whose_cpu_ran_the_tasks_slower_starves_the_measurement_too() -> None:
    # The workers spent 0.75 of the serial CPU time per task: the serial side ran slow,
    # and the speedup it gives is inflated.
    delivery = assess(
        slowed(0.75), backend="process", workers=2, tasks=8, machine_cpus=2.0, in_processes=True
    )
    assert delivery.starved is True


@pytest.mark.parametrize(
    ("serial_wall", "serial_cpu", "backend_cpu", "fed"),
    [
        (0.1, 0.1, 0.104, True),  # the workers' tasks cost what they cost serially
        (0.1, 0.1, 0.1 * SLOWDOWN_LIMIT * 1.1, False),  # shared CPUs ran them slower
        (0.1, 0.1, 0.1 / SLOWDOWN_LIMIT / 1.1, False),  # the serial side's ran slower
        (0.1, 0.01, 0.05, True),  # mostly waiting: CPU time says nothing of the machine
        (0.004, 0.004, 0.008, True),  # 0.5 ms per task: page faults, wake-ups
    ],
)
def test_a_round_is_fed_unless_one_side_paid_more_cpu_for_the_same_computing_tasks(
    serial_wall: float, serial_cpu: float, backend_cpu: float, fed: bool
) -> None:
    assert round_fed(serial_wall, serial_cpu, backend_cpu, tasks=8) is fed


@pytest.mark.parametrize(
    ("backend_cpu", "threads_wall", "fed"),
    [
        pytest.param(0.127, 0.067, False, id="parallel-threads-on-slow-cpus"),
        pytest.param(0.1, 0.053, True, id="parallel-threads-at-full-speed"),
        pytest.param(0.13, 0.1, True, id="threads-handing-the-gil-over-not-judged"),
    ],
)
def test_threads_are_judged_by_their_cpu_per_task_only_when_they_ran_in_parallel(
    backend_cpu: float, threads_wall: float, fed: bool
) -> None:
    assert round_fed(0.1, 0.1, backend_cpu, tasks=8, threads_wall_s=threads_wall) is fed


def test_computing_rounds_too_short_for_the_machine_ticks_want_more() -> None:
    short = rounds(serial_ratio=1.0, delivered=2.0, foreign=0.0, rounds=1, serial_s=0.05)
    assert short.machine_wall_s < MIN_WINDOW_S
    assert window_too_short(short) is True
    waiting = rounds(serial_ratio=0.05, delivered=0.1, foreign=0.0, rounds=1, serial_s=0.05)
    assert window_too_short(waiting) is False
    silent = rounds(serial_ratio=1.0, delivered=2.0, foreign=None, rounds=1, serial_s=0.05)
    assert window_too_short(silent) is False  # no counters: more rounds would not tell
    long_enough = rounds(serial_ratio=1.0, delivered=2.0, foreign=0.0, rounds=5, serial_s=0.2)
    assert window_too_short(long_enough) is False


@pytest.mark.parametrize(
    ("in_processes", "serial_ratio", "expected"),
    [
        pytest.param(True, 1.0, 1.08, id="cpu-work-in-processes"),
        pytest.param(False, 1.0, 1.08, id="threads-in-parallel"),
        pytest.param(True, 0.1, None, id="waiting-work-not-judged"),
    ],
)
def test_the_task_slowdown_is_the_workers_cpu_per_task_over_the_serial_sides(
    in_processes: bool, serial_ratio: float, expected: float | None
) -> None:
    m = slowed(1.08)
    m.serial_cpu_s = [wall * serial_ratio for wall in m.serial_s]
    m.backend_cpu_s = [cpu * 1.08 for cpu in m.serial_cpu_s]
    assert task_slowdown(m, 8, in_processes) == (
        None if expected is None else pytest.approx(expected)
    )
