"""The session's end, calibrated from an interpreter's exit and used by the prediction."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import FREE

from pytest_parallel_lab.capacity import read_capacity
from pytest_parallel_lab.document.suite import (
    XDIST_SHUTDOWN_S,
    Calibration,
    SuiteSection,
    WorkerTiming,
)
from pytest_parallel_lab.suite import hooks as suite_hooks
from pytest_parallel_lab.suite import session_end
from pytest_parallel_lab.suite.model import SimTest, SuiteModel, calibrate
from pytest_parallel_lab.suite.session_end import InterpreterExitProbe, session_end_s
from pytest_parallel_lab.suite.simulate import predict_xdist_wall_time


@pytest.mark.parametrize(
    ("exit_s", "probe_blocks", "blocks", "expected"),
    [
        # a worker that holds four times what the probe held exits four times as long
        (0.05, 1000, 4000, 0.2),
        # never less than the probe's own exit
        (0.05, 1000, 500, 0.05),
        # a probe that said it held nothing: its exit as it was
        (0.05, 0, 4000, 0.05),
    ],
)
def test_a_workers_exit_is_the_probes_scaled_by_what_it_holds(
    exit_s: float, probe_blocks: int, blocks: int, expected: float
) -> None:
    assert session_end_s(exit_s, probe_blocks, blocks) == pytest.approx(expected)


@pytest.mark.skipif(not hasattr(os, "WNOWAIT"), reason="waits without reaping on POSIX only")
def test_a_started_interpreter_is_timed_as_it_exits_while_the_tests_run_and_reaped_after() -> None:
    probe = InterpreterExitProbe(["json"])
    assert probe.thread is not None
    probe.thread.join(2 * session_end.PROBE_TIMEOUT_S)
    assert probe.timed is not None
    assert probe.process is not None
    # It has exited but is not reaped: its CPU would count as the running test's.
    pid = probe.process.pid
    assert os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    measured = probe.measure()
    assert measured is not None
    assert measured > 0.0
    with pytest.raises(ChildProcessError):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG)  # reaped by now
    assert probe.measure() is None  # the probe is gone
    probe.close()


def test_without_waiting_unreaped_the_session_end_times_the_exit_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(session_end.os, "WNOWAIT", raising=False)
    probe = InterpreterExitProbe(["json"])
    assert probe.thread is None
    measured = probe.measure()
    assert measured is not None
    assert measured > 0.0


def test_a_probe_that_never_says_it_is_ready_measures_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_end, "PROBE_CODE", "import sys")
    assert InterpreterExitProbe([]).measure() is None
    unused = InterpreterExitProbe([])
    unused.close()
    assert unused.process is None


@pytest.mark.skipif(not hasattr(os, "WNOWAIT"), reason="waits without reaping on POSIX only")
def test_a_probe_still_importing_at_the_session_end_is_stopped_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A busy machine leaves the low-priority probe no CPU to import on: it is not ready.
    monkeypatch.setattr(session_end, "PROBE_CODE", "import time\ntime.sleep(120)")
    probe = InterpreterExitProbe([])
    process = probe.process
    assert process is not None
    start = time.monotonic()
    assert probe.measure() is None
    assert time.monotonic() - start < session_end.PROBE_TIMEOUT_S  # not waited for
    assert process.poll() is not None  # stopped and reaped
    assert probe.thread is not None
    probe.thread.join(session_end.PROBE_TIMEOUT_S)
    assert not probe.thread.is_alive()


@pytest.mark.skipif(not hasattr(os, "nice"), reason="process priorities on POSIX only")
def test_the_probe_imports_and_exits_at_the_lowest_priority(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = tmp_path / "nice"
    code = session_end.PROBE_CODE.replace(
        "import pytest\n", f"import pytest\nopen({str(seen)!r}, 'w').write(str(os.nice(0)))\n"
    )
    assert code != session_end.PROBE_CODE
    monkeypatch.setattr(session_end, "PROBE_CODE", code)
    probe = InterpreterExitProbe([])
    if probe.thread is not None:
        probe.thread.join(2 * session_end.PROBE_TIMEOUT_S)
    assert probe.measure() is not None
    assert seen.read_text() == "19"


def test_a_probes_exit_is_its_cpu_time_when_that_is_less_than_its_wall_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Exited 0.5 s after the word beside busy CPUs, having taken 0.04 s of CPU to exit
    # (1.24 s in all, 1.2 s of it before it was ready): a worker's exit is 0.04 s of work.
    probe = InterpreterExitProbe.__new__(InterpreterExitProbe)
    probe.process = FakeExited()  # type: ignore[assignment]
    probe.thread = FakeThread()  # type: ignore[assignment]
    probe.ready = threading.Event()
    probe.ready.set()
    probe.timed = (0.5, 1000, 1.2)
    monkeypatch.setattr(session_end, "_reaped_cpu", lambda process: 1.24)
    monkeypatch.setattr(session_end.sys, "getallocatedblocks", lambda: 1000)
    assert probe.measure() == pytest.approx(0.04)
    # without a CPU time (no wait4), or one above the wall time, the wall time counts
    for cpu in (None, 2.0):
        probe.process = FakeExited()  # type: ignore[assignment]
        monkeypatch.setattr(session_end, "_reaped_cpu", lambda process, cpu=cpu: cpu)
        assert probe.measure() == pytest.approx(0.5)


class FakeExited:
    """An exited probe, as ``_stop`` sees it."""

    stdin = stdout = None

    def poll(self) -> int:
        return 0


class FakeThread:
    def join(self, timeout: float | None = None) -> None:
        return None


SERIAL = SuiteSection(workers=(WorkerTiming("main", 0.0, 0.5, 3.0, 0.5, 4, 4.0),), wall_s=4.0)


def test_a_measured_session_end_is_the_calibrations_and_the_constant_only_a_fallback() -> None:
    measured = calibrate(SERIAL, xdist_workers=0, process_age_s=0.5, cpus=2, session_end_s=0.75)
    assert (measured.shutdown_s, measured.shutdown_measured) == (0.75, True)
    fallback = calibrate(SERIAL, xdist_workers=0, process_age_s=0.5, cpus=2)
    assert (fallback.shutdown_s, fallback.shutdown_measured) == (XDIST_SHUTDOWN_S, False)
    assert XDIST_SHUTDOWN_S == 0.15


def four_tests(calibration: Calibration) -> SuiteModel:
    return SuiteModel(tuple(SimTest(f"t.py::t{i}", 1.0) for i in range(4)), {}, calibration)


def test_the_prediction_ends_with_the_workers_exits_sharing_the_cpus() -> None:
    model = four_tests(dataclasses.replace(FREE, shutdown_s=0.5))
    # -n 2 on 2 CPUs: two 1 s tests each, then both exit at once on their own CPU
    assert predict_xdist_wall_time(model, 2, "load").wall_s == pytest.approx(2.5)
    # -n 4 on 2 CPUs: one test each at half speed (2 s), then four exits on two CPUs
    assert predict_xdist_wall_time(model, 4, "load").wall_s == pytest.approx(2.0 + 1.0)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_the_lower_bound_counts_no_session_end(workers: int) -> None:
    ended = predict_xdist_wall_time(
        four_tests(dataclasses.replace(FREE, shutdown_s=0.5)), workers, "load"
    )
    free = predict_xdist_wall_time(four_tests(FREE), workers, "load")
    # the most optimistic session end is none: the bound is the same with or without one
    assert ended.lower_bound_s == free.lower_bound_s
    assert ended.lower_bound_s <= free.wall_s <= ended.wall_s


@pytest.mark.skipif(read_capacity().usable < 2, reason="the probe needs a second CPU")
def test_a_serial_run_long_enough_for_the_probe_measures_the_session_end(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    calibration = waiting_run(lab, monkeypatch, "-p", "no:cacheprovider")
    assert calibration["shutdown_measured"] is True
    assert 0.0 < calibration["shutdown_s"] < 60.0


def waiting_run(lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    """The suite calibration of an in-process run of one test that waits 3 s: its CPU is
    idle, and the probe imports on it (at normal priority: beside this suite's other
    tests under -n, at its lowest it would wait as long as they keep both CPUs busy)."""
    code = session_end.PROBE_CODE.replace("os.nice(19)", "pass")
    assert code != session_end.PROBE_CODE
    monkeypatch.setattr(session_end, "PROBE_CODE", code)
    lab.makepyfile(test_wait="import time\n\ndef test_wait():\n    time.sleep(3)\n")
    result = lab.runpytest_inprocess(*args, "--parallel-report-json=run.json")
    result.assert_outcomes(passed=1)
    return json.loads((lab.path / "run.json").read_text())["suite"]["calibration"]


DAY = 86400.0


@pytest.mark.parametrize(
    ("entry", "now", "expected"),
    [
        pytest.param({"identity": "me", "exit_s": 0.2, "blocks": 9, "at": 100.0}, 160.0, (0.2, 9)),
        # another machine, interpreter or set of plugins: measured again
        pytest.param({"identity": "you", "exit_s": 0.2, "blocks": 9, "at": 100.0}, 160.0, None),
        # a day old, or from the future (a clock set back)
        pytest.param({"identity": "me", "exit_s": 0.2, "blocks": 9, "at": 0.0}, DAY, None),
        pytest.param({"identity": "me", "exit_s": 0.2, "blocks": 9, "at": 100.0}, 50.0, None),
        # anything else a user's cache file may hold
        pytest.param({"identity": "me", "exit_s": "0.2", "blocks": 9, "at": 100.0}, 160.0, None),
        pytest.param({"identity": "me", "exit_s": 0.2, "blocks": True, "at": 100.0}, 160.0, None),
        pytest.param({"identity": "me", "exit_s": -1.0, "blocks": 9, "at": 100.0}, 160.0, None),
        pytest.param({"identity": "me", "exit_s": 0.2, "blocks": 0, "at": 100.0}, 160.0, None),
        pytest.param(["me", 0.2], 160.0, None),
        pytest.param(None, 160.0, None),
    ],
)
def test_a_cached_exit_is_used_only_for_the_same_machine_within_a_day(
    entry: object, now: float, expected: tuple[float, int] | None
) -> None:
    assert session_end.cached_exit(entry, "me", now) == expected


def test_the_identity_names_the_host_interpreter_and_plugins_in_any_order() -> None:
    one = session_end.probe_identity(["xdist.plugin", "pytest_parallel_lab.plugin"])
    assert one == session_end.probe_identity(["pytest_parallel_lab.plugin", "xdist.plugin"])
    assert one != session_end.probe_identity(["pytest_parallel_lab.plugin"])
    assert sys.executable in one
    entry = session_end.cache_entry(one, 0.3, 7, 1000.0)
    assert session_end.cached_exit(json.loads(json.dumps(entry)), one, 1000.0) == (0.3, 7)


@pytest.mark.skipif(read_capacity().usable < 2, reason="the probe needs a second CPU")
def test_a_second_run_on_the_same_day_uses_the_exit_measured_by_the_first(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = waiting_run(lab, monkeypatch)
    assert first["shutdown_measured"] is True
    kept = json.loads((lab.path / ".pytest_cache/v/parallel_lab/session_end").read_text())
    assert kept["identity"].startswith(platform.node())
    started: list[object] = []
    # the module object itself (imported with this file): pytester drops a module an
    # inner run imported first, and a dotted path could patch a copy no run uses
    monkeypatch.setattr(
        suite_hooks, "InterpreterExitProbe", lambda modules: started.append(modules)
    )
    lab.makepyfile(test_wait="def test_quick():\n    pass\n")
    again = lab.runpytest_inprocess("--parallel-report-json=run.json")
    again.assert_outcomes(passed=1)
    assert started == []  # no probe: the first run's exit, scaled to this run's memory
    second = json.loads((lab.path / "run.json").read_text())["suite"]["calibration"]
    assert second["shutdown_measured"] is True
    assert second["shutdown_s"] >= kept["exit_s"]
    # without pytest's cache, every run measures its own
    lab.runpytest_inprocess("-p", "no:cacheprovider", "--parallel-report-json=run.json")
    assert len(started) == 1


def test_under_xdist_the_workers_own_ends_are_measured_and_no_probe_is_started(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(test_two="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = lab.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--parallel-report-json=run.json"
    )
    result.assert_outcomes(passed=2)
    calibration = json.loads((lab.path / "run.json").read_text())["suite"]["calibration"]
    assert calibration["shutdown_measured"] is True
    # from the last test's end to the workers being gone: a real span
    assert 0.0 < calibration["shutdown_s"] < 60.0


def test_an_xdist_runs_session_end_and_time_include_its_workers_going_down(
    lab: pytest.Pytester,
) -> None:
    # A worker that takes a second to go down after its session (its plugins' end,
    # its interpreter's exit): xdist's controller waits for it, and pytest's session
    # time has it. The run's time and session end read before that missed it.
    lab.makeconftest(
        """
        import os, time

        def pytest_unconfigure(config):
            if os.environ.get("PYTEST_XDIST_WORKER"):
                time.sleep(1.0)
        """
    )
    lab.makepyfile(test_two="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = lab.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--parallel-report-json=run.json"
    )
    result.assert_outcomes(passed=2)
    section = json.loads((lab.path / "run.json").read_text())["suite"]
    assert section["calibration"]["shutdown_s"] >= 1.0
    assert section["actual"]["wall_s"] >= 1.0
    assert section["actual"]["wall_s"] == section["wall_s"]


@pytest.fixture
def probes_started(lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The exit probes an in-process run of two passing tests starts (none really is)."""
    started: list[object] = []
    # the module object itself (imported with this file): pytester drops a module an
    # inner run imported first, and a dotted path could patch a copy no run uses
    monkeypatch.setattr(
        suite_hooks, "InterpreterExitProbe", lambda modules: started.append(modules)
    )
    lab.makepyfile(test_two="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    return started


def test_under_xdist_no_exit_probe_is_started(
    lab: pytest.Pytester, probes_started: list[object]
) -> None:
    result = lab.runpytest_inprocess(
        "-p", "no:cacheprovider", "-n", "2", "--parallel-report-json=run.json"
    )
    result.assert_outcomes(passed=2)
    assert probes_started == []


def test_with_one_usable_cpu_no_exit_probe_slows_the_run_and_the_end_is_the_default(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, probes_started: list[object]
) -> None:
    # One CPU (a container's quota): the probe's imports would share it with the
    # collection and the tests that the prediction is calibrated from.
    monkeypatch.setenv("PYTHON_CPU_COUNT", "1")
    result = lab.runpytest_inprocess(
        "-p", "no:cacheprovider", "--parallel-report", "--parallel-report-json=run.json"
    )
    result.assert_outcomes(passed=2)
    assert probes_started == []
    calibration = json.loads((lab.path / "run.json").read_text())["suite"]["calibration"]
    assert calibration["cpus"] == 1
    assert (calibration["shutdown_s"], calibration["shutdown_measured"]) == (
        XDIST_SHUTDOWN_S,
        False,
    )
    basis = " ".join(result.stdout.str().split())  # the section wraps to the terminal
    default = f"session end takes {XDIST_SHUTDOWN_S:.3f} s (not measured: the default); 1 CPU;"
    assert default in basis
