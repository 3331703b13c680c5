"""CI gates on measured speedups and on the expected classification.

A gate (``min_speedup=1.5``) passes only when the whole confidence interval is at
or above the threshold, fails only when it lies wholly below, and is inconclusive
when it straddles: the plugin then adds rounds (:func:`rounds_to_add`) and measures
again until the verdict is clear or the round budget is spent. A point estimate
alone never passes or fails a build.
"""

from __future__ import annotations

from pytest_parallel_lab.document.run import SpeedupRecord
from pytest_parallel_lab.marked.diagnosis import CLASSIFICATIONS, INCONCLUSIVE
from pytest_parallel_lab.stats import Interval

PASSED = "passed"
FAILED = "failed"
GATE_INCONCLUSIVE = "inconclusive"

#: Rounds added when none were taken yet: three is the fewest that can show noise
#: (see ``stats.SpeedupEstimate.noisy``).
FIRST_ROUNDS = 3


def _bounds(interval: Interval | SpeedupRecord) -> tuple[float, float]:
    if isinstance(interval, SpeedupRecord):
        return interval.ci_low, interval.ci_high
    return interval.low, interval.high


def gate_verdict(interval: Interval | SpeedupRecord, min_speedup: float) -> str:
    """``passed`` when ci_low >= *min_speedup*, ``failed`` when ci_high < it, else
    ``inconclusive``."""
    if not min_speedup > 0:
        raise ValueError(f"min_speedup must be a positive number, got {min_speedup!r}")
    low, high = _bounds(interval)
    if low > high:
        raise ValueError(f"interval is inverted: low {low} > high {high}")
    if low >= min_speedup:
        return PASSED
    if high < min_speedup:
        return FAILED
    return GATE_INCONCLUSIVE


def rounds_to_add(current_rounds: int, max_rounds: int, verdict: str = GATE_INCONCLUSIVE) -> int:
    """How many rounds to measure next: 0 once the verdict is clear or the budget spent.

    An inconclusive gate doubles its rounds (the interval narrows roughly with the
    square root of the rounds, so doubling gains ~30% per step and few steps reach
    the budget), never beyond *max_rounds* in total.
    """
    if current_rounds < 0:
        raise ValueError(f"current rounds must not be negative, got {current_rounds}")
    if max_rounds < 1:
        raise ValueError(f"max rounds must be at least 1, got {max_rounds}")
    if verdict not in (PASSED, FAILED, GATE_INCONCLUSIVE):
        raise ValueError(
            f"unknown gate verdict {verdict!r}; expected one of: "
            f"{PASSED}, {FAILED}, {GATE_INCONCLUSIVE}"
        )
    if verdict != GATE_INCONCLUSIVE or current_rounds >= max_rounds:
        return 0
    wanted = current_rounds if current_rounds > 0 else FIRST_ROUNDS
    return min(wanted, max_rounds - current_rounds)


def validate_classification(name: str, *, what: str = "classification") -> str:
    """Return *name* if it is a known classification, else raise ``ValueError`` listing them."""
    if name not in CLASSIFICATIONS:
        raise ValueError(
            f"unknown {what} {name!r}; valid classifications: {', '.join(CLASSIFICATIONS)}"
        )
    return name


def expect_verdict(expected: str, classification: str) -> str | None:
    """The message when *classification* contradicts ``expect=`` *expected*, else None.

    An ``inconclusive`` classification never contradicts (the evidence did not decide
    anything); :func:`expect_note` gives the line to report for it instead.
    """
    validate_classification(expected, what="expected classification")
    validate_classification(classification)
    if classification in (expected, INCONCLUSIVE):
        return None
    return f"expected {expected}, measured {classification}"


def expect_note(expected: str, classification: str) -> str | None:
    """A non-failing note when ``expect=`` could not be checked, else None."""
    validate_classification(expected, what="expected classification")
    validate_classification(classification)
    if classification == INCONCLUSIVE and expected != INCONCLUSIVE:
        return f"expected {expected}, but the measurements were inconclusive: not checked"
    return None
