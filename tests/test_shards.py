"""A CI matrix of K machines each running -n N, on suites worked out on paper."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import FREE

from pytest_parallel_lab import cli
from pytest_parallel_lab.document.suite import Calibration
from pytest_parallel_lab.suite.model import SimFixture, SimTest, SuiteModel
from pytest_parallel_lab.suite.shards import (
    best_matrix,
    durations_of,
    model_from_durations,
    predict_shards,
    split_least_duration,
)

SESSION = SimFixture("::db@session", "::db@session", "session", 1.0, 0.0)


def suite(
    costs: list[float], calibration: Calibration = FREE, uses: tuple[str, ...] = ()
) -> SuiteModel:
    tests = tuple(SimTest(f"t.py::t{i}", c, uses) for i, c in enumerate(costs))
    fixtures = {SESSION.id: SESSION} if uses else {}
    return SuiteModel(tests, fixtures, calibration)


def test_the_split_gives_the_longest_test_first_to_the_least_loaded_shard() -> None:
    # 3 to shard 0; then 1, 1, 1 to shard 1 (its total stays below 3); order kept
    assert split_least_duration([1, 3, 1, 1], 2) == [[1], [0, 2, 3]]
    assert split_least_duration([2, 2, 2, 2], 2) == [[0, 2], [1, 3]]
    # more shards than tests: the extra shards run nothing
    assert split_least_duration([1.0], 3) == [[0], [], []]
    with pytest.raises(ValueError, match="at least one shard"):
        split_least_duration([1.0], 0)


def test_each_shard_pays_its_own_start_up_and_session_fixtures() -> None:
    cal = dataclasses.replace(FREE, startup_s=0.5)
    model = suite([3, 1, 1, 1], cal, uses=(SESSION.id,))
    prediction = predict_shards(model, 2, 1)
    # shard 0: 0.5 start-up + 1 fixture + 3; shard 1: 0.5 + 1 + 3 x 1
    assert prediction.shard_wall_s == (pytest.approx(4.5), pytest.approx(4.5))
    assert prediction.shard_tests == (1, 3)
    assert prediction.wall_s == pytest.approx(4.5)
    # one machine with two workers: load sends t0 (3 s) and t1 to gw0, each worker
    # sets up its own fixture: 0.5 + 1 + 3 + 1
    assert predict_shards(model, 1, 2).wall_s == pytest.approx(5.5)
    # two machines with two workers each: shard 1's three 1 s tests on 2 workers
    assert predict_shards(model, 2, 2).shard_wall_s == (pytest.approx(4.5), pytest.approx(3.5))


def test_the_best_matrix_is_the_fewest_machines_then_workers_within_the_target() -> None:
    model = suite([1] * 8)
    best = best_matrix(model, 2.0, max_shards=4, worker_counts=[1, 2, 4])
    assert best is not None
    # 8 s of CPU-bound tests: one machine of 2 CPUs needs 4 s; two machines of 2 workers 2 s
    assert (best.shards, best.workers) == (2, 2)
    assert best_matrix(model, 0.5, max_shards=2, worker_counts=[1, 2]) is None


def test_durations_are_written_and_read_back_in_pytest_split_format() -> None:
    model = suite([0.5, 1.5])
    durations = durations_of(model)
    assert durations == {"t.py::t0": 0.5, "t.py::t1": 1.5}
    again = model_from_durations(json.loads(json.dumps(durations)))
    assert [(t.nodeid, t.base_s) for t in again.tests] == [("t.py::t0", 0.5), ("t.py::t1", 1.5)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a JSON object"),
        ({}, "expected a JSON object"),
        ({"t.py::a": "1"}, "'t.py::a' has '1'"),
        ({"t.py::a": -1}, "not a number of seconds"),
        ({"t.py::a": True}, "not a number of seconds"),
    ],
)
def test_a_durations_file_that_is_not_node_ids_to_seconds_is_refused(
    data: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        model_from_durations(data, where="d.json")


def test_the_cli_predicts_shards_from_a_run_and_from_exported_durations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(__file__).parent / "data" / "sweep_and_suite.json"
    assert cli.main(["predict", str(run), "-n", "2", "--shards", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CI matrix prediction")
    assert [line.split()[:3] for line in out.splitlines()[3:]] == [
        ["1", "2", "load"],
        ["2", "2", "load"],
    ]
    target = tmp_path / ".test_durations"
    assert cli.main(["durations", str(run), "-o", str(target)]) == 0
    assert "test durations to" in capsys.readouterr().out
    durations = json.loads(target.read_text())
    assert durations
    assert all(isinstance(v, float) for v in durations.values())
    assert cli.main(["predict", str(target), "--durations", "-n", "1", "--shards", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3 + 3


def test_the_cli_refuses_durations_without_shards_and_a_bad_durations_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "d.json"
    bad.write_text('{"t.py::a": "slow"}')
    assert cli.main(["predict", str(bad), "--durations", "-n", "2"]) == 2
    assert "add --shards" in capsys.readouterr().err
    assert cli.main(["predict", str(bad), "--durations", "-n", "2", "--shards", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pytest-parallel-lab: error: {bad}: 't.py::a' has 'slow'")
    assert cli.main(["predict", str(bad), "-n", "2", "--shards", "0"]) == 2
    assert "give 1 to 1024 machines" in capsys.readouterr().err
