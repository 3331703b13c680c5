"""Faults a workload can cause: unpicklable values, dying workers, hangs, leftovers."""

from __future__ import annotations

import json

import pytest

from pytest_parallel_lab.backends import BUILTIN_BACKENDS
from pytest_parallel_lab.backends.protocol import in_all

#: What backend="all" measures on this interpreter (3.14+ adds subinterpreters, the
#: extras dask and loky).
ALL_HERE = [b.name for b in BUILTIN_BACKENDS if in_all(b) and b.unavailable_reason() is None]
#: Well below the 60 s a hung task sleeps: the run must end long before that.
SUBPROCESS_TIMEOUT_S = 40


def test_an_unpicklable_fixture_value_fails_a_process_item_naming_the_fixture_and_the_fix(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import threading

        import pytest

        @pytest.fixture
        def lock():
            return threading.Lock()

        @pytest.mark.parallel(backend=["process", "multiprocessing", "thread"], tasks=2, rounds=2)
        def test_x(lock):
            with lock:
                pass

        def test_next():
            pass
        """
    )
    result = lab.runpytest("-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_x[[]process[]]*the value of fixture 'lock' cannot be pickled for the process "
            "backend*",
            '*Fix: make the workload a module-level function*or use backend="thread".',
        ]
    )
    result.stdout.fnmatch_lines(["*::test_x[[]thread[]] PASSED*"])


def test_a_test_function_that_is_not_picklable_names_the_function(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import pytest

        def make():
            @pytest.mark.parallel(backend="process", tasks=2, rounds=2)
            def test_local():
                pass
            return test_local

        test_local = make()
        """
    )
    result = lab.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the test function cannot be pickled for the process backend*"])


@pytest.mark.parametrize("backend", ["process", "multiprocessing"])
def test_a_worker_that_exits_fails_the_item_with_its_exit_code_and_pytest_goes_on(
    lab: pytest.Pytester, backend: str
) -> None:
    lab.makepyfile(
        f"""
        import os

        import pytest

        @pytest.mark.parallel(backend={backend!r}, workers=1, tasks=1, rounds=2)
        def test_dies():
            os._exit(3)

        @pytest.mark.parallel(backend={backend!r}, workers=1, tasks=1, rounds=2)
        def test_next_marked():
            return 1

        def test_next_plain():
            pass
        """
    )
    result = lab.runpytest_subprocess("-p", "no:faulthandler", timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [f"*test_dies[[]{backend}[]]*a worker process of the {backend} backend died*exit code 3*"]
    )


@pytest.mark.parametrize("backend", ["process", "multiprocessing"])
@pytest.mark.parametrize(
    "crash",
    [
        pytest.param("os.kill(os.getpid(), signal.SIGSEGV)", id="sigsegv"),
        pytest.param("ctypes.string_at(0)", id="null-pointer"),
    ],
)
def test_a_segfaulting_worker_fails_the_item_naming_the_signal_and_pytest_survives(
    lab: pytest.Pytester, backend: str, crash: str
) -> None:
    lab.makepyfile(
        f"""
        import ctypes
        import os
        import signal

        import pytest

        @pytest.mark.parallel(backend={backend!r}, workers=1, tasks=1, rounds=2)
        def test_crashes():
            {crash}

        def test_next():
            pass
        """
    )
    result = lab.runpytest_subprocess("-p", "no:faulthandler", timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_crashes*worker process*died*signal SIGSEGV*"])


@pytest.mark.parametrize("backend", ["thread", "process", "multiprocessing", "asyncio", "serial"])
def test_a_task_past_its_timeout_fails_the_item_naming_the_backend_and_pytest_exits(
    lab: pytest.Pytester, backend: str
) -> None:
    lab.makepyfile(
        f"""
        import time

        import pytest

        @pytest.mark.parallel(backend={backend!r}, workers=1, tasks=1, rounds=2, timeout=0.5)
        def test_hangs():
            time.sleep(60)

        def test_next():
            pass
        """
    )
    result = lab.runpytest_subprocess(timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*test_hangs[[]{backend}[]]*{backend}*timeout of 0.5s*"])


def test_a_hung_async_task_past_its_timeout_fails_the_item(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import asyncio

        import pytest

        @pytest.mark.parallel(backend=["asyncio", "thread"], tasks=1, rounds=2, timeout=0.5)
        async def test_hangs():
            await asyncio.sleep(60)
        """
    )
    result = lab.runpytest_subprocess(timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*test_hangs[[]asyncio[]]*timeout of 0.5s*"])


def test_no_child_process_or_lab_thread_is_left_after_the_session(lab: pytest.Pytester) -> None:
    lab.makeconftest(
        """
        import multiprocessing
        import threading

        def pytest_unconfigure(config):
            children = multiprocessing.active_children()
            threads = [t.name for t in threading.enumerate()]
            with open("leftovers.txt", "w") as f:
                f.write(repr((len(children), threads)))
        """
    )
    lab.makepyfile(
        """
        import time

        import pytest

        @pytest.mark.parallel(tasks=2, rounds=2)
        def test_all_backends():
            return 1

        # A hung thread cannot be stopped (it is left as a daemon): only processes hang here.
        @pytest.mark.parallel(backend="process", tasks=1, rounds=2, timeout=0.5)
        def test_hangs():
            time.sleep(30)

        @pytest.mark.parallel(backend="multiprocessing", tasks=1, rounds=2)
        def test_dies():
            import os
            os._exit(3)
        """
    )
    result = lab.runpytest_subprocess("-p", "no:faulthandler", timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(passed=len(ALL_HERE), failed=2)
    children, threads = eval((lab.path / "leftovers.txt").read_text())
    assert children == 0
    assert [t for t in threads if t.startswith("pytest-parallel-lab")] == []


@pytest.mark.parametrize("backend", ["process", "multiprocessing"])
def test_a_return_value_that_cannot_be_pickled_back_fails_the_item_with_a_clear_message(
    lab: pytest.Pytester, backend: str
) -> None:
    lab.makepyfile(
        f"""
        import threading

        import pytest

        @pytest.mark.parallel(backend={backend!r}, tasks=1, rounds=2)
        def test_returns_a_lock():
            return threading.Lock()
        """
    )
    result = lab.runpytest_subprocess(timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert f"test_returns_a_lock[{backend}]: {backend} backend" in output
    assert "pickle" in output
    assert "pytest_parallel_lab/backends" not in output


ALL_BACKENDS_WITH_OUTCOME_BUG = [
    "serial",
    "thread",
    "asyncio",
    pytest.param("process"),
    pytest.param("multiprocessing"),
]


@pytest.mark.parametrize("backend", ALL_BACKENDS_WITH_OUTCOME_BUG)
def test_pytest_skip_in_the_body_skips_the_item_under_every_backend(
    lab: pytest.Pytester, backend: str
) -> None:
    lab.makepyfile(
        f"""
        import pytest

        @pytest.mark.parallel(backend={backend!r}, tasks=2, rounds=2)
        def test_x():
            pytest.skip("not today")
        """
    )
    result = lab.runpytest_subprocess("-rs", timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*not today*"])


@pytest.mark.parametrize("backend", ALL_BACKENDS_WITH_OUTCOME_BUG)
def test_pytest_fail_in_the_body_fails_the_item_with_its_message_under_every_backend(
    lab: pytest.Pytester, backend: str
) -> None:
    lab.makepyfile(
        f"""
        import pytest

        @pytest.mark.parallel(backend={backend!r}, tasks=2, rounds=2)
        def test_x():
            pytest.fail("explicit failure")
        """
    )
    result = lab.runpytest_subprocess(timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "explicit failure" in output
    assert "PicklingError" not in output
    assert "died" not in output


def test_a_pool_whose_worker_was_killed_between_items_is_replaced_before_the_next_item(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import multiprocessing
        import os
        import signal
        import time

        import pytest

        from pytest_parallel_lab.marked.session import MARKED_KEY as LAB_KEY

        @pytest.mark.parallel(backend="process", workers=1, tasks=2, rounds=2)
        def test_1_starts_the_pool():
            return 1

        def test_2_kills_the_pool_worker(request):
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)
                child.join(10)
            runners = request.config.stash[LAB_KEY].runners._runners.values()
            executors = [s.runner.executor for s in runners if hasattr(s.runner, "executor")]
            deadline = time.monotonic() + 10
            while not all(e._broken for e in executors) and time.monotonic() < deadline:
                time.sleep(0.01)

        @pytest.mark.parallel(backend="process", workers=1, tasks=2, rounds=2)
        def test_3_gets_a_fresh_pool():
            return 3

        @pytest.mark.parallel(backend="process", workers=1, tasks=2, rounds=2)
        def test_4_gets_a_fresh_pool():
            return 4
        """
    )
    result = lab.runpytest_subprocess(
        "--parallel-report-json=out.json", timeout=SUBPROCESS_TIMEOUT_S
    )
    # The dead worker is noticed when the pool is next asked for, so no innocent item fails.
    result.assert_outcomes(passed=4)
    rows = json.loads((lab.path / "out.json").read_text())["results"]
    assert [r["outcome"] for r in rows] == ["passed", "passed", "passed"]
    assert [r["pool_reused"] for r in rows] == [False, False, True]
