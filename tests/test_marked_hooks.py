"""The marked tests' glue: each value built once, on its way from the marker to the report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_parallel_lab.document import run as document_run
from pytest_parallel_lab.marked import session as marked_session
from pytest_parallel_lab.marked.session import MarkedSession, user_nodeid

SWEEP_WITH_MAPS = """
import pytest

@pytest.mark.parallel(backend=["serial", "thread"], workers=[1, 2], tasks=2, rounds=2)
def test_maps(parallel_map):
    assert parallel_map(abs, [-1, -2]) == [1, 2]
    assert parallel_map(str, [3]) == ["3"]

@pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
@pytest.mark.parametrize("n", [1, 2])
def test_body(n):
    assert n
"""


def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[object]:
    """Replace ``owner.name`` with a wrapper that logs each call."""
    calls: list[object] = []
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def test_a_marker_is_parsed_once_for_all_its_items_and_map_calls(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = counting(monkeypatch, marked_session, "parse_marker")
    lab.makepyfile(SWEEP_WITH_MAPS)
    lab.runpytest("--parallel-report-json=run.json").assert_outcomes(passed=6)
    # Two markers: test_maps's (4 items, 2 map calls each) and test_body's (2 items).
    assert len(parsed) == 2


def test_each_marked_item_is_planned_once(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = counting(monkeypatch, MarkedSession, "_make_plan")
    lab.makepyfile(SWEEP_WITH_MAPS)
    lab.runpytest().assert_outcomes(passed=6)
    assert len(planned) == 6


def test_a_plain_run_keeps_its_records_without_a_trip_through_json(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded = counting(monkeypatch, document_run, "result_from_json")
    encoded = counting(monkeypatch, document_run, "result_to_json")
    lab.makepyfile(SWEEP_WITH_MAPS)
    lab.runpytest("--parallel-report").assert_outcomes(passed=6)
    assert (decoded, encoded) == ([], [])


def test_an_unmarked_test_gets_no_plan_and_pays_no_per_test_hook(lab: pytest.Pytester) -> None:
    lab.makeconftest(
        """
        def pytest_sessionfinish(session):
            names = [n for n, _ in session.config.pluginmanager.list_name_plugin()]
            print("ITEM-HOOKS", "parallel-lab-marked-items" in names)
        """
    )
    lab.makepyfile("def test_plain(): pass")
    lab.runpytest("-s").stdout.fnmatch_lines(["*ITEM-HOOKS False*"])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            '@pytest.mark.parallel(backend="thread")\ndef test_a(): pass',
            ["test_it.py::test_a"],
            id="only-the-backend",
        ),
        pytest.param(
            '@pytest.mark.parallel(backend="thread", workers=[1, 2])\ndef test_a(): pass',
            ["test_it.py::test_a", "test_it.py::test_a"],
            id="a-sweep",
        ),
        pytest.param(
            '@pytest.mark.parametrize("x", ["a"])\n'
            '@pytest.mark.parallel(backend="thread")\ndef test_a(x): pass',
            ["test_it.py::test_a[a]"],
            id="the-users-own-parameter-stays",
        ),
    ],
)
def test_the_test_id_leaves_out_this_plugins_parameters(
    lab: pytest.Pytester, source: str, expected: list[str]
) -> None:
    lab.makepyfile(test_it="import pytest\n\n" + source)
    items = lab.getitems(lab.path / "test_it.py")
    assert [user_nodeid(item) for item in items if isinstance(item, pytest.Function)] == expected
