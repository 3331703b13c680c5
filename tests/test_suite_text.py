"""The suite section as text: every block from a hand-made section, and only what it has."""

from __future__ import annotations

import dataclasses

from pytest_parallel_lab.document.suite import (
    ActualRun,
    Calibration,
    ChainLink,
    FixtureDuplication,
    FixtureTiming,
    Imbalance,
    Prediction,
    SuiteSection,
    TestTiming,
    WorkerChain,
    WorkerTiming,
    XdistAdvice,
)
from pytest_parallel_lab.output.suite_text import TOP, render_prediction, render_suite_section
from pytest_parallel_lab.vocabulary import Outcome

SERIAL = SuiteSection(
    tests=(
        TestTiming("t.py::test_fast", "main", 0.001, 0.002, 0.0, Outcome.PASSED),
        TestTiming("t.py::test_slow", "main", 0.1, 1.5, 0.25, Outcome.FAILED),
    ),
    fixtures=(FixtureTiming("t.py::db@session", "db", "session", "", None, "main", 0.5, 0.125, 1),),
    workers=(WorkerTiming("main", 0.0, 0.2, 1.853, 0.01, 2),),
    wall_s=2.25,
    prediction=(Prediction(2, "load", 1.5, 1.25), Prediction(2, "worksteal", 1.125, 1.0)),
    serial_wall_s=2.25,
    recommended=XdistAdvice(2, "worksteal", 1.125, "use -n 2 --dist worksteal: predicted 1.12s"),
)


def test_a_serial_section_lists_the_slowest_tests_first_with_their_outcome() -> None:
    text = render_suite_section(SERIAL)
    assert text.startswith("suite analysis: 2 tests, session 2.250 s")
    lines = text.splitlines()
    slow = next(i for i, line in enumerate(lines) if "test_slow" in line)
    fast = next(i for i, line in enumerate(lines) if "test_fast" in line)
    assert slow < fast
    assert "failed" in lines[slow]
    # One process ran the tests: no worker column; the numbers keep their digits.
    assert lines[slow].split()[1:5] == ["0.100", "1.500", "0.250", "failed"]


def test_a_root_fixture_is_shown_as_defined_in_the_root() -> None:
    text = render_suite_section(SERIAL)
    (line,) = [line for line in text.splitlines() if line.startswith("db ")]
    assert line.split()[:4] == ["db", "session", "(root)", "1"]


def test_a_serial_run_compares_each_prediction_with_the_serial_time_and_advises() -> None:
    text = render_suite_section(SERIAL)
    assert "vs serial" in text
    assert "actual s" not in text
    (line,) = [line for line in text.splitlines() if "worksteal" in line and "1.125" in line]
    assert line.split()[-1] == "2.00x"
    assert text.rstrip().endswith("recommendation: use -n 2 --dist worksteal: predicted 1.12s")


def test_a_serial_section_has_no_cross_worker_blocks() -> None:
    text = render_suite_section(SERIAL)
    for block in ("imbalance", "fixture duplication", "last worker to finish"):
        assert block not in text


def test_an_xdist_run_shows_the_actual_time_beside_its_own_prediction_only() -> None:
    section = SuiteSection(
        tests=SERIAL.tests,
        workers=(
            WorkerTiming("gw0", 0.4, 0.2, 1.0, 0.1, 1, 1.7),
            WorkerTiming("gw1", 0.4, 0.2, 0.5, 0.1, 1, 1.2),
        ),
        wall_s=1.75,
        imbalance=Imbalance(4 / 3, 0.5),
        duplication=(FixtureDuplication("x", "db", "session", 2, 2, 1.0, 0.5, 0.5),),
        last_worker_chain=WorkerChain("gw0", (ChainLink("t.py::test_slow", 1.85),)),
        prediction=(Prediction(2, "load", 1.5, 1.25), Prediction(3, "load", 1.25, 1.0)),
        actual=ActualRun(2, "load", 1.75),
    )
    lines = render_suite_section(section).splitlines()
    assert "vs serial" not in " ".join(lines)
    two, three = (next(line for line in lines if line.split()[:2] == [n, "load"]) for n in "23")
    assert two.split()[-1] == "1.750"
    assert three.split()[2:] == ["1.250", "1.000"]  # no actual time beside -n 3
    assert any(line.startswith("imbalance: slowest worker busy 1.33x the mean") for line in lines)
    assert any(line.startswith("db ") and "session" in line for line in lines)
    assert "last worker to finish: gw0 ran 1 tests; its slowest: t.py::test_slow (1.850s)" in lines


def test_only_the_top_tests_are_listed() -> None:
    many = tuple(
        TestTiming(f"t.py::test_{i:02d}", "main", 0.0, i / 100, 0.0, Outcome.PASSED)
        for i in range(TOP + 5)
    )
    text = render_suite_section(SuiteSection(tests=many, wall_s=1.0))
    assert sum("t.py::test_" in line for line in text.splitlines()) == TOP
    assert f"t.py::test_{TOP + 4:02d}" in text
    assert "t.py::test_00" not in text


def test_a_prediction_without_advice_has_no_recommendation_line() -> None:
    text = render_prediction([Prediction(2, "load", 1.0, 0.5)], None, None)
    assert text.splitlines()[0] == "xdist prediction"
    assert "recommendation" not in text


def test_a_section_in_which_no_test_ran_says_so_and_predicts_nothing() -> None:
    # Issue 14: `pytest --co --parallel-report` printed a prediction for 0 tests.
    text = render_suite_section(SuiteSection(wall_s=0.25, serial_wall_s=0.25))
    assert text == "suite analysis: no test ran (session 0.250 s)\n"


def test_the_prediction_basis_says_how_much_rests_on_the_first_use_estimate() -> None:
    section = dataclasses.replace(
        SERIAL,
        calibration=Calibration(cpus=2, first_use_units=3, first_use_s=0.75),
        prediction=(
            Prediction(2, "load", 1.5, 1.25, repeated_s=0.5),
            Prediction(2, "worksteal", 1.125, 1.0, repeated_s=0.45),
        ),
    )
    text = render_suite_section(section)
    basis = text[text.index("prediction basis:") :].split("\n\n")[0]
    assert all(len(line) <= 80 for line in basis.splitlines())
    # the recommended -n 2 --dist worksteal: 0.45 s repeated over 2 workers, 0.225 s
    # of its 1.125 s
    assert " ".join(basis.split()).endswith(
        "first use in tests (imports, caches) in 3 units, 0.750 s once, estimated from "
        "each unit's first test: -n 2 --dist worksteal repeats 0.450 s of it over its "
        "workers, about 0.225 s (20%) of its predicted 1.125 s."
    )
    without = render_suite_section(dataclasses.replace(section, calibration=Calibration()))
    assert "no first-use cost found in tests" in " ".join(without.split())
