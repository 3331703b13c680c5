"""Calibrating a serial run's prediction with a saved -n N run, worked out on paper."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import FREE

from pytest_parallel_lab.document.codec import DocumentError
from pytest_parallel_lab.document.suite import (
    ActualRun,
    Calibration,
    Prediction,
    SuiteSection,
    TestTiming,
)
from pytest_parallel_lab.output.suite_text import render_suite_section
from pytest_parallel_lab.suite.calibration_run import (
    RunCalibration,
    calibrated,
    calibration_from_run,
    check_xdist_run,
)
from pytest_parallel_lab.suite.model import SimTest, SuiteModel
from pytest_parallel_lab.suite.simulate import predict_xdist_wall_time
from pytest_parallel_lab.vocabulary import Outcome

SAVED_CAL = Calibration(
    startup_s=0.8,
    cpus=2,
    controller_report_s=0.0002,
    shutdown_s=0.3,
    shutdown_measured=True,
)


def row(nodeid: str, cpu_s: float | None, worker: str = "main", start_s: float = 0.0) -> TestTiming:
    return TestTiming(
        nodeid, worker, 0.0, cpu_s or 0.0, 0.0, Outcome.PASSED, start_s=start_s, cpu_s=cpu_s
    )


def serial(*cpus: float | None, module: str = "t.py") -> SuiteSection:
    return SuiteSection(
        tests=tuple(row(f"{module}::t{i}", c, start_s=i) for i, c in enumerate(cpus))
    )


def xdist_run(
    *cpus: float | None, workers: int = 2, remote: int = 0, module: str = "t.py"
) -> SuiteSection:
    return SuiteSection(
        tests=tuple(
            row(f"{module}::t{i}", c, f"gw{i % workers}", start_s=i) for i, c in enumerate(cpus)
        ),
        actual=ActualRun(workers, "load", 1.0, remote),
        calibration=SAVED_CAL,
    )


def joined(*sections: SuiteSection) -> SuiteSection:
    return dataclasses.replace(sections[0], tests=sum((s.tests for s in sections), ()))


def test_a_test_repeats_what_it_takes_beyond_its_modules_typical_excess() -> None:
    # Excess under -n 2: 1, 1, 1, 11 and 1.5 ms; the module's median (1 ms: the sends,
    # the shared CPUs) comes off. t3's 10 ms is left, t4's 0.5 ms is below REPEAT_MIN_S.
    # A worker of -n 2 missed what warmed t3 with a chance of 1/2: one full miss is 20 ms.
    run = calibration_from_run(
        xdist_run(0.011, 0.011, 0.011, 0.021, 0.0115), serial(0.01, 0.01, 0.01, 0.01, 0.01)
    )
    assert run.repeated == {"t.py::t3": pytest.approx(0.020)}
    assert run.matched == 5
    assert (run.workers, run.startup_s, run.controller_report_s, run.shutdown_s) == (
        2,
        0.8,
        0.0002,
        0.3,
    )
    # under -n 4 the chance of a miss was 3/4: 10 ms / 0.75
    four = calibration_from_run(
        xdist_run(0.011, 0.011, 0.011, 0.021, workers=4), serial(0.01, 0.01, 0.01, 0.01)
    )
    assert four.repeated == {"t.py::t3": pytest.approx(0.010 / 0.75)}


def test_each_module_has_its_own_typical_excess() -> None:
    # b.py's tests all take 5 ms more under -n 2 (slower beside another worker): none of
    # them repeats anything; a.py's median is 0 and its t2 repeats 2 x 6 ms.
    saved = joined(
        xdist_run(0.01, 0.01, 0.016, module="a.py"), xdist_run(0.015, 0.015, 0.015, module="b.py")
    )
    ours = joined(serial(0.01, 0.01, 0.01, module="a.py"), serial(0.01, 0.01, 0.01, module="b.py"))
    assert calibration_from_run(saved, ours).repeated == {"a.py::t2": pytest.approx(0.012)}


def test_a_long_test_slower_beside_another_worker_repeats_nothing() -> None:
    # t2 took 40 ms more of its 200 ms (20%): above REPEAT_MIN_S, below half its own time
    run = calibration_from_run(xdist_run(0.01, 0.01, 0.24), serial(0.01, 0.01, 0.2))
    assert run.repeated == {}


def test_a_busy_host_slowing_every_test_in_proportion_repeats_nothing() -> None:
    # Every test took 2.2 times its serial CPU time (a host busy with other machines);
    # t4 also compiled 20 ms of what t0 warmed serially. As a constant, the module's
    # typical growth (12 ms) would leave 228 ms of t3's 240 ms growth, more than half
    # its 200 ms: taken as a share (1.2 of each test's CPU time) it leaves none. t4's
    # 32 ms growth leaves 20 ms either way: one full miss is twice that.
    run = calibration_from_run(
        xdist_run(0.022, 0.022, 0.022, 0.44, 0.042), serial(0.01, 0.01, 0.01, 0.2, 0.01)
    )
    assert run.repeated == {"t.py::t4": pytest.approx(0.040)}


def test_a_tests_own_report_sends_come_off_before_its_modules_typical_excess() -> None:
    # 0.1 ms a send: t0 and t1 sent 3 reports (0.3 ms, their whole excess), t2 sent 303
    # (a test of 300 subtests: 30.3 ms of its 30.3 ms excess): nothing is repeated
    saved = xdist_run(0.0103, 0.0103, 0.0403)
    saved = dataclasses.replace(
        saved,
        tests=(*saved.tests[:2], dataclasses.replace(saved.tests[2], reports=303)),
    )
    assert calibration_from_run(saved, serial(0.01, 0.01, 0.01), 0.0001).repeated == {}
    # without the sends taken off it would count as 2 x 30 ms
    assert calibration_from_run(saved, serial(0.01, 0.01, 0.01)).repeated == {
        "t.py::t2": pytest.approx(0.060)
    }


def test_a_workers_first_test_of_a_first_use_unit_is_left_to_the_first_use_estimate() -> None:
    # The serial run's first test of m.py paid 40 ms of imports (the first-use estimate
    # charges that to each worker's first test of m.py). Under -n 2, gw1's first m.py
    # test (t1) pays them again: not counted twice. t4 on gw0 repeats 10 ms of its own.
    ours = serial(0.05, 0.01, 0.01, 0.01, 0.01, 0.01, module="m.py")
    saved = xdist_run(0.05, 0.05, 0.01, 0.01, 0.02, 0.01, module="m.py")
    assert calibration_from_run(saved, ours).repeated == {"m.py::t4": pytest.approx(0.020)}


def test_tests_without_a_cpu_time_in_either_run_are_not_counted() -> None:
    run = calibration_from_run(xdist_run(None, 0.2, 0.1), serial(0.1, 0.1, None))
    assert run.matched == 1
    assert run.repeated == {}  # one test: its own median, nothing left


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        pytest.param(None, "no 'suite' section", id="no-suite"),
        pytest.param(serial(0.1), "not an xdist run", id="serial"),
        pytest.param(xdist_run(0.1, workers=1), "1 worker", id="one-worker"),
        pytest.param(xdist_run(0.1, workers=3, remote=1), "1 remote gateway", id="remote"),
        pytest.param(
            dataclasses.replace(xdist_run(0.1), calibration=None), "no calibration", id="nocal"
        ),
    ],
)
def test_a_run_that_cannot_calibrate_says_why(section: SuiteSection | None, problem: str) -> None:
    with pytest.raises(DocumentError, match=problem):
        check_xdist_run(section)


def test_a_saved_run_of_another_suite_calibrates_nothing() -> None:
    other = dataclasses.replace(xdist_run(0.1), tests=(row("other.py::t", 0.1),))
    with pytest.raises(DocumentError, match="another suite"):
        calibration_from_run(other, serial(0.1))


def test_the_saved_run_gives_the_tests_their_repeated_work_and_replaces_the_estimates() -> None:
    run = RunCalibration(2, 5, 0.8, 0.0002, 0.01, {"t.py::t1": 0.02})
    measured = Calibration(startup_s=0.4, shutdown_s=0.2, shutdown_measured=True)
    section = calibrated(dataclasses.replace(serial(0.1, 0.1), calibration=measured), run)
    assert section.tests == serial(0.1, 0.1).tests
    cal = section.calibration
    assert cal is not None
    assert (cal.startup_s, cal.controller_report_s) == (0.8, 0.0002)
    assert (cal.calibration_workers, cal.calibration_tests) == (2, 5)
    assert cal.repeated == {"t.py::t1": 0.02}
    assert cal.shutdown_s == 0.2  # the probe's: the whole interpreter exit
    unmeasured = calibrated(
        dataclasses.replace(serial(0.1), calibration=Calibration(shutdown_s=0.15)), run
    ).calibration
    assert unmeasured is not None
    assert (unmeasured.shutdown_s, unmeasured.shutdown_measured) == (0.01, True)


def repeating_tests(share: float, repeated_s: float = 0.5, count: int = 4) -> SuiteModel:
    return SuiteModel(
        tuple(
            SimTest(f"t.py::t{i}", 1.0, cpu_share=share, repeated_s=repeated_s)
            for i in range(count)
        ),
        calibration=FREE,
    )


@pytest.mark.parametrize(
    ("share", "workers", "wall"),
    [
        # -n 2: a worker misses what warmed a test half the time, 0.25 s more CPU each;
        # two tests a worker, one CPU each: 2 x 1.25 s
        pytest.param(1.0, 2, 2.5, id="cpu-bound"),
        # -n 4 on 2 CPUs: 0.375 s more each, four tests at once on two CPUs: 2 x 1.375 s
        pytest.param(1.0, 4, 2.75, id="more-workers-than-cpus"),
        # waiting tests: the repeated work is CPU, 0.25 s beside 1 s of waiting; two
        # workers need 0.4 CPUs: nothing slows, 2 x 1.25 s
        pytest.param(0.0, 2, 2.5, id="waiting"),
        # -n 1: one worker runs what warms every test, as the serial run did
        pytest.param(1.0, 1, 4.0, id="one-worker"),
    ],
)
def test_a_worker_repeats_one_minus_one_over_n_of_a_tests_repeated_work(
    share: float, workers: int, wall: float
) -> None:
    prediction = predict_xdist_wall_time(repeating_tests(share), workers, "load")
    assert prediction.wall_s == pytest.approx(wall)
    # the bound rests on the measured times alone
    assert prediction.lower_bound_s <= prediction.wall_s


def shown(cal: Calibration, prediction: Prediction | None = None) -> str:
    """The suite section's text of a one-test run predicted with *cal*, on one line."""
    section = SuiteSection(
        tests=(row("t.py::t0", 0.1),),
        calibration=cal,
        prediction=(prediction or Prediction(2, "load", 1.0, 0.1),),
    )
    return " ".join(render_suite_section(section).split())


def test_the_report_says_what_the_saved_run_calibrated_and_how_much_rests_on_it() -> None:
    cal = dataclasses.replace(
        FREE,
        calibration_workers=2,
        calibration_tests=40,
        repeated={"t.py::t1": 0.2, "t.py::t2": 0.25, "t.py::t3": 0.35},
    )
    # -n 2 repeats half of 0.8 s over 2 workers: 0.2 s a worker, 20% of 1 s
    assert (
        "Calibrated by a saved -n 2 run: 3 of the 40 tests in both runs repeat 0.800 s of CPU "
        "work on a worker that did not run what warmed it (-n 2 --dist load: about 0.200 s, "
        "20%, of its predicted 1.000 s)"
    ) in shown(cal)
    nothing = dataclasses.replace(cal, repeated={})
    assert "none of the 40 tests in both runs repeats work" in shown(nothing)
    assert "Calibrated" not in shown(FREE)


SUITE = """
import time

def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

def test_a(): burn(0.06)
def test_b(): burn(0.06)
def test_c(): burn(0.06)
def test_d(): burn(0.06)
"""


def saved_xdist_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "no:asyncio", "-n", "2", "--parallel-report-json=n2.json"
    )
    result.assert_outcomes(passed=4)


def test_a_serial_run_is_calibrated_by_a_saved_xdist_run(lab: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    saved_xdist_run(lab)
    result = lab.runpytest(
        "--parallel-report", "--parallel-report-json=run.json", "--parallel-calibrate-from=n2.json"
    )
    result.assert_outcomes(passed=4)
    assert "Calibrated by a saved -n 2 run" in " ".join(result.stdout.str().split())
    cal = json.loads(Path(lab.path, "run.json").read_text())["suite"]["calibration"]
    saved = json.loads(Path(lab.path, "n2.json").read_text())["suite"]["calibration"]
    assert cal["calibration_workers"] == 2
    assert cal["startup_s"] == saved["startup_s"]
    assert cal["controller_report_s"] == saved["controller_report_s"]
    assert cal["calibration_tests"] == 4


@pytest.mark.parametrize(
    ("args", "problem", "fix"),
    [
        pytest.param(
            ["--parallel-report", "--parallel-calibrate-from=missing.json"],
            "no such file",
            "pytest -n 2 --parallel-report-json=PATH",
            id="missing",
        ),
        pytest.param(
            ["--parallel-report", "--parallel-calibrate-from=serial.json"],
            "not an xdist run",
            "pytest -n 2 --parallel-report-json=PATH",
            id="serial",
        ),
        pytest.param(
            ["--parallel-calibrate-from=serial.json"],
            "no report asks for one",
            "add --parallel-report",
            id="no-report",
        ),
    ],
)
def test_a_calibration_run_that_cannot_be_used_stops_the_run_before_any_test(
    lab: pytest.Pytester, args: list[str], problem: str, fix: str
) -> None:
    lab.makepyfile(test_saved="def test_a(): pass")
    lab.runpytest("--parallel-report-json=serial.json")
    lab.makepyfile(
        test_saved="""
        import pathlib

        def test_a():
            pathlib.Path("ran").write_text("yes")
        """
    )
    result = lab.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--parallel-calibrate-from=*{problem}*"])
    assert fix in result.stderr.str()
    assert not (lab.path / "ran").exists()


def test_a_run_under_xdist_is_told_its_workers_calibrate_it(lab: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    saved_xdist_run(lab)
    result = lab.runpytest_subprocess(
        "-n", "2", "--parallel-report", "--parallel-calibrate-from=n2.json"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "its own workers calibrate" in result.stderr.str()


def test_a_saved_run_of_other_tests_leaves_the_prediction_uncalibrated_with_a_warning(
    lab: pytest.Pytester,
) -> None:
    pytest.importorskip("xdist")
    saved_xdist_run(lab)
    (lab.path / "test_suite.py").unlink()
    lab.makepyfile(test_other="def test_x(): pass")
    result = lab.runpytest("--parallel-report", "--parallel-calibrate-from=n2.json")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*--parallel-calibrate-from=n2.json: none of this run's tests*"])
    assert "Calibrated by" not in result.stdout.str()
