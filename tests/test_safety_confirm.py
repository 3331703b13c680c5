"""The confirming run's pure parts: its command line, JUnit addresses, and verdicts."""

from __future__ import annotations

import pytest

from pytest_parallel_lab.document.safety import (
    Access,
    ConfirmRun,
    Finding,
    Problem,
    ResourceKind,
    SafetySection,
)
from pytest_parallel_lab.safety.confirm import ConfirmCommand, failed_tests, junit_address
from pytest_parallel_lab.safety.section import confirmable_tests, with_confirmation


@pytest.mark.parametrize(
    ("nodeid", "address"),
    [
        ("test_a.py::test_x", ("test_a", "test_x")),
        ("tests/sub/test_a.py::TestC::test_x", ("tests.sub.test_a.TestC", "test_x")),
        ("test_a.py::test_x[1.5-a::b]", ("test_a", "test_x[1.5-a::b]")),
    ],
)
def test_a_node_id_has_the_address_pytests_junit_xml_gives_it(
    nodeid: str, address: tuple[str, str]
) -> None:
    assert junit_address(nodeid) == address


XML = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="test_a" name="test_ok" time="0.1" />
<testcase classname="test_a" name="test_bad" time="0.1"><failure message="x">x</failure></testcase>
<testcase classname="tests.test_b.TestC" name="test_err[1]"><error message="y">y</error></testcase>
<testcase classname="test_a" name="test_skip"><skipped message="s" /></testcase>
</testsuite></testsuites>"""


def test_failures_and_errors_are_failed_tests_and_skips_are_not() -> None:
    tests = [
        "test_a.py::test_ok",
        "test_a.py::test_bad",
        "tests/test_b.py::TestC::test_err[1]",
        "test_a.py::test_skip",
    ]
    assert failed_tests(XML, tests) == {
        "test_a.py::test_bad",
        "tests/test_b.py::TestC::test_err[1]",
    }


def test_the_child_runs_under_n_with_safety_off_and_its_own_junit_file() -> None:
    argv = ConfirmCommand(2, ("t.py::a",), "/repo", "/repo/tox.ini").argv("/tmp/j.xml")
    assert argv[argv.index("-n") + 1] == "2"
    assert "--no-parallel-safety" in argv
    assert "--junitxml=/tmp/j.xml" in argv
    assert argv[argv.index("-c") + 1] == "/repo/tox.ini"
    assert argv[-2:] == ["--", "t.py::a"]


def finding(problem: Problem, tests: tuple[str, ...], avoided: str | None = "x") -> Finding:
    return Finding(problem, ResourceKind.FILE, "/f", tests, (), avoided, "fix")


SECTION = SafetySection(
    3,
    (
        finding(Problem.COLLISION, ("a", "b")),
        finding(Problem.ORDER, ("c", "b")),
        finding(Problem.LEAK, ("d",), None),
        finding(Problem.THREAD_RACE, ("e",), None),
    ),
)


def test_the_confirmable_tests_are_those_of_collisions_and_order_in_run_order() -> None:
    assert confirmable_tests(SECTION, ["a", "b", "c", "d", "e"]) == ["a", "b", "c"]


def test_a_collision_of_a_fixture_every_worker_sets_up_reruns_the_whole_suite() -> None:
    section = SafetySection(2, (finding(Problem.COLLISION, ("a",), None),))
    assert confirmable_tests(section, ["a", "b", "c"]) == ["a", "b", "c"]


def test_a_finding_is_confirmed_when_one_of_its_tests_failed() -> None:
    confirmed = with_confirmation(SECTION, ConfirmRun(2, 3, 3, ("c",)))
    assert [f.confirmed for f in confirmed.findings] == [False, True, None, None]


def test_a_confirmation_that_could_not_run_confirms_nothing() -> None:
    confirmed = with_confirmation(SECTION, ConfirmRun(2, 1, 3, ("a",), "timed out"))
    assert [f.confirmed for f in confirmed.findings] == [None, None, None, None]
    assert confirmed.confirm == ConfirmRun(2, 1, 3, ("a",), "timed out")


def test_access_words_are_the_documented_ones() -> None:
    assert [a.value for a in Access] == ["read", "write", "bind", "run", "left", "used"]
