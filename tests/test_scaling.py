"""Amdahl's-law fits of worker sweeps and the sweeps of the ``scaling`` section."""

from __future__ import annotations

import json
import math

import pytest

from pytest_parallel_lab.document.codec import to_json
from pytest_parallel_lab.document.records import (
    Environment,
    ResultRecord,
    Sweep,
    SweepPoint,
)
from pytest_parallel_lab.marked.scaling import fit_amdahl, sweeps
from pytest_parallel_lab.stats import Interval, amdahl_speedup
from pytest_parallel_lab.vocabulary import Kind, Outcome

WORKERS = (1, 2, 4, 8)


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.1, 0.25, 0.5, 1.0])
def test_exact_amdahl_data_gives_back_its_serial_fraction(fraction: float) -> None:
    points = [(n, amdahl_speedup(n, fraction)) for n in WORKERS]
    fit = fit_amdahl(points)
    assert fit.serial_fraction == pytest.approx(fraction, abs=1e-6)
    assert fit.r2 == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("fraction", "max_speedup"),
    [(0.0, math.inf), (0.1, 10.0), (0.5, 2.0), (1.0, 1.0)],
)
def test_the_ceiling_is_one_over_the_serial_fraction(fraction: float, max_speedup: float) -> None:
    fit = fit_amdahl([(n, amdahl_speedup(n, fraction)) for n in WORKERS])
    assert fit.max_speedup == pytest.approx(max_speedup, rel=1e-4)


def test_noisy_data_still_lands_near_its_serial_fraction_with_a_lower_r2() -> None:
    jitter = (1.03, 0.96, 1.04, 0.97)
    points = [(n, amdahl_speedup(n, 0.1) * j) for n, j in zip(WORKERS, jitter, strict=True)]
    fit = fit_amdahl(points)
    assert fit.serial_fraction == pytest.approx(0.1, abs=0.03)
    assert 0.8 < fit.r2 < 1.0


@pytest.mark.parametrize(
    ("points", "fraction"),
    [
        pytest.param([(1, 1.0), (2, 2.4), (4, 5.0)], 0.0, id="superlinear-clamps-to-zero"),
        pytest.param([(1, 1.0), (2, 0.8), (4, 0.6)], 1.0, id="slowdown-clamps-to-one"),
    ],
)
def test_the_serial_fraction_is_clamped_to_zero_and_one(
    points: list[tuple[int, float]], fraction: float
) -> None:
    assert fit_amdahl(points).serial_fraction == fraction


def test_identical_speedups_that_the_fit_matches_have_r2_one() -> None:
    assert fit_amdahl([(1, 1.0), (1, 1.0)]).r2 == 1.0


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([], "no points"),
        ([(0, 1.0)], "at least 1"),
        ([(2, 0.0)], "positive"),
        ([(2, math.inf)], "positive"),
        ([(2, math.nan)], "positive"),
    ],
)
def test_a_fit_rejects_points_that_are_not_a_sweep(
    points: list[tuple[int, float]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fit_amdahl(points)


def sweep_record(
    workers: int,
    speedup: float,
    *,
    backend: str = "process",
    test: str = "t.py::test_s",
    kind: Kind = Kind.BODY,
    call_index: int = 0,
) -> ResultRecord:
    return ResultRecord(
        nodeid=f"{test}[{backend}-{workers}]",
        test=test,
        backend=backend,
        kind=kind,
        call_index=call_index,
        workers=workers,
        speedup=Interval(estimate=speedup, low=speedup * 0.95, high=speedup * 1.05),
    )


def test_amdahl_speedup_follows_the_law() -> None:
    assert amdahl_speedup(1, 0.3) == pytest.approx(1.0)
    assert amdahl_speedup(4, 0.0) == pytest.approx(4.0)
    assert amdahl_speedup(4, 1.0) == pytest.approx(1.0)
    # 1 / (0.2 + 0.8 / 4) = 1 / 0.4
    assert amdahl_speedup(4, 0.2) == pytest.approx(2.5)


def test_a_sweep_becomes_one_scaling_entry_with_its_fit() -> None:
    records = [sweep_record(n, amdahl_speedup(n, 0.2)) for n in (8, 1, 4, 2)]
    (entry,) = sweeps(records, Environment(usable_cpus=8))
    assert isinstance(entry, Sweep)
    assert entry.test == "t.py::test_s"
    assert entry.backend == "process"
    assert [p.workers for p in entry.points] == [1, 2, 4, 8]
    assert entry.points[1].speedup == pytest.approx(amdahl_speedup(2, 0.2))
    assert entry.points[1].ci_low == pytest.approx(amdahl_speedup(2, 0.2) * 0.95)
    assert entry.points[1].ci_high == pytest.approx(amdahl_speedup(2, 0.2) * 1.05)
    assert entry.serial_fraction == pytest.approx(0.2, abs=1e-6)
    assert entry.max_speedup == pytest.approx(5.0, rel=1e-4)
    assert entry.fit_r2 == pytest.approx(1.0)
    assert entry.capped_by_cpus is False
    assert entry.usable_cpus == 8
    assert entry.call_index is None
    data = to_json(entry)
    json.dumps(data, allow_nan=False)
    assert set(data["points"][0]) == {"workers", "speedup", "ci_low", "ci_high"}


def test_worker_counts_above_the_usable_cpus_are_left_out_of_the_fit() -> None:
    # Perfect scaling up to the 4 CPUs, then the hardware ceiling: not a serial fraction.
    records = [sweep_record(n, s) for n, s in ((1, 1.0), (2, 2.0), (4, 4.0), (8, 4.0))]
    (entry,) = sweeps(records, Environment(usable_cpus=4))
    assert entry.capped_by_cpus is True
    assert len(entry.points) == 4
    assert entry.serial_fraction == pytest.approx(0.0, abs=1e-6)
    # Unbounded: None (null in JSON, which has no infinity).
    assert entry.max_speedup is None
    data = to_json(entry)
    assert data["max_speedup"] is None
    json.dumps(data, allow_nan=False)


def test_a_sweep_with_one_point_within_the_cpus_has_no_fit() -> None:
    records = [sweep_record(n, 1.0) for n in (1, 8)]
    (entry,) = sweeps(records, Environment(usable_cpus=1))
    assert entry.capped_by_cpus is True
    assert entry.serial_fraction is None
    assert entry.max_speedup is None
    assert entry.fit_r2 is None
    assert entry.points == (SweepPoint(1, 1.0, 0.95, 1.05), SweepPoint(8, 1.0, 0.95, 1.05))


def test_single_worker_counts_and_failed_rows_make_no_sweep() -> None:
    records = [
        sweep_record(4, 3.0, backend="thread"),
        sweep_record(4, 3.5),
        ResultRecord(nodeid="x", test="t.py::test_s", backend="process", workers=8,
                     outcome=Outcome.FAILED),
    ]  # fmt: skip
    assert sweeps(records, Environment(usable_cpus=8)) == []


def test_each_test_and_backend_is_its_own_sweep() -> None:
    records = [
        sweep_record(n, amdahl_speedup(n, 0.1), backend=b, test=t)
        for t in ("a.py::test_a", "b.py::test_b")
        for b in ("thread", "process")
        for n in (1, 2)
    ]
    found = sweeps(records, Environment(usable_cpus=0))
    assert [(e.test, e.backend) for e in found] == [
        ("a.py::test_a", "thread"),
        ("a.py::test_a", "process"),
        ("b.py::test_b", "thread"),
        ("b.py::test_b", "process"),
    ]
    # Unknown CPU count: nothing is capped.
    assert not any(e.capped_by_cpus for e in found)


def test_each_parallel_map_call_is_its_own_sweep_with_its_call_index() -> None:
    records = [
        sweep_record(n, amdahl_speedup(n, f), kind=Kind.MAP, call_index=call)
        for call, f in ((0, 0.1), (1, 0.5))
        for n in (1, 2, 4)
    ]
    found = sweeps(records, Environment(usable_cpus=4))
    assert [e.call_index for e in found] == [0, 1]
    assert [e.serial_fraction for e in found] == [
        pytest.approx(0.1, abs=1e-6),
        pytest.approx(0.5, abs=1e-6),
    ]
