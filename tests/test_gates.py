"""Speedup gates, the rounds policy and ``expect=`` checks."""

from __future__ import annotations

import pytest

from pytest_parallel_lab.marked.gates import (
    expect_note,
    expect_verdict,
    gate_verdict,
    rounds_to_add,
)
from pytest_parallel_lab.stats import FEWEST_ROUNDS, Interval
from pytest_parallel_lab.vocabulary import Classification, GateVerdict


@pytest.mark.parametrize(
    ("low", "high", "threshold", "expected"),
    [
        pytest.param(1.1, 1.3, 1.5, GateVerdict.FAILED, id="wholly-below"),
        pytest.param(1.6, 1.9, 1.5, GateVerdict.PASSED, id="wholly-above"),
        pytest.param(1.5, 1.9, 1.5, GateVerdict.PASSED, id="low-end-at-the-threshold"),
        pytest.param(1.2, 1.8, 1.5, GateVerdict.INCONCLUSIVE, id="straddles"),
        pytest.param(1.0, 1.5, 1.5, GateVerdict.INCONCLUSIVE, id="high-end-at-the-threshold"),
    ],
)
def test_a_gate_judges_the_whole_interval_not_the_estimate(
    low: float, high: float, threshold: float, expected: GateVerdict
) -> None:
    estimate = (low + high) / 2
    assert gate_verdict(Interval(estimate, low, high), threshold) is expected
    # The estimate plays no part: at either end of the interval the verdict is the same.
    assert gate_verdict(Interval(estimate=low, low=low, high=high), threshold) is expected
    assert gate_verdict(Interval(estimate=high, low=low, high=high), threshold) is expected


def test_a_gate_verdict_is_written_as_its_documented_word() -> None:
    assert [str(verdict) for verdict in GateVerdict] == ["passed", "failed", "inconclusive"]
    assert gate_verdict(Interval(2.0, 1.8, 2.2), 1.5) == "passed"


@pytest.mark.parametrize("threshold", [0.0, -1.0, float("nan")])
def test_a_gate_rejects_a_threshold_that_is_not_positive(threshold: float) -> None:
    with pytest.raises(ValueError, match="min_speedup"):
        gate_verdict(Interval(1.0, 0.9, 1.1), threshold)


def test_a_gate_rejects_an_inverted_interval() -> None:
    with pytest.raises(ValueError, match="inverted"):
        gate_verdict(Interval(estimate=1.0, low=1.2, high=0.8), 1.5)


@pytest.mark.parametrize(
    ("current", "budget", "verdict", "expected"),
    [
        pytest.param(5, 40, GateVerdict.INCONCLUSIVE, 5, id="doubles"),
        pytest.param(20, 30, GateVerdict.INCONCLUSIVE, 10, id="stops-at-the-budget"),
        pytest.param(30, 30, GateVerdict.INCONCLUSIVE, 0, id="budget-spent"),
        pytest.param(0, 10, GateVerdict.INCONCLUSIVE, 3, id="starts-with-three"),
        pytest.param(0, 2, GateVerdict.INCONCLUSIVE, 2, id="starts-within-a-tiny-budget"),
        pytest.param(5, 40, GateVerdict.PASSED, 0, id="passed-needs-no-more"),
        pytest.param(5, 40, GateVerdict.FAILED, 0, id="failed-needs-no-more"),
    ],
)
def test_rounds_are_added_while_inconclusive_and_under_budget(
    current: int, budget: int, verdict: GateVerdict, expected: int
) -> None:
    assert rounds_to_add(current, budget, verdict) == expected


def test_the_first_rounds_are_the_fewest_that_can_show_their_noise() -> None:
    assert rounds_to_add(0, 100) == FEWEST_ROUNDS == 3


def test_the_rounds_policy_loop_ends_within_the_budget() -> None:
    rounds, budget, steps = 5, 37, 0
    while added := rounds_to_add(rounds, budget):
        rounds += added
        steps += 1
    assert rounds == budget
    assert steps == 3


@pytest.mark.parametrize(
    ("current", "budget", "message"),
    [(-1, 10, "negative"), (1, 0, "at least 1")],
)
def test_the_rounds_policy_rejects_nonsense(current: int, budget: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rounds_to_add(current, budget, GateVerdict.INCONCLUSIVE)


@pytest.mark.parametrize(
    ("expected", "classification", "contradiction"),
    [
        (Classification.CPU_BOUND, Classification.CPU_BOUND, None),
        (
            Classification.CPU_BOUND,
            Classification.IO_BOUND,
            "expected cpu-bound, measured io-bound",
        ),
        (
            Classification.IO_BOUND,
            Classification.BLOCKING_IN_LOOP,
            "expected io-bound, measured blocking-in-loop",
        ),
        (Classification.GIL_RELEASING, Classification.INCONCLUSIVE, None),
    ],
)
def test_expect_reports_a_contradicting_classification(
    expected: Classification, classification: Classification, contradiction: str | None
) -> None:
    assert expect_verdict(expected, classification) == contradiction


@pytest.mark.parametrize("expected", list(Classification))
def test_every_class_matches_itself(expected: Classification) -> None:
    assert expect_verdict(expected, expected) is None
    assert expect_note(expected, expected) is None


def test_an_inconclusive_classification_is_noted_but_never_contradicts() -> None:
    assert expect_verdict(Classification.CPU_BOUND, Classification.INCONCLUSIVE) is None
    note = expect_note(Classification.CPU_BOUND, Classification.INCONCLUSIVE)
    assert note == "expected cpu-bound, but the measurements were inconclusive: not checked"
    assert expect_note(Classification.CPU_BOUND, Classification.CPU_BOUND) is None
    assert expect_note(Classification.CPU_BOUND, Classification.IO_BOUND) is None
