"""Suite timing of tests that never finished: a crashed xdist worker, Ctrl-C (issue 14).

Each run is a subprocess: the worker dies with ``os._exit``, or the run receives SIGINT.
What was measured before must still be written, and the test that was stopped must
never be recorded as passed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

#: Generous: each run takes about a second; a hang must fail the test, not the suite.
SUBPROCESS_TIMEOUT_S = 120

#: Test bodies that stop the run the way Ctrl-C does (indented for the module below).
STOPPED_BY = {
    "raise": "raise KeyboardInterrupt",
    "sigint": "os.kill(os.getpid(), signal.SIGINT)\n            time.sleep(30)",
}


def outcomes_of(pytester: pytest.Pytester, path: str = "run.json") -> dict[str, str]:
    data: dict[str, Any] = json.loads(Path(pytester.path, path).read_text())
    return {t["nodeid"].split("::")[1]: t["outcome"] for t in data["suite"]["tests"]}


def test_a_test_whose_xdist_worker_crashed_is_recorded_as_crashed(
    lab: pytest.Pytester,
) -> None:
    # It was recorded as passed: its worker had sent the setup report before it died.
    pytest.importorskip("xdist")
    lab.makepyfile(
        test_crash="""
        import os

        def test_ok():
            pass

        def test_crash():
            os._exit(1)
        """
    )
    result = lab.runpytest_subprocess(
        "-n", "2", "--parallel-report-json=run.json", timeout=SUBPROCESS_TIMEOUT_S
    )
    result.stdout.fnmatch_lines(["*worker 'gw*' crashed while running*test_crash*"])
    assert outcomes_of(lab) == {"test_ok": "passed", "test_crash": "crashed"}
    suite = json.loads(Path(lab.path, "run.json").read_text())["suite"]
    (crashed,) = [t for t in suite["tests"] if t["outcome"] == "crashed"]
    assert crashed["worker"] in suite["crashed_workers"]


@pytest.mark.parametrize("stop", sorted(STOPPED_BY))
def test_a_test_stopped_by_ctrl_c_is_recorded_as_interrupted_after_what_ran_before(
    lab: pytest.Pytester, stop: str
) -> None:
    # It was recorded as passed: only its setup had been reported.
    lab.makepyfile(
        test_stop=f"""
        import os
        import signal
        import time

        def test_before():
            pass

        def test_stopped():
            {STOPPED_BY[stop]}

        def test_after():
            pass
        """
    )
    result = lab.runpytest_subprocess(
        "--parallel-report-json=run.json",
        "--parallel-trace=trace.json",
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert outcomes_of(lab) == {"test_before": "passed", "test_stopped": "interrupted"}
    trace = json.loads(Path(lab.path, "trace.json").read_text())
    assert any(e["name"].endswith("::test_stopped") for e in trace["traceEvents"])


def test_a_test_stopped_by_ctrl_c_in_an_xdist_worker_is_recorded_as_interrupted(
    lab: pytest.Pytester,
) -> None:
    # xdist reports it as a crash of the worker; the worker's exit status says Ctrl-C.
    pytest.importorskip("xdist")
    lab.makepyfile(
        test_stop="""
        def test_ok():
            pass

        def test_stopped():
            raise KeyboardInterrupt
        """
    )
    lab.runpytest_subprocess(
        "-n", "2", "--parallel-report-json=run.json", timeout=SUBPROCESS_TIMEOUT_S
    )
    assert outcomes_of(lab) == {"test_ok": "passed", "test_stopped": "interrupted"}
