"""First-use costs that xdist workers repeat, on suites worked out on paper."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import FREE

from pytest_parallel_lab.document.suite import SuiteSection, TestTiming
from pytest_parallel_lab.suite.first_use import (
    FIRST_USE_MIN_S,
    FIRST_USE_RATIO,
    FirstUse,
    estimate_first_use,
    function_unit,
    module_unit,
)
from pytest_parallel_lab.suite.model import model_from_section
from pytest_parallel_lab.suite.simulate import lower_bound, predict_xdist_wall_time
from pytest_parallel_lab.vocabulary import Outcome


def timings(
    calls: list[tuple[str, float]], outcome: Outcome = Outcome.PASSED, worker: str = "main"
) -> tuple[TestTiming, ...]:
    """Tests that ran one after another in the order given, each only a call."""
    start = 0.0
    rows = []
    for index, (nodeid, call) in enumerate(calls):
        rows.append(TestTiming(nodeid, worker, 0.0, call, 0.0, outcome, start, index=index))
        start += call
    return tuple(rows)


#: a.py's first test builds a cache that costs 2 s; a.py's other tests and b.py's take 1 s.
CACHED = timings(
    [
        ("a.py::a0", 3.0),
        ("a.py::a1", 1.0),
        ("a.py::a2", 1.0),
        ("b.py::b0", 1.0),
        ("b.py::b1", 1.0),
        ("b.py::b2", 1.0),
    ]
)


def test_units_are_the_module_and_the_parametrized_function() -> None:
    assert module_unit("a/b.py::C::t[1]") == "a/b.py"
    assert function_unit("a/b.py::C::t[1-x]") == "a/b.py::C::t"
    assert function_unit("a/b.py::C::t") == ""


def test_the_first_test_beyond_its_siblings_median_is_the_modules_first_use_cost() -> None:
    estimate = estimate_first_use(CACHED)
    assert estimate.costs == {"a.py": 2.0}
    assert estimate.paid_s == (2.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert estimate.units == (("a.py",),) * 3 + ((),) * 3
    assert estimate.total_s == 2.0


@pytest.mark.parametrize(
    ("calls", "costs"),
    [
        # a parametrized function in the middle of a module: its first case, 0.5 s
        # beyond the median of the other cases, pays for the function
        (
            [("m.py::x", 0.1), ("m.py::f[1]", 0.6), ("m.py::f[2]", 0.1), ("m.py::f[3]", 0.1)],
            {"m.py::f": 0.5},
        ),
        # less than twice the median: a longer test, not a first use
        ([("m.py::t0", 0.19), ("m.py::t1", 0.1), ("m.py::t2", 0.1)], {}),
        # twice the median but less than a millisecond more: noise
        ([("m.py::t0", 0.0008), ("m.py::t1", 0.0004), ("m.py::t2", 0.0004)], {}),
        # one sibling is no median
        ([("m.py::t0", 3.0), ("m.py::t1", 1.0)], {}),
        # the module's first test is also its function's first: counted once, for the module
        ([("m.py::f[1]", 3.0), ("m.py::f[2]", 1.0), ("m.py::f[3]", 1.0)], {"m.py": 2.0}),
    ],
)
def test_the_estimate_counts_only_a_clearly_larger_first_test_once(
    calls: list[tuple[str, float]], costs: dict[str, float]
) -> None:
    assert (FIRST_USE_RATIO, FIRST_USE_MIN_S) == (2.0, 0.001)
    assert estimate_first_use(timings(calls)).costs == pytest.approx(costs)


def with_cpu(rows: tuple[TestTiming, ...], cpus: list[float]) -> tuple[TestTiming, ...]:
    return tuple(dataclasses.replace(r, cpu_s=c) for r, c in zip(rows, cpus, strict=True))


def test_a_first_test_that_is_longer_because_it_waits_is_no_first_use() -> None:
    # func-timeout's modules: the first test sleeps 7 s through the timeouts it tests,
    # on 0.01 s of CPU like its siblings. Counted as first use (its wall time), every
    # worker that ran a test of the module paid 7 s more: -n 2 predicted 38 s, ran 32.5 s.
    rows = with_cpu(timings([("t.py::t0", 7.0), ("t.py::t1", 0.5), ("t.py::t2", 2.0)]), [0.01] * 3)
    assert estimate_first_use(rows) == FirstUse()


def test_a_first_use_is_the_cpu_time_beyond_the_siblings_not_the_wait() -> None:
    # 3 s of call (a 1 s import, 1 s of waiting, the 1 s its siblings take, 0.2 s of it CPU):
    # the first use is the 1 s of CPU more than theirs, not the 2 s of call more
    rows = with_cpu(CACHED, [1.2, 0.2, 0.2, 0.2, 0.2, 0.2])
    estimate = estimate_first_use(rows)
    assert estimate.costs == pytest.approx({"a.py": 1.0})
    assert estimate.paid_s == pytest.approx((1.0, 0.0, 0.0, 0.0, 0.0, 0.0))


def test_skipped_siblings_say_nothing_of_the_typical_call() -> None:
    rows = CACHED[:1] + timings([("a.py::s1", 0.0), ("a.py::s2", 0.0)], Outcome.SKIPPED)
    assert estimate_first_use(rows) == FirstUse()


def test_each_xdist_worker_shows_its_own_first_use_and_the_unit_costs_their_mean() -> None:
    gw0 = timings([("a.py::a0", 3.0), ("a.py::a1", 1.0), ("a.py::a2", 1.0)], worker="gw0")
    gw1 = timings([("a.py::a3", 2.0), ("a.py::a4", 1.0), ("a.py::a5", 1.0)], worker="gw1")
    estimate = estimate_first_use(gw0 + gw1)
    assert estimate.costs == {"a.py": 1.5}
    assert estimate.paid_s == (2.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def test_under_load_each_worker_pays_the_first_use_again() -> None:
    model = model_from_section(SuiteSection(tests=CACHED, wall_s=8.0, calibration=FREE))
    # xdist's load hands out chunks of 2: gw0 a0, a1; gw1 a2, b0. Both first tests of
    # a.py pay its 2 s cache: a0 1 + 2, a2 1 + 2, both end at 3 s; then b1 to gw0 and
    # b2 to gw1: a1, b1 and b0, b2 take 1 s each: 5 s, and 2 s repeated.
    prediction = predict_xdist_wall_time(model, 2, "load")
    assert prediction.wall_s == pytest.approx(5.0)
    assert prediction.repeated_s == pytest.approx(2.0)
    # without the estimate a2 takes 1 s, gw1 runs four tests and gw0 a0 (3 s) and a1: 4 s
    unaware = dataclasses.replace(
        model,
        first_use={},
        tests=tuple(
            dataclasses.replace(t, first_use_units=(), first_use_s=0.0) for t in model.tests
        ),
    )
    assert predict_xdist_wall_time(unaware, 2, "load").wall_s == pytest.approx(5.0 - 1.0)


def test_the_test_that_paid_serially_is_not_charged_twice() -> None:
    model = model_from_section(SuiteSection(tests=CACHED, wall_s=8.0, calibration=FREE))
    # one worker runs everything once: the serial 8 s, nothing repeated
    prediction = predict_xdist_wall_time(model, 1, "load")
    assert prediction.wall_s == pytest.approx(8.0)
    assert prediction.repeated_s == 0.0


def test_under_loadfile_a_module_is_on_one_worker_and_pays_once() -> None:
    model = model_from_section(SuiteSection(tests=CACHED, wall_s=8.0, calibration=FREE))
    # a.py to gw0: 3 + 1 + 1; b.py to gw1: 3
    prediction = predict_xdist_wall_time(model, 2, "loadfile")
    assert prediction.wall_s == pytest.approx(5.0)
    assert prediction.worker_finish_s == (pytest.approx(5.0), pytest.approx(3.0))
    assert prediction.repeated_s == 0.0


def test_the_lower_bound_counts_each_first_use_once_and_no_test_with_it() -> None:
    model = model_from_section(SuiteSection(tests=CACHED, wall_s=8.0, calibration=FREE))
    # load: the serial 8 s of work (the cache once) over 2 workers; the biggest test
    # is 1 s without the cache a worker may already have built
    assert lower_bound(model, 2, "load") == pytest.approx(4.0)
    # loadfile: a.py cannot be split and pays its cache once: 5 s
    assert lower_bound(model, 2, "loadfile") == pytest.approx(5.0)
    for dist in ("load", "loadfile", "worksteal"):
        for workers in (1, 2, 3, 4):
            p = predict_xdist_wall_time(model, workers, dist)
            assert p.lower_bound_s <= p.wall_s + 1e-9
