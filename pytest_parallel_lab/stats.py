"""Robust statistics for paired timing rounds: medians, bootstrap intervals, noise.

Nothing here knows about pytest or clocks; every function takes plain numbers, so
the rules (when is a speedup a speedup, when is a measurement noisy) are tested
with tables of cases.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from pytest_parallel_lab.vocabulary import Verdict

#: Confidence level of every interval the plugin reports.
CONFIDENCE = 0.95
#: Bootstrap resamples; 2000 keeps the 2.5% / 97.5% quantiles stable to ~1%.
BOOTSTRAP_RESAMPLES = 2000
#: Relative spread (interquartile range over median) above which a side is noisy.
NOISY_SPREAD = 0.10
#: Relative interval width ((high - low) / estimate) above which a speedup is noisy.
NOISY_INTERVAL_WIDTH = 0.20
#: Fewer rounds than this cannot show their own noise: such a speedup counts as noisy.
FEWEST_ROUNDS = 3
#: Fixed seed: the same timings always give the same interval (reproducible reports).
BOOTSTRAP_SEED = 20240601

T = TypeVar("T")


class EvenSample(Generic[T]):
    """Fewer than *size* items of a stream of unknown length, evenly spaced over all of it.

    Every ``stride``-th item is kept; when *size* are kept, every other one goes and
    the stride doubles, so the sample always spans the stream from its first item at
    one spacing (``size / 2`` items or more once the stream is that long).
    Deterministic, and one decrement per item offered. For a stream whose first items
    alone (a suite's first tests) may be unlike the rest.
    """

    def __init__(self, size: int) -> None:
        if size < 2:
            raise ValueError(f"an even sample holds at least 2 items, not {size}")
        self.size = size
        self.items: list[T] = []
        #: the spacing of the kept items in the stream
        self.stride = 1
        self._countdown = 1

    def offer(self, item: T) -> None:
        self._countdown -= 1
        if self._countdown:
            return
        self._countdown = self.stride
        self.items.append(item)
        if len(self.items) == self.size:
            # Kept: positions 0, 2s, 4s... The next is due at size * s, one new stride
            # after the last one kept: the countdown of the old stride gets there.
            del self.items[1::2]
            self.stride *= 2


def median(values: Sequence[float]) -> float:
    """The median of *values* (the mean of the two middle ones for an even count)."""
    if not values:
        raise ValueError("median of an empty sequence")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile *q* in [0, 1] of *values* (numpy's default method)."""
    if not values:
        raise ValueError("quantile of an empty sequence")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile q must be in [0, 1], got {q}")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def relative_spread(values: Sequence[float]) -> float:
    """Interquartile range over the median: 0.0 for identical values.

    With fewer than three values there is no interquartile range worth the name, so
    the full range is used instead.
    """
    centre = median(values)
    if centre <= 0:
        return 0.0 if max(values) == min(values) else math.inf
    if len(values) < 3:
        return (max(values) - min(values)) / centre
    return (quantile(values, 0.75) - quantile(values, 0.25)) / centre


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval.

    The run document stores a speedup as this type too, with the bounds under the
    documented keys ``ci_low`` and ``ci_high`` (the ``json`` metadata).
    """

    estimate: float
    low: float = field(metadata={"json": "ci_low"})
    high: float = field(metadata={"json": "ci_high"})
    confidence: float = CONFIDENCE

    @property
    def relative_width(self) -> float:
        """(high - low) / estimate; infinite for a non-positive estimate."""
        if self.estimate <= 0:
            return math.inf
        return (self.high - self.low) / self.estimate

    def contains(self, value: float) -> bool:
        """True when *value* lies inside the interval (ends included)."""
        return self.low <= value <= self.high


def bootstrap_median_interval(
    values: Sequence[float],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """Median of *values* with a percentile-bootstrap confidence interval.

    A single value gives a degenerate interval (low == high == value): one round
    cannot show its own noise, and the caller flags that.
    """
    if not values:
        raise ValueError("no values to bootstrap")
    estimate = median(values)
    if len(values) == 1:
        return Interval(estimate, estimate, estimate, confidence)
    rng = random.Random(seed)
    size = len(values)
    medians = sorted(median(rng.choices(values, k=size)) for _ in range(resamples))
    tail = (1.0 - confidence) / 2
    return Interval(
        estimate=estimate,
        low=min(quantile(medians, tail), estimate),
        high=max(quantile(medians, 1.0 - tail), estimate),
        confidence=confidence,
    )


@dataclass(frozen=True)
class SpeedupEstimate:
    """Speedup of a candidate over a baseline, from paired rounds."""

    speedup: Interval
    baseline_median_s: float
    candidate_median_s: float
    baseline_spread: float
    candidate_spread: float
    rounds: int

    @property
    def noisy(self) -> bool:
        """True for too few rounds, a wide interval, or a side whose spread is too large."""
        return (
            self.rounds < FEWEST_ROUNDS
            or self.speedup.relative_width > NOISY_INTERVAL_WIDTH
            or self.baseline_spread > NOISY_SPREAD
            or self.candidate_spread > NOISY_SPREAD
        )

    @property
    def verdict(self) -> Verdict:
        """Faster, slower or no clear difference: a 1.05x inside the noise is no win."""
        if self.speedup.low > 1.0:
            return Verdict.FASTER
        if self.speedup.high < 1.0:
            return Verdict.SLOWER
        return Verdict.NO_CLEAR_DIFFERENCE


def estimate_speedup(baseline_s: Sequence[float], candidate_s: Sequence[float]) -> SpeedupEstimate:
    """Speedup = baseline / candidate as the median of per-round ratios, with a 95% CI.

    *baseline_s* and *candidate_s* are paired: round ``i`` of each was measured back to
    back, so slow drifts of the machine cancel in the ratio.
    """
    if len(baseline_s) != len(candidate_s):
        raise ValueError(
            f"paired rounds differ in length: {len(baseline_s)} baseline, "
            f"{len(candidate_s)} candidate"
        )
    if not baseline_s:
        raise ValueError("no rounds measured")
    if any(t <= 0 for t in candidate_s) or any(t < 0 for t in baseline_s):
        raise ValueError("round times must be positive")
    ratios = [b / c for b, c in zip(baseline_s, candidate_s, strict=True)]
    return SpeedupEstimate(
        speedup=bootstrap_median_interval(ratios),
        baseline_median_s=median(baseline_s),
        candidate_median_s=median(candidate_s),
        baseline_spread=relative_spread(baseline_s),
        candidate_spread=relative_spread(candidate_s),
        rounds=len(ratios),
    )


def stretched(estimate: SpeedupEstimate, factor: float) -> SpeedupEstimate:
    """*estimate* whose interval also covers the speedup scaled by *factor*: the measured
    estimate stays, the interval reaches as far as ``factor`` times its ends (one way).

    For a systematic effect that holds for a whole run and so escapes the spread of its
    rounds, but that the run measured (how much slower the machine ran the parallel
    side's tasks): the interval then covers both the speedup this run saw and the one a
    run whose machine did not slow them would see."""
    speedup = estimate.speedup
    interval = Interval(
        speedup.estimate,
        min(speedup.low, speedup.low * factor),
        max(speedup.high, speedup.high * factor),
        speedup.confidence,
    )
    return replace(estimate, speedup=interval)


def format_speedup(speedup: Interval) -> str:
    """'1.93x [1.85-2.01]': a speedup and its interval, as every output writes one."""
    return f"{speedup.estimate:.2f}x [{speedup.low:.2f}-{speedup.high:.2f}]"


def amdahl_speedup(workers: float, serial_fraction: float) -> float:
    """Amdahl's law: the speedup of *workers* when *serial_fraction* of the work is serial."""
    return 1.0 / (serial_fraction + (1.0 - serial_fraction) / workers)
