"""The options, read once at configure time: converters, precedence, one answer per question."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import pytest

from pytest_parallel_lab.environment import XdistRun
from pytest_parallel_lab.options import (
    LabOptions,
    backend_list_option,
    lab_options,
    min_speedup_option,
    positive_int_option,
    read_options,
    start_method_option,
    timeout_option,
    worker_counts_option,
    workers_option,
)
from pytest_parallel_lab.vocabulary import Role


@pytest.mark.parametrize(
    ("convert", "text", "expected"),
    [
        pytest.param(positive_int_option("--parallel-rounds"), "7", 7, id="int"),
        pytest.param(timeout_option, "2.5", 2.5, id="timeout"),
        pytest.param(min_speedup_option, "1.5", 1.5, id="min-speedup"),
        pytest.param(workers_option, "auto", None, id="workers-auto"),
        pytest.param(workers_option, "3", 3, id="workers-count"),
        pytest.param(backend_list_option, "thread, process,", ("thread", "process"), id="backends"),
        pytest.param(worker_counts_option, "2,4,8", (2, 4, 8), id="worker-counts"),
        pytest.param(start_method_option, "spawn", "spawn", id="start-method"),
    ],
)
def test_a_good_value_is_converted(convert: Callable[[str], Any], text: str, expected: Any) -> None:
    assert convert(text) == expected


@pytest.mark.parametrize(
    ("convert", "text", "fragment"),
    [
        pytest.param(positive_int_option("--parallel-tasks"), "0", "--parallel-tasks", id="zero"),
        pytest.param(timeout_option, "nan", "positive number of seconds", id="timeout-nan"),
        pytest.param(min_speedup_option, "-1", "a number above 0", id="min-speedup-negative"),
        pytest.param(workers_option, "many", "--parallel-workers", id="workers-word"),
        pytest.param(backend_list_option, " , ", "backend names like", id="no-backend"),
        pytest.param(worker_counts_option, "2,x", "worker counts like 2,4,8", id="counts-word"),
        pytest.param(worker_counts_option, "2,0", "positive integers", id="counts-zero"),
        pytest.param(start_method_option, "teleport", "not a start method", id="start-method"),
    ],
)
def test_a_bad_value_names_its_option_and_what_is_expected(
    convert: Callable[[str], Any], text: str, fragment: str
) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=fragment) as excinfo:
        convert(text)
    assert str(excinfo.value).startswith("--parallel-")


@pytest.mark.parametrize(
    ("options", "reporting", "times_suite"),
    [
        pytest.param(LabOptions(), False, False, id="nothing"),
        pytest.param(LabOptions(report=True), True, True, id="report"),
        pytest.param(LabOptions(report_json="r.json"), True, True, id="json"),
        pytest.param(LabOptions(html="r.html"), True, True, id="html-alone"),
        pytest.param(LabOptions(trace="t.json"), False, True, id="trace"),
        pytest.param(LabOptions(predict_from="r.json"), False, True, id="predict-from"),
    ],
)
def test_reporting_and_suite_timing_have_one_answer_each(
    options: LabOptions, reporting: bool, times_suite: bool
) -> None:
    assert (options.reporting, options.times_suite) == (reporting, times_suite)


def test_the_command_line_wins_over_the_ini_file_which_wins_over_the_default(
    lab: pytest.Pytester, lab_ini: Callable[[str], None]
) -> None:
    lab_ini("parallel_rounds = 3\nparallel_tasks = 6\nparallel_predict = 3,5\n")
    options = lab_options(lab.parseconfigure("--parallel-rounds=9"))
    assert (options.defaults.rounds, options.defaults.tasks) == (9, 6)
    assert options.defaults.timeout_s == 60.0
    assert options.predict == (3, 5)
    assert options.xdist == XdistRun(Role.PLAIN, 0, None, "no")


def test_parallel_all_without_backends_measures_threads_and_processes(
    lab: pytest.Pytester,
) -> None:
    options = lab_options(lab.parseconfigure("--parallel-all"))
    assert options.defaults.backends == ("thread", "process")
    named = lab_options(lab.parseconfigure("--parallel-all", "--parallel-backend=thread"))
    assert named.defaults.backends == ("thread",)


def test_output_paths_start_from_the_invocation_directory(lab: pytest.Pytester) -> None:
    options = lab_options(lab.parseconfigure("--parallel-report-json=out/r.json"))
    assert options.path("out/r.json") == str(lab.path / "out" / "r.json")


def test_the_environment_is_described_with_the_options_it_depends_on(
    lab: pytest.Pytester,
) -> None:
    config = lab.parseconfigure("--parallel-label=nightly", "--parallel-start-method=spawn")
    environment = lab_options(config).environment
    assert (environment.label, environment.start_method) == ("nightly", "spawn")
    assert environment.usable_cpus == lab_options(config).cpus
    assert environment is lab_options(config).environment  # worked out once


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="no-option"),
        pytest.param(("--parallel-predict=3",), id="command-line-given-too"),
        pytest.param(("--parallel-report",), id="with-a-report"),
    ],
)
def test_a_bad_ini_value_stops_every_run_naming_the_key_the_value_the_file_and_the_fix(
    lab: pytest.Pytester, lab_ini: Callable[[str], None], args: tuple[str, ...]
) -> None:
    # Issue 14: it was ignored silently when the command line gave the option.
    lab_ini("parallel_predict = 2,x\n")
    lab.makepyfile(
        """
        import pathlib

        def test_a():
            pathlib.Path("ran").write_text("yes")
        """
    )
    result = lab.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*ini option parallel_predict = '2,x' (*tox.ini): expected worker counts like 2,4,8*"
            "Fix: correct or remove parallel_predict in *tox.ini"
        ]
    )
    assert not (lab.path / "ran").exists()


def test_a_bad_ini_value_given_with_dash_o_names_the_command_line(lab: pytest.Pytester) -> None:
    lab.makepyfile("def test_a(): pass")
    result = lab.runpytest("-o", "parallel_rounds=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*parallel_rounds = '0' (-o on the command line): *>= 1*"])


@pytest.mark.parametrize(
    ("ini", "args", "expected"),
    [
        ("", [], (False, None, False)),
        ("", ["--parallel-safety"], (True, None, False)),
        ("", ["--parallel-safety-confirm=3"], (True, 3, False)),
        ("", ["--parallel-safety-fail"], (True, None, True)),
        ("parallel_safety = true\n", [], (True, None, False)),
        ("parallel_safety = true\n", ["--no-parallel-safety"], (False, None, False)),
        ("", ["--parallel-safety-confirm=2", "--no-parallel-safety"], (False, None, False)),
    ],
)
def test_safety_is_on_when_asked_for_or_confirmed_or_gated_and_off_when_refused(
    lab: pytest.Pytester,
    lab_ini: Callable[[str], None],
    ini: str,
    args: list[str],
    expected: tuple[bool, int | None, bool],
) -> None:
    lab_ini(ini)
    options = read_options(lab.parseconfig(*args))  # not configured: nothing registered
    assert (options.safety, options.safety_confirm, options.safety_fail) == expected
