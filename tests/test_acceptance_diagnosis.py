"""Diagnosis as a user sees it: classes, recommendations, gates, sweeps, --parallel-all.

Real workloads, kept to those whose class does not depend on how busy the machine is
(waiting, tiny tasks, blocking inside asyncio): the tests assert classes and verdicts,
never times.
"""

from __future__ import annotations

import json
from typing import Any

import pytest


def run_json(lab: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = lab.runpytest_subprocess("--parallel-report-json=out.json", "--parallel-report", *args)
    return result, json.loads((lab.path / "out.json").read_text())


def test_waiting_is_io_bound_and_the_recommendation_is_threads(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.parallel(backend=["thread", "asyncio"], workers=8, tasks=8, rounds=3)
        def test_wait():
            time.sleep(0.02)
        """
    )
    result, data = run_json(lab)
    result.assert_outcomes(passed=2)
    by_backend = {r["backend"]: r for r in data["results"]}
    assert by_backend["thread"]["classification"] == "io-bound"
    assert by_backend["asyncio"]["classification"] == "blocking-in-loop"
    [recommendation] = data["recommendations"]
    assert recommendation["classification"] == "io-bound"
    assert recommendation["backend"] == "thread"
    assert "thread" in recommendation["reason"]
    result.stdout.fnmatch_lines(
        ["recommendations (choosing the right tool)", "test_wait*io-bound*thread*"]
    )


def test_tiny_tasks_are_overhead_bound_with_a_chunk_size(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="process", workers=2, tasks=16, rounds=3)
        def test_tiny():
            return 3 * 3
        """
    )
    result, data = run_json(lab)
    result.assert_outcomes(passed=1)
    [row] = data["results"]
    assert row["classification"] == "overhead-bound"
    assert row["dispatch_s"] > 0
    assert row["pickled_bytes"] > 0
    [recommendation] = data["recommendations"]
    assert recommendation["backend"] == "serial"
    # 16 tasks of a few microseconds: no chunk of them would pay for its dispatch.
    assert "even all 16 tasks together cost less than dispatching them" in recommendation["why"]


def test_a_speedup_wholly_below_min_speedup_fails_with_the_estimate_and_interval(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="process", tasks=8, rounds=3, min_speedup=1.5)
        def test_tiny():
            return 1
        """
    )
    result, data = run_json(lab)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*below min_speedup=1.5*(95% interval)*"])
    assert data["results"][0]["gate"] == {"min_speedup": 1.5, "verdict": "failed"}


def test_a_speedup_wholly_above_min_speedup_passes(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.parallel(backend="thread", workers=8, tasks=8, rounds=3, min_speedup=2)
        def test_wait():
            time.sleep(0.02)
        """
    )
    result, data = run_json(lab)
    result.assert_outcomes(passed=1)
    assert data["results"][0]["gate"]["verdict"] == "passed"


def test_min_speedup_from_the_command_line_gates_every_marked_test(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="thread", tasks=4, rounds=3)
        def test_tiny():
            return 1
        """
    )
    result, data = run_json(lab, "--parallel-min-speedup=50")
    result.assert_outcomes(failed=1)
    assert data["results"][0]["gate"]["min_speedup"] == 50


def test_expect_fails_when_the_measured_class_contradicts_it(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.parallel(backend="thread", workers=8, tasks=8, rounds=3, expect="cpu-bound")
        def test_wait():
            time.sleep(0.02)
        """
    )
    result, _ = run_json(lab)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected cpu-bound, measured io-bound*"])


def test_an_unknown_expected_class_names_the_valid_ones(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="thread", expect="fast")
        def test_x():
            pass
        """
    )
    result = lab.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*expect=*unknown classification 'fast'*cpu-bound*io-bound*"])


def test_a_worker_sweep_gives_one_item_per_count_and_a_scaling_section(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.parallel(backend="thread", workers=[1, 2], tasks=4, rounds=3)
        def test_wait():
            time.sleep(0.01)
        """
    )
    result, data = run_json(lab, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_wait?thread-w1?*", "*test_wait?thread-w2?*"])
    [sweep] = data["scaling"]
    assert sweep["backend"] == "thread"
    assert [p["workers"] for p in sweep["points"]] == [1, 2]
    for point in sweep["points"]:
        assert point["ci_low"] <= point["speedup"] <= point["ci_high"]
    result.stdout.fnmatch_lines(["scaling: *test_wait*thread*", "*Amdahl fit*"])


def test_parallel_all_measures_an_untouched_suite_and_skips_what_cannot_run(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import threading
        import time
        import pytest

        @pytest.fixture
        def lock():
            return threading.Lock()

        def test_wait():
            time.sleep(0.01)

        def test_locked(lock):
            with lock:
                pass
        """
    )
    result, data = run_json(lab, "--parallel-all", "--parallel-rounds=3", "-rs")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["*SKIP*cannot run under the process backend*fixture 'lock'*"])
    outcomes = {(r["test"].split("::")[-1], r["backend"]): r["outcome"] for r in data["results"]}
    assert outcomes == {
        ("test_wait", "thread"): "passed",
        ("test_wait", "process"): "passed",
        ("test_locked", "thread"): "passed",
        ("test_locked", "process"): "skipped",
    }


def test_parallel_backend_overrides_the_markers_backends(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="process", tasks=2, rounds=2)
        def test_x():
            pass
        """
    )
    result = lab.runpytest("--parallel-backend=thread,asyncio", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_x?thread?*", "*test_x?asyncio?*"])


def test_an_unknown_parallel_backend_is_a_usage_error_listing_the_backends(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile("def test_x():\n    pass\n")
    result = lab.runpytest("--parallel-backend=bogus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--parallel-backend: unknown backend 'bogus'*thread*process*"])
