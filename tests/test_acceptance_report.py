"""The terminal report (``--parallel-report``) and the JSON run document."""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import pytest

from pytest_parallel_lab.document.run import load_document

COLUMNS = [
    "test",
    "backend",
    "workers",
    "tasks",
    "serial",
    "backend time",
    "speedup [[]95% CI[]]",
    "efficiency",
    "start-up",
    "notes",
]
ENVIRONMENT_KEYS = {
    "python_version",
    "implementation",
    "gil_enabled",
    "cpu_count",
    "usable_cpus",
    "platform",
    "pytest_version",
    "plugin_version",
    "xdist_workers",
    "start_method",
}
RESULT_KEYS = {
    "nodeid",
    "test",
    "backend",
    "workers",
    "tasks",
    "rounds",
    "serial_s",
    "backend_s",
    "speedup",
    "efficiency",
    "startup_s",
    "noisy",
    "outcome",
    "error",
}

MARKED_TESTS = """
import pytest

@pytest.mark.parallel(backend=["serial", "thread", "process"], tasks=2, rounds=3)
def test_sum():
    return sum(range(1000))

@pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
def test_broken():
    raise ValueError("broken on purpose")

def test_plain():
    pass
"""


def test_the_verbose_report_shows_a_row_per_item_with_every_column(lab: pytest.Pytester) -> None:
    lab.makepyfile(MARKED_TESTS)
    result = lab.runpytest("-v", "--parallel-report")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*= pytest-parallel-lab =*",
            "*usable CPUs*",
            "*".join(["", *COLUMNS, ""]),
            "*::test_sum*serial*1*2*x [[]*-*[]]*",
            "*::test_sum*thread*2*x [[]*",
            "*::test_sum*process*2*x [[]*",
            "*test_broken*thread*FAILED*",
            "speedup = serial / backend*",
            "FAILED *test_broken[[]thread[]]: 2 task(s) failed under the thread backend*",
        ]
    )


def test_without_the_flag_there_is_no_section_but_marked_tests_still_measure_and_fail(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        MARKED_TESTS
        + """

import os
import threading

CALLS = []

@pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
def test_runs_in_the_pool():
    CALLS.append(threading.current_thread().name)

def test_check():
    assert any(n.startswith("pytest-parallel-lab-thread") for n in CALLS)
"""
    )
    result = lab.runpytest()
    result.assert_outcomes(passed=6, failed=1)
    assert "pytest-parallel-lab ==" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*test_broken[[]thread[]]: 2 task(s) failed under the thread backend*",
            "- ValueError: broken on purpose",
        ]
    )
    assert not list(lab.path.glob("*.json"))


def test_the_json_has_the_documented_keys_and_loads_back(lab: pytest.Pytester) -> None:
    lab.makepyfile(MARKED_TESTS)
    lab.runpytest("--parallel-report-json=reports/run.json").assert_outcomes(passed=4, failed=1)
    path = lab.path / "reports" / "run.json"
    data: dict[str, Any] = json.loads(path.read_text())
    assert data["schema_version"] == 1
    assert data["plugin"] == "pytest-parallel-lab"
    assert set(data["environment"]) >= ENVIRONMENT_KEYS
    assert data["environment"]["xdist_workers"] == 0
    rows = {r["nodeid"].split("::")[1]: r for r in data["results"]}
    assert set(rows) == {
        "test_sum[serial]",
        "test_sum[thread]",
        "test_sum[process]",
        "test_broken[thread]",
    }
    for row in rows.values():
        assert set(row) >= RESULT_KEYS
    for name in ("test_sum[serial]", "test_sum[thread]", "test_sum[process]"):
        row = rows[name]
        assert row["outcome"] == "passed"
        assert row["test"].endswith("::test_sum")
        assert (row["tasks"], row["rounds"]) == (2, 3)
        assert row["serial_s"] > 0
        assert row["backend_s"] > 0
        speedup = row["speedup"]
        assert speedup["estimate"] > 0
        assert speedup["ci_low"] <= speedup["estimate"] <= speedup["ci_high"]
        if name == "test_sum[serial]":
            # The baseline against itself: no pool to start, no efficiency to speak of.
            assert (row["workers"], row["efficiency"], row["startup_s"]) == (1, None, None)
        else:
            assert row["efficiency"] > 0
            assert row["startup_s"] >= 0
        assert isinstance(row["noisy"], bool)
        assert isinstance(row["machine_busy"], bool)
        assert row["capacity"]["expected_cpus"] >= 1
        assert row["error"] is None
        assert len(row["serial_rounds_s"]) == len(row["backend_rounds_s"]) == 3
    broken = rows["test_broken[thread]"]
    assert broken["outcome"] == "failed"
    assert "broken on purpose" in broken["error"]
    assert broken["speedup"] is None
    assert broken["serial_s"] is None

    document = load_document(path)
    assert len(document.results) == 4
    assert os.listdir(path.parent) == ["run.json"]


def test_a_bad_marker_still_has_a_row_with_outcome_error(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="thread", tasks=0)
        def test_bad():
            pass
        """
    )
    lab.runpytest("--parallel-report-json=out.json").assert_outcomes(errors=1)
    (row,) = load_document(lab.path / "out.json").results
    assert row.outcome == "error"
    assert row.error is not None
    assert "tasks=" in row.error


def test_a_run_without_marked_tests_reports_how_to_mark_one(lab: pytest.Pytester) -> None:
    lab.makepyfile("def test_plain(): pass")
    result = lab.runpytest("--parallel-report", "--parallel-report-json=out.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*No marked tests ran: mark a test with @pytest.mark.parallel*"])
    assert load_document(lab.path / "out.json").results == ()


def test_the_label_goes_into_the_environment(lab: pytest.Pytester) -> None:
    lab.makepyfile("def test_plain(): pass")
    lab.runpytest("--parallel-report-json=out.json", "--parallel-label=nightly")
    assert load_document(lab.path / "out.json").environment.label == "nightly"


def test_the_json_overwrites_an_older_file_atomically(lab: pytest.Pytester) -> None:
    lab.makepyfile(MARKED_TESTS)
    out = lab.path / "out"
    out.mkdir()
    (out / "run.json").write_text("old and not json")
    lab.runpytest("--parallel-report-json=out/run.json")
    assert len(load_document(out / "run.json").results) == 4
    assert os.listdir(out) == ["run.json"]


def test_a_fixture_error_of_a_marked_item_still_has_a_row_naming_the_backend(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("fixture exploded")

        @pytest.mark.parallel(backend=["thread", "serial"], tasks=2, rounds=2)
        def test_x(broken):
            pass
        """
    )
    lab.runpytest("--parallel-report-json=out.json").assert_outcomes(errors=2)
    rows = load_document(lab.path / "out.json").results
    assert [(r.backend, r.outcome) for r in rows] == [("thread", "error"), ("serial", "error")]
    for row in rows:
        assert row.error is not None
        assert "fixture exploded" in row.error


def test_the_test_field_keeps_the_users_own_parameters_for_passed_rows(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        @pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
        def test_x(n):
            return n
        """
    )
    lab.runpytest("--parallel-report-json=out.json").assert_outcomes(passed=2)
    rows = load_document(lab.path / "out.json").results
    assert [r.test.split("::")[1] for r in rows] == ["test_x[1]", "test_x[2]"]
    assert [r.nodeid.split("::")[1] for r in rows] == ["test_x[thread-1]", "test_x[thread-2]"]


def test_the_test_field_keeps_the_users_own_parameters_for_setup_error_rows(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("fixture exploded")

        @pytest.mark.parametrize("n", [1, 2])
        @pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
        def test_x(n, broken):
            pass
        """
    )
    lab.runpytest("--parallel-report-json=out.json").assert_outcomes(errors=2)
    rows = load_document(lab.path / "out.json").results
    assert [r.test.split("::")[1] for r in rows] == ["test_x[1]", "test_x[2]"]


@pytest.mark.parametrize(
    "option", ["--parallel-report-json", "--parallel-html", "--parallel-trace"]
)
def test_a_report_path_that_cannot_be_written_is_a_usage_error_before_any_test_runs(
    lab: pytest.Pytester, option: str
) -> None:
    lab.makepyfile(
        """
        def test_leaves_a_mark(tmp_path_factory):
            open("ran", "w").close()
        """
    )
    lab.path.joinpath("a_file").write_text("")
    result = lab.runpytest(f"{option}=a_file/report.out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*{option}=a_file/report.out:*a_file is not a directory*Fix: give a file path*"]
    )
    assert not lab.path.joinpath("ran").exists()


@pytest.mark.parametrize(
    ("option", "module"),
    [
        ("--parallel-report-json", "pytest_parallel_lab.document.run"),
        ("--parallel-html", "pytest_parallel_lab.output.html"),
        ("--parallel-trace", "pytest_parallel_lab.suite.hooks"),
    ],
)
def test_a_report_that_fails_to_write_at_the_end_warns_naming_the_option_and_fails_the_run(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, option: str, module: str
) -> None:
    def disk_full(path: object, text: str) -> None:
        raise OSError(28, "No space left on device")

    # The module object itself: pytester drops modules first imported by an inner run
    # from sys.modules, and a dotted path could resolve to such a stale copy.
    monkeypatch.setattr(importlib.import_module(module), "write_atomically", disk_full)
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
        def test_sum():
            assert sum(range(100)) == 4950
        """
    )
    result = lab.runpytest(f"{option}=out/report.out")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [f"*{option}=out/report.out: the file could not be written (No space left on device)*"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert not lab.path.joinpath("out", "report.out").exists()


def test_another_plugins_section_is_saved_beside_ours_and_may_not_take_our_names(
    lab: pytest.Pytester,
) -> None:
    lab.makeconftest(
        """
        def pytest_parallel_lab_document_sections(config):
            return {"energy": {"joules": 12.5}, "suite": {"not": "ours"}}
        """
    )
    lab.makepyfile("def test_plain(): pass")
    result = lab.runpytest("--parallel-report-json=run.json", "-W", "always::pytest.PytestWarning")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*a section named 'suite' was left out*Fix: give the section*"])
    data = json.loads((lab.path / "run.json").read_text())
    assert data["energy"] == {"joules": 12.5}
    assert [t["nodeid"].split("::")[-1] for t in data["suite"]["tests"]] == ["test_plain"]
    assert load_document(lab.path / "run.json").sections == {"energy": {"joules": 12.5}}
