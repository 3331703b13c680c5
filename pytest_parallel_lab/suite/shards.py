"""More than one machine: a CI matrix of K shards, each running ``pytest -n N``.

Pure. The suite is split by duration as pytest-split's ``least_duration`` algorithm
does (longest test first to the shard with the least time so far, each shard keeping
the collection order), each shard becomes a model of its own (it starts, collects the
whole suite and sets up its own session fixtures, like any pytest run) and is
simulated on its N workers; the matrix takes as long as its slowest shard.
:func:`durations_of` and :func:`model_from_durations` write and read pytest-split's
``.test_durations`` (a JSON object of node id to seconds).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_parallel_lab.document.suite import Calibration, ShardPrediction
from pytest_parallel_lab.suite.model import SimTest, SuiteModel
from pytest_parallel_lab.suite.schedulers import SchedulerFactory
from pytest_parallel_lab.suite.simulate import predict_xdist_wall_time


def split_least_duration(durations: Sequence[float], shards: int) -> list[list[int]]:
    """pytest-split's ``least_duration``: indices of *durations*, longest first, each to
    the shard with the least total so far (the lowest shard on a tie); every shard keeps
    collection order."""
    if shards < 1:
        raise ValueError("at least one shard")
    heap = [(0.0, k) for k in range(shards)]
    groups: list[list[int]] = [[] for _ in range(shards)]
    for index in sorted(range(len(durations)), key=lambda i: -durations[i]):
        total, k = heapq.heappop(heap)
        groups[k].append(index)
        heapq.heappush(heap, (total + durations[index], k))
    return [sorted(group) for group in groups]


def shard_model(model: SuiteModel, indices: Sequence[int]) -> SuiteModel:
    """The part of *model* one shard runs: its tests, the same fixtures and calibration."""
    return dataclasses.replace(
        model, tests=tuple(model.tests[i] for i in indices), serial_wall_s=None
    )


def test_durations(model: SuiteModel) -> list[float]:
    """Each test's time as pytest-split records it (setup, call and teardown)."""
    return [t.base_s + t.serial_fixture_s for t in model.tests]


def predict_shards(
    model: SuiteModel,
    shards: int,
    workers: int,
    dist: str = "load",
    factory: SchedulerFactory | None = None,
) -> ShardPrediction:
    """Simulate the K-shard matrix, each shard under ``-n workers --dist dist``."""
    groups = split_least_duration(test_durations(model), shards)
    walls = []
    for group in groups:
        if not group:
            walls.append(0.0)  # pytest-split gives an empty shard nothing to run
            continue
        walls.append(
            predict_xdist_wall_time(shard_model(model, group), workers, dist, factory).wall_s
        )
    return ShardPrediction(
        shards, workers, dist, max(walls), tuple(walls), tuple(len(g) for g in groups)
    )


def best_matrix(
    model: SuiteModel,
    target_s: float,
    max_shards: int,
    worker_counts: Sequence[int],
    dist: str = "load",
    factory: SchedulerFactory | None = None,
) -> ShardPrediction | None:
    """The cheapest (K, N) — fewest machines, then fewest workers — whose slowest shard
    is predicted within *target_s*; None when none is."""
    for shards in range(1, max_shards + 1):
        for workers in sorted(worker_counts):
            prediction = predict_shards(model, shards, workers, dist, factory)
            if prediction.wall_s <= target_s:
                return prediction
    return None


def durations_of(model: SuiteModel) -> dict[str, float]:
    """pytest-split's ``.test_durations``: node id to seconds."""
    return {t.nodeid: d for t, d in zip(model.tests, test_durations(model), strict=True)}


def model_from_durations(
    data: Any, calibration: Calibration | None = None, where: str = ".test_durations"
) -> SuiteModel:
    """A model from pytest-split's ``.test_durations`` (no fixtures, no CPU figures:
    every test fully CPU-bound, the defaults for what belongs to no test). Raises
    ValueError naming *where* when it is not an object of node ids to seconds."""
    if not isinstance(data, Mapping) or not data:
        raise ValueError(f"{where}: expected a JSON object of test node ids to seconds")
    tests = []
    for nodeid, seconds in data.items():
        if (
            not isinstance(seconds, (int, float))
            or isinstance(seconds, bool)
            or not math.isfinite(seconds)
            or seconds < 0
        ):
            raise ValueError(f"{where}: {nodeid!r} has {seconds!r}, not a number of seconds")
        tests.append(SimTest(str(nodeid), float(seconds)))
    return SuiteModel(tuple(tests), {}, calibration or Calibration())
