"""Speedup gates, the rounds policy and ``expect=`` checks."""

from __future__ import annotations

import pytest

from pytest_parallel_lab.document.run import SpeedupRecord
from pytest_parallel_lab.marked.diagnosis import CLASSIFICATIONS
from pytest_parallel_lab.marked.gates import (
    expect_note,
    expect_verdict,
    gate_verdict,
    rounds_to_add,
    validate_classification,
)
from pytest_parallel_lab.stats import Interval


@pytest.mark.parametrize(
    ("low", "high", "threshold", "expected"),
    [
        pytest.param(1.1, 1.3, 1.5, "failed", id="wholly-below"),
        pytest.param(1.6, 1.9, 1.5, "passed", id="wholly-above"),
        pytest.param(1.5, 1.9, 1.5, "passed", id="low-end-at-the-threshold"),
        pytest.param(1.2, 1.8, 1.5, "inconclusive", id="straddles"),
        pytest.param(1.0, 1.5, 1.5, "inconclusive", id="high-end-at-the-threshold"),
    ],
)
def test_a_gate_judges_the_whole_interval_not_the_estimate(
    low: float, high: float, threshold: float, expected: str
) -> None:
    estimate = (low + high) / 2
    assert gate_verdict(Interval(estimate, low, high), threshold) == expected
    assert gate_verdict(SpeedupRecord(estimate, low, high), threshold) == expected


@pytest.mark.parametrize("threshold", [0.0, -1.0, float("nan")])
def test_a_gate_rejects_a_threshold_that_is_not_positive(threshold: float) -> None:
    with pytest.raises(ValueError, match="min_speedup"):
        gate_verdict(Interval(1.0, 0.9, 1.1), threshold)


def test_a_gate_rejects_an_inverted_interval() -> None:
    with pytest.raises(ValueError, match="inverted"):
        gate_verdict(SpeedupRecord(1.0, 1.2, 0.8), 1.5)


@pytest.mark.parametrize(
    ("current", "budget", "verdict", "expected"),
    [
        pytest.param(5, 40, "inconclusive", 5, id="doubles"),
        pytest.param(20, 30, "inconclusive", 10, id="stops-at-the-budget"),
        pytest.param(30, 30, "inconclusive", 0, id="budget-spent"),
        pytest.param(0, 10, "inconclusive", 3, id="starts-with-three"),
        pytest.param(0, 2, "inconclusive", 2, id="starts-within-a-tiny-budget"),
        pytest.param(5, 40, "passed", 0, id="passed-needs-no-more"),
        pytest.param(5, 40, "failed", 0, id="failed-needs-no-more"),
    ],
)
def test_rounds_are_added_while_inconclusive_and_under_budget(
    current: int, budget: int, verdict: str, expected: int
) -> None:
    assert rounds_to_add(current, budget, verdict) == expected


def test_the_rounds_policy_loop_ends_within_the_budget() -> None:
    rounds, budget, steps = 5, 37, 0
    while added := rounds_to_add(rounds, budget):
        rounds += added
        steps += 1
    assert rounds == budget
    assert steps == 3


@pytest.mark.parametrize(
    ("current", "budget", "verdict", "message"),
    [(-1, 10, "inconclusive", "negative"), (1, 0, "inconclusive", "at least 1"),
     (1, 10, "maybe", "unknown gate verdict")],
)  # fmt: skip
def test_the_rounds_policy_rejects_nonsense(
    current: int, budget: int, verdict: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        rounds_to_add(current, budget, verdict)


@pytest.mark.parametrize(
    ("expected", "classification", "contradiction"),
    [
        ("cpu-bound", "cpu-bound", None),
        ("cpu-bound", "io-bound", "expected cpu-bound, measured io-bound"),
        ("io-bound", "blocking-in-loop", "expected io-bound, measured blocking-in-loop"),
        ("gil-releasing", "inconclusive", None),
    ],
)
def test_expect_reports_a_contradicting_classification(
    expected: str, classification: str, contradiction: str | None
) -> None:
    assert expect_verdict(expected, classification) == contradiction


def test_an_inconclusive_classification_is_noted_but_never_contradicts() -> None:
    assert expect_verdict("cpu-bound", "inconclusive") is None
    note = expect_note("cpu-bound", "inconclusive")
    assert note is not None
    assert "inconclusive" in note
    assert expect_note("cpu-bound", "cpu-bound") is None
    assert expect_note("cpu-bound", "io-bound") is None


@pytest.mark.parametrize(
    ("expected", "classification"),
    [("cpu", "cpu-bound"), ("cpu-bound", "CPU-bound"), ("", "io-bound")],
)
def test_unknown_class_names_are_rejected_with_the_valid_ones(
    expected: str, classification: str
) -> None:
    with pytest.raises(ValueError, match="valid classifications: cpu-bound, gil-releasing"):
        expect_verdict(expected, classification)


def test_every_documented_class_name_is_valid() -> None:
    assert [validate_classification(name) for name in CLASSIFICATIONS] == list(CLASSIFICATIONS)
