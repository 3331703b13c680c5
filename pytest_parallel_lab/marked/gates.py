"""CI gates on measured speedups and on the expected classification.

A gate (``min_speedup=1.5``) passes only when the whole confidence interval is at
or above the threshold, fails only when it lies wholly below, and is inconclusive
when it straddles: the plugin then adds rounds (:func:`rounds_to_add`) and measures
again until the verdict is clear or the round budget is spent. A point estimate
alone never passes or fails a build.
"""

from __future__ import annotations

from pytest_parallel_lab.stats import FEWEST_ROUNDS, Interval, format_speedup
from pytest_parallel_lab.vocabulary import Classification, GateVerdict


def gate_verdict(interval: Interval, min_speedup: float) -> GateVerdict:
    """Passed when the interval's low end is at or above *min_speedup*, failed when
    its high end is below it, else inconclusive."""
    if not min_speedup > 0:
        raise ValueError(f"min_speedup must be a positive number, got {min_speedup!r}")
    if interval.low > interval.high:
        raise ValueError(f"interval is inverted: low {interval.low} > high {interval.high}")
    if interval.low >= min_speedup:
        return GateVerdict.PASSED
    if interval.high < min_speedup:
        return GateVerdict.FAILED
    return GateVerdict.INCONCLUSIVE


def rounds_to_add(
    current_rounds: int, max_rounds: int, verdict: GateVerdict = GateVerdict.INCONCLUSIVE
) -> int:
    """How many rounds to measure next: 0 once the verdict is clear or the budget spent.

    An inconclusive gate doubles its rounds (the interval narrows roughly with the
    square root of the rounds, so doubling gains ~30% per step and few steps reach
    the budget), never beyond *max_rounds* in total. With no rounds yet it starts
    with the fewest that can show their noise.
    """
    if current_rounds < 0:
        raise ValueError(f"current rounds must not be negative, got {current_rounds}")
    if max_rounds < 1:
        raise ValueError(f"max rounds must be at least 1, got {max_rounds}")
    if verdict is not GateVerdict.INCONCLUSIVE or current_rounds >= max_rounds:
        return 0
    wanted = current_rounds if current_rounds > 0 else FEWEST_ROUNDS
    return min(wanted, max_rounds - current_rounds)


def judged_interval(speedup: Interval, rounds: int | None) -> str:
    """'1.42x [1.21-1.60] (95% interval) over 10 rounds': what a gate was judged on."""
    return f"{format_speedup(speedup)} ({speedup.confidence:.0%} interval) over {rounds} rounds"


def expect_verdict(expected: Classification, measured: Classification) -> str | None:
    """The message when *measured* contradicts ``expect=`` *expected*, else None.

    An inconclusive classification never contradicts (the evidence did not decide
    anything); :func:`expect_note` gives the line to report for it instead.
    """
    if measured in (expected, Classification.INCONCLUSIVE):
        return None
    return f"expected {expected}, measured {measured}"


def expect_note(expected: Classification, measured: Classification) -> str | None:
    """A non-failing note when ``expect=`` could not be checked, else None."""
    if measured is Classification.INCONCLUSIVE and expected is not Classification.INCONCLUSIVE:
        return f"expected {expected}, but the measurements were inconclusive: not checked"
    return None
