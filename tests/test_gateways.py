"""xdist's remote gateways (--tx ssh=..., socket=...) as predicted workers, worked out on paper."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pytest_parallel_lab import cli
from pytest_parallel_lab.document.run import RunDocument
from pytest_parallel_lab.document.suite import Calibration
from pytest_parallel_lab.suite.gateways import count_gateways, spec_workers
from pytest_parallel_lab.suite.model import SimTest, SuiteModel
from pytest_parallel_lab.suite.simulate import advise, predict_gateways, predict_xdist_wall_time

#: One CPU here, no costs besides the tests; a remote gateway takes 1 s to start.
ONE_CPU = Calibration(
    startup_s=0.0,
    collection_s=0.0,
    per_test_overhead_s=0.0,
    cpus=1,
    shutdown_s=0.0,
    controller_report_s=0.0,
    worker_report_s=0.0,
    remote_startup_s=1.0,
)


def four_cpu_bound_tests(calibration: Calibration = ONE_CPU) -> SuiteModel:
    return SuiteModel(tuple(SimTest(f"t.py::t{i}", 1.0) for i in range(4)), {}, calibration)


@pytest.mark.parametrize(
    ("spec", "workers", "remote"),
    [
        ("popen", 1, False),
        ("3*popen", 3, False),
        ("popen//python=python3.12", 1, False),
        ("ssh=user@host//chdir=/tmp", 1, True),
        ("2*ssh=host", 2, True),
        ("socket=192.168.1.102:8888", 1, True),
        ("5*popen//via=my_proxy", 5, True),
    ],
)
def test_a_tx_spec_is_local_popen_or_a_remote_gateway(
    spec: str, workers: int, remote: bool
) -> None:
    assert spec_workers(spec) == (workers, remote)


def test_the_gateways_of_a_run_are_counted_local_and_remote() -> None:
    assert count_gateways(["2*popen", "ssh=a", "socket=b:1"]) == (2, 2)
    assert count_gateways([]) == (0, 0)


def test_a_remote_gateway_starts_late_but_computes_on_a_cpu_of_its_own() -> None:
    model = four_cpu_bound_tests()
    # Two local workers on one CPU: two tests each at half speed, 4 s.
    assert predict_xdist_wall_time(model, 2, "load").wall_s == pytest.approx(4.0)
    # One local and one remote: the scheduler waits for the remote one's 1 s start,
    # then each runs its two tests at full speed: 1 + 2.
    mixed = predict_xdist_wall_time(model, 2, "load", remote=1)
    assert mixed.wall_s == pytest.approx(3.0)
    assert mixed.remote == 1
    # Two remote gateways: the same, on no local CPU at all.
    assert predict_xdist_wall_time(model, 2, "load", remote=2).wall_s == pytest.approx(3.0)
    # Without a given start-up a remote gateway starts like a local worker (0 s here).
    unknown = four_cpu_bound_tests(dataclasses.replace(ONE_CPU, remote_startup_s=None))
    assert predict_xdist_wall_time(unknown, 2, "load", remote=1).wall_s == pytest.approx(2.0)


def test_the_lower_bound_with_gateways_takes_the_quicker_start_and_their_cpus() -> None:
    # the local 0 s start, and 4 s of CPU over 1 local CPU and 1 remote one: 2 s
    mixed = predict_xdist_wall_time(four_cpu_bound_tests(), 2, "load", remote=1)
    assert mixed.lower_bound_s == pytest.approx(2.0)
    for remote in (0, 1, 2):
        for dist in ("load", "loadfile", "worksteal"):
            p = predict_xdist_wall_time(four_cpu_bound_tests(), 2, dist, remote=remote)
            assert p.lower_bound_s <= p.wall_s + 1e-9


def test_more_remote_gateways_than_workers_is_refused() -> None:
    with pytest.raises(ValueError, match="3 remote gateways among 2 workers"):
        predict_xdist_wall_time(four_cpu_bound_tests(), 2, "load", remote=3)


def test_the_advice_names_only_local_configurations() -> None:
    predictions = predict_gateways(four_cpu_bound_tests(), 1, 1, ["load"])
    predictions.append(predict_xdist_wall_time(four_cpu_bound_tests(), 2, "load"))
    # the gateways' 3 s is faster, but "-n 2" would not run them: -n 2 at 4 s is no gain
    advice = advise(predictions, serial_wall_s=4.0)
    assert advice.workers == 0
    assert "4.00s (-n 2 --dist load)" in advice.message


def saved_run(tmp_path: Path) -> Path:
    from pytest_parallel_lab.document.suite import SuiteSection, TestTiming
    from pytest_parallel_lab.vocabulary import Outcome

    tests = tuple(
        TestTiming(f"t.py::t{i}", "main", 0.0, 1.0, 0.0, Outcome.PASSED, float(i), index=i)
        for i in range(4)
    )
    section = SuiteSection(
        tests=tests, wall_s=4.0, calibration=dataclasses.replace(ONE_CPU, remote_startup_s=None)
    )
    path = tmp_path / "run.json"
    path.write_text(json.dumps(RunDocument(suite=section).to_json_dict()))
    return path


def test_the_cli_predicts_the_gateways_it_is_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = saved_run(tmp_path)
    argv = ["predict", str(path), "-n", "2", "--dist", "load", "--tx", "popen", "--tx", "ssh=b"]
    code = cli.main([*argv, "--tx-startup", "1"])
    out = capsys.readouterr().out
    assert code == 0
    (row,) = [line for line in out.splitlines() if "remote" in line]
    # as on paper: 1 s for the remote start, then two 1 s tests each
    assert row.split()[:5] == ["2", "(1", "remote)", "load", "3.000"]


@pytest.mark.parametrize("value", ["-1", "x", "nan"])
def test_the_cli_refuses_a_bad_remote_start_up(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["predict", str(saved_run(tmp_path)), "-n", "2", "--tx-startup", value])
    assert stopped.value.code == 2
    assert "--tx-startup: expected a number of seconds >= 0" in capsys.readouterr().err
