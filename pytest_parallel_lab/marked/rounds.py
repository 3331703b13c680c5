"""Measure a workload serially and under a backend in paired, interleaved rounds.

The order of one measurement:

1. warm-up under the *backend* first: a workload that kills its worker (``os._exit``,
   a segfault) is found in a child process before it can run inside pytest itself;
2. warm-up serially; both warm-ups' results are compared task by task;
3. ``rounds`` paired rounds, alternating which side goes first so that a drift of
   the machine (another job starting, a CPU clock change) hits both sides alike;
4. the dispatch cost of an empty task on the same pool.

Nothing here knows about pytest: the plugin turns the exceptions into failures.
"""

from __future__ import annotations

import math
import pickle
import reprlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_parallel_lab import stats, timing
from pytest_parallel_lab.backends.base import BatchResult, TaskError, Work, empty_task
from pytest_parallel_lab.backends.protocol import Runner

#: Rounds used to estimate the dispatch cost of an empty task.
DISPATCH_REPEATS = 3
#: A timed sample shorter than this is a repetition of runs (see Measurer.calibrate_loops).
MIN_SAMPLE_S = 0.002
#: ... but the longer side's sample stays under this, and a sample under this many runs.
MAX_SAMPLE_S = 0.05
MAX_LOOPS = 1000


class MeasurementFailure(Exception):
    """The workload cannot be measured; the message is meant for the user."""


class TaskFailures(MeasurementFailure):
    """Tasks raised: every distinct error, with the task indices that raised it."""

    def __init__(self, side: str, errors: Sequence[TaskError]) -> None:
        self.side = side
        self.errors = list(errors)
        super().__init__(describe_task_errors(side, self.errors))


class OutcomeRequest(MeasurementFailure):
    """A task called ``pytest.skip()``, ``pytest.fail()``, ``pytest.xfail()`` or
    ``pytest.exit()``: the item takes that outcome (``kind`` is the exception's name)."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


class ResultMismatch(MeasurementFailure):
    """A task returned something else under the backend than serially."""


class PicklingProblem(MeasurementFailure):
    """Something a process backend must send to its workers cannot be pickled."""


def describe_task_errors(side: str, errors: Sequence[TaskError]) -> str:
    """One paragraph per distinct error (type and message), naming its task indices."""
    groups: dict[tuple[str, str], list[TaskError]] = {}
    for error in errors:
        groups.setdefault(error.signature, []).append(error)
    total = len({e.index for e in errors})
    lines = [f"{total} task(s) failed under the {side} backend ({len(groups)} distinct error(s)):"]
    for (type_name, message), group in groups.items():
        indices = ", ".join(str(e.index) for e in sorted(group, key=lambda e: e.index))
        lines.append(f"\n- {type_name}: {message}\n  tasks: {indices}")
        lines.append(f"  first traceback (task {group[0].index}):")
        lines.extend("    " + line for line in group[0].traceback.rstrip().splitlines())
    return "\n".join(lines)


def _dumps(pickler: str) -> Callable[..., bytes | memoryview]:
    """The ``dumps`` of *pickler*: ``"pickle"`` (what multiprocessing and
    InterpreterPoolExecutor send with) or ``"cloudpickle"`` (Dask, loky)."""
    if pickler == "cloudpickle":
        import cloudpickle

        dumps: Callable[..., bytes | memoryview] = cloudpickle.dumps
        return dumps
    from multiprocessing.reduction import ForkingPickler

    return ForkingPickler.dumps


def find_unpicklable(
    named_objects: Sequence[tuple[str, Any]], pickler: str = "pickle"
) -> tuple[str, Any, Exception] | None:
    """The first (description, object, error) that the backend's pickler rejects."""
    dumps = _dumps(pickler)
    for description, obj in named_objects:
        try:
            dumps(obj)
        except Exception as exc:
            return description, obj, exc
    return None


def pickled_size(obj: Any, pickler: str = "pickle") -> int | None:
    """Bytes of *obj* pickled as the backend would, or None when it cannot be."""
    try:
        return len(_dumps(pickler)(obj, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:
        return None


_short_repr = reprlib.Repr()
_short_repr.maxstring = 120
_short_repr.maxother = 120


def compare_values(serial: BatchResult, candidate: BatchResult, backend: str) -> None:
    """Raise ResultMismatch when a comparable task value differs between the sides."""
    for expected, got in zip(serial.outcomes, candidate.outcomes, strict=True):
        if not values_comparable(expected.value, got.value):
            continue
        if not _equal(expected.value, got.value):
            raise ResultMismatch(
                f"task {expected.index} returned a different value under the {backend} backend "
                f"than serially (a race?):\n  serial:  {_short_repr.repr(expected.value)}\n"
                f"  {backend}: {_short_repr.repr(got.value)}\n"
                "Pass compare_results=False to the marker if the value is meant to vary."
            )


def values_comparable(a: Any, b: Any) -> bool:
    """True when ``==`` says something about *a* and *b* (not identity, not arrays)."""
    if type(a) is not type(b):
        return a is not None and b is not None
    if a is None:
        # A body returning nothing; checked apart, as NoneType has an __eq__ of its own
        # since CPython 3.14 (before, it was object's, which the check below relies on).
        return False
    own_eq: object = type(a).__eq__
    return own_eq is not object.__eq__


def _equal(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # e.g. numpy arrays: truth value is ambiguous; not comparable
        return True


@dataclass
class Measurement:
    """The paired rounds of one workload, growing as rounds are added."""

    backend: str
    serial_s: list[float] = field(default_factory=list)
    backend_s: list[float] = field(default_factory=list)
    serial_cpu_s: list[float] = field(default_factory=list)
    backend_cpu_s: list[float] = field(default_factory=list)
    #: what the machine and this process spent over all the rounds (None where the
    #: platform does not tell), and the wall time that took
    machine: MachineUse | None = None
    machine_wall_s: float = 0.0
    values: list[Any] = field(default_factory=list)
    dispatch_s: float | None = None
    #: runs of the work in one timed sample (1 unless a run is too short to time alone)
    loops: int = 1
    #: rounds taken again because the machine did not feed them (see Measurer's *fed*)
    retaken: int = 0

    def copy(self) -> Measurement:
        """A copy whose rounds do not grow with this one's."""
        return Measurement(
            self.backend,
            list(self.serial_s),
            list(self.backend_s),
            list(self.serial_cpu_s),
            list(self.backend_cpu_s),
            self.machine,
            self.machine_wall_s,
            list(self.values),
            self.dispatch_s,
            self.loops,
            self.retaken,
        )

    def drop_rounds(self) -> None:
        """Forget the rounds taken so far (to take them again: a starved attempt)."""
        for rounds in (
            self.serial_s,
            self.backend_s,
            self.serial_cpu_s,
            self.backend_cpu_s,
        ):
            rounds.clear()
        self.machine, self.machine_wall_s = None, 0.0
        self.retaken = 0

    def estimate(self) -> stats.SpeedupEstimate:
        """Speedup with its interval over the rounds taken so far."""
        return stats.estimate_speedup(self.serial_s, self.backend_s)


#: (busy, steal, own) CPU seconds over some rounds: the whole machine's busy and stolen
#: time, and this process's with its pool workers. Read once around the rounds, not per
#: run: the machine counts in ticks of 10 ms, too coarse for one run of a few ms.
MachineUse = tuple[float, float, float]


def _machine_reading() -> MachineUse | None:
    machine, own = timing.machine_cpu_seconds(), timing.own_cpu_seconds()
    if machine is None or own is None:
        return None
    return machine[0], machine[1], own


def _machine_use(before: MachineUse | None, after: MachineUse | None) -> MachineUse | None:
    if before is None or after is None:
        return None
    busy, steal, own = (a - b for a, b in zip(after, before, strict=True))
    return busy, steal, own


def _sum(a: MachineUse, b: MachineUse) -> MachineUse:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


class Measurer:
    """Runs one workload serially and under a backend, round by round."""

    def __init__(
        self,
        *,
        serial: Runner,
        candidate: Runner,
        backend: str,
        work: Work,
        timeout: float,
        compare_results: bool = True,
        on_batch: Callable[[str, BatchResult], None] | None = None,
        fed: Callable[[BatchResult, BatchResult], bool] | None = None,
        retakes: int = 0,
    ) -> None:
        """*fed* (serial, candidate) says whether the machine fed a round; one it did
        not is taken again, up to *retakes* times per set of rounds."""
        self.serial = serial
        self.candidate = candidate
        self.work = work
        self.timeout = timeout
        self.compare_results = compare_results
        self.on_batch = on_batch
        self.fed = fed
        self.retakes = retakes
        self.measurement = Measurement(backend=backend)
        #: the warm-up's wall time per side (candidate, serial)
        self._warm: tuple[float, float | None] = (0.0, None)

    def _run(self, runner: Runner, side: str) -> BatchResult:
        """Run the work ``loops`` times on *runner* (one sample: wall and CPU time
        per run, the last run's outcomes); *side* names it in errors and traces."""
        result = self._run_once(runner, side)
        loops = self.measurement.loops
        if loops == 1:
            return result
        wall, cpu = result.wall_s, result.cpu_s
        for _ in range(loops - 1):
            result = self._run_once(runner, side)
            wall += result.wall_s
            cpu += result.cpu_s
        return BatchResult(wall / loops, cpu / loops, result.outcomes)

    def _run_once(self, runner: Runner, side: str) -> BatchResult:
        result = runner.run(self.work, self.timeout)
        if result.errors:
            requested = [e for e in result.errors if e.control is not None]
            if requested:
                raise OutcomeRequest(requested[0].control or "", requested[0].message)
            raise TaskFailures(side, result.errors)
        if self.on_batch is not None:
            self.on_batch(side, result)
        return result

    def _serial(self) -> BatchResult:
        return self._run(self.serial, "serial")

    def _candidate(self) -> BatchResult:
        return self._run(self.candidate, self.measurement.backend)

    def warm_up(self, serial_wall_s: float | None = None) -> None:
        """One untimed run of each side, backend first; compares their results. Given the
        serial side's wall time (its runner is warm from this very work), the backend only
        (nothing at all when the backend is that same runner, the A/A check): the first
        round compares the values."""
        if serial_wall_s is not None and self.candidate is self.serial:
            self._warm = (serial_wall_s, serial_wall_s)
            return
        candidate = self._candidate()
        self.measurement.values = [o.value for o in candidate.outcomes]
        self._warm = (candidate.wall_s, serial_wall_s)
        if serial_wall_s is not None:
            return
        serial = self._serial()
        if self.compare_results:
            compare_values(serial, candidate, self.measurement.backend)
        self._warm = (candidate.wall_s, serial.wall_s)

    def calibrate_loops(self) -> int:
        """Runs per timed sample, from the warm-up: a run shorter than ``MIN_SAMPLE_S``
        is repeated inside one sample (as pyperf and pytest-benchmark calibrate), so that
        timer and scheduler jitter do not make up its time; never beyond ``MAX_SAMPLE_S``
        for the longer side."""
        walls = [w for w in self._warm if w is not None and w > 0]
        m = self.measurement
        if not walls or min(walls) >= MIN_SAMPLE_S:
            return m.loops
        wanted = math.ceil(MIN_SAMPLE_S / min(walls))
        allowed = max(1, int(MAX_SAMPLE_S / max(walls)))
        m.loops = max(1, min(wanted, allowed, MAX_LOOPS))
        return m.loops

    def add_rounds(self, count: int) -> Measurement:
        """Take *count* more paired rounds, alternating which side runs first; a round
        the machine did not feed is taken again while retakes are left."""
        m = self.measurement
        before, started = _machine_reading(), timing.perf_counter()
        taken = 0
        while taken < count:
            # Alternate which side goes first, so that drift hits both alike.
            if len(m.serial_s) % 2 == 0:
                serial = self._serial()
                candidate = self._candidate()
            else:
                candidate = self._candidate()
                serial = self._serial()
            if self.compare_results:
                compare_values(serial, candidate, m.backend)
            if (
                self.fed is not None
                and m.retaken < self.retakes
                and not self.fed(serial, candidate)
            ):
                m.retaken += 1
                continue
            taken += 1
            m.serial_s.append(serial.wall_s)
            m.backend_s.append(max(candidate.wall_s, 1e-9))
            m.serial_cpu_s.append(serial.cpu_s)
            m.backend_cpu_s.append(candidate.cpu_s)
            m.values = [o.value for o in candidate.outcomes]
        use = _machine_use(before, _machine_reading())
        first = m.machine_wall_s == 0.0
        m.machine = use if first or use is None or m.machine is None else _sum(m.machine, use)
        m.machine_wall_s += timing.perf_counter() - started
        return m

    def measure_dispatch(self) -> float:
        """Seconds per empty task through the backend (median of a few runs)."""
        empty = Work(call=empty_task, items=tuple(range(len(self.work.items))))
        times = [self.candidate.run(empty, self.timeout).wall_s for _ in range(DISPATCH_REPEATS)]
        per_task = stats.median(times) / max(len(empty.items), 1)
        self.measurement.dispatch_s = per_task
        return per_task
