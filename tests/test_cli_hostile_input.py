"""Issue 14: the command line refuses hostile input in bounded time and memory.

Every command, given something that is not a run document it can show (a FIFO, a
device, a directory, a huge file, NaN, numbers that overflow, text that cannot be
printed), ends at once with one line on stderr naming the file and the problem and
exit status 2, never a traceback; and no command prints ``nan`` or ``inf``.

What could hang or exhaust memory runs in a subprocess with a timeout and a memory
limit, so that a regression fails the test instead of the test run.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_parallel_lab import cli
from pytest_parallel_lab.document import run

DATA = Path(__file__).parent / "data"
SWEEP_AND_SUITE = DATA / "sweep_and_suite.json"
COMMANDS = ("show", "compare", "predict", "html")
#: Enough for the CLI, far below what reading /dev/zero or a 1 GiB file whole takes.
MEMORY_LIMIT = 1 << 30
#: Generous: the refusals take well under a second; the old code never ended.
TIMEOUT_S = 60

posix_only = pytest.mark.skipif(os.name != "posix", reason="FIFOs, /dev/zero and rlimits")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def command_line(command: str, path: Path | str, tmp_path: Path) -> list[str]:
    """*command* on *path*, with the arguments it needs besides."""
    extra = {"predict": ["-n", "2"], "html": ["-o", str(tmp_path / "out.html")]}
    return [command, str(path), *extra.get(command, [])]


def run_cli_in_a_subprocess(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """The CLI in a process limited to MEMORY_LIMIT of address space, killed after TIMEOUT_S."""
    script = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))\n"
        "from pytest_parallel_lab.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def assert_refused(code: int, out: str, err: str, message: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr with *message*, no traceback."""
    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err == f"pytest-parallel-lab: error: {message}\n"
    assert out == ""


def printed_non_finite(text: str) -> list[str]:
    """The words of *text* that are Python's spellings of NaN and infinity ('infx', '-inf%')."""
    spelled = {"nan", "nanx", "nans", "inf", "infx", "infs", "infinity"}
    return [word for word in re.findall(r"[A-Za-z]+", text) if word.lower() in spelled]


def without_plotly(page: str) -> str:
    """An HTML page without the inlined plotly.js (whose code spells NaN and Infinity)."""
    return re.sub(r"<script>.*?</script>", "", page, count=1, flags=re.S)


def suite_run() -> dict[str, Any]:
    """A saved run with results, a sweep and a suite section: every command reads it."""
    data: dict[str, Any] = json.loads(SWEEP_AND_SUITE.read_text())
    return data


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# --- files that are not regular files ------------------------------------------------


@posix_only
@pytest.mark.parametrize("command", COMMANDS)
def test_a_fifo_is_refused_at_once_naming_it_instead_of_waiting_for_a_writer(
    tmp_path: Path, command: str
) -> None:
    fifo = tmp_path / "run.json"
    os.mkfifo(fifo)
    completed = run_cli_in_a_subprocess(command_line(command, fifo, tmp_path))
    assert_refused(
        completed.returncode,
        completed.stdout,
        completed.stderr,
        f"{fifo}: is a named pipe (FIFO), not a regular file",
    )


@posix_only
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("command", COMMANDS)
def test_dev_zero_is_refused_as_a_device_without_reading_it(tmp_path: Path, command: str) -> None:
    completed = run_cli_in_a_subprocess(command_line(command, "/dev/zero", tmp_path))
    assert_refused(
        completed.returncode,
        completed.stdout,
        completed.stderr,
        "/dev/zero: is a character device, not a regular file",
    )


@pytest.mark.parametrize("command", ["show", "predict"])
def test_a_directory_given_as_the_file_is_refused_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    code, out, err = run_cli(capsys, *command_line(command, folder, tmp_path))
    assert_refused(code, out, err, f"{folder}: is a directory, not a regular file")


# --- files too large to be a run -------------------------------------------------------


@posix_only
def test_a_sparse_file_beyond_the_cap_is_refused_from_its_size_without_reading_it(
    tmp_path: Path,
) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(1 << 30)  # sparse: nothing is written; the old code read it all
    completed = run_cli_in_a_subprocess(["show", str(huge)])
    assert_refused(
        completed.returncode,
        completed.stdout,
        completed.stderr,
        f"{huge}: is 1 GiB, larger than the 256 MiB a run document may have",
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_a_run_larger_than_the_cap_is_refused_by_every_command(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: str,
) -> None:
    path = write(tmp_path / "run.json", suite_run())
    monkeypatch.setattr(run, "MAX_DOCUMENT_BYTES", 100)
    code, out, err = run_cli(capsys, *command_line(command, path, tmp_path))
    size = path.stat().st_size
    assert_refused(
        code,
        out,
        err,
        f"{path}: is {size / 1024:.4g} KiB, larger than the 100 bytes a run document may have",
    )
    assert not (tmp_path / "out.html").exists()


# --- NaN and infinity ----------------------------------------------------------------

NON_FINITE_FIELDS = [
    pytest.param("results[0].speedup.estimate", "NaN", id="speedup-estimate-NaN"),
    pytest.param("results[1].speedup.ci_high", "Infinity", id="speedup-bound-Infinity"),
    pytest.param("scaling[0].points[2].ci_low", "-Infinity", id="sweep-point-minus-Infinity"),
    pytest.param("suite.tests[1].call_s", "NaN", id="suite-test-NaN"),
    pytest.param("suite.wall_s", "1e999", id="suite-wall-overflowing-1e999"),
    pytest.param("environment.cpu_capacity", "-Infinity", id="environment-minus-Infinity"),
    pytest.param("energy.joules[1]", "NaN", id="plugin-section-NaN"),
    pytest.param("results[2].future_key", "Infinity", id="unknown-key-Infinity"),
]


def with_word_at(data: dict[str, Any], place: str, word: str) -> str:
    """The JSON text of *data* with the bare *word* (NaN, Infinity) at *place*."""
    marker = "__the_word__"
    data = copy.deepcopy(data)
    data.setdefault("energy", {"joules": [1.5, 0.0]})
    steps = [int(s) if s.isdigit() else s for s in re.findall(r"[^.\[\]]+", place)]
    target: Any = data
    for step in steps[:-1]:
        target = target[step]
    target[steps[-1]] = marker
    return json.dumps(data).replace(f'"{marker}"', word)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("place", "word"), NON_FINITE_FIELDS)
def test_a_non_finite_number_is_refused_by_every_command_naming_the_file_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, place: str, word: str
) -> None:
    path = tmp_path / "run.json"
    path.write_text(with_word_at(suite_run(), place, word), encoding="utf-8")
    code, out, err = run_cli(capsys, *command_line(command, path, tmp_path))
    assert_refused(code, out, err, f"{path}: {place}: expected a finite number, got {word}")
    assert not (tmp_path / "out.html").exists()


# --- numbers and text that parse but cannot be shown ----------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_an_integer_of_thousands_of_digits_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    path = tmp_path / "run.json"
    text = json.dumps(suite_run()).replace('"tasks": 8', '"tasks": ' + "9" * 5000, 1)
    path.write_text(text, encoding="utf-8")
    code, out, err = run_cli(capsys, *command_line(command, path, tmp_path))
    assert_refused(code, out, err, f"{path}: an integer has more than 4300 digits")


@pytest.mark.parametrize("command", COMMANDS)
def test_an_integer_beyond_what_a_float_keeps_exact_is_refused_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    data = suite_run()
    data["scaling"][0]["points"][1]["workers"] = 10**400  # float() of it overflows
    path = write(tmp_path / "run.json", data)
    code, out, err = run_cli(capsys, *command_line(command, path, tmp_path))
    assert_refused(
        code,
        out,
        err,
        f"{path}: scaling[0].points[1].workers: expected an integer within "
        "±9007199254740991, got an integer of 401 digits",
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_a_lone_surrogate_that_no_output_can_encode_is_refused_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    path = tmp_path / "run.json"
    text = json.dumps(suite_run()).replace('"backend": "thread"', '"backend": "a\\ud800b"', 1)
    path.write_text(text, encoding="utf-8")
    code, out, err = run_cli(capsys, *command_line(command, path, tmp_path))
    assert_refused(
        code, out, err, f"{path}: results[0].backend: not text (holds a lone UTF-16 surrogate)"
    )


def test_a_surrogate_pair_is_text_and_shown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = suite_run()
    data["results"][0]["backend"] = "thread \U0001f600"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data), encoding="utf-8")  # written as \ud83d\ude00
    code, out, _ = run_cli(capsys, "show", path)
    assert code == 0
    assert "thread \U0001f600" in out


# --- finite numbers whose arithmetic overflows ----------------------------------------


def extreme_run() -> dict[str, Any]:
    """Finite numbers that overflow once scaled, summed or divided."""
    data = suite_run()
    first = data["results"][0]
    first.update(efficiency=1.7e308, serial_s=-1.7e308, backend_s=5e-324, startup_s=-1e308)
    first["speedup"] = {"estimate": 1.7e308, "ci_low": -1.7e308, "ci_high": 1.7e308}
    del data["suite"]["actual"]  # a serial run: its predictions are compared with its time
    data["suite"]["serial_wall_s"] = 1.0
    data["suite"]["prediction"] = [
        {"workers": 2, "dist": "load", "wall_s": 5e-324, "lower_bound_s": 0.5}
    ]
    return data


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_show_prints_no_nan_or_inf_for_numbers_that_overflow_once_scaled(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, verbose: list[str]
) -> None:
    path = write(tmp_path / "run.json", extreme_run())
    code, out, err = run_cli(capsys, "show", *verbose, path)
    assert (code, err) == (0, "")
    assert printed_non_finite(out) == []


def test_compare_against_a_baseline_near_zero_marks_the_change_without_an_infinite_percent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tiny = suite_run()
    tiny["environment"]["label"] = "tiny"
    tiny["results"][1]["speedup"] = {"estimate": 5e-324, "ci_low": 0.0, "ci_high": 5e-324}
    baseline = write(tmp_path / "tiny.json", tiny)
    code, out, err = run_cli(capsys, "compare", baseline, SWEEP_AND_SUITE)
    assert (code, err) == (0, "")
    assert printed_non_finite(out) == []
    assert "1.93x [1.85-2.01] \u25b2\n" in out or "1.93x [1.85-2.01] \u25b2 " in out


def test_html_of_numbers_that_overflow_writes_a_page_without_nan_or_infinity(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = extreme_run()
    for test in data["suite"]["tests"]:
        test["call_s"] = 1.7e308  # the timeline sums them: beyond a float
    path = write(tmp_path / "run.json", data)
    target = tmp_path / "out.html"
    code, out, err = run_cli(capsys, "html", path, SWEEP_AND_SUITE, "-o", target)
    assert (code, err) == (0, "")
    assert out == f"wrote {target}\n"
    assert printed_non_finite(without_plotly(target.read_text(encoding="utf-8"))) == []


def test_predict_refuses_times_whose_prediction_overflows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = suite_run()
    for test in data["suite"]["tests"]:
        test["call_s"] = 1.7e308
    path = write(tmp_path / "run.json", data)
    code, out, err = run_cli(capsys, "predict", path, "-n", "2")
    assert_refused(
        code,
        out,
        err,
        f"{path}: the suite section's times are too large or too small to simulate "
        "(a predicted time or its ratio to the serial time is not a finite number)",
    )


def test_predict_of_a_suite_of_zero_times_never_divides_by_zero(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = suite_run()
    del data["suite"]["actual"]
    data["suite"]["serial_wall_s"] = 1.0
    data["suite"]["calibration"] = {
        "startup_s": 0.0,
        "collection_s": 0.0,
        "per_test_overhead_s": 0.0,
        "xdist_per_test_s": 0.0,
        "shutdown_s": 0.0,
    }
    for test in data["suite"]["tests"]:
        test.update(setup_s=0.0, call_s=0.0, teardown_s=0.0)
    path = write(tmp_path / "run.json", data)
    code, out, err = run_cli(capsys, "predict", path, "-n", "2")
    assert (code, err) == (0, "")
    assert "recommendation: " in out
    assert "Traceback" not in out


def test_predict_refuses_a_test_that_uses_a_fixture_of_no_shared_scope(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = suite_run()
    data["suite"]["fixtures"] = [
        {"id": "fx", "name": "fx", "scope": "function", "baseid": "", "param": None,
         "worker": "gw0", "setup_s": 0.1, "teardown_s": 0.0, "instances": 1}
    ]  # fmt: skip
    data["suite"]["tests"][0]["uses"] = ["fx"]
    path = write(tmp_path / "run.json", data)
    code, out, err = run_cli(capsys, "predict", path, "-n", "2")
    assert_refused(
        code,
        out,
        err,
        f"{path}: the suite section cannot be simulated (KeyError: 'function'); "
        "is it a run saved by pytest-parallel-lab?",
    )


@pytest.mark.parametrize("count", ["1025", "10000000000", "9" * 5000])
def test_predict_refuses_more_workers_than_it_simulates(
    capsys: pytest.CaptureFixture[str], count: str
) -> None:
    code, out, err = run_cli(capsys, "predict", SWEEP_AND_SUITE, "-n", count)
    assert code == 2
    assert out == ""
    assert err.startswith(f"pytest-parallel-lab: error: -n: {count[:6]}")
    assert "more than the prediction simulates (at most 1024)" in err


def test_predict_simulates_the_most_workers_it_allows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "predict", SWEEP_AND_SUITE, "-n", "1024", "--dist", "load")
    assert (code, err) == (0, "")
    assert printed_non_finite(out) == []
