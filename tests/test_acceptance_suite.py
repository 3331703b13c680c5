"""Suite analysis as a user sees it: structure and counts, never tight times."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_parallel_lab.document.suite import XDIST_SHUTDOWN_S

if TYPE_CHECKING:
    from conftest import FakeClock

SUITE = """
import pytest

@pytest.fixture(scope="session")
def database():
    yield "db"

@pytest.fixture(scope="module", params=["a", "b"])
def schema(database, request):
    yield request.param

@pytest.fixture
def row(schema):
    return schema + "1"

@pytest.fixture(autouse=True)
def clean():
    yield

@pytest.fixture
def lazy():
    return 1

@pytest.mark.parametrize("n", [1, 2])
def test_rows(row, n):
    assert row

def test_lazy(request):
    assert request.getfixturevalue("lazy") == 1

class TestGroup:
    @pytest.fixture(scope="class")
    def shared(self):
        return []

    def test_one(self, shared):
        pass

    def test_two(self, shared, database):
        pass
"""

# The fake clock's sleep (tests/conftest.py): the run is inline, so the fixtures
# advance the clock that pytest and the plugin read.
TIMED = """
import pytest
from _pytest import timing

@pytest.fixture(scope="session")
def slow_parent():
    timing.sleep(0.25)
    yield
    timing.sleep(0.125)

@pytest.fixture(scope="session")
def quick_child(slow_parent):
    yield

def test_it(quick_child):
    pass
"""


def suite_of(pytester: pytest.Pytester, path: str = "run.json") -> dict[str, Any]:
    data = json.loads(Path(pytester.path, path).read_text())
    section: dict[str, Any] = data["suite"]
    return section


def fixtures_by_name(section: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in section["fixtures"]:
        rows.setdefault(row["name"], []).append(row)
    return rows


def test_every_fixture_is_counted_once_per_instance_in_a_serial_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("-p", "no:asyncio", "--parallel-report-json=run.json")
    result.assert_outcomes(passed=7)
    section = suite_of(pytester)
    fixtures = fixtures_by_name(section)
    assert [r["instances"] for r in fixtures["database"]] == [1]
    assert sorted((r["param"], r["instances"]) for r in fixtures["schema"]) == [("a", 1), ("b", 1)]
    assert sum(r["instances"] for r in fixtures["row"]) == 4
    assert sum(r["instances"] for r in fixtures["clean"]) == 7  # autouse
    assert sum(r["instances"] for r in fixtures["lazy"]) == 1  # request.getfixturevalue
    assert sum(r["instances"] for r in fixtures["shared"]) == 1  # class scope
    assert "n" not in fixtures  # direct parametrization is not a fixture
    assert fixtures["database"][0]["scope"] == "session"
    assert fixtures["shared"][0]["scope"] == "class"
    assert len(section["tests"]) == 7
    assert {t["worker"] for t in section["tests"]} == {"main"}
    assert [w["tests"] for w in section["workers"]] == [7]
    assert section["actual"] is None
    assert {p["dist"] for p in section["prediction"]} == {
        "load",
        "loadscope",
        "loadfile",
        "worksteal",
    }
    assert section["recommended"]["message"]
    # the session end was timed on an interpreter started for it
    # measured by the exit probe when it was ready in time, else the constant
    calibration = section["calibration"]
    assert calibration["shutdown_measured"] or calibration["shutdown_s"] == XDIST_SHUTDOWN_S


def test_a_fixture_own_time_excludes_the_fixtures_it_depends_on(
    pytester: pytest.Pytester, fake_clock: FakeClock
) -> None:
    pytester.makepyfile(test_timed=TIMED)
    pytester.runpytest("-p", "no:asyncio", "--parallel-report-json=run.json").assert_outcomes(
        passed=1
    )
    section = suite_of(pytester)
    fixtures = {r["name"]: r for r in section["fixtures"]}
    parent, child = fixtures["slow_parent"], fixtures["quick_child"]
    assert (parent["setup_s"], parent["teardown_s"]) == (0.25, 0.125)
    assert (child["setup_s"], child["teardown_s"]) == (0.0, 0.0)
    (test,) = section["tests"]
    # Both session fixtures were set up in the test's setup and torn down in its teardown.
    assert (test["setup_s"], test["call_s"], test["teardown_s"]) == (0.25, 0.0, 0.125)
    assert test["fixture_s"] == 0.375


def test_failures_are_recorded_with_their_outcome(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.fixture
        def broken():
            raise RuntimeError
        def test_fails():
            assert 0
        def test_errors(broken):
            pass
        def test_skips():
            pytest.skip("no")
        """
    )
    pytester.runpytest("-p", "no:asyncio", "--parallel-report-json=run.json")
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in suite_of(pytester)["tests"]}
    assert outcomes == {"test_fails": "failed", "test_errors": "error", "test_skips": "skipped"}


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_xfail_and_xpass_are_recorded_as_such_not_as_skipped_or_passed(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.xfail(reason="known")
        def test_xfails():
            assert 0
        @pytest.mark.xfail(reason="fixed?")
        def test_xpasses():
            pass
        def test_xfail_inside():
            pytest.xfail("not here")
        def test_skips():
            pytest.skip("no")
        @pytest.mark.xfail(reason="known")
        @pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
        def test_marked_xfails():
            assert 0
        """
    )
    pytester.runpytest("-p", "no:asyncio", *xdist, "--parallel-report-json=run.json")
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in suite_of(pytester)["tests"]}
    rows = json.loads(Path(pytester.path, "run.json").read_text())["results"]
    results = {r["nodeid"].split("::")[1]: r["outcome"] for r in rows}
    assert results == {"test_marked_xfails[thread]": "xfailed"}
    del outcomes["test_marked_xfails[thread]"]
    assert outcomes == {
        "test_xfails": "xfailed",
        "test_xpasses": "xpassed",
        "test_xfail_inside": "xfailed",
        "test_skips": "skipped",
    }


@pytest.mark.parametrize("xdist", [[], ["-n", "1"]], ids=["plain", "xdist"])
def test_a_test_with_subtests_counts_their_time_once(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    pytester.makepyfile(
        """
        import time
        def test_x(subtests):
            for i in range(3):
                with subtests.test(i=i):
                    time.sleep(0.2)
        """
    )
    pytester.runpytest("-p", "no:asyncio", *xdist, "--parallel-report-json=run.json")
    suite = suite_of(pytester)
    (test,) = suite["tests"]
    # Counted twice, the call alone (>= 1.2 s) would be longer than the whole session.
    assert 0.6 <= test["call_s"] <= suite["wall_s"]
    # Each subtest is one more report for an xdist controller to handle.
    assert test["reports"] == 6


def test_the_reports_timed_for_the_controller_cost_span_the_run_subtests_included(
    pytester: pytest.Pytester,
) -> None:
    # The round trip of a sample of the run's reports calibrates what an xdist
    # controller spends per report: a sample of the first tests' reports alone would
    # miss the subtests' reports and every later test's output.
    pytester.makeconftest(
        """
        import json

        def pytest_terminal_summary(config):
            sample = config.pluginmanager.get_plugin("parallel-lab-suite").report_sample
            kept = [(type(r).__name__, r.nodeid, r.when) for r in sample.items]
            with open("sample.json", "w") as handle:
                json.dump(kept, handle)
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("i", range(40))
        def test_plain(i):
            pass

        def test_with_subtests(subtests):
            for i in range(40):
                with subtests.test(i=i):
                    pass
        """
    )
    result = pytester.runpytest("-p", "no:asyncio", "--parallel-report-json=run.json")
    result.assert_outcomes(passed=41)
    kept = json.loads(Path(pytester.path, "sample.json").read_text())
    # 160 reports (120 of the plain tests, 40 subtests), fewer than 48 kept
    assert 16 <= len(kept) < 48
    assert kept[0][1].endswith("::test_plain[0]")
    assert any(name == "SubtestReport" for name, _, _ in kept)
    last_plain = {f"test_plain[{i}]" for i in range(30, 40)}
    assert any(nodeid.split("::")[1] in last_plain for _, nodeid, _ in kept)
    assert suite_of(pytester)["calibration"]["report_roundtrip_s"] > 0


@pytest.mark.parametrize("xdist", [[], ["-n", "1"]], ids=["plain", "xdist"])
def test_each_test_records_the_cpu_share_of_its_time(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    pytester.makepyfile(
        """
        import subprocess, sys, time
        def test_sleeps():
            time.sleep(0.3)
        def test_computes():
            # 0.3 s of CPU, not of wall: a starved machine must not make it less
            end = time.process_time() + 0.3
            while time.process_time() < end:
                sum(range(1000))
        def test_runs_a_child_that_computes():
            code = (
                "import time\\nend = time.process_time() + 0.3\\n"
                "while time.process_time() < end: pass"
            )
            subprocess.run([sys.executable, "-c", code], check=True)
        """
    )
    result = pytester.runpytest("-p", "no:asyncio", *xdist, "--parallel-report-json=run.json")
    result.assert_outcomes(passed=3)
    tests = {t["nodeid"].split("::")[1]: t for t in suite_of(pytester)["tests"]}
    share = {
        name: t["cpu_s"] / (t["setup_s"] + t["call_s"] + t["teardown_s"])
        for name, t in tests.items()
    }
    # A sleep takes no CPU; a busy loop's CPU time is counted however busy the machine
    # (it only counts what it ran); a child that was waited for counts as the test's.
    assert share["test_sleeps"] < 0.2
    assert tests["test_computes"]["cpu_s"] >= 0.25
    assert tests["test_runs_a_child_that_computes"]["cpu_s"] >= 0.25
    assert share["test_computes"] > share["test_sleeps"]


@pytest.mark.parametrize(
    "xdist",
    [[], ["-n", "2"], ["-n", "2", "--dist", "loadgroup"]],
    ids=["plain", "load", "loadgroup"],
)
def test_an_xdist_group_is_recorded_for_loadgroup(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    # Under -n the workers send the groups with their end of session (issue 11: they
    # were recorded by plain runs only).
    pytester.makepyfile(
        test_one="""
        import pytest
        @pytest.mark.xdist_group("db")
        def test_a():
            pass
        @pytest.mark.xdist_group(name="db")
        @pytest.mark.xdist_group("net")
        def test_b():
            pass
        def test_c():
            pass
        """,
        # marks on the module and on a class count for every test in them, as xdist's
        # worker reads them (iter_markers)
        test_two="""
        import pytest
        pytestmark = pytest.mark.xdist_group("mod")
        def test_d():
            pass
        @pytest.mark.xdist_group("cls")
        class TestE:
            def test_e(self):
                pass
            @pytest.mark.xdist_group("db")
            def test_f(self):
                pass
        """,
    )
    result = pytester.runpytest("-p", "no:asyncio", *xdist, "--parallel-report-json=run.json")
    result.assert_outcomes(passed=6)
    suite = suite_of(pytester)
    groups = {t["nodeid"].split("::")[-1]: t["group"] for t in suite["tests"]}
    assert groups == {
        "test_a": "db",
        "test_b": "db_net",
        "test_c": "",
        "test_d": "mod",
        "test_e": "cls_mod",
        "test_f": "cls_db_mod",
    }
    # with groups, loadgroup is one of the predicted modes
    assert "loadgroup" in {p["dist"] for p in suite["prediction"]}


def test_the_plugin_is_not_registered_without_report_options(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_sessionfinish(session):
            names = [n for n, _ in session.config.pluginmanager.list_name_plugin()]
            print("SUITE-PLUGIN", "parallel-lab-suite" in names)
        """
    )
    pytester.makepyfile("def test_a(): pass")
    result = pytester.runpytest("-p", "no:asyncio", "-s")
    result.stdout.fnmatch_lines(["*SUITE-PLUGIN False*"])
    result = pytester.runpytest("-p", "no:asyncio", "-s", "--parallel-report")
    result.stdout.fnmatch_lines(["*SUITE-PLUGIN True*"])


def test_the_html_page_alone_has_the_suite_timeline(pytester: pytest.Pytester) -> None:
    # --parallel-html without --parallel-report-json once wrote a page without it: the
    # two "is a report on?" checks disagreed.
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest("-p", "no:asyncio", "--parallel-html=page.html").assert_outcomes(passed=7)
    page = Path(pytester.path, "page.html").read_text()
    assert "<h2>Suite timeline</h2>" in page
    assert "test_suite.py::test_rows[a-1]" in page


def test_an_ini_list_of_worker_counts_that_does_not_parse_stops_the_run_before_any_test(
    pytester: pytest.Pytester,
) -> None:
    # It was read only after every test had run, and crashed with a traceback there.
    pytester.makeini("[pytest]\nparallel_predict = two,four\n")
    pytester.makepyfile(
        """
        import pathlib

        def test_a():
            pathlib.Path("ran").write_text("yes")
        """
    )
    result = pytester.runpytest("-p", "no:asyncio", "--parallel-report")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option parallel_predict = 'two,four'*2,4,8*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert not (pytester.path / "ran").exists()


def test_the_terminal_report_shows_the_suite_tables(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("-p", "no:asyncio", "--parallel-report")
    result.stdout.fnmatch_lines(["*slowest fixtures*", "*xdist prediction*", "*recommendation:*"])


def test_the_trace_is_valid_json_with_nested_fixture_events(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE + "\ndef test_failing():\n    assert 0\n")
    pytester.runpytest("-p", "no:asyncio", "--parallel-trace=out/trace.json")
    trace = json.loads(Path(pytester.path, "out", "trace.json").read_text())
    names = [e["name"] for e in trace["traceEvents"]]
    assert "collection" in names
    assert "call test_suite.py::test_failing" in names
    assert "setup database" in names
    assert "teardown schema[b]" in names


def test_worker_counts_are_validated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(): pass")
    result = pytester.runpytest("-p", "no:asyncio", "--parallel-predict=2,x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--parallel-predict*2,4,8*"])


def test_requested_worker_counts_are_predicted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(): pass")
    pytester.runpytest(
        "-p", "no:asyncio", "--parallel-report-json=run.json", "--parallel-predict=5"
    )
    assert 5 in {p["workers"] for p in suite_of(pytester)["prediction"]}


def test_a_saved_run_is_predicted_without_a_new_serial_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest("-p", "no:asyncio", "--parallel-report-json=run.json")
    result = pytester.runpytest("-p", "no:asyncio", "--parallel-predict-from=run.json", "--co")
    result.stdout.fnmatch_lines(["*prediction from a saved run*", "*xdist prediction*"])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(None, "no such file", id="missing"),
        pytest.param('{"schema_version": 1, "resu', "not valid JSON", id="truncated"),
        pytest.param(
            json.dumps({"schema_version": 1, "results": []}), "no 'suite' section", id="no-suite"
        ),
    ],
)
def test_a_saved_run_that_cannot_be_used_stops_the_run_before_any_test(
    lab: pytest.Pytester, content: str | None, problem: str
) -> None:
    # Issue 14: every test ran, the exit status was 0 and the error was a summary line.
    if content is not None:
        Path(lab.path, "saved.json").write_text(content)
    lab.makepyfile(
        """
        import pathlib

        def test_a():
            pathlib.Path("ran").write_text("yes")
        """
    )
    result = lab.runpytest("--parallel-predict-from=saved.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--parallel-predict-from=saved.json: *{problem}*"])
    assert "--parallel-report-json=PATH" in result.stderr.str()  # the fix
    assert not (lab.path / "ran").exists()


def test_a_run_in_which_no_test_ran_predicts_nothing(lab: pytest.Pytester) -> None:
    # Issue 14: --co printed a prediction and a recommendation for 0 tests.
    lab.makepyfile(test_suite=SUITE)
    result = lab.runpytest("--co", "--parallel-report", "--parallel-report-json=run.json")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*suite analysis: no test ran*"])
    assert "xdist prediction" not in result.stdout.str()
    assert "recommendation" not in result.stdout.str()
    section = suite_of(lab)
    assert section["tests"] == []
    assert (section["prediction"], section["recommended"], section["calibration"]) == (
        [],
        None,
        None,
    )


def test_xdist_workers_report_their_own_fixture_instances(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(
        test_a="""
        import pytest
        @pytest.fixture(scope="session")
        def expensive():
            return 1
        @pytest.mark.parametrize("i", range(20))
        def test_a(expensive, i):
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:asyncio",
        "-n",
        "2",
        "--parallel-report-json=run.json",
        "--parallel-trace=trace.json",
    )
    result.assert_outcomes(passed=20)
    section = suite_of(pytester)
    workers = {w["id"]: w for w in section["workers"]}
    assert set(workers) == {"gw0", "gw1"}
    assert sum(w["tests"] for w in workers.values()) == 20
    instances = {
        r["worker"]: r["instances"] for r in section["fixtures"] if r["name"] == "expensive"
    }
    assert instances == {"gw0": 1, "gw1": 1}
    (dup,) = [d for d in section["duplication"] if d["name"] == "expensive"]
    assert dup["instances"] == 2
    assert section["actual"]["workers"] == 2
    assert any(p["workers"] == 2 and p["dist"] == "load" for p in section["prediction"])
    assert section["imbalance"] is not None
    trace = json.loads(Path(pytester.path, "trace.json").read_text())
    tracks = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    assert tracks == {"gw0", "gw1"}


def test_a_crashed_worker_loses_nothing_it_already_reported(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(
        test_crash="""
        import os
        def test_ok_1(): pass
        def test_ok_2(): pass
        def test_crash(): os._exit(1)
        """
    )
    pytester.runpytest_subprocess(
        "-p",
        "no:asyncio",
        "-n",
        "1",
        "--parallel-report-json=run.json",
        "--parallel-trace=trace.json",
    )
    section = suite_of(pytester)
    names = {t["nodeid"].split("::")[1] for t in section["tests"]}
    assert {"test_ok_1", "test_ok_2"} <= names
    assert section["crashed_workers"] == ["gw0"]
    json.loads(Path(pytester.path, "trace.json").read_text())


def test_an_xdist_worker_sends_its_timings_once_per_test_with_the_teardown_report(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("xdist")
    pytester.makeconftest(
        """
        import pytest

        CARRIED = []

        @pytest.hookimpl(trylast=True)
        def pytest_runtest_logreport(report):
            if hasattr(report, "parallel_lab_suite"):
                CARRIED.append(report.when)

        def pytest_sessionfinish(session):
            if not hasattr(session.config, "workerinput"):  # the controller
                with open("carried.txt", "w") as handle:
                    handle.write(" ".join(CARRIED))
        """
    )
    pytester.makepyfile(
        test_three="""
        import pytest

        @pytest.fixture(scope="module")
        def shared():
            yield 1

        def test_a(shared): pass
        def test_b(shared): pass
        def test_c(): pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:asyncio", "-n", "1", "--parallel-report-json=run.json"
    )
    result.assert_outcomes(passed=3)
    assert Path(pytester.path, "carried.txt").read_text().split() == ["teardown"] * 3
    section = suite_of(pytester)
    assert {t["nodeid"].split("::")[1] for t in section["tests"]} == {"test_a", "test_b", "test_c"}
    assert [f["name"] for f in section["fixtures"]] == ["shared"]


def test_every_shared_fixture_a_test_used_is_linked_to_its_row_params_included(
    lab: pytest.Pytester,
) -> None:
    # The last test of each module uses a parametrized module fixture: its instance is
    # torn down before that test's teardown is reported, and the link must survive.
    module = """
        import pytest

        @pytest.fixture(scope="module", params=["x", "y"])
        def flavour(request):
            yield request.param

        def test_uses(flavour):
            pass
    """
    lab.makepyfile(test_one=module, test_two=module)
    lab.runpytest("--parallel-report-json=run.json").assert_outcomes(passed=4)
    section = suite_of(lab)
    fixture_ids = {row["id"] for row in section["fixtures"] if row["name"] == "flavour"}
    uses = {
        row["nodeid"]: [u for u in row["uses"] if "::flavour[" in u] for row in section["tests"]
    }
    assert uses == {
        f"{module}.py::test_uses[{param}]": [f"{module}.py::flavour[{param}]@module"]
        for module in ("test_one", "test_two")
        for param in ("x", "y")
    }
    assert {u for used in uses.values() for u in used} == fixture_ids


def test_a_ci_matrix_of_shards_is_predicted_when_asked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        @pytest.mark.parametrize("i", range(6))
        def test_x(i):
            pass
        """
    )
    result = pytester.runpytest(
        "-p",
        "no:asyncio",
        "--parallel-report",
        "--parallel-predict-shards=2",
        "--parallel-report-json=run.json",
    )
    result.stdout.fnmatch_lines(["*CI matrix prediction (split by duration*"])
    shards = suite_of(pytester)["shards"]
    assert {(s["shards"], s["workers"]) for s in shards} >= {(1, 2), (2, 2)}
    assert all(len(s["shard_wall_s"]) == s["shards"] for s in shards)
    assert all(sum(s["shard_tests"]) == 6 for s in shards)


@pytest.mark.parametrize("value", ["0", "x", "1000"])
def test_a_bad_shard_count_is_a_usage_error_naming_the_option(
    pytester: pytest.Pytester, value: str
) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--parallel-report", f"--parallel-predict-shards={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--parallel-predict-shards*"])


def test_a_first_test_that_builds_a_cache_is_a_first_use_each_worker_repeats(
    pytester: pytest.Pytester, fake_clock: FakeClock
) -> None:
    pytester.makepyfile(
        test_cached="""
        import pytest
        from _pytest import timing

        CACHE = {}

        @pytest.mark.parametrize("n", range(4))
        def test_lookup(n):
            if not CACHE:
                timing.burn(0.5)  # built by whichever test comes first: CPU work
                CACHE["built"] = True
            timing.sleep(0.125)
        """
    )
    result = pytester.runpytest(
        "-p", "no:asyncio", "--parallel-report", "--parallel-report-json=run.json"
    )
    result.assert_outcomes(passed=4)
    section = suite_of(pytester)
    assert (section["calibration"]["first_use_units"], section["calibration"]["first_use_s"]) == (
        1,
        0.5,
    )
    # -n 2 --dist load: two tests to each worker, and the second worker builds it again
    (load,) = [p for p in section["prediction"] if (p["workers"], p["dist"]) == (2, "load")]
    assert load["repeated_s"] == 0.5
    text = " ".join(result.stdout.str().split())  # the basis is wrapped to the terminal
    assert "first use in tests (imports, caches) in 1 unit, 0.500 s once" in text


def test_remote_gateways_of_the_tx_option_are_predicted_with_the_given_start_up(
    pytester: pytest.Pytester,
) -> None:
    # A serial run that names gateways (without -n or --dist xdist does not start them):
    # their prediction beside -n N's, each remote gateway starting in 2.5 s.
    pytester.makepyfile("def test_a(): pass\ndef test_b(): pass")
    result = pytester.runpytest(
        "-p",
        "no:asyncio",
        "--tx",
        "popen",
        "--tx",
        "ssh=build-box",
        "--parallel-predict-tx-startup=2.5",
        "--parallel-report",
        "--parallel-report-json=run.json",
    )
    result.assert_outcomes(passed=2)
    section = suite_of(pytester)
    assert section["calibration"]["remote_startup_s"] == 2.5
    remote = [p for p in section["prediction"] if p["remote"]]
    assert {(p["workers"], p["remote"]) for p in remote} == {(2, 1)}
    assert all(p["wall_s"] >= 2.5 for p in remote)  # nothing runs before it has started
    assert section["recommended"]["workers"] in (0, 2)
    text = " ".join(result.stdout.str().split())
    assert "a remote gateway starts in 2.500 s (given)" in text
    assert "2 (1 remote)" in text


@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
def test_a_bad_remote_start_up_is_a_usage_error_naming_the_option_before_any_test(
    pytester: pytest.Pytester, value: str
) -> None:
    pytester.makepyfile("def test_x(): print('RAN')")
    result = pytester.runpytest(
        "-p", "no:asyncio", "-s", "--parallel-report", f"--parallel-predict-tx-startup={value}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--parallel-predict-tx-startup: expected a number of seconds*"])
    assert "RAN" not in result.stdout.str()
    pytester.makeini(f"[pytest]\nparallel_predict_tx_startup = {value}\n")
    result = pytester.runpytest("-p", "no:asyncio", "-s", "--parallel-report")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*parallel_predict_tx_startup*expected a number of seconds*"])
    assert "RAN" not in result.stdout.str()
