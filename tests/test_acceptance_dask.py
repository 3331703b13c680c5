"""The ``dask`` backend as a user sees it: a LocalCluster the session starts, and a real
``dask scheduler`` with two ``dask worker`` processes that the test starts and stops.

Starting a cluster takes seconds, so the runs are few: one session with every workload
and fault on one LocalCluster, one against a real scheduler, one Ctrl-C. They skip only
where ``distributed`` is not installed (the test extra installs it: CI runs them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_parallel_lab.backends.dask_cluster import dask_support, resolve_scheduler

pytest.importorskip("distributed", reason=str(dask_support()))

from test_acceptance_lifetime import _run

SUBPROCESS_TIMEOUT_S = 240

#: Writes what is left when the session ends: live child processes (Dask's worker
#: processes are children of the nannies in pytest's process) and the lab's threads.
LEFTOVERS_CONFTEST = """
import threading

import psutil

def pytest_unconfigure(config):
    # multiprocessing's resource tracker (started by spawn) lives until Python exits.
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

@pytest.mark.parallel(backend="dask", workers=2, tasks=4, rounds=3)
def test_cpu():
    return sum(i * i for i in range(100_000))

@pytest.mark.parallel(backend="dask", workers=2, tasks=4, rounds=3)
def test_io():
    time.sleep(0.02)

@pytest.mark.parallel(backend="dask", workers=2, tasks=2, rounds=2)
def test_fails():
    raise ValueError("broken on every worker")

@pytest.fixture
def lock():
    return threading.Lock()

@pytest.mark.parallel(backend="dask", workers=2, tasks=2, rounds=2)
def test_unpicklable(lock):
    pass

@pytest.mark.parallel(backend="dask", workers=2, tasks=2, rounds=2)
def test_lambda_travels():
    square = lambda x: x * x  # noqa: E731
    return square(3)

@pytest.mark.parallel(backend="dask", workers=2, tasks=1, rounds=2)
def test_kills_its_worker():
    os._exit(3)

@pytest.mark.parallel(backend="dask", workers=2, tasks=2, rounds=2, timeout=1)
def test_hangs():
    time.sleep(30)

def test_plain():
    pass
"""


def test_a_local_cluster_runs_the_workloads_reports_its_faults_and_leaves_nothing(
    lab: pytest.Pytester,
) -> None:
    lab.makeconftest(LEFTOVERS_CONFTEST)
    lab.makepyfile(WORKLOADS)
    result = lab.runpytest_subprocess(
        "--parallel-report",
        "--parallel-report-json=run.json",
        "-p",
        "no:faulthandler",
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    result.assert_outcomes(passed=4, failed=4)
    result.stdout.fnmatch_lines_random(
        [
            "*test_fails[[]dask[]]: 2 task(s) failed under the dask backend*",
            "*test_unpicklable[[]dask[]]: the value of fixture 'lock' cannot be pickled for the "
            "dask backend*",
            "*test_kills_its_worker[[]dask[]]: dask backend: a worker of the dask backend died "
            "running a task: KilledWorker*",
            "*test_hangs[[]dask[]]: dask backend: 2 of 2 tasks under the dask backend did not "
            "finish within the timeout of 1s*",
        ]
    )
    rows = {
        r["test"].split("::")[-1]: r
        for r in json.loads((lab.path / "run.json").read_text())["results"]
    }
    for name in ("test_cpu", "test_io", "test_lambda_travels"):
        row = rows[name]
        assert row["outcome"] == "passed"
        assert row["startup_s"] > 0  # the cluster's start, measured once and apart
        assert row["dispatch_s"] > 0  # an empty task through the scheduler
        assert "LocalCluster: 2 workers, 2 threads" in row["notes"]
    # One cluster served the items before the faults.
    assert rows["test_io"]["pool_reused"] is True
    children, threads = eval((lab.path / "leftovers.txt").read_text())
    assert children == []
    assert threads == []


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[Path]:
    """A real ``dask scheduler`` and two single-threaded ``dask worker`` processes on
    127.0.0.1, stopped after the test; yields the scheduler file."""
    dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    scheduler_file = tmp_path / "scheduler.json"
    logs = (tmp_path / "cluster.log").open("w")
    common = {"stdout": logs, "stderr": subprocess.STDOUT, "cwd": tmp_path}
    processes = [
        subprocess.Popen(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            **common,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scheduler_file.exists(), "the dask scheduler did not start"
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [
                        dask,
                        "worker",
                        "--scheduler-file",
                        str(scheduler_file),
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                    ],
                    **common,
                )
            )
        yield scheduler_file
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        logs.close()


def _scheduler_workers(scheduler_file: Path) -> int:
    from distributed import Client

    with Client(scheduler_file=str(scheduler_file), timeout=10) as client:
        return len(client.nthreads())


def test_a_real_scheduler_runs_the_workloads_and_is_not_shut_down(
    lab: pytest.Pytester, dask_cluster: Path
) -> None:
    deadline = time.monotonic() + 60
    while _scheduler_workers(dask_cluster) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    lab.makepyfile(
        """
        import time

        import pytest

        @pytest.mark.parallel(backend="dask", tasks=4, rounds=3)
        def test_cpu():
            return sum(i * i for i in range(100_000))

        @pytest.mark.parallel(backend="dask", tasks=4, rounds=3)
        def test_io():
            time.sleep(0.02)

        @pytest.mark.parallel(backend="dask", tasks=2, rounds=2)
        def test_fails():
            raise ValueError("broken on the cluster")
        """
    )
    result = lab.runpytest_subprocess(
        f"--parallel-dask-scheduler={dask_cluster}",
        "--parallel-report-json=run.json",
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_fails[[]dask[]]: 2 task(s) failed under the dask backend*"])
    address = resolve_scheduler(str(dask_cluster)).address
    rows = json.loads((lab.path / "run.json").read_text())["results"]
    for row in rows[:2]:
        assert f"cluster {address}: 2 workers, 2 threads" in row["notes"]
        assert row["dispatch_s"] > 0
    # The cluster that the run did not start is still there, with both workers.
    assert _scheduler_workers(dask_cluster) == 2


def test_an_unreachable_scheduler_is_a_usage_error_naming_the_option(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile("def test_x():\n    pass\n")
    result = lab.runpytest("--parallel-dask-scheduler=tcp://127.0.0.1:1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--parallel-dask-scheduler=tcp://127.0.0.1:1: no scheduler answers at*Fix: start the*"]
    )
    result = lab.runpytest("--parallel-dask-scheduler=http://nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--parallel-dask-scheduler=http://nowhere: *tcp://*"])


def test_all_includes_dask_where_it_is_installed_as_does_a_marker_naming_it(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="all")
        def test_all():
            pass

        @pytest.mark.parallel(backend=["thread", "dask"])
        def test_named():
            pass
        """
    )
    result = lab.runpytest("--collect-only", "-q")
    output = result.stdout.str()
    # A session LocalCluster costs seconds once, reused by every item and reported apart.
    assert "test_all[dask]" in output
    assert "test_named[dask]" in output


def test_ctrl_c_during_a_dask_item_ends_the_run_and_leaves_no_worker(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_sleepy="""
        import time

        import pytest

        @pytest.mark.parallel(backend="dask", workers=2, tasks=4, rounds=50)
        def test_sleepy():
            time.sleep(0.5)
        """
    )
    rc, output, left = _run(
        Path(pytester.path), ["--parallel-report-json=out.json"], {}, [(12.0, signal.SIGINT, False)]
    )
    assert rc == 2, output
    assert left == []
    rows = json.loads((Path(pytester.path) / "out.json").read_text())["results"]
    assert [r["outcome"] for r in rows] == ["interrupted"]
