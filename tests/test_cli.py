"""Acceptance tests of ``pytest-parallel-lab``: every subcommand, every exit code, bad files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_parallel_lab import cli

DATA = Path(__file__).parent / "data"
BASELINE = DATA / "baseline.json"
REGRESSED = DATA / "regressed.json"
WITHIN_NOISE = DATA / "within_noise.json"
SWEEP_AND_SUITE = DATA / "sweep_and_suite.json"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class TestCompare:
    def test_compare_prints_one_column_per_run_named_by_label(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run_cli(capsys, "compare", BASELINE, REGRESSED, WITHIN_NOISE)
        assert (code, err) == (0, "")
        header = out.splitlines()[0]
        assert "py311-serial-fork (baseline)" in header
        assert "py314t-serial-fork" in header
        assert "py313-serial-spawn" in header
        assert "1.93x [1.85-2.01]" in out
        assert "1.40x [1.33-1.47] \u25bc-27%" in out
        assert "examples/test_map.py::test_checksums (map #2)" in out
        assert "significantly faster / slower" in out

    def test_compare_exits_1_when_a_speedup_dropped_significantly(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run_cli(capsys, "compare", BASELINE, REGRESSED, "--fail-on-regression=10")
        assert code == 1
        assert "test_sum_of_squares [process] in py314t-serial-fork: 1.93x -> 1.40x" in err
        assert "1 significant drop(s) of more than 10%" in err

    def test_compare_exits_0_when_the_drop_is_within_the_noise(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # 1.93x -> 1.80x is a 7% drop, beyond 5%, but the intervals overlap.
        code, out, err = run_cli(
            capsys, "compare", BASELINE, WITHIN_NOISE, "--fail-on-regression", "5"
        )
        assert (code, err) == (0, "")
        assert "\u25bc" not in out.split("\n\n")[0]

    def test_compare_exits_0_when_the_significant_drop_is_below_the_threshold(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, _ = run_cli(capsys, "compare", BASELINE, REGRESSED, "--fail-on-regression=30%")
        assert code == 0

    def test_compare_with_the_regressed_run_as_baseline_sees_an_improvement(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, _ = run_cli(
            capsys,
            "compare",
            BASELINE,
            REGRESSED,
            "--baseline",
            "py314t-serial-fork",
            "--fail-on-regression=10",
        )
        assert code == 0
        assert "py314t-serial-fork (baseline)" in out
        assert "\u25b2+38%" in out

    def test_compare_accepts_a_baseline_index(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run_cli(capsys, "compare", BASELINE, REGRESSED, "--baseline", "1")
        assert code == 0
        assert "py314t-serial-fork (baseline)" in out

    def test_compare_reads_every_json_file_of_a_folder_recursively(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        (tmp_path / "nested").mkdir()
        shutil.copy(BASELINE, tmp_path / "a.json")
        shutil.copy(REGRESSED, tmp_path / "nested" / "b.json")
        (tmp_path / "notes.txt").write_text("not a run")
        code, out, _ = run_cli(capsys, "compare", tmp_path, "--format=csv")
        assert code == 0
        assert out.splitlines()[0] == "test,backend,py311-serial-fork (baseline),py314t-serial-fork"

    def test_compare_names_an_unlabelled_run_after_its_file(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        data = json.loads(BASELINE.read_text())
        data["environment"].update(label=None, tox_env=None)
        (tmp_path / "nightly.json").write_text(json.dumps(data))
        code, out, _ = run_cli(capsys, "compare", tmp_path / "nightly.json", BASELINE)
        assert code == 0
        assert "nightly (baseline)" in out.splitlines()[0]

    @pytest.mark.parametrize(
        ("fmt", "expected"),
        [
            ("markdown", "| test "),
            ("github", "| test "),
            ("grid", "+====="),
            ("csv", "test,backend,"),
            ("html", "<table>"),
        ],
    )
    def test_compare_writes_the_requested_format(
        self, capsys: pytest.CaptureFixture[str], fmt: str, expected: str
    ) -> None:
        code, out, _ = run_cli(capsys, "compare", BASELINE, REGRESSED, "--format", fmt)
        assert code == 0
        assert expected in out

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--baseline", "nope"], "error: no run named 'nope'"),
            (["--baseline", "7"], "error: baseline index 7 is out of range"),
        ],
    )
    def test_compare_exits_2_for_an_unknown_baseline(
        self, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
    ) -> None:
        code, out, err = run_cli(capsys, "compare", BASELINE, REGRESSED, *argv)
        assert code == 2
        assert message in err
        assert out == ""


BAD_FILES = [
    pytest.param(
        "cut.json", '{"schema_version": 1, "results": [', "not valid JSON", id="truncated"
    ),
    pytest.param("notes.json", "hello, world", "not valid JSON", id="non-json"),
    pytest.param("empty.json", "", "empty file", id="empty"),
    pytest.param("list.json", "[1, 2]", "top level is not an object", id="list"),
    pytest.param(
        "other.json", '{"name": "x"}', "no 'schema_version' or 'results'", id="other-json"
    ),
    pytest.param(
        "shape.json",
        '{"schema_version": 1, "results": [{"nodeid": "a", "test": "a", "backend": 3}]}',
        "results[0].backend: expected a string, got a number",
        id="wrong-shape",
    ),
    pytest.param(
        "speedup.json",
        '{"schema_version": 1, "results": [{"nodeid": "a", "test": "a", "backend": "x", '
        '"speedup": "fast"}]}',
        "results[0].speedup: expected an object, got a string",
        id="wrong-speedup",
    ),
    pytest.param(
        "bound.json",
        '{"schema_version": 1, "results": [{"nodeid": "a", "test": "a", "backend": "x", '
        '"speedup": {"estimate": 2, "ci_low": "1.8", "ci_high": 2.2}}]}',
        "results[0].speedup.ci_low: expected a number, got a string",
        id="wrong-speedup-bound",
    ),
    pytest.param(
        "suite.json",
        '{"schema_version": 1, "results": [], "suite": {"tests": [{"nodeid": "a"}]}}',
        "suite.tests[0]: missing key 'worker'",
        id="wrong-suite-section",
    ),
    pytest.param(
        "scaling.json",
        '{"schema_version": 1, "results": [], "scaling": [{"test": "t", "backend": "p", '
        '"points": [{"workers": "2", "speedup": 1, "ci_low": 1, "ci_high": 1}]}]}',
        "scaling[0].points[0].workers: expected an integer, got a string",
        id="wrong-scaling-section",
    ),
    pytest.param(
        "advice.json",
        '{"schema_version": 1, "results": [], "recommendations": [{"test": "t", '
        '"classification": "fast", "backend": "x", "reason": "r"}]}',
        "recommendations[0].classification: expected one of 'cpu-bound',",
        id="wrong-recommendations-section",
    ),
    pytest.param("pickle.json", "\x80\x04\x95\x00", "not valid JSON", id="pickle-bytes"),
]


@pytest.mark.parametrize("command", ["compare", "show", "html", "predict"])
@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES)
def test_every_command_rejects_a_bad_file_with_one_line_naming_it_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    name: str,
    content: str,
    message: str,
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    extra = {"html": ["-o", str(tmp_path / "out.html")], "predict": ["-n", "2"]}.get(command, [])
    code, _, err = run_cli(capsys, command, path, *extra)
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith(f"pytest-parallel-lab: error: {path}: ")
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out.html").exists()


@pytest.mark.parametrize("command", ["compare", "show", "html"])
def test_a_missing_file_is_exit_2_naming_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    missing = tmp_path / "nowhere.json"
    extra = ["-o", str(tmp_path / "out.html")] if command == "html" else []
    code, _, err = run_cli(capsys, command, missing, *extra)
    assert code == 2
    assert err == f"pytest-parallel-lab: error: {missing}: no such file\n"


@pytest.mark.parametrize("command", ["compare", "html"])
def test_a_folder_without_json_files_is_exit_2_naming_the_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    extra = ["-o", str(tmp_path / "out.html")] if command == "html" else []
    code, _, err = run_cli(capsys, command, tmp_path, *extra)
    assert code == 2
    assert err == f"pytest-parallel-lab: error: {tmp_path}: folder contains no .json files\n"


def test_show_of_a_folder_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "show", tmp_path)
    assert code == 2
    assert "is a directory" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["compare"],
        ["compare", str(BASELINE), "--format", "nonsense"],
        ["compare", str(BASELINE), "--fail-on-regression", "lots"],
        ["compare", str(BASELINE), "--fail-on-regression", "-5"],
        ["html", str(BASELINE)],
        ["predict", str(BASELINE)],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        cli.main(argv)
    assert excinfo.value.code == 2
    assert "usage: pytest-parallel-lab" in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["compare", "--help"]):
        with pytest.raises(SystemExit) as excinfo:
            cli.main(argv)
        assert excinfo.value.code == 0
        out = capsys.readouterr().out
        assert "exit codes:" in out
        assert "1  compare --fail-on-regression found" in out
        assert "2  bad input or usage" in out


def test_show_prints_the_terminal_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "show", BASELINE)
    assert (code, err) == (0, "")
    assert "test_sum_of_squares" in out


def test_show_reads_a_minimal_file_of_an_older_layout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "show", DATA / "minimal.json")
    assert code == 0
    assert "test_sum_of_squares" in out


def test_html_writes_a_page_of_all_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.html"
    code, out, _ = run_cli(capsys, "html", BASELINE, SWEEP_AND_SUITE, "-o", target)
    assert code == 0
    assert out == f"wrote {target}\n"
    page = target.read_text(encoding="utf-8")
    assert "py311-serial-fork" in page
    assert "sweep-and-suite" in page


def test_html_exits_2_when_the_output_cannot_be_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "html", BASELINE, "-o", blocker / "report.html")
    assert code == 2
    assert err.startswith(
        f"pytest-parallel-lab: error: {blocker / 'report.html'}: {blocker} is not a directory;"
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [(["2"], [2]), (["2", "4,8"], [2, 4, 8]), ([" 1 , 3"], [1, 3])],
)
def test_predict_worker_counts_may_be_repeated_or_comma_separated(
    values: list[str], expected: list[int]
) -> None:
    assert cli.parse_workers(values) == expected


@pytest.mark.parametrize("value", ["0", "x", "2,,4", "-1", "2.5"])
def test_predict_rejects_worker_counts_that_are_not_positive_integers(value: str) -> None:
    with pytest.raises(cli.UsageProblem, match="is not a positive worker count"):
        cli.parse_workers([value])


def prediction_table(out: str) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """The header words, the (-n, dist) of each row, and the lines after the table."""
    lines = out.splitlines()
    assert lines[0] == "xdist prediction"
    rule = next(i for i, line in enumerate(lines) if line.startswith("----"))
    end = next((i for i, line in enumerate(lines) if line.startswith("recommendation")), None)
    rows = [(line.split()[0], line.split()[1]) for line in lines[rule + 1 : end]]
    return lines[rule - 1].split(), rows, lines[end:] if end is not None else []


def test_predict_prints_the_prediction_for_the_requested_workers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "predict", SWEEP_AND_SUITE, "-n", "2,4")
    assert (code, err) == (0, "")
    header, rows, after = prediction_table(out)
    assert header[:6] == ["-n", "dist", "predicted", "s", "lower", "bound"]
    modes = ["load", "loadscope", "loadfile", "worksteal"]
    assert rows == [(n, mode) for n in ("2", "4") for mode in modes]
    advice = " ".join(line.strip() for line in after)  # wrapped at the terminal width
    assert advice.startswith("recommendation: ")
    # the advice names the fastest row of the table (fewest workers on a tie)
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("----"))
    table = [line.split() for line in lines[rule + 1 : rule + 1 + len(rows)]]
    fastest = min(table, key=lambda row: (float(row[2]), int(row[0])))
    assert f"-n {fastest[0]} --dist {fastest[1]}" in advice


def test_predict_of_a_serial_run_compares_with_its_serial_time(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = json.loads(SWEEP_AND_SUITE.read_text())
    del data["suite"]["actual"]  # a serial run: its wall time is the serial baseline
    path = tmp_path / "serial.json"
    path.write_text(json.dumps(data))
    code, out, err = run_cli(capsys, "predict", path, "-n", "2")
    assert (code, err) == (0, "")
    header, rows, after = prediction_table(out)
    assert header[-2:] == ["vs", "serial"]
    assert [n for n, _ in rows] == ["2"] * 4
    assert all(line.split()[-1].endswith("x") for line in out.splitlines()[3:7])
    # (no calibration in the file: 1 CPU, so the two workers' 0.15 s exits take 0.3 s;
    # on one CPU the tests take their 1 s of CPU in every mode: the first mode is named)
    assert " ".join(line.strip() for line in after) == (
        "recommendation: -n would make this suite slower or no faster: best predicted 2.34s "
        "(-n 2 --dist load) vs 1.20s serial; run without -n"
    )


def test_predict_dist_restricts_the_modes_predicted(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "predict", SWEEP_AND_SUITE, "-n", "2", "--dist", "load", "--dist", "worksteal"
    )
    assert code == 0
    _, rows, _ = prediction_table(out)
    assert rows == [("2", "load"), ("2", "worksteal")]


def test_predict_with_an_unknown_dist_mode_is_exit_2_naming_the_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "predict", SWEEP_AND_SUITE, "-n", "2", "--dist", "nope")
    assert (code, out) == (2, "")
    assert err.startswith(
        f"pytest-parallel-lab: error: {SWEEP_AND_SUITE}: unknown dist mode 'nope'"
    )
    assert err.count("\n") == 1


def test_predict_without_a_suite_section_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "predict", BASELINE, "-n", "2")
    assert code == 2
    assert err.startswith(f"pytest-parallel-lab: error: {BASELINE}: ")
    assert "no 'suite' section with tests" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["compare", str(BASELINE), str(REGRESSED), "--fail-on-regression=10"], 1),
        (["compare", str(BASELINE), str(WITHIN_NOISE), "--fail-on-regression=5"], 0),
        (["compare", str(DATA / "nowhere.json")], 2),
    ],
)
def test_python_dash_m_gives_the_same_exit_codes(argv: list[str], code: int) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "pytest_parallel_lab", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == code, completed.stderr
    assert "Traceback" not in completed.stderr
