"""The one vocabulary of what users read: every table cell of every output is made here.

The terminal report, ``compare``, ``show`` and the HTML page show a speedup, a
missing value, a duration and a ``parallel_map`` call the same way, and a legend
explains the thresholds that :mod:`pytest_parallel_lab.stats` applies.
"""

from __future__ import annotations

import math

from pytest_parallel_lab.stats import NOISY_INTERVAL_WIDTH, NOISY_SPREAD, Interval, format_speedup
from pytest_parallel_lab.vocabulary import Kind

#: A value that was not measured (a failed item, a missing run, an old file).
MISSING = "-"

#: What the report's speedup columns mean, with the thresholds the measurement applies.
SPEEDUP_LEGEND = (
    "speedup = serial / backend, median of paired rounds with a 95% bootstrap interval; "
    "the serial backend's row is the baseline against itself (A/A), a check of the noise; "
    "efficiency = speedup / effective parallelism; 'noisy' = interval wider than "
    f"{NOISY_INTERVAL_WIDTH:.0%} or a side's spread over {NOISY_SPREAD:.0%}."
)


def speedup_cell(speedup: Interval | None) -> str:
    """'1.93x [1.85-2.01]', or the missing mark."""
    return MISSING if speedup is None else format_speedup(speedup)


def seconds_cell(value: float | None) -> str:
    """Seconds in a readable unit: '812 µs', '12.3 ms', '1.42 s'."""
    if value is None:
        return MISSING
    if value < 1e-3:
        return _scaled_cell(value, 1e6, ".0f", " µs")
    if value < 1:
        return _scaled_cell(value, 1e3, ".1f", " ms")
    return _scaled_cell(value, 1.0, ".2f", " s")


def percent_cell(value: float | None) -> str:
    """A fraction in percent: '87%'."""
    return MISSING if value is None else _scaled_cell(value, 100.0, ".0f", "%")


def ratio_cell(numerator: float | None, denominator: float | None) -> str:
    """*numerator* / *denominator* as a factor: '1.85x'; missing when it has no value."""
    if numerator is None or not denominator:
        return MISSING
    return _scaled_cell(numerator / denominator, 1.0, ".2f", "x")


def number_cell(value: float | None, spec: str = ".3f") -> str:
    """A number in *spec*, or the missing mark (also for NaN and infinity)."""
    if value is None or not math.isfinite(value):
        return MISSING
    return format(value, spec)


def _scaled_cell(value: float, scale: float, spec: str, unit: str) -> str:
    # Scaling a finite number can overflow (-1e308 s in µs): never print 'inf' (issue 14).
    scaled = value * scale
    return MISSING if not math.isfinite(scaled) else format(scaled, spec) + unit


def workload_label(test: str, map_call: int | None = None) -> str:
    """A test, and which of its ``parallel_map`` calls (0-based): 'test_x (map #2)'."""
    return test if map_call is None else f"{test} (map #{map_call + 1})"


def map_call(kind: Kind, call_index: int) -> int | None:
    """A result's ``parallel_map`` call, or None for a test body."""
    return call_index if kind is Kind.MAP else None
