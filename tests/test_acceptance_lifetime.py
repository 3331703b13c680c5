"""Pools that die with their owner, Ctrl-C that works, bounded pools, other plugins' threads.

The runs that get signals are real subprocesses in a session of their own, so that
what they leave behind can be found by session id. Timeouts are generous: the
assertion is that the run ends and leaves nothing, not how fast.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_parallel_lab.backends.lifetime import Owner, owner_alive, owner_for, set_foreign_fds
from pytest_parallel_lab.backends.registry import RunnerCache

RUN_TIMEOUT_S = 90

WORKLOADS = """
import os
import time

import pytest

def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

@pytest.mark.parallel(backend="process", tasks=2, rounds=2)
def test_process_quick():
    spin(0.01)

@pytest.mark.parallel(backend="multiprocessing", tasks=4, rounds=2)
def test_multiprocessing_long():
    spin(float(os.environ.get("SPIN_S", "0.01")))

@pytest.mark.parallel(backend="process", tasks=4, rounds=2)
def test_process_sleeping():
    time.sleep(float(os.environ.get("NAP_S", "0.01")))

def test_crash_the_worker():
    if os.environ.get("CRASH"):
        os._exit(1)
"""


def _leftovers(session_id: int) -> list[str]:
    """The live (not zombie) processes of a session, as "pid state args" lines.

    Read from /proc where it exists: a minimal system (a container, a chroot) may have
    no ``ps``."""
    if not os.path.isdir("/proc"):
        ps = subprocess.run(
            ["ps", "-o", "pid=,stat=,args=", "-s", str(session_id)], capture_output=True, text=True
        )
        return [line for line in ps.stdout.splitlines() if line.split()[1:2] != ["Z"]]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # pid (comm) state ppid pgrp session ...; comm may hold spaces
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # it ended meanwhile
            continue
        state, session = fields[0], int(fields[3])
        if session == session_id and state != "Z":
            found.append(f"{entry} {state} {args}")
    return found


def _run(
    directory: Path,
    args: list[str],
    env: dict[str, str],
    signals: Sequence[tuple[float, signal.Signals, bool]] = (),
) -> tuple[int, str, list[str]]:
    """Run pytest in *directory* in a new session; send (at, signal, to_group) signals.

    SIGINT is restored to its default in the child: a shell starts background jobs
    with it ignored, and Python then never raises KeyboardInterrupt.
    """
    # Its own TMPDIR, removed after: a run ended by a signal (or an xdist worker by
    # os._exit) cannot remove multiprocessing's temporary directory, a forkserver's
    # socket in it. Short: a socket's path is limited to 107 bytes.
    scratch = tempfile.mkdtemp(prefix="lab-")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
            cwd=directory,
            env={**os.environ, **env, "TMPDIR": scratch},
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started = time.monotonic()
        for at, signum, group in signals:
            time.sleep(max(0.0, at - (time.monotonic() - started)))
            if group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)
        try:
            output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"the run hung: still running after {RUN_TIMEOUT_S}s")
        deadline = time.monotonic() + 10
        left = _leftovers(process.pid)
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = _leftovers(process.pid)
        for line in left:
            os.kill(int(line.split()[0]), signal.SIGKILL)
        return process.returncode, output, left
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_workloads=WORKLOADS)
    return Path(pytester.path)


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_an_xdist_worker_that_crashes_after_process_tests_is_reported_crashed_and_leaves_nothing(
    project: Path, start_method: str
) -> None:
    rc, output, left = _run(
        project,
        ["-n", "1", f"--parallel-start-method={start_method}", "-k", "quick or crash"],
        {"CRASH": "1"},
    )
    assert rc == 1, output
    assert "worker 'gw0' crashed while running 'test_workloads.py::test_crash_the_worker'" in output
    assert left == []


def test_ctrl_c_to_the_process_group_during_a_multiprocessing_test_ends_the_run_and_writes_the_row(
    project: Path,
) -> None:
    rc, output, left = _run(
        project,
        ["-k", "multiprocessing_long", "--parallel-report-json=out.json"],
        {"SPIN_S": "1"},
        [(5.0, signal.SIGINT, True)],
    )
    assert rc == 2, output
    assert "Traceback" not in output
    assert left == []
    rows = json.loads((project / "out.json").read_text())["results"]
    assert [(r["nodeid"], r["outcome"]) for r in rows] == [
        ("test_workloads.py::test_multiprocessing_long[multiprocessing]", "interrupted")
    ]
    assert "interrupted (Ctrl-C) after" in rows[0]["error"]


def test_ctrl_c_to_pytest_alone_does_not_wait_for_the_queued_tasks(project: Path) -> None:
    started = time.monotonic()
    rc, output, left = _run(
        project,
        ["-k", "process_sleeping", "--parallel-report-json=out.json"],
        {"NAP_S": "20"},
        [(3.0, signal.SIGINT, False)],
    )
    # The serial side alone would take 4 x 20 s; a run that waited for it is caught here.
    assert time.monotonic() - started < 60, output
    assert rc == 2, output
    assert left == []
    rows = json.loads((project / "out.json").read_text())["results"]
    assert [r["outcome"] for r in rows] == ["interrupted"]


def test_a_second_ctrl_c_exits_at_once_without_a_traceback(project: Path) -> None:
    rc, output, left = _run(
        project,
        ["-k", "multiprocessing_long"],
        {"SPIN_S": "1"},
        [(5.0, signal.SIGINT, True), (5.05, signal.SIGINT, True)],
    )
    assert rc in (2, 128 + signal.SIGINT, -signal.SIGINT), output
    assert "Traceback" not in output
    assert left == []


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_sigterm_to_pytest_leaves_no_pool_workers_behind(project: Path, start_method: str) -> None:
    rc, output, left = _run(
        project,
        ["-k", "process_sleeping", f"--parallel-start-method={start_method}"],
        {"NAP_S": "1"},
        [(6.0, signal.SIGTERM, False)],
    )
    assert rc == -signal.SIGTERM, output
    assert left == []


def test_a_workload_that_ends_pytest_itself_leaves_no_pool_workers_behind(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import os
        import pytest

        calls = []

        @pytest.mark.parallel(backend="process", tasks=2, rounds=2)
        def test_x():
            calls.append(1)
            if len(calls) > 4 and os.getpid() == int(os.environ["PYTEST_PID"]):
                os._exit(3)  # the serial side runs in pytest's own process
        """
    )
    conftest = "import os\nos.environ['PYTEST_PID'] = str(os.getpid())\n"
    pytester.makeconftest(conftest)
    rc, output, left = _run(Path(pytester.path), [], {})
    assert rc == 3, output
    assert left == []


# --- the pieces, without processes to wait for ------------------------------------------


def test_a_forked_worker_closes_the_named_descriptors_and_a_spawned_one_none() -> None:
    set_foreign_fds([1, 7, 9, 7])
    try:
        assert owner_for("fork") == Owner(os.getpid(), (7, 9))
        assert owner_for("spawn") == Owner(os.getpid(), ())
        assert owner_for("forkserver").close_fds == ()
    finally:
        set_foreign_fds([])


def test_an_ended_process_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert owner_alive(os.getpid())
    assert not owner_alive(child.pid)


class _FakeRunner:
    startup_s = 0.0

    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def run(self, work: object, timeout: float) -> object:
        raise AssertionError("not run here")

    def close(self) -> None:
        self.log.append(f"close {self.name}")

    def abandon(self) -> None:
        self.log.append(f"abandon {self.name}")


class _FakeBackend:
    description = "fake"

    def __init__(self, name: str, processes: bool, log: list[str]) -> None:
        self.name, self.uses_processes, self.log = name, processes, log

    def unavailable_reason(self) -> None:
        return None

    def start(self, workers: int, start_method: str | None) -> _FakeRunner:
        return _FakeRunner(self.log, f"{self.name}-{workers}")


def test_the_cache_never_keeps_more_workers_than_the_largest_request_plus_the_spare() -> None:
    log: list[str] = []
    process = _FakeBackend("process", True, log)
    cache = RunnerCache(spare=8)
    for workers in range(1, 41):
        cache.get(process, workers, "fork")
        assert cache.live_workers(processes=True) <= workers + 8
    assert cache.live_workers(processes=True) == 40  # the last request alone
    assert "close process-1" in log


def test_the_cache_keeps_the_runners_of_the_measurement_in_hand() -> None:
    log: list[str] = []
    thread = _FakeBackend("thread", False, log)
    cache = RunnerCache(spare=0)
    first = cache.get(thread, 3, None)
    second = cache.get(thread, 2, None, keep=[first])
    assert log == []  # over the bound for a moment, but the caller holds both
    assert cache.live_workers(processes=False) == 5
    cache.get(thread, 4, None, keep=[second])
    assert log == ["close thread-3"]


class _ForkUnsafeRunner(_FakeRunner):
    fork_unsafe = True


class _SubinterpreterBackend(_FakeBackend):
    def start(self, workers: int, start_method: str | None) -> _FakeRunner:
        return _ForkUnsafeRunner(self.log, f"{self.name}-{workers}")


def test_a_subinterpreter_pool_is_closed_before_any_other_runner_is_handed_out() -> None:
    # CPython 3.14: a fork while subinterpreters live segfaults the child (found by the
    # tox matrix's fork envs); the next item's process pool may fork.
    log: list[str] = []
    interpreter = _SubinterpreterBackend("interpreter", False, log)
    serial = _FakeBackend("serial", False, log)
    process = _FakeBackend("process", True, log)
    cache = RunnerCache()
    first = cache.get(serial, 1, None)
    pool = cache.get(interpreter, 2, None, keep=[first])
    assert log == []  # the measurement in hand holds it
    assert cache.get(interpreter, 2, None) is pool  # asked again: reused
    cache.get(process, 2, "fork")
    assert log == ["close interpreter-2"]


def test_after_ctrl_c_the_cache_abandons_instead_of_closing() -> None:
    log: list[str] = []
    backend = _FakeBackend("process", True, log)
    cache = RunnerCache()
    cache.get(backend, 2, "fork")
    cache.close_all(wait=False)
    assert log == ["abandon process-2"]


# --- other plugins: threads that run the body, a timeout that stops it --------------------


def test_a_plugin_that_runs_a_parallel_map_test_in_two_threads_gets_a_clear_failure(
    lab: pytest.Pytester,
) -> None:
    lab.makeconftest(
        """
        import threading
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_collection_finish(session):
            for item in session.items:
                original = item.obj

                def in_two_threads(*args, __original=original, **kwargs):
                    errors = []
                    def one():
                        try:
                            __original(*args, **kwargs)
                        except BaseException as exc:
                            errors.append(exc)
                    threads = [threading.Thread(target=one) for _ in range(2)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    if errors:
                        raise errors[0]

                item.obj = in_two_threads
        """
    )
    lab.makepyfile(
        """
        import time
        import pytest

        def nap(x):
            time.sleep(0.05)
            return x

        @pytest.mark.parallel(backend="thread", rounds=2)
        def test_map(parallel_map):
            assert parallel_map(nap, range(4)) == [0, 1, 2, 3]
        """
    )
    result = lab.runpytest("--parallel-report-json=out.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*is being run in several threads at once*thread_unsafe*"])
    rows = json.loads((lab.path / "out.json").read_text())["results"]
    assert len(rows) == 1  # one measurement, not one per thread


def test_marked_items_are_marked_thread_unsafe_for_pytest_run_parallel(
    lab: pytest.Pytester,
) -> None:
    lab.makeconftest(
        """
        import pytest

        class RunParallel:  # stands in for pytest-run-parallel, registered by its name
            pass

        def pytest_configure(config):
            config.addinivalue_line("markers", "thread_unsafe: run in one thread")
            config.pluginmanager.register(RunParallel(), "_run-parallel")

        @pytest.hookimpl(trylast=True)
        def pytest_collection_finish(session):
            for item in session.items:
                mark = item.get_closest_marker("thread_unsafe")
                print(f"MARK {item.nodeid} {mark.kwargs['reason'] if mark else None}")
        """
    )
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="thread", rounds=2)
        def test_marked():
            pass

        def test_plain():
            pass
        """
    )
    result = lab.runpytest("-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "MARK test_*::test_marked[[]thread[]] measured by pytest-parallel-lab*",
            "MARK test_*::test_plain None",
        ]
    )


def test_a_marked_test_stopped_by_a_timeout_plugin_keeps_its_row(lab: pytest.Pytester) -> None:
    lab.makeconftest(
        """
        import signal
        import pytest

        # What pytest-timeout's signal method does: fail the test from SIGALRM.
        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_call(item):
            def stop(signum, frame):
                pytest.fail("Timeout (>1.0s) from pytest-timeout.")
            signal.signal(signal.SIGALRM, stop)
            signal.setitimer(signal.ITIMER_REAL, 1.0)
            try:
                return (yield)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        """
    )
    lab.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.parallel(backend="process", tasks=2, rounds=2)
        def test_slow():
            time.sleep(0.4)

        @pytest.mark.parallel(backend="process", tasks=2, rounds=2)
        def test_next():
            pass
        """
    )
    result = lab.runpytest("--parallel-report-json=out.json")
    result.assert_outcomes(failed=1, passed=1)
    rows = json.loads((lab.path / "out.json").read_text())["results"]
    by_test = {r["nodeid"].split("::")[1]: r for r in rows}
    assert by_test["test_slow[process]"]["outcome"] == "failed"
    assert "Timeout (>1.0s)" in by_test["test_slow[process]"]["error"]
    assert by_test["test_next[process]"]["outcome"] == "passed"


def test_the_exit_at_once_handler_of_a_second_ctrl_c_goes_away_with_the_session(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="serial", tasks=1, rounds=2)
        def test_interrupted():
            raise KeyboardInterrupt
        """
    )
    before = signal.getsignal(signal.SIGINT)
    result = lab.runpytest_inprocess("--parallel-report-json=out.json", no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert signal.getsignal(signal.SIGINT) is before
    rows = json.loads((lab.path / "out.json").read_text())["results"]
    assert [r["outcome"] for r in rows] == ["interrupted"]
