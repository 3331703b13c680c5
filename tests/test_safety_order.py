"""Order dependence and leaks: state a test left, and who used it later."""

from __future__ import annotations

import pytest

from pytest_parallel_lab.document.safety import Access, Problem, ResourceKind
from pytest_parallel_lab.safety.collisions import GROUP_MARK, TestPlace
from pytest_parallel_lab.safety.order import LeftState, StateUse, find_order_dependence

TESTS = ["a.py::t1", "a.py::t2", "b.py::t3", "b.py::t4"]
PLACES = {t: TestPlace(t) for t in TESTS}
ORDER = {t: i for i, t in enumerate(TESTS)}
ENV = ResourceKind.ENV


def left(test: str, resource: str = "MODE", kind: ResourceKind = ENV) -> LeftState:
    return LeftState(test, kind, resource, f"{test.split('::')[0]}:3")


def use(test: str, resource: str = "MODE", kind: ResourceKind = ENV) -> StateUse:
    return StateUse(test, "call", kind, resource, f"{test.split('::')[0]}:9")


@pytest.mark.parametrize(
    ("states", "uses", "expected"),
    [
        # used later in the same module: loadscope keeps the order
        (
            [left("a.py::t1")],
            [use("a.py::t2")],
            [(Problem.ORDER, ("a.py::t1", "a.py::t2"), "--dist loadscope")],
        ),
        # used later in another file
        (
            [left("a.py::t1")],
            [use("b.py::t4")],
            [(Problem.ORDER, ("a.py::t1", "b.py::t4"), GROUP_MARK)],
        ),
        # a use before the state was left is no use of it
        ([left("b.py::t3")], [use("a.py::t1")], [(Problem.LEAK, ("b.py::t3",), None)]),
        # another resource
        ([left("a.py::t1")], [use("a.py::t2", "OTHER")], [(Problem.LEAK, ("a.py::t1",), None)]),
        # two tests left it: each use goes to the latest before it
        (
            [left("a.py::t1"), left("b.py::t3")],
            [use("a.py::t2"), use("b.py::t4")],
            [
                (Problem.ORDER, ("a.py::t1", "a.py::t2"), "--dist loadscope"),
                (Problem.ORDER, ("b.py::t3", "b.py::t4"), "--dist loadscope"),
            ],
        ),
        ([], [use("a.py::t2")], []),
    ],
)
def test_a_use_is_reported_with_the_latest_test_that_left_the_state(
    states: list[LeftState],
    uses: list[StateUse],
    expected: list[tuple[Problem, tuple[str, ...], str | None]],
) -> None:
    found = find_order_dependence(states, uses, PLACES, ORDER)
    assert [(f.problem, f.tests, f.avoided_by) for f in found] == expected


def test_an_order_finding_shows_where_the_state_was_left_and_used() -> None:
    [finding] = find_order_dependence([left("a.py::t1")], [use("a.py::t2")], PLACES, ORDER)
    assert [(t.test, t.access, t.location) for t in finding.touches] == [
        ("a.py::t1", Access.LEFT, "a.py:3"),
        ("a.py::t2", Access.USED, "a.py:9"),
    ]
    assert "monkeypatch.setenv" in finding.fix


@pytest.mark.parametrize(
    ("kind", "advice"),
    [
        (ResourceKind.ENV, "monkeypatch.setenv"),
        (ResourceKind.CWD, "monkeypatch.chdir"),
        (ResourceKind.SYS_PATH, "monkeypatch.syspath_prepend"),
        (ResourceKind.GLOBAL, "monkeypatch.setattr"),
    ],
)
def test_a_leak_says_how_to_restore_its_kind_of_state(kind: ResourceKind, advice: str) -> None:
    [finding] = find_order_dependence([left("a.py::t1", "x", kind)], [], PLACES, ORDER)
    assert finding.problem is Problem.LEAK
    assert advice in finding.fix
