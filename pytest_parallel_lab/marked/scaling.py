"""Worker-count sweeps and their Amdahl's-law fit.

A test marked with ``workers=[1, 2, 4, 8]`` is measured once per worker count; the
speedups are fitted with Amdahl's law, ``speedup(n) = 1 / (f + (1 - f) / n)``, whose
serial fraction ``f`` says where the curve will flatten: at ``1 / f``. Worker counts
above the usable CPUs are left out of the fit, because CPU work cannot speed up past
the hardware: a flat tail there is the machine's ceiling, not the workload's.

Pure Python (no numpy): the least-squares fit is a bounded one-dimensional search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_parallel_lab.document.records import Environment, ResultRecord, Sweep, SweepPoint
from pytest_parallel_lab.stats import amdahl_speedup
from pytest_parallel_lab.vocabulary import Kind, Outcome

#: Grid points of the coarse search over f in [0, 1]; the golden-section refinement
#: that follows brings the result to ~1e-9, far below any timing noise.
_GRID = 200
_REFINE_TOLERANCE = 1e-10
_GOLDEN = (math.sqrt(5) - 1) / 2
#: Sums of squares below this are zero (float rounding of identical speedups).
_NO_VARIANCE = 1e-12


@dataclass(frozen=True)
class AmdahlFit:
    """Amdahl's-law fit of a sweep: serial fraction, the ceiling it implies, fit quality."""

    serial_fraction: float
    max_speedup: float
    r2: float


def _squared_error(points: Sequence[tuple[int, float]], fraction: float) -> float:
    return sum((s - amdahl_speedup(n, fraction)) ** 2 for n, s in points)


def fit_amdahl(points: Sequence[tuple[int, float]]) -> AmdahlFit:
    """Least-squares fit of ``(workers, speedup)`` points with f clamped to [0, 1].

    Superlinear points pull f to 0 (``max_speedup`` infinite); points at or below 1x
    push it to 1 (``max_speedup`` 1). ``r2`` is 1 - SS_res / SS_tot: 1.0 for a perfect
    fit; when every speedup is the same there is no variance to explain, and r2 is 1.0
    if the fit goes through them and 0.0 otherwise.
    """
    if not points:
        raise ValueError("no points to fit")
    for workers, speedup in points:
        if workers < 1:
            raise ValueError(f"worker counts must be at least 1, got {workers}")
        if not speedup > 0 or math.isinf(speedup):
            raise ValueError(f"speedups must be positive and finite, got {speedup}")
    # The error is not guaranteed unimodal in f for arbitrary data, so a grid finds the
    # right basin and golden-section search polishes inside it.
    grid = [i / _GRID for i in range(_GRID + 1)]
    best = min(grid, key=lambda f: _squared_error(points, f))
    low, high = max(0.0, best - 1 / _GRID), min(1.0, best + 1 / _GRID)
    while high - low > _REFINE_TOLERANCE:
        left = high - _GOLDEN * (high - low)
        right = low + _GOLDEN * (high - low)
        if _squared_error(points, left) <= _squared_error(points, right):
            high = right
        else:
            low = left
    fraction = min((low, high, best, 0.0, 1.0), key=lambda f: (_squared_error(points, f), f))
    residual = _squared_error(points, fraction)
    mean = sum(s for _, s in points) / len(points)
    total = sum((s - mean) ** 2 for _, s in points)
    if total > _NO_VARIANCE:
        r2 = 1.0 - residual / total
    else:
        r2 = 1.0 if residual <= _NO_VARIANCE else 0.0
    max_speedup = math.inf if fraction <= 0 else 1.0 / fraction
    return AmdahlFit(serial_fraction=fraction, max_speedup=max_speedup, r2=r2)


def _sweep_key(record: ResultRecord) -> tuple[str, str, int | None]:
    return (record.test, record.backend, record.call_index if record.kind is Kind.MAP else None)


def sweeps(records: Sequence[ResultRecord], environment: Environment) -> list[Sweep]:
    """One :class:`Sweep` per test and backend measured at two or more worker counts,
    fitted with Amdahl's law over the counts within the usable CPUs."""
    by_key: dict[tuple[str, str, int | None], dict[int, ResultRecord]] = {}
    for record in records:
        if record.outcome is not Outcome.PASSED or record.speedup is None or not record.workers:
            continue
        by_key.setdefault(_sweep_key(record), {})[record.workers] = record
    cpus = environment.usable_cpus
    found = []
    for (test, backend, call_index), by_workers in by_key.items():
        if len(by_workers) < 2:
            continue
        points = tuple(
            SweepPoint(n, s.estimate, s.low, s.high)
            for n in sorted(by_workers)
            if (s := by_workers[n].speedup) is not None
        )
        capped = cpus > 0 and any(workers > cpus for workers in by_workers)
        fitted = [
            (p.workers, p.speedup)
            for p in points
            if (not capped or p.workers <= cpus) and p.speedup > 0
        ]
        fit = fit_amdahl(fitted) if len(fitted) >= 2 else None
        found.append(
            Sweep(
                test,
                backend,
                points,
                serial_fraction=fit.serial_fraction if fit else None,
                max_speedup=fit.max_speedup if fit and not math.isinf(fit.max_speedup) else None,
                fit_r2=fit.r2 if fit else None,
                capped_by_cpus=capped,
                usable_cpus=cpus,
                call_index=call_index,
            )
        )
    return found
