"""The ``interpreter`` backend (``InterpreterPoolExecutor``, Python 3.14+) as a user sees it.

On older interpreters it is listed as unavailable with the reason; there these tests check
that, and skip the rest with the same reason.
"""

from __future__ import annotations

import json

import pytest

from pytest_parallel_lab.backends.interpreters import (
    interpreter_pool_support,
    subinterpreter_import_error,
    unsupported_module_message,
)

UNAVAILABLE = interpreter_pool_support()
needs_interpreter_pool = pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))
SUBPROCESS_TIMEOUT_S = 60


def test_the_backend_is_unavailable_before_python_3_14_and_says_why() -> None:
    reason = interpreter_pool_support((3, 13))
    assert reason is not None
    assert "Python 3.14+" in reason
    assert "3.13" in reason


def test_the_module_a_subinterpreter_cannot_load_is_named_with_the_fix() -> None:
    text = "ImportError: module _curses does not support loading in subinterpreters"
    assert subinterpreter_import_error(text) == "_curses"
    assert subinterpreter_import_error("ImportError: No module named 'x'") is None
    message = unsupported_module_message("_curses")
    assert "'_curses'" in message
    assert 'backend="process"' in message


@pytest.mark.skipif(UNAVAILABLE is None, reason="InterpreterPoolExecutor exists here")
def test_a_marker_naming_it_on_an_older_python_fails_the_test_with_the_reason(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="interpreter")
        def test_x():
            pass
        """
    )
    result = lab.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*'interpreter' is not available*needs Python 3.14+*"])


@needs_interpreter_pool
def test_cpu_bound_io_bound_and_failing_workloads_run_in_subinterpreters(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import time

        import pytest

        @pytest.mark.parallel(backend="interpreter", workers=2, tasks=4, rounds=3)
        def test_cpu():
            return sum(i * i for i in range(200_000))

        @pytest.mark.parallel(backend="interpreter", workers=2, tasks=4, rounds=3)
        def test_io():
            time.sleep(0.02)

        @pytest.mark.parallel(backend="interpreter", workers=2, tasks=2, rounds=2)
        def test_fails():
            raise ValueError("broken in every interpreter")
        """
    )
    result = lab.runpytest_subprocess(
        "--parallel-report", "--parallel-report-json=run.json", timeout=SUBPROCESS_TIMEOUT_S
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_fails[[]interpreter[]]: 2 task(s) failed under the interpreter backend*",
            "- ValueError: broken in every interpreter",
        ]
    )
    document = json.loads(lab.path.joinpath("run.json").read_text())
    rows = {r["test"].split("::")[-1]: r for r in document["results"]}
    for name in ("test_cpu", "test_io"):
        row = rows[name]
        assert row["backend"] == "interpreter"
        assert row["start_method"] is None  # no processes
        assert row["startup_s"] > 0  # creating the interpreters, measured on its own
        assert row["dispatch_s"] > 0  # an empty task through the pool
        assert row["pickled_bytes"] > 0  # the call crosses interpreters pickled
        assert row["serial_cpu_s"] > 0


@needs_interpreter_pool
def test_a_module_that_cannot_load_in_a_subinterpreter_is_named_with_the_process_fix(
    lab: pytest.Pytester,
) -> None:
    pytest.importorskip("_curses", reason="needs _curses, which has no subinterpreter support")
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend=["interpreter", "thread"], tasks=2, rounds=2)
        def test_uses_curses():
            import _curses
        """
    )
    result = lab.runpytest_subprocess(timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_uses_curses[[]interpreter[]]*the workload imports module '_curses', which "
            'cannot be loaded in a subinterpreter*Fix: use backend="process"*',
        ]
    )


@needs_interpreter_pool
def test_a_task_calling_os_exit_or_abort_fails_the_item_and_pytest_goes_on(
    lab: pytest.Pytester,
) -> None:
    # Unguarded, either call would end pytest's own process (the workers are its threads).
    lab.makepyfile(
        """
        import os

        import pytest

        @pytest.mark.parallel(backend="interpreter", tasks=2, rounds=2)
        def test_exits():
            os._exit(3)

        @pytest.mark.parallel(backend="interpreter", tasks=2, rounds=2)
        def test_aborts():
            from os import abort
            abort()

        def test_after():
            pass
        """
    )
    result = lab.runpytest_subprocess(timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_exits[[]interpreter[]]*",
            "*os._exit() called under the interpreter backend*pytest's own process*"
            'Fix: measure a workload that exits or aborts with backend="process"*',
        ]
    )
    result.stdout.fnmatch_lines(["*os.abort() called under the interpreter backend*"])


@needs_interpreter_pool
def test_an_unpicklable_fixture_value_names_the_fixture(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import threading

        import pytest

        @pytest.fixture
        def lock():
            return threading.Lock()

        @pytest.mark.parallel(backend="interpreter", tasks=2, rounds=2)
        def test_x(lock):
            pass
        """
    )
    result = lab.runpytest_subprocess(timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*the value of fixture 'lock' cannot be pickled for the interpreter backend*"]
    )


LEFTOVERS_CONFTEST = """
import threading

def pytest_unconfigure(config):
    from concurrent import interpreters

    names = [t.name for t in threading.enumerate() if t.is_alive()]
    with open("leftovers.txt", "w") as f:
        f.write(repr((len(interpreters.list_all()), names)))
"""


@needs_interpreter_pool
def test_after_the_session_no_interpreter_and_no_pool_thread_is_left(lab: pytest.Pytester) -> None:
    lab.makeconftest(LEFTOVERS_CONFTEST)
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="interpreter", workers=2, tasks=2, rounds=2)
        def test_two():
            return 1

        @pytest.mark.parallel(backend="interpreter", workers=3, tasks=3, rounds=2)
        def test_three():
            return 1
        """
    )
    result = lab.runpytest_subprocess(timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(passed=2)
    interpreters, threads = eval((lab.path / "leftovers.txt").read_text())
    assert interpreters == 1  # the main interpreter only
    assert [t for t in threads if t.startswith("pytest-parallel-lab")] == []


@needs_interpreter_pool
def test_a_task_past_its_timeout_fails_the_item_and_pytest_exits_without_waiting(
    lab: pytest.Pytester,
) -> None:
    lab.makeconftest(LEFTOVERS_CONFTEST)
    lab.makepyfile(
        """
        import time

        import pytest

        @pytest.mark.parallel(backend="interpreter", workers=1, tasks=1, rounds=2, timeout=0.5)
        def test_hangs():
            time.sleep(20)

        def test_next():
            pass
        """
    )
    result = lab.runpytest_subprocess(timeout=SUBPROCESS_TIMEOUT_S)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_hangs[[]interpreter[]]*interpreter*timeout of 0.5s*"])
    _interpreters, threads = eval((lab.path / "leftovers.txt").read_text())
    # A task in a subinterpreter cannot be stopped: its thread is abandoned as a daemon,
    # the only one left, so that pytest exits at once instead of after the 20 s sleep.
    assert [t for t in threads if t.startswith("pytest-parallel-lab")] == [
        "pytest-parallel-lab-interpreter_0"
    ]
