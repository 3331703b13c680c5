"""Robust statistics: medians, quantiles, spreads, bootstrap intervals, speedup rules."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest

from pytest_parallel_lab.stats import (
    CONFIDENCE,
    FEWEST_ROUNDS,
    EvenSample,
    Interval,
    bootstrap_median_interval,
    estimate_speedup,
    median,
    quantile,
    relative_spread,
    stretched,
)
from pytest_parallel_lab.vocabulary import Verdict


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param([3.0], 3.0, id="one-value"),
        pytest.param([3.0, 1.0, 2.0], 2.0, id="odd-count-unsorted"),
        pytest.param([4.0, 1.0, 3.0, 2.0], 2.5, id="even-count-mean-of-middle-two"),
        pytest.param([1.0, 1.0, 100.0], 1.0, id="an-outlier-does-not-move-it"),
    ],
)
def test_the_median_is_the_middle_value_or_the_mean_of_the_middle_two(
    values: list[float], expected: float
) -> None:
    assert median(values) == expected


def test_the_median_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        median([])


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        pytest.param([1.0, 2.0, 3.0, 4.0, 5.0], 0.0, 1.0, id="q0-is-the-minimum"),
        pytest.param([1.0, 2.0, 3.0, 4.0, 5.0], 1.0, 5.0, id="q1-is-the-maximum"),
        pytest.param([1.0, 2.0, 3.0, 4.0, 5.0], 0.5, 3.0, id="q05-is-the-median"),
        pytest.param([1.0, 2.0, 3.0, 4.0], 0.25, 1.75, id="linear-interpolation"),
        pytest.param([4.0, 1.0, 3.0, 2.0], 0.75, 3.25, id="unsorted-input"),
        pytest.param([7.0], 0.3, 7.0, id="one-value"),
    ],
)
def test_a_quantile_interpolates_linearly_like_numpy(
    values: list[float], q: float, expected: float
) -> None:
    assert quantile(values, q) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("values", "q", "message"),
    [
        pytest.param([], 0.5, "empty", id="empty"),
        pytest.param([1.0], -0.1, "q must be in", id="below-zero"),
        pytest.param([1.0], 1.1, "q must be in", id="above-one"),
    ],
)
def test_a_quantile_rejects_no_values_and_q_outside_zero_to_one(
    values: list[float], q: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        quantile(values, q)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param([2.0, 2.0, 2.0], 0.0, id="identical-values"),
        pytest.param([1.0, 3.0], 1.0, id="two-values-use-the-full-range"),
        pytest.param([1.0, 2.0, 3.0, 4.0, 5.0], 2.0 / 3.0, id="iqr-over-median"),
        pytest.param([0.0, 0.0, 0.0], 0.0, id="all-zero-is-not-noisy"),
        pytest.param([0.0, 0.0, 1.0], math.inf, id="zero-median-with-spread-is-infinite"),
    ],
)
def test_the_relative_spread_is_the_interquartile_range_over_the_median(
    values: list[float], expected: float
) -> None:
    assert relative_spread(values) == pytest.approx(expected)


def test_a_bootstrap_interval_is_deterministic_and_contains_the_estimate() -> None:
    values = [1.9, 2.1, 2.0, 1.7, 2.4, 2.2, 1.95]
    first = bootstrap_median_interval(values)
    second = bootstrap_median_interval(values)
    assert first == second
    assert first.estimate == median(values)
    assert first.low <= first.estimate <= first.high
    assert first.confidence == CONFIDENCE
    assert first.low < first.high


def test_a_bootstrap_interval_of_one_value_is_degenerate() -> None:
    interval = bootstrap_median_interval([1.5])
    assert (interval.estimate, interval.low, interval.high) == (1.5, 1.5, 1.5)


def test_a_bootstrap_interval_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        bootstrap_median_interval([])


@pytest.mark.parametrize(
    ("interval", "width"),
    [
        pytest.param(Interval(2.0, 1.8, 2.2), 0.2, id="ordinary"),
        pytest.param(Interval(0.0, 0.0, 1.0), math.inf, id="zero-estimate"),
    ],
)
def test_an_interval_knows_its_relative_width(interval: Interval, width: float) -> None:
    assert interval.relative_width == pytest.approx(width)


def test_an_interval_contains_its_ends() -> None:
    interval = Interval(1.0, 0.9, 1.1)
    assert interval.contains(0.9)
    assert interval.contains(1.1)
    assert not interval.contains(1.11)


@pytest.mark.parametrize(
    ("baseline", "candidate", "verdict", "excludes_one", "noisy"),
    [
        pytest.param(
            [2.0, 2.0, 2.0, 2.0, 2.0],
            [1.0, 1.0, 1.0, 1.0, 1.0],
            Verdict.FASTER,
            True,
            False,
            id="a-steady-2x-is-faster",
        ),
        pytest.param(
            [1.0, 1.0, 1.0, 1.0, 1.0],
            [2.0, 2.0, 2.0, 2.0, 2.0],
            Verdict.SLOWER,
            True,
            False,
            id="a-steady-half-is-slower",
        ),
        pytest.param(
            [1.05, 1.25, 0.85, 1.2, 0.9],
            [1.0, 1.0, 1.0, 1.0, 1.0],
            Verdict.NO_CLEAR_DIFFERENCE,
            False,
            True,
            id="a-1.05x-inside-noise-is-no-clear-difference",
        ),
        pytest.param(
            [2.0, 2.0],
            [1.0, 1.0],
            Verdict.FASTER,
            True,
            True,
            id="fewer-than-three-rounds-is-noisy",
        ),
        pytest.param(
            [2.0, 2.0, 2.0, 2.0, 2.0],
            [1.0, 1.0, 1.0, 1.0, 1.5],
            Verdict.FASTER,
            True,
            True,
            id="one-slow-round-of-five-widens-the-interval-into-noise",
        ),
    ],
)
def test_a_speedup_is_judged_by_its_interval_not_its_estimate(
    baseline: list[float],
    candidate: list[float],
    verdict: Verdict,
    excludes_one: bool,
    noisy: bool,
) -> None:
    estimate = estimate_speedup(baseline, candidate)
    assert estimate.verdict is verdict
    assert (not estimate.speedup.contains(1.0)) is excludes_one
    assert estimate.noisy is noisy
    s = estimate.speedup
    assert s.low <= s.estimate <= s.high
    assert estimate.rounds == len(baseline)


def test_a_1_05x_inside_the_noise_is_no_clear_difference() -> None:
    estimate = estimate_speedup([1.05, 1.3, 0.8, 1.2, 0.95], [1.0] * 5)
    assert estimate.speedup.estimate == pytest.approx(1.05)
    assert estimate.verdict is Verdict.NO_CLEAR_DIFFERENCE
    assert estimate.speedup.contains(1.0)


def test_a_verdict_is_written_as_its_documented_words() -> None:
    assert [str(v) for v in Verdict] == ["faster", "slower", "no clear difference"]
    assert estimate_speedup([2.0] * 5, [1.0] * 5).verdict == "faster"


def test_the_fewest_rounds_of_a_steady_speedup_are_not_noisy_and_one_fewer_is() -> None:
    assert FEWEST_ROUNDS == 3
    assert not estimate_speedup([2.0] * FEWEST_ROUNDS, [1.0] * FEWEST_ROUNDS).noisy
    assert estimate_speedup([2.0] * (FEWEST_ROUNDS - 1), [1.0] * (FEWEST_ROUNDS - 1)).noisy


def test_a_speedup_is_the_median_of_per_round_ratios_with_medians_of_each_side() -> None:
    estimate = estimate_speedup([4.0, 6.0, 8.0], [2.0, 2.0, 2.0])
    assert estimate.speedup.estimate == pytest.approx(3.0)
    assert estimate.baseline_median_s == pytest.approx(6.0)
    assert estimate.candidate_median_s == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("baseline", "candidate", "message"),
    [
        pytest.param([1.0, 1.0], [1.0], "differ in length", id="unequal-lengths"),
        pytest.param([], [], "no rounds", id="no-rounds"),
        pytest.param([1.0], [0.0], "positive", id="zero-candidate-time"),
        pytest.param([-1.0], [1.0], "positive", id="negative-baseline-time"),
    ],
)
def test_estimating_a_speedup_rejects_unpaired_or_impossible_rounds(
    baseline: list[float], candidate: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        estimate_speedup(baseline, candidate)


@pytest.mark.parametrize(
    ("factor", "low", "high"),
    [
        pytest.param(1.1, 1.5, 1.76, id="slower-tasks-reach-up"),
        pytest.param(0.9, 1.35, 1.6, id="faster-tasks-reach-down"),
        pytest.param(1.0, 1.5, 1.6, id="same-speed-unchanged"),
    ],
)
def test_a_stretched_interval_also_covers_the_speedup_scaled_by_the_factor(
    factor: float, low: float, high: float
) -> None:
    estimate = estimate_speedup([3.0, 3.1, 3.2], [2.0, 2.0, 2.0])
    measured = estimate.speedup
    stretched_estimate = stretched(
        replace(estimate, speedup=Interval(measured.estimate, 1.5, 1.6)), factor
    )
    assert stretched_estimate.speedup.estimate == measured.estimate
    assert (stretched_estimate.speedup.low, stretched_estimate.speedup.high) == (
        pytest.approx(low),
        pytest.approx(high),
    )
    assert stretched_estimate.rounds == estimate.rounds


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 100, 1000, 4097])
def test_an_even_sample_spans_the_whole_stream_at_one_spacing(length: int) -> None:
    sample: EvenSample[int] = EvenSample(16)
    for item in range(length):
        sample.offer(item)
    kept = sample.items
    assert len(kept) < 16
    assert len(kept) >= min(length, 8)
    if length:
        assert kept[0] == 0
        # evenly spaced, and the last one kept is within a spacing of the stream's end
        assert {b - a for a, b in itertools.pairwise(kept)} <= {sample.stride}
        assert length - 1 - kept[-1] < sample.stride


def test_an_even_sample_of_fewer_than_two_items_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        EvenSample(1)
