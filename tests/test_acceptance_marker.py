"""What a user sees from ``@pytest.mark.parallel``: items, options, fixtures, failures."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_parallel_lab.backends import BUILTIN_BACKENDS as REGISTERED
from pytest_parallel_lab.backends.protocol import in_all
from pytest_parallel_lab.environment import usable_cpus

#: The built-ins "all" makes items for on this interpreter, as it orders them (the
#: serial A/A check last): every one available here. Worked out from the registry, so
#: that it holds on 3.11 and on 3.14+ (subinterpreters), with or without the extras.
BUILTIN_BACKENDS = sorted(
    (b.name for b in REGISTERED if in_all(b) and b.unavailable_reason() is None),
    key=lambda name: name == "serial",
)


def test_all_here_is_the_five_everywhere_and_each_optional_model_this_interpreter_has() -> None:
    # Independent of the registry's own answers: what this interpreter has.
    subinterpreters = sys.version_info >= (3, 14) and bool(
        importlib.util.find_spec("concurrent.futures.interpreter")
    )
    optional = {
        "interpreter": subinterpreters,
        "dask": importlib.util.find_spec("distributed") is not None,
        "loky": importlib.util.find_spec("loky") is not None,
    }
    expected = ["thread", "process", "multiprocessing", "asyncio"]
    expected += [name for name, here in optional.items() if here] + ["serial"]
    assert expected == BUILTIN_BACKENDS


#: A conftest backend wrapping the thread runner, registered through the documented hook.
THIRD_PARTY_CONFTEST = """
from dataclasses import dataclass

from pytest_parallel_lab.backends.inprocess import ThreadRunner


@dataclass(frozen=True)
class MyThreads:
    name: str = "mythreads"
    description: str = "a third-party backend wrapping the thread runner"
    uses_processes: bool = False

    def unavailable_reason(self):
        return None

    def start(self, workers, start_method):
        return ThreadRunner(workers)


@dataclass(frozen=True)
class Quantum:
    name: str = "quantum"
    description: str = "never available"
    uses_processes: bool = False

    def unavailable_reason(self):
        return "needs a quantum computer"

    def start(self, workers, start_method):
        raise AssertionError("never started")


def pytest_parallel_lab_register_backends(registry):
    registry.register(MyThreads())
    registry.register(Quantum())
"""


def results_of(path: Path) -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads(path.read_text())
    return list(data["results"])


def test_all_makes_one_item_per_available_backend_with_the_backend_in_the_id(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="all")
        def test_x():
            pass

        @pytest.mark.parallel
        def test_default_is_all():
            pass
        """
    )
    result = lab.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [f"test_all_makes_*.py::test_x[[]{name}[]]" for name in BUILTIN_BACKENDS]
        + [f"test_all_makes_*.py::test_default_is_all[[]{name}[]]" for name in BUILTIN_BACKENDS]
    )
    result.stdout.fnmatch_lines([f"{2 * len(BUILTIN_BACKENDS)} tests collected*"])


def test_a_name_a_list_and_a_positional_backend_select_those_backends(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
        def test_name():
            pass

        @pytest.mark.parallel(backend=["serial", "thread"], tasks=2, rounds=2)
        def test_list():
            pass

        @pytest.mark.parallel("asyncio", tasks=2, rounds=2)
        def test_positional():
            pass
        """
    )
    result = lab.runpytest("-v")
    result.stdout.fnmatch_lines(
        [
            "*::test_name[[]thread[]] PASSED*",
            "*::test_list[[]serial[]] PASSED*",
            "*::test_list[[]thread[]] PASSED*",
            "*::test_positional[[]asyncio[]] PASSED*",
        ]
    )
    result.assert_outcomes(passed=4)


def test_minus_k_selects_items_by_backend(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(tasks=2, rounds=2)
        def test_x():
            pass
        """
    )
    result = lab.runpytest("-v", "-k", "process and not multiprocessing")
    result.stdout.fnmatch_lines(["*::test_x[[]process[]] PASSED*"])
    result.assert_outcomes(passed=1, deselected=len(BUILTIN_BACKENDS) - 1)


def test_the_body_runs_tasks_times_serially_and_under_the_thread_backend_per_round(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import threading
        import time

        import pytest

        CALLS = []
        LOCK = threading.Lock()

        @pytest.mark.parallel(backend="thread", workers=2, tasks=2, rounds=3)
        def test_x():
            time.sleep(0.002)  # long enough to be timed alone (no repeated runs per sample)
            with LOCK:
                CALLS.append(threading.current_thread().name)

        def test_count():
            serial = [n for n in CALLS if n == "pytest-parallel-lab-serial"]
            pooled = [n for n in CALLS if n.startswith("pytest-parallel-lab-thread")]
            # one warm-up per side, then `rounds` measured rounds, each of `tasks` calls
            assert len(serial) == (1 + 3) * 2
            assert len(pooled) == (1 + 3) * 2
            assert len(CALLS) == len(serial) + len(pooled)
        """
    )
    # The round budget pinned to the rounds: no extra rounds for a noisy interval.
    lab.runpytest("--parallel-max-rounds=3").assert_outcomes(passed=2)


def test_the_body_runs_in_worker_processes_under_the_process_backends(
    lab: pytest.Pytester,
) -> None:
    main_pid = lab.path / "main_pid.txt"
    main_pid.write_text(str(os.getpid()))  # the inner run is in this process
    calls = lab.path / "calls.txt"
    lab.makepyfile(
        f"""
        import os
        import time

        import pytest

        # From a file: under spawn or forkserver (3.14's default) a worker imports this
        # module afresh, so os.getpid() here would be its own; and a forkserver started
        # by an earlier test does not have this test's environment.
        with open({str(main_pid)!r}) as f:
            MAIN_PID = int(f.read())

        @pytest.mark.parallel(backend=["process", "multiprocessing"], tasks=2, rounds=2)
        def test_x():
            time.sleep(0.002)  # long enough to be timed alone (no repeated runs per sample)
            with open({str(calls)!r}, "a") as f:
                f.write(f"{{os.getpid() == MAIN_PID}}\\n")
        """
    )
    lab.runpytest("--parallel-max-rounds=2").assert_outcomes(passed=2)
    lines = calls.read_text().split()
    # per item: (warm-up + 2 rounds) x 2 tasks on each side, but the second item's serial
    # side needs no warm-up: it just ran this very test
    assert lines.count("True") == 6 + 4
    assert lines.count("False") == 2 * 6


def test_fixtures_are_set_up_once_per_item_and_every_task_receives_them(
    lab: pytest.Pytester,
) -> None:
    setups = lab.path / "setups.txt"
    lab.makepyfile(
        f"""
        import pytest

        @pytest.fixture
        def config_value():
            with open({str(setups)!r}, "a") as f:
                f.write("setup\\n")
            return {{"answer": 42}}

        @pytest.mark.parallel(backend=["thread", "process"], tasks=2, rounds=2)
        def test_x(config_value, tmp_path):
            assert config_value == {{"answer": 42}}
            assert tmp_path.is_dir()
            return config_value["answer"]
        """
    )
    lab.runpytest().assert_outcomes(passed=2)
    assert setups.read_text().split() == ["setup", "setup"]


def test_process_workers_get_pickled_copies_of_fixture_values(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import time

        import pytest

        SHARED = []

        @pytest.fixture
        def box():
            return SHARED

        @pytest.mark.parallel(backend="process", tasks=2, rounds=2, compare_results=False)
        def test_x(box):
            time.sleep(0.002)  # long enough to be timed alone (no repeated runs per sample)
            box.append(1)

        def test_only_the_serial_side_touched_the_original():
            assert len(SHARED) == (1 + 2) * 2
        """
    )
    lab.runpytest("--parallel-max-rounds=2").assert_outcomes(passed=2)


def test_command_line_options_set_the_defaults(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend=["thread", "process"])
        def test_x():
            pass

        @pytest.mark.parallel(backend="thread", tasks=2, rounds=2, workers=2)
        def test_marker_wins():
            pass
        """
    )
    result = lab.runpytest(
        "--parallel-report-json=out.json",
        "--parallel-tasks=3",
        "--parallel-rounds=2",
        "--parallel-workers=1",
        "--parallel-start-method=fork",
        "--parallel-timeout=30",
    )
    result.assert_outcomes(passed=3)
    rows = {r["nodeid"].split("::")[1]: r for r in results_of(lab.path / "out.json")}
    assert rows["test_x[thread]"]["tasks"] == 3
    assert rows["test_x[thread]"]["rounds"] == 2
    assert rows["test_x[thread]"]["workers"] == 1
    assert rows["test_x[process]"]["start_method"] == "fork"
    assert rows["test_marker_wins[thread]"]["tasks"] == 2
    assert rows["test_marker_wins[thread]"]["workers"] == 2


def test_ini_options_set_the_defaults_and_the_command_line_wins(
    lab: pytest.Pytester, lab_ini: Callable[[str], None]
) -> None:
    lab_ini(
        """
        parallel_tasks = 3
        parallel_rounds = 2
        parallel_workers = 1
        parallel_timeout = 30
        parallel_start_method = fork
        """
    )
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend=["thread", "process"])
        def test_x():
            pass
        """
    )
    lab.runpytest("--parallel-report-json=ini.json").assert_outcomes(passed=2)
    rows = results_of(lab.path / "ini.json")
    assert {(r["tasks"], r["rounds"], r["workers"]) for r in rows} == {(3, 2, 1)}
    assert rows[1]["start_method"] == "fork"

    lab.runpytest("--parallel-report-json=cli.json", "--parallel-tasks=2").assert_outcomes(passed=2)
    assert {r["tasks"] for r in results_of(lab.path / "cli.json")} == {2}


def test_the_timeout_option_applies_to_marked_tests(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import time

        import pytest

        @pytest.mark.parallel(backend="thread", tasks=1, rounds=2)
        def test_x():
            time.sleep(0.5)
        """
    )
    result = lab.runpytest("--parallel-timeout=0.1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*thread backend*timeout of 0.1s*"])


@pytest.mark.parametrize(
    ("option", "value"),
    [
        pytest.param("--parallel-rounds", "abc", id="rounds-not-a-number"),
        pytest.param("--parallel-rounds", "0", id="rounds-zero"),
        pytest.param("--parallel-tasks", "-2", id="tasks-negative"),
        pytest.param("--parallel-workers", "many", id="workers-a-word"),
        pytest.param("--parallel-workers", "0", id="workers-zero"),
        pytest.param("--parallel-timeout", "soon", id="timeout-a-word"),
        pytest.param("--parallel-timeout", "-1", id="timeout-negative"),
        pytest.param("--parallel-timeout", "inf", id="timeout-infinite"),
        pytest.param("--parallel-start-method", "teleport", id="start-method-unknown"),
    ],
)
def test_a_bad_option_value_is_a_usage_error_naming_the_option(
    lab: pytest.Pytester, option: str, value: str
) -> None:
    lab.makepyfile("def test_x(): pass")
    result = lab.runpytest(f"{option}={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}*{value}*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("parallel_rounds", "abc", id="rounds-not-a-number"),
        pytest.param("parallel_tasks", "0", id="tasks-zero"),
        pytest.param("parallel_workers", "lots", id="workers-a-word"),
        pytest.param("parallel_timeout", "-3", id="timeout-negative"),
        pytest.param("parallel_start_method", "teleport", id="start-method-unknown"),
        pytest.param("parallel_min_speedup", "fast", id="min-speedup-a-word"),
        pytest.param("parallel_min_speedup", "0", id="min-speedup-zero"),
        pytest.param("parallel_max_rounds", "0", id="max-rounds-zero"),
        pytest.param("parallel_predict", "two,four", id="predict-words"),
        pytest.param("parallel_predict", "0", id="predict-zero"),
    ],
)
def test_a_bad_ini_value_is_a_usage_error_naming_the_ini_option(
    lab: pytest.Pytester, lab_ini: Callable[[str], None], name: str, value: str
) -> None:
    lab_ini(f"{name} = {value}\n")
    lab.makepyfile("def test_x(): pass")
    result = lab.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{name}*{value}*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("marker", "fragments"),
    [
        pytest.param(
            'backend="fibers"',
            ["*backend=...*unknown backend 'fibers'*Fix: use one of 'serial', 'thread'*"],
            id="unknown-backend-lists-the-available-ones",
        ),
        pytest.param('"fibers"', ["*unknown backend 'fibers'*"], id="unknown-positional"),
        pytest.param("workers=0", ["*workers=...*got 0*Fix: use e.g. workers=4*"], id="workers-0"),
        pytest.param("tasks=0", ["*tasks=...*got 0*Fix:*"], id="tasks-0"),
        pytest.param("tasks=1.5", ["*tasks=...*got 1.5*Fix:*"], id="tasks-not-int"),
        pytest.param("rounds=0", ["*rounds=...*got 0*Fix:*"], id="rounds-0"),
        pytest.param('timeout="soon"', ["*timeout=...*'soon'*Fix:*"], id="timeout-word"),
        pytest.param("timeout=-1", ["*timeout=...*positive*Fix:*"], id="timeout-negative"),
        pytest.param(
            'start_method="teleport"',
            ["*start_method=...*'teleport' is not a start method*Fix:*"],
            id="start-method-unknown",
        ),
        pytest.param(
            "speed=11", ["*unknown argument 'speed'*Fix: the marker takes*"], id="unknown-arg"
        ),
    ],
)
def test_a_bad_marker_is_an_error_of_that_test_naming_it_and_the_session_goes_on(
    lab: pytest.Pytester, marker: str, fragments: list[str]
) -> None:
    lab.makepyfile(
        f"""
        import pytest

        @pytest.mark.parallel({marker})
        def test_bad():
            pass

        @pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
        def test_good():
            pass

        def test_plain():
            pass
        """
    )
    result = lab.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_a_bad_marker*.py::test_bad: @pytest.mark.parallel(*"])
    result.stdout.fnmatch_lines(fragments)
    assert "INTERNALERROR" not in result.stdout.str()


def test_an_unavailable_backend_is_left_out_of_all_and_named_when_asked_for(
    lab: pytest.Pytester,
) -> None:
    lab.makeconftest(THIRD_PARTY_CONFTEST)
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="quantum")
        def test_asks_for_it():
            pass

        @pytest.mark.parallel(backend="all", tasks=2, rounds=2)
        def test_all():
            pass
        """
    )
    # In a subprocess: "all" may start a Dask LocalCluster, which stays out of this one.
    result = lab.runpytest_subprocess("-v", "--parallel-report")
    result.stdout.fnmatch_lines(
        ["*test_asks_for_it*backend 'quantum' is not available*needs a quantum computer*"]
    )
    assert "test_all[quantum]" not in result.stdout.str()
    result.assert_outcomes(passed=len(BUILTIN_BACKENDS) + 1, errors=1)
    # The report says which models were not measured here, and why.
    result.stdout.fnmatch_lines(
        ["unavailable on this interpreter (not measured):", "  quantum: needs a quantum computer"]
    )


def test_a_third_party_backend_registered_by_the_hook_is_in_all_the_ids_and_the_report(
    lab: pytest.Pytester,
) -> None:
    lab.makeconftest(THIRD_PARTY_CONFTEST)
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="all", tasks=2, rounds=2)
        def test_all():
            return 7

        @pytest.mark.parallel(backend="mythreads", tasks=2, rounds=2)
        def test_mine():
            return 7
        """
    )
    result = lab.runpytest_subprocess("-v", "--parallel-report", "--parallel-report-json=out.json")
    result.stdout.fnmatch_lines(
        [
            "*::test_all[[]mythreads[]] PASSED*",
            "*::test_mine[[]mythreads[]] PASSED*",
            "*pytest-parallel-lab*",
            "*test_mine*mythreads*",
        ]
    )
    result.assert_outcomes(passed=len(BUILTIN_BACKENDS) + 2)
    backends = [r["backend"] for r in results_of(lab.path / "out.json")]
    assert backends.count("mythreads") == 2


def test_a_racy_body_returning_different_values_fails_showing_both(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import threading

        import pytest

        COUNTER = [0]
        LOCK = threading.Lock()

        @pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
        def test_stateful():
            with LOCK:
                COUNTER[0] += 1
                return COUNTER[0]

        @pytest.mark.parallel(backend="thread", tasks=2, rounds=2, compare_results=False)
        def test_allowed_to_vary():
            with LOCK:
                COUNTER[0] += 1
                return COUNTER[0]
        """
    )
    result = lab.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_stateful[[]thread[]]*task 0 returned a different value under the thread "
            "backend than serially*",
            "*serial:  *",
            "*thread: *",
            "*compare_results=False*",
        ]
    )


def test_every_distinct_task_error_is_listed_with_its_task_indices_and_the_backend(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import threading

        import pytest

        SEEN = []
        LOCK = threading.Lock()

        @pytest.mark.parallel(backend="thread", tasks=4, rounds=2)
        def test_x():
            with LOCK:
                n = len(SEEN)
                SEEN.append(n)
            if n % 2:
                raise KeyError("odd")
            raise ValueError("even")

        def test_next():
            pass
        """
    )
    result = lab.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*4 task(s) failed under the thread backend (2 distinct error(s)):*"]
    )
    # Which task sees an odd count is the threads' order, so either error may come first.
    result.stdout.fnmatch_lines(["*- ValueError: even", "*tasks: *"])
    result.stdout.fnmatch_lines(["*- KeyError: 'odd'", "*tasks: *"])


@pytest.mark.parametrize("backend", ["serial", "thread", "process", "asyncio"])
def test_a_failing_assertion_in_the_body_fails_the_item(lab: pytest.Pytester, backend: str) -> None:
    lab.makepyfile(
        f"""
        import pytest

        @pytest.mark.parallel(backend={backend!r}, tasks=2, rounds=2)
        def test_x():
            assert 1 == 2, "the body is wrong"
        """
    )
    result = lab.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*2 task(s) failed under the*backend*", "*AssertionError: the body is wrong*"]
    )


def test_parallel_map_runs_the_body_once_and_measures_each_call(lab: pytest.Pytester) -> None:
    bodies = lab.path / "bodies.txt"
    lab.makepyfile(
        f"""
        import pytest

        def square(x):
            return x * x

        @pytest.mark.parallel(backend=["thread", "process"], rounds=2)
        def test_map(parallel_map):
            with open({str(bodies)!r}, "a") as f:
                f.write("body\\n")
            assert parallel_map(square, range(5)) == [0, 1, 4, 9, 16]
            assert parallel_map(square, [3, 2]) == [9, 4]
        """
    )
    lab.runpytest("--parallel-report-json=out.json").assert_outcomes(passed=2)
    assert bodies.read_text().split() == ["body", "body"]
    rows = results_of(lab.path / "out.json")
    assert [(r["backend"], r["kind"], r["call_index"], r["tasks"]) for r in rows] == [
        ("thread", "map", 0, 5),
        ("thread", "map", 1, 2),
        ("process", "map", 0, 5),
        ("process", "map", 1, 2),
    ]


def test_parallel_map_in_an_unmarked_test_warns_and_runs_serially(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        def test_unmarked(parallel_map):
            assert parallel_map(str, [1, 2]) == ["1", "2"]
        """
    )
    result = lab.runpytest("-W", "always::pytest.PytestWarning")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*PytestWarning*test_unmarked*parallel_map was used in a test without*ran serially*"]
    )


def test_a_third_party_backend_clashing_with_a_builtin_name_is_a_usage_error(
    lab: pytest.Pytester,
) -> None:
    lab.makeconftest(
        THIRD_PARTY_CONFTEST.replace('name: str = "mythreads"', 'name: str = "thread"')
    )
    lab.makepyfile("def test_x(): pass")
    result = lab.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*backend named 'thread' is already registered*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_marker_workers_auto_and_start_method_reach_the_measurement(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(
            backend=["thread", "process"], workers="auto", start_method="fork", tasks=2, rounds=2
        )
        def test_x():
            pass
        """
    )
    lab.runpytest("--parallel-report-json=out.json", "--parallel-workers=1").assert_outcomes(
        passed=2
    )
    rows = results_of(lab.path / "out.json")
    assert [r["workers"] for r in rows] == [usable_cpus(), usable_cpus()]
    assert [r["start_method"] for r in rows] == [None, "fork"]


def test_the_workers_option_accepts_auto(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
        def test_x():
            pass
        """
    )
    lab.runpytest("--parallel-report-json=out.json", "--parallel-workers=auto").assert_outcomes(
        passed=1
    )
    assert [r["workers"] for r in results_of(lab.path / "out.json")] == [usable_cpus()]


#: The third-party backends, the thread one's availability probe leaving a file behind:
#: did the session ask it?
PROBED_CONFTEST = (
    THIRD_PARTY_CONFTEST
    + """
import pathlib


def _probed(self):
    pathlib.Path("probed.txt").write_text("asked")
    return None


MyThreads.unavailable_reason = _probed
"""
)


def test_a_session_without_marked_tests_never_probes_the_backends(lab: pytest.Pytester) -> None:
    lab.makeconftest(PROBED_CONFTEST)
    lab.makepyfile("def test_plain():\n    pass\n")
    lab.runpytest("-p", "no:cacheprovider", "--parallel-report").assert_outcomes(passed=1)
    assert not (lab.path / "probed.txt").exists()
    lab.makepyfile(
        test_marked="import pytest\n\n"
        "@pytest.mark.parallel(backend='mythreads', tasks=2, rounds=1)\n"
        "def test_marked():\n    pass\n"
    )
    lab.runpytest("-p", "no:cacheprovider", "test_marked.py").assert_outcomes(passed=1)
    assert (lab.path / "probed.txt").read_text() == "asked"
