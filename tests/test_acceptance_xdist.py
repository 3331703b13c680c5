"""Marked tests under pytest-xdist: results travel to the controller; CPUs are shared."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_parallel_lab.environment import usable_cpus

pytest.importorskip("xdist")

SUBPROCESS_TIMEOUT_S = 60

MARKED_TESTS = """
import pytest

@pytest.mark.parallel(backend=["serial", "thread", "process"], tasks=2, rounds=2)
def test_a():
    return 1

@pytest.mark.parallel(backend=["thread", "asyncio"], tasks=2, rounds=2)
def test_b():
    return 2

@pytest.mark.parallel(backend="thread", rounds=2)
def test_map(parallel_map):
    assert parallel_map(abs, [-1, -2]) == [1, 2]

@pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
def test_fails():
    raise ValueError("broken on purpose")

def test_plain():
    pass
"""


def test_results_measured_in_xdist_workers_reach_the_controllers_report_and_json(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(MARKED_TESTS)
    result = lab.runpytest_subprocess(
        "-n",
        "2",
        "--parallel-report",
        "--parallel-report-json=out.json",
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    result.assert_outcomes(passed=7, failed=1)
    # The environment line may wrap at 80 columns ("start method forkserver" on 3.14+).
    assert ", 2 xdist workers" in " ".join(result.stdout.str().split())
    result.stdout.fnmatch_lines(
        [
            "*pytest-parallel-lab*",
            "test*backend*speedup [[]95% CI[]]*verdict*",
            "Warning: measured inside 2 pytest-xdist workers that shared the same CPUs*",
        ]
    )
    data: dict[str, Any] = json.loads((lab.path / "out.json").read_text())
    assert data["environment"]["xdist_workers"] == 2
    rows = data["results"]
    nodeids = sorted(r["nodeid"].split("::")[1] for r in rows)
    assert nodeids == sorted(
        [
            "test_a[serial]",
            "test_a[thread]",
            "test_a[process]",
            "test_b[thread]",
            "test_b[asyncio]",
            "test_map[thread]",
            "test_fails[thread]",
        ]
    )
    for row in rows:
        assert row["xdist_worker"] in ("gw0", "gw1")
    failed = [r for r in rows if r["outcome"] == "failed"]
    assert [r["nodeid"].split("::")[1] for r in failed] == ["test_fails[thread]"]
    assert "broken on purpose" in failed[0]["error"]


def test_auto_workers_share_the_cpus_among_xdist_workers(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend=["thread", "process"], workers="auto", tasks=2, rounds=2)
        def test_a():
            pass
        """
    )
    result = lab.runpytest_subprocess(
        "-n", "2", "--parallel-report-json=out.json", timeout=SUBPROCESS_TIMEOUT_S
    )
    result.assert_outcomes(passed=2)
    rows = json.loads((lab.path / "out.json").read_text())["results"]
    expected = max(1, usable_cpus() // 2)  # 1 on a 2-CPU machine
    assert [r["workers"] for r in rows] == [expected, expected]
    for row in rows:
        assert "CPUs shared with 2 xdist workers" in row["notes"]


def test_a_bad_marker_under_xdist_is_an_error_with_a_row_in_the_json(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="fibers")
        def test_bad():
            pass

        @pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
        def test_good():
            pass
        """
    )
    result = lab.runpytest_subprocess(
        "-n", "2", "--parallel-report-json=out.json", timeout=SUBPROCESS_TIMEOUT_S
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_bad*unknown backend 'fibers'*"])
    rows = json.loads((lab.path / "out.json").read_text())["results"]
    assert sorted(r["outcome"] for r in rows) == ["error", "passed"]
