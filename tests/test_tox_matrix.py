"""The tox matrix really runs: one cell for this interpreter, then the merging ``report`` env.

Slow-ish (tox creates two fresh virtualenvs, ~20-30 s with a warm pip cache); deselect with
``-m "not slow"``. It runs a tiny marked suite instead of ``examples/`` (through the
``PARALLEL_EXAMPLES`` variable tox.ini reads) so the time goes into tox, not measurements.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from pytest_parallel_lab.document.run import load_document

ROOT = Path(__file__).resolve().parent.parent
TINY_SUITE = """\
import pytest


@pytest.mark.parallel(backend=["thread", "process"], tasks=4, rounds=3, workers=2)
def test_sum_of_squares():
    sum(i * i for i in range(20_000))
"""


def this_interpreter_env() -> str:
    """The matrix cell of the running interpreter, e.g. ``py311-serial-fork``."""
    free_threaded = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
    return f"py{sys.version_info.major}{sys.version_info.minor}{free_threaded}-serial-fork"


def run_tox(
    env_name: str, results: Path, suite: Path, workdir: Path
) -> subprocess.CompletedProcess[str]:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "TOX_", "PARALLEL_"))
    }
    environ.update(PARALLEL_RESULTS=str(results), PARALLEL_EXAMPLES=str(suite))
    # Its own work dir: never shares (or breaks) the developer's .tox with a concurrent run.
    command = [sys.executable, "-m", "tox", "-c", str(ROOT / "tox.ini"), "--workdir", str(workdir)]
    return subprocess.run(
        [*command, "-e", env_name],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=environ,
        cwd=ROOT,
    )


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tox") is None, reason="needs tox: pip install tox")
def test_a_matrix_cell_saves_its_run_and_the_report_env_merges_it(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_tiny.py").write_text(TINY_SUITE)
    results = tmp_path / "parallel-results"
    env_name = this_interpreter_env()

    workdir = tmp_path / "tox"
    cell = run_tox(env_name, results, suite, workdir)
    assert cell.returncode == 0, cell.stdout[-4000:] + cell.stderr[-2000:]
    document = load_document(results / f"{env_name}.json")
    assert document.environment.label == env_name
    assert document.environment.tox_env == env_name
    assert document.environment.start_method == "fork"
    assert {r.backend for r in document.results} == {"thread", "process"}

    report = run_tox("report", results, suite, workdir)
    assert report.returncode == 0, report.stdout[-4000:] + report.stderr[-2000:]
    assert f"{env_name} (baseline)" in report.stdout
    assert "test_tiny.py::test_sum_of_squares" in report.stdout
    page = (results / "report.html").read_text(encoding="utf-8")
    assert "Plotly.newPlot(" in page


@pytest.mark.slow
def test_tox_ini_lists_every_python_mode_and_start_method() -> None:
    pytest.importorskip("tox")
    listed = subprocess.run(
        [sys.executable, "-m", "tox", "-c", str(ROOT / "tox.ini"), "list", "--no-desc"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    for python in ("310", "311", "312", "313", "314", "315", "314t", "315t"):
        for mode in ("serial", "xdist"):
            for method in ("fork", "spawn", "forkserver"):
                assert f"py{python}-{mode}-{method}" in listed
    assert {"lint", "report"} <= set(listed)
