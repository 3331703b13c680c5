"""What the machine delivered during a measurement, and whether it starved it.

On a shared runner another job can take the CPUs a process pool needed: the
parallel side then looks slow, and a "does not scale" drawn from it is false. Per
side, the CPU time the tasks got is set against the wall time (measured inside the
workers), and the machine's own counters (``timing.machine_cpu_seconds``) show what
other processes took meanwhile. A side is *starved* when its work needed CPUs (its
serial run computes), got clearly less than it could use, and the machine had no
more to give; such a measurement is taken again, and if it stays starved its row is
marked ``machine_busy`` and no conclusion is drawn from it.

Pure: the rounds in, a :class:`~pytest_parallel_lab.document.records.Capacity` and a
verdict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_parallel_lab import stats
from pytest_parallel_lab.document.records import Capacity
from pytest_parallel_lab.marked.diagnosis import WAITING_RATIO
from pytest_parallel_lab.marked.rounds import MachineUse, Measurement

#: A side is starved when it got less than this share of the CPUs its work needed and
#: the machine had no more than this share free.
STARVED_SHARE = 0.75
#: Work that needs less CPU than this (it mostly waits) cannot be starved of CPU.
MIN_DEMAND_CPUS = 0.5
#: Rounds shorter than this all together are not judged: the machine counts CPU time in
#: ticks of 10 ms per CPU, which would swamp the figure.
MIN_WINDOW_S = 0.25
#: Serial CPU over wall at or above which the work computes (its tasks' CPU time is
#: their work, so the parallel side's CPU time per task can be compared with it).
CPU_WORK = 0.8
#: CPU time per task in worker processes over serial above which the machine's CPUs ran
#: them slower: on a machine of its own the two differ by a few percent.
SLOWDOWN_LIMIT = 1.15
#: Tasks shorter than this in CPU time are not compared: a few microseconds of work in a
#: worker process carry page faults and wake-ups of their own, whatever the machine.
MIN_TASK_CPU_S = 0.001
#: A serial side below this CPU share of its wall time may have been squeezed.
SERIAL_FED_RATIO = 0.9
#: Backends that run their tasks in one thread whatever the worker count.
ONE_THREAD_BACKENDS = ("serial", "asyncio")
#: CPUs that threads keep busy when they run in parallel (the GIL released): only then
#: does their CPU time per task tell the machine's speed.
PARALLEL_THREAD_CPUS = 1.5


def round_fed(
    serial_wall_s: float,
    serial_cpu_s: float,
    backend_cpu_s: float,
    tasks: int,
    threads_wall_s: float | None = None,
) -> bool:
    """Whether one round of CPU work run in parallel got the CPUs it ran on in full:
    its tasks cost about the CPU time they cost serially in the same round. A round
    whose tasks cost more (or whose serial side's did) was run on CPUs the machine
    shared out (a busy host, SMT siblings): it says nothing about the workload, and the
    measurement takes it again (:class:`~pytest_parallel_lab.marked.rounds.Measurer`).

    Threads (*threads_wall_s*, their side's wall time) are judged only when they ran in
    parallel, keeping ``PARALLEL_THREAD_CPUS`` busy (native code that releases the GIL):
    threads that hand the GIL to each other pay CPU time for it whatever the machine."""
    if serial_wall_s <= 0 or serial_cpu_s / serial_wall_s < CPU_WORK:
        return True
    if serial_cpu_s / max(1, tasks) < MIN_TASK_CPU_S:
        return True
    if threads_wall_s is not None and backend_cpu_s < PARALLEL_THREAD_CPUS * threads_wall_s:
        return True
    slowdown = backend_cpu_s / serial_cpu_s
    return 1 / SLOWDOWN_LIMIT <= slowdown <= SLOWDOWN_LIMIT


def task_slowdown(m: Measurement, tasks: int, in_processes: bool) -> float | None:
    """How much more CPU time the tasks of *m* cost in worker processes than serially
    (median over the rounds): the speed of the CPUs the machine gave the workers against
    the serial side's. None for work that is not CPU work in worker processes (threads'
    CPU time per task also grows when they hand the GIL to each other: they count only
    when they ran in parallel, ``PARALLEL_THREAD_CPUS`` busy) or tasks too short."""
    if not m.serial_s:
        return None
    parallel = delivered_cpus(m.backend_s, m.backend_cpu_s) >= PARALLEL_THREAD_CPUS
    if not (in_processes or parallel):
        return None
    serial_cpu = stats.median(m.serial_cpu_s)
    if delivered_cpus(m.serial_s, m.serial_cpu_s) < CPU_WORK:
        return None
    if serial_cpu / max(1, tasks) < MIN_TASK_CPU_S:
        return None
    return stats.median(m.backend_cpu_s) / serial_cpu


def window_too_short(m: Measurement) -> bool:
    """The rounds of *m* are too short for the machine's counters to tell foreign load,
    while its serial side computes (a side that mostly waits cannot be starved)."""
    if m.machine is None or m.machine_wall_s >= MIN_WINDOW_S or not m.serial_s:
        return False
    return delivered_cpus(m.serial_s, m.serial_cpu_s) >= MIN_DEMAND_CPUS


@dataclass(frozen=True)
class Delivery:
    """The parallel side's capacity figures, and whether either side was starved."""

    capacity: Capacity
    starved: bool


def expected_cpus(backend: str, workers: int, tasks: int, machine_cpus: float) -> float:
    """The CPUs the parallel side could use on this machine when it is idle."""
    if backend in ONE_THREAD_BACKENDS:
        return min(1.0, machine_cpus)
    return min(float(max(1, min(workers, tasks))), machine_cpus)


def delivered_cpus(walls: Sequence[float], task_cpus: Sequence[float]) -> float:
    """CPU time the tasks got per second of wall time, median over the rounds."""
    return stats.median(
        [cpu / wall for cpu, wall in zip(task_cpus, walls, strict=True) if wall > 0]
    )


def foreign_cpus(machine: MachineUse | None, wall_s: float) -> float | None:
    """CPUs that other processes and a hypervisor took during the rounds: the machine's
    busy and stolen time minus what this process and its pool workers used. None where
    the platform does not tell, or for rounds too short for the machine's 10 ms ticks."""
    if machine is None or wall_s < MIN_WINDOW_S:
        return None
    busy, steal, own = machine
    return max(0.0, (busy + steal - own) / wall_s)


def assess(
    m: Measurement,
    *,
    backend: str,
    workers: int,
    tasks: int,
    machine_cpus: float,
    in_processes: bool = False,
) -> Delivery:
    """What the machine gave both sides of *m*, and whether it starved either.

    Two ways to starve the parallel side: other processes take the CPUs it needed, or
    the CPUs it gets run its tasks slower than the serial side's (SMT siblings, a busy
    host): the same pure-Python task in a worker process then costs more CPU time than
    serially, which only the machine explains. Threads count for the second only when
    they ran in parallel (the GIL released): their CPU time per task also grows when they
    hand the GIL to each other.
    """
    serial_ratio = delivered_cpus(m.serial_s, m.serial_cpu_s)
    expected = expected_cpus(backend, workers, tasks, machine_cpus)
    busy = delivered_cpus(m.backend_s, m.backend_cpu_s)
    foreign = foreign_cpus(m.machine, m.machine_wall_s)
    slowdown = task_slowdown(m, tasks, in_processes)
    delivered = busy / max(1.0, slowdown or 1.0)
    # The parallel side needs as many CPUs as it can use, as far as its work computes.
    demand = expected * min(1.0, serial_ratio)
    # A slowdown below 1 is the serial side's CPU running the same tasks slower: the
    # speedup is then as false as with slow workers.
    slow_serial = slowdown is not None and slowdown < 1 / SLOWDOWN_LIMIT
    starved = (
        _starved(demand, delivered, foreign, machine_cpus, slowdown)
        or _serial_starved(serial_ratio, foreign, machine_cpus)
        or slow_serial
    )
    return Delivery(Capacity(expected, delivered, foreign, slowdown), starved)


def _starved(
    demand: float,
    delivered: float,
    foreign: float | None,
    machine: float,
    slowdown: float | None,
) -> bool:
    if demand < MIN_DEMAND_CPUS or delivered >= STARVED_SHARE * demand:
        return False
    slow_cpus = slowdown is not None and slowdown > SLOWDOWN_LIMIT
    taken = foreign is not None and machine - foreign < STARVED_SHARE * demand
    return slow_cpus or taken


def _serial_starved(ratio: float, foreign: float | None, machine: float) -> bool:
    """The serial side got less than a CPU because the others left it less than one.

    Its CPU ratio alone cannot tell that from waiting, the machine's counters can; a
    ratio below ``WAITING_RATIO`` is taken for waiting (CPU work squeezed that far needs
    more than three busy processes per free CPU)."""
    if foreign is None:
        return False
    return WAITING_RATIO <= ratio < SERIAL_FED_RATIO and machine - foreign < STARVED_SHARE
