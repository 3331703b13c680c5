"""The ``loky`` backend (joblib's process pool, cloudpickle) as a user sees it: one session
with a CPU-bound, an I/O-bound and a failing workload, a closure, its faults, and nothing
left afterwards. Skipped only where loky is not installed (the test extra installs it)."""

from __future__ import annotations

import json

import pytest

from pytest_parallel_lab.backends.loky_pool import loky_support

pytest.importorskip("loky", reason=str(loky_support()))

SUBPROCESS_TIMEOUT_S = 120

LEFTOVERS_CONFTEST = """
import multiprocessing
import threading

import psutil

def pytest_unconfigure(config):
    children = [
        " ".join(p.cmdline())
        for p in psutil.Process().children(recursive=True)
        if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline())
    ]
    threads = [t.name for t in threading.enumerate() if t.name.startswith("pytest-parallel-lab")]
    with open("leftovers.txt", "w") as f:
        f.write(repr((children, threads)))
"""

WORKLOADS = """
import os
import threading
import time

import pytest

@pytest.mark.parallel(backend="loky", workers=2, tasks=4, rounds=3)
def test_cpu():
    return sum(i * i for i in range(100_000))

@pytest.mark.parallel(backend="loky", workers=2, tasks=4, rounds=3)
def test_io():
    time.sleep(0.02)

@pytest.mark.parallel(backend="loky", workers=2, tasks=2, rounds=2)
def test_fails():
    raise ValueError("broken in every worker")

def make_closure():
    answer = 42

    @pytest.mark.parallel(backend=["loky", "process"], workers=2, tasks=2, rounds=2)
    def test_closure():
        return answer

    return test_closure

test_closure = make_closure()

@pytest.fixture
def lock():
    return threading.Lock()

@pytest.mark.parallel(backend="loky", workers=2, tasks=2, rounds=2)
def test_unpicklable(lock):
    pass

@pytest.mark.parallel(backend="loky", workers=2, tasks=1, rounds=2)
def test_kills_its_worker():
    os._exit(3)

@pytest.mark.parallel(backend="loky", workers=2, tasks=2, rounds=2, timeout=0.5)
def test_hangs():
    time.sleep(30)

@pytest.mark.parallel(backend="loky", workers=2, tasks=2, rounds=2)
def test_after_the_faults():
    return 1
"""


def test_loky_runs_workloads_and_closures_reports_its_faults_and_leaves_nothing(
    lab: pytest.Pytester,
) -> None:
    lab.makeconftest(LEFTOVERS_CONFTEST)
    lab.makepyfile(WORKLOADS)
    result = lab.runpytest_subprocess(
        "-v",
        "--parallel-report-json=run.json",
        "-p",
        "no:faulthandler",
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    result.assert_outcomes(passed=4, failed=5)
    result.stdout.fnmatch_lines_random(
        [
            "*::test_closure[[]loky[]] PASSED*",
            # the stdlib pickler cannot send a closure; cloudpickle can
            "*test_closure[[]process[]]: the test function cannot be pickled for the process*",
            "*test_fails[[]loky[]]: 2 task(s) failed under the loky backend*",
            "*test_unpicklable[[]loky[]]: the value of fixture 'lock' cannot be pickled for the "
            "loky backend*",
            "*test_kills_its_worker[[]loky[]]: loky backend: a worker process of the loky backend "
            "died: TerminatedWorkerError: the exit codes of the workers are {EXIT(3)}*",
            "*test_hangs[[]loky[]]: loky backend: 2 of 2 tasks under the loky backend did not "
            "finish within the timeout of 0.5s*",
            "*::test_after_the_faults[[]loky[]] PASSED*",
        ]
    )
    rows = {
        (r["test"].split("::")[-1], r["backend"]): r
        for r in json.loads((lab.path / "run.json").read_text())["results"]
    }
    for name in ("test_cpu", "test_io"):
        row = rows[(name, "loky")]
        assert row["start_method"] == "loky"
        assert row["startup_s"] > 0
        assert row["dispatch_s"] > 0
    assert rows[("test_io", "loky")]["pool_reused"] is True
    children, threads = eval((lab.path / "leftovers.txt").read_text())
    assert children == []
    assert threads == []
