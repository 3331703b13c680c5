"""Parsing and validating ``@pytest.mark.parallel(...)`` arguments."""

from __future__ import annotations

import multiprocessing
from typing import Any

import pytest

from pytest_parallel_lab.environment import usable_cpus
from pytest_parallel_lab.marked.marker import (
    DEFAULT_MAX_ROUNDS,
    EXPECTABLE,
    MARKER_HELP,
    Defaults,
    MarkerError,
    ParallelSpec,
    auto_workers,
    parse_marker,
)
from pytest_parallel_lab.vocabulary import Classification

REGISTERED = ("serial", "thread", "process", "multiprocessing", "asyncio")
#: "all": every available backend, the serial A/A check last (its runner is warm by then).
ALL = ("thread", "process", "multiprocessing", "asyncio", "serial")
DEFAULTS = Defaults(rounds=5, timeout_s=60.0, tasks=8, workers=None, start_method=None)
A_START_METHOD = multiprocessing.get_all_start_methods()[0]


def parse(*args: Any, unavailable: dict[str, str] | None = None, **kwargs: Any) -> ParallelSpec:
    return parse_marker(
        args,
        kwargs,
        defaults=DEFAULTS,
        registered=REGISTERED,
        unavailable=unavailable or {},
    )


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        pytest.param(
            (),
            {},
            ParallelSpec(ALL, None, 8, 5, None, 60.0, True),
            id="no-arguments-means-all-backends-and-the-defaults",
        ),
        pytest.param(
            ("thread",),
            {},
            ParallelSpec(("thread",), None, 8, 5, None, 60.0),
            id="a-positional-backend",
        ),
        pytest.param(
            (),
            {"backend": "process"},
            ParallelSpec(("process",), None, 8, 5, None, 60.0),
            id="a-backend-name",
        ),
        pytest.param(
            (),
            {"backend": ["thread", "process", "thread"]},
            ParallelSpec(("thread", "process"), None, 8, 5, None, 60.0),
            id="a-list-of-backends-without-duplicates",
        ),
        pytest.param(
            (),
            {"backend": "all"},
            ParallelSpec(ALL, None, 8, 5, None, 60.0),
            id="all-includes-serial",
        ),
        pytest.param(
            (),
            {"backend": "thread", "workers": 3, "tasks": 2, "rounds": 2, "timeout": 1.5},
            ParallelSpec(("thread",), 3, 2, 2, None, 1.5),
            id="every-number",
        ),
        pytest.param(
            (),
            {"backend": "thread", "workers": "auto", "timeout": 2},
            ParallelSpec(("thread",), None, 8, 5, None, 2.0),
            id="auto-workers-and-an-int-timeout",
        ),
        pytest.param(
            (),
            {"backend": "process", "start_method": A_START_METHOD},
            ParallelSpec(("process",), None, 8, 5, A_START_METHOD, 60.0),
            id="a-start-method-of-this-platform",
        ),
        pytest.param(
            (),
            {"backend": "thread", "compare_results": False},
            ParallelSpec(("thread",), None, 8, 5, None, 60.0, False),
            id="compare-results-off",
        ),
    ],
)
def test_a_good_marker_becomes_a_spec(
    args: tuple[Any, ...], kwargs: dict[str, Any], expected: ParallelSpec
) -> None:
    assert parse(*args, **kwargs) == expected


def test_the_session_defaults_fill_what_the_marker_leaves_out() -> None:
    defaults = Defaults(rounds=2, timeout_s=3.0, tasks=4, workers=2, start_method=A_START_METHOD)
    spec = parse_marker(
        (), {"backend": "thread"}, defaults=defaults, registered=REGISTERED, unavailable={}
    )
    assert spec == ParallelSpec(("thread",), 2, 4, 2, A_START_METHOD, 3.0)


@pytest.mark.parametrize("expected", list(EXPECTABLE))
def test_expect_becomes_the_classification_it_names(expected: Classification) -> None:
    spec = parse(backend="thread", expect=str(expected))
    assert spec.expect is expected


def test_every_classification_but_inconclusive_can_be_expected() -> None:
    assert EXPECTABLE == (
        Classification.CPU_BOUND,
        Classification.GIL_RELEASING,
        Classification.IO_BOUND,
        Classification.OVERHEAD_BOUND,
        Classification.BLOCKING_IN_LOOP,
    )
    assert parse(backend="thread").expect is None


@pytest.mark.parametrize(
    ("default_max", "rounds", "expected"),
    [
        pytest.param(DEFAULT_MAX_ROUNDS, 5, DEFAULT_MAX_ROUNDS, id="default-budget"),
        pytest.param(DEFAULT_MAX_ROUNDS, 40, 40, id="never-fewer-than-the-rounds"),
        pytest.param(10, 2, 10, id="session-budget"),
        pytest.param(10, 10, 10, id="rounds-equal-to-the-budget"),
    ],
)
def test_the_round_budget_of_a_gate_is_never_below_the_rounds(
    default_max: int, rounds: int, expected: int
) -> None:
    defaults = Defaults(rounds=5, timeout_s=60.0, tasks=8, max_rounds=default_max)
    spec = parse_marker(
        (), {"rounds": rounds}, defaults=defaults, registered=REGISTERED, unavailable={}
    )
    assert (spec.rounds, spec.max_rounds) == (rounds, expected)


def test_the_marker_help_shows_the_defaults_and_the_backends() -> None:
    text = MARKER_HELP.format(tasks=8, rounds=5, timeout=60.0, backends="serial, thread")
    assert text == (
        "parallel(backend='all', workers='auto', tasks=8, rounds=5, start_method=None, "
        "timeout=60, compare_results=True, min_speedup=None, expect=None): measure the "
        "test body serially and under each backend (serial, thread) and report the speedup."
    )


def test_all_leaves_out_the_backends_unavailable_here() -> None:
    spec = parse(backend="all", unavailable={"process": "no sem_open"})
    assert "process" not in spec.backends
    assert "serial" in spec.backends


@pytest.mark.parametrize(
    ("args", "kwargs", "argument", "fragments"),
    [
        pytest.param(
            (),
            {"backend": "fibers"},
            "backend",
            ["unknown backend 'fibers'", "'thread'", "'process'", "'all'"],
            id="unknown-backend-lists-the-registered-ones",
        ),
        pytest.param(
            (),
            {"backend": []},
            "backend",
            ["name a backend"],
            id="empty-backend-list",
        ),
        pytest.param(
            (),
            {"backend": 3},
            "backend",
            ["got 3"],
            id="backend-not-a-name",
        ),
        pytest.param(
            ("thread", "process"),
            {},
            "backend",
            ["too many positional arguments", "backend=["],
            id="two-positional-backends",
        ),
        pytest.param(
            ("thread",),
            {"backend": "process"},
            "backend",
            ["too many positional arguments"],
            id="positional-and-keyword-backend",
        ),
        pytest.param(
            (), {"workers": 0}, "workers", ["got 0", "use e.g. workers=4"], id="zero-workers"
        ),
        pytest.param((), {"workers": 1.5}, "workers", ["got 1.5", '"auto"'], id="float-workers"),
        pytest.param((), {"workers": True}, "workers", ["got True"], id="bool-workers"),
        pytest.param((), {"tasks": 0}, "tasks", ["got 0", "tasks=4"], id="zero-tasks"),
        pytest.param((), {"tasks": "8"}, "tasks", ["got '8'"], id="string-tasks"),
        pytest.param((), {"rounds": -1}, "rounds", ["got -1"], id="negative-rounds"),
        pytest.param(
            (), {"timeout": "soon"}, "timeout", ["number of seconds"], id="non-numeric-timeout"
        ),
        pytest.param((), {"timeout": -1}, "timeout", ["positive"], id="negative-timeout"),
        pytest.param((), {"timeout": 0}, "timeout", ["positive"], id="zero-timeout"),
        pytest.param((), {"timeout": float("inf")}, "timeout", ["positive"], id="infinite-timeout"),
        pytest.param(
            (),
            {"start_method": "teleport"},
            "start_method",
            ["'teleport' is not a start method", repr(A_START_METHOD)],
            id="unknown-start-method",
        ),
        pytest.param(
            (),
            {"compare_results": "yes"},
            "compare_results",
            ["expected True or False"],
            id="compare-results-not-a-bool",
        ),
        pytest.param(
            (),
            {"expect": "cpu"},
            "expect",
            ["unknown classification 'cpu'", "'cpu-bound'", "'blocking-in-loop'"],
            id="unknown-expected-class-lists-the-valid-ones",
        ),
        pytest.param(
            (),
            {"expect": "inconclusive"},
            "expect",
            ["unknown classification 'inconclusive'"],
            id="inconclusive-is-no-claim",
        ),
        pytest.param(
            (),
            {"backends": "thread"},
            "backends",
            ["unknown argument 'backends'", "backend, workers, tasks"],
            id="unknown-argument-lists-the-known-ones",
        ),
    ],
)
def test_a_bad_marker_names_the_argument_the_problem_and_the_fix(
    args: tuple[Any, ...], kwargs: dict[str, Any], argument: str, fragments: list[str]
) -> None:
    with pytest.raises(MarkerError) as excinfo:
        parse(*args, **kwargs)
    message = str(excinfo.value)
    assert excinfo.value.argument == argument
    assert message.startswith(f"@pytest.mark.parallel({argument}=...): ")
    assert "Fix: " in message
    for fragment in fragments:
        assert fragment in message


def test_an_unavailable_backend_says_why_and_what_to_do() -> None:
    with pytest.raises(MarkerError) as excinfo:
        parse(backend="process", unavailable={"process": "no sem_open here"})
    message = str(excinfo.value)
    assert "'process' is not available" in message
    assert "no sem_open here" in message
    assert "choose another backend" in message


@pytest.mark.parametrize(
    ("cpus", "xdist_workers", "expected"),
    [
        pytest.param(8, 0, 8, id="no-xdist-all-cpus"),
        pytest.param(8, 1, 8, id="one-xdist-worker"),
        pytest.param(8, 2, 4, id="shared-fairly"),
        pytest.param(2, 2, 1, id="two-cpus-two-xdist-workers"),
        pytest.param(2, 4, 1, id="never-below-one"),
    ],
)
def test_auto_workers_share_the_cpus_among_xdist_workers(
    cpus: int, xdist_workers: int, expected: int
) -> None:
    assert auto_workers(cpus, xdist_workers) == expected


def test_usable_cpus_is_a_positive_count() -> None:
    assert usable_cpus() >= 1
