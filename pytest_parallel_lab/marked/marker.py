"""Parse and validate ``@pytest.mark.parallel(...)`` arguments.

Pure: the plugin hands in the marker's args and kwargs plus the session defaults and
gets a :class:`ParallelSpec` or a :class:`MarkerError` whose message names the
argument and the fix (the plugin adds the test's node id).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_parallel_lab.vocabulary import Classification

#: Documented defaults, chosen for a quick look that still gives an interval.
DEFAULT_TASKS = 8
DEFAULT_ROUNDS = 5
DEFAULT_TIMEOUT_S = 60.0
ALL_BACKENDS = "all"

KNOWN_ARGUMENTS = (
    "backend",
    "workers",
    "tasks",
    "rounds",
    "start_method",
    "timeout",
    "compare_results",
    "min_speedup",
    "expect",
)
#: Largest number of rounds a min_speedup gate may grow to by default.
DEFAULT_MAX_ROUNDS = 30

#: The marker's line in ``pytest --markers``, from the same defaults the parser uses.
MARKER_HELP = (
    f"parallel(backend={ALL_BACKENDS!r}, workers='auto', tasks={{tasks}}, rounds={{rounds}}, "
    f"start_method=None, timeout={{timeout:g}}, compare_results=True, min_speedup=None, "
    "expect=None): measure the test body serially and under each backend ({backends}) "
    "and report the speedup."
)


class MarkerError(ValueError):
    """A marker argument is wrong: names the argument, the problem and the fix."""

    def __init__(self, argument: str, problem: str, fix: str) -> None:
        self.argument = argument
        super().__init__(f"@pytest.mark.parallel({argument}=...): {problem}. Fix: {fix}")


@dataclass(frozen=True)
class Defaults:
    """Session-wide defaults (from the command line and ini file)."""

    rounds: int = DEFAULT_ROUNDS
    timeout_s: float = DEFAULT_TIMEOUT_S
    tasks: int = DEFAULT_TASKS
    workers: int | None = None  # None: "auto"
    start_method: str | None = None
    min_speedup: float | None = None
    max_rounds: int = DEFAULT_MAX_ROUNDS
    backends: tuple[str, ...] | None = None  # --parallel-backend overrides the marker


@dataclass(frozen=True)
class ParallelSpec:
    """A validated marker: what to measure and how."""

    backends: tuple[str, ...]
    workers: int | None  # None: "auto", resolved per session
    tasks: int
    rounds: int
    start_method: str | None
    timeout_s: float
    compare_results: bool = True
    #: Worker counts of a sweep (``workers=[1, 2, 4, 8]``); empty for a single count.
    workers_sweep: tuple[int, ...] = ()
    min_speedup: float | None = None
    expect: Classification | None = None
    #: Rounds a min_speedup gate may grow to (never fewer than ``rounds``).
    max_rounds: int = DEFAULT_MAX_ROUNDS


def auto_workers(cpus: int, xdist_workers: int) -> int:
    """``workers="auto"``: the usable CPUs, shared fairly among xdist workers."""
    return max(1, cpus // max(1, xdist_workers))


def _positive_int(argument: str, value: Any, *, allow_auto: bool = False) -> int | None:
    if allow_auto and value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        accepted = 'an int >= 1 or "auto"' if allow_auto else "an int >= 1"
        raise MarkerError(argument, f"got {value!r}, expected {accepted}", f"use e.g. {argument}=4")
    return value


def parse_timeout(argument: str, value: Any) -> float:
    """A positive, finite number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MarkerError(
            argument, f"got {value!r}, expected a number of seconds", f"use e.g. {argument}=30"
        )
    if not math.isfinite(value) or value <= 0:
        raise MarkerError(
            argument,
            f"got {value!r}, expected a positive number of seconds",
            f"use e.g. {argument}=30",
        )
    return float(value)


#: Classifications ``expect=`` may name: every one but "inconclusive", which is no claim.
EXPECTABLE = tuple(c for c in Classification if c is not Classification.INCONCLUSIVE)


def parse_min_speedup(argument: str, value: Any) -> float:
    """A speedup threshold: a finite number above zero."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MarkerError(argument, f"got {value!r}, expected a number", f"use e.g. {argument}=1.5")
    if not math.isfinite(value) or value <= 0:
        raise MarkerError(
            argument, f"got {value!r}, expected a number above 0", f"use e.g. {argument}=1.5"
        )
    return float(value)


def parse_start_method(argument: str, value: Any) -> str | None:
    """None (the platform's default) or a start method this platform has."""
    if value is None:
        return None
    import multiprocessing  # here: a run that never asks does not import it

    methods = multiprocessing.get_all_start_methods()
    if value not in methods:
        raise MarkerError(
            argument,
            f"{value!r} is not a start method of this platform",
            f"use one of {', '.join(repr(m) for m in methods)} or leave it out",
        )
    return str(value)


def parse_backends(
    value: Any,
    registered: Sequence[str],
    unavailable: Mapping[str, str],
    not_in_all: Collection[str] = (),
) -> tuple[str, ...]:
    """A name, a list of names, or "all" (every backend available here, but those in
    *not_in_all*: a third-party backend that must be named to run)."""
    names: list[Any] = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names:
        raise MarkerError(
            "backend",
            f"got {value!r}",
            'name a backend or a list of them, e.g. backend=["thread", "process"]',
        )
    if names == [ALL_BACKENDS]:
        # The serial A/A check last: by then the serial runner is warm for this test, so
        # neither of its sides needs a warm-up of its own.
        found = [n for n in registered if n not in unavailable and n not in not_in_all]
        return tuple(sorted(found, key=lambda name: name == "serial"))
    chosen: list[str] = []
    for name in names:
        if not isinstance(name, str) or name not in registered:
            raise MarkerError(
                "backend",
                f"unknown backend {name!r}",
                f"use one of {', '.join(repr(n) for n in registered)} or {ALL_BACKENDS!r}",
            )
        if name in unavailable:
            raise MarkerError(
                "backend",
                f"backend {name!r} is not available on this interpreter: {unavailable[name]}",
                "choose another backend or run on an interpreter that supports it",
            )
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def parse_marker(
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    defaults: Defaults,
    registered: Sequence[str],
    unavailable: Mapping[str, str],
    not_in_all: Collection[str] = (),
) -> ParallelSpec:
    """Validate a marker's arguments; raises :class:`MarkerError` on the first bad one."""
    _check_names(args, kwargs)
    backend_value = args[0] if args else kwargs.get("backend", ALL_BACKENDS)
    compare = kwargs.get("compare_results", True)
    if not isinstance(compare, bool):
        raise MarkerError(
            "compare_results",
            f"got {compare!r}, expected True or False",
            "use compare_results=False",
        )
    workers, sweep = _parse_workers(kwargs, defaults)
    min_speedup = kwargs.get("min_speedup", defaults.min_speedup)
    if min_speedup is not None:
        min_speedup = parse_min_speedup("min_speedup", min_speedup)
    expect = _parse_expect(kwargs.get("expect"))
    if defaults.backends is not None:
        backend_value = list(defaults.backends)
    backends = parse_backends(backend_value, registered, unavailable, not_in_all)
    tasks = _positive_int("tasks", kwargs.get("tasks", defaults.tasks)) or defaults.tasks
    rounds = _positive_int("rounds", kwargs.get("rounds", defaults.rounds)) or defaults.rounds
    return ParallelSpec(
        backends=backends,
        workers=workers,
        tasks=tasks,
        rounds=rounds,
        start_method=parse_start_method(
            "start_method", kwargs.get("start_method", defaults.start_method)
        ),
        timeout_s=parse_timeout("timeout", kwargs.get("timeout", defaults.timeout_s)),
        compare_results=compare,
        workers_sweep=sweep,
        min_speedup=min_speedup,
        expect=expect,
        max_rounds=max(defaults.max_rounds, rounds),
    )


def _check_names(args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    unknown = sorted(set(kwargs) - set(KNOWN_ARGUMENTS))
    if unknown:
        raise MarkerError(
            unknown[0],
            f"unknown argument {unknown[0]!r}",
            f"the marker takes {', '.join(KNOWN_ARGUMENTS)}",
        )
    if len(args) > 1 or (args and "backend" in kwargs):
        raise MarkerError(
            "backend",
            "too many positional arguments",
            'pass backends as backend=["thread", "process"]',
        )


def _parse_workers(
    kwargs: Mapping[str, Any], defaults: Defaults
) -> tuple[int | None, tuple[int, ...]]:
    """The worker count (None: "auto") and, for ``workers=[1, 2, 4]``, the sweep."""
    value = kwargs.get("workers")
    if isinstance(value, (list, tuple)):
        if not value:
            raise MarkerError(
                "workers", "got an empty list", "list worker counts, e.g. workers=[1, 2, 4]"
            )
        sweep = tuple(sorted({_positive_int("workers", v) or 1 for v in value}))
        return sweep[0], sweep
    if "workers" in kwargs:
        return _positive_int("workers", value, allow_auto=True), ()
    return defaults.workers, ()


def _parse_expect(value: Any) -> Classification | None:
    if value is None:
        return None
    if value not in EXPECTABLE:
        raise MarkerError(
            "expect",
            f"unknown classification {value!r}",
            f"use one of {', '.join(repr(c.value) for c in EXPECTABLE)}",
        )
    return Classification(value)
