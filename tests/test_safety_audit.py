"""The recorder's pure parts: snapshots, what a test left, and what its code names."""

from __future__ import annotations

import types

import pytest

from pytest_parallel_lab.document.safety import ResourceKind
from pytest_parallel_lab.safety import audit
from pytest_parallel_lab.safety.references import named_by

ONE, NINE = object(), object()


def snapshot(**changes: object) -> audit.Snapshot:
    base: dict[str, object] = {
        "cwd": "/repo",
        "environ": {"HOME": "/root"},
        "sys_path": ("/repo",),
        "globals": {"mod": (("CACHE",), (ONE,), (("CACHE", 0),))},
    }
    base.update(changes)
    return audit.Snapshot(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("after", "left"),
    [
        (snapshot(), []),
        (snapshot(environ={"HOME": "/root", "MODE": "x"}), [(ResourceKind.ENV, "MODE", "t.py:5")]),
        (snapshot(environ={}), [(ResourceKind.ENV, "HOME", "t.py:1")]),
        (snapshot(environ={"HOME": "/root", "PYTEST_CURRENT_TEST": "t"}), []),
        (snapshot(cwd="/tmp"), [(ResourceKind.CWD, "cwd", "t.py:7")]),
        (snapshot(sys_path=("/repo", "/x")), [(ResourceKind.SYS_PATH, "sys.path", "t.py:1")]),
        # a cache that filled, a global rebound
        (
            snapshot(globals={"mod": (("CACHE",), (ONE,), (("CACHE", 2),))}),
            [(ResourceKind.GLOBAL, "mod.CACHE", "t.py:1")],
        ),
        (
            snapshot(globals={"mod": (("CACHE",), (NINE,), (("CACHE", 0),))}),
            [(ResourceKind.GLOBAL, "mod.CACHE", "t.py:1")],
        ),
        # a global or a module that appeared during the test (an import) is no change
        (snapshot(globals={"mod": (("CACHE", "X"), (ONE, 5), (("CACHE", 0),))}), []),
        (snapshot(globals={"mod": (("CACHE",), (ONE,), (("CACHE", 0),)), "new": ((), (), ())}), []),
        (snapshot(globals={"mod": (("CACHE", "__doc__"), (ONE, 7), (("CACHE", 0),))}), []),
    ],
)
def test_what_a_test_left_is_what_differs_after_its_teardown(
    after: audit.Snapshot, left: list[tuple[ResourceKind, str, str]]
) -> None:
    found = audit.left_state("t.py::t", snapshot(), after, [("MODE", "t.py:5")], "t.py:7", "t.py:1")
    assert [(s.kind, s.resource, s.location) for s in found] == left


def test_a_fingerprint_sees_rebinding_and_containers_that_change_size() -> None:
    module = types.ModuleType("watched")
    module.CACHE = {"a": 1}  # type: ignore[attr-defined]
    module.LIMIT = 3  # type: ignore[attr-defined]
    fingerprints = audit.Fingerprints()
    first = fingerprints.take([module])
    assert audit.changed_globals(first, fingerprints.take([module])) == []
    module.CACHE["b"] = 2  # type: ignore[attr-defined]
    second = fingerprints.take([module])
    assert audit.changed_globals(first, second) == ["watched.CACHE"]
    module.LIMIT = 4  # type: ignore[attr-defined]
    assert audit.changed_globals(second, fingerprints.take([module])) == ["watched.LIMIT"]


def test_a_fingerprint_of_nothing_changed_is_the_last_one_and_any_change_is_seen() -> None:
    first, second = types.ModuleType("first"), types.ModuleType("second")
    first.CACHE, second.CACHE = [], {}  # type: ignore[attr-defined]
    fingerprints = audit.Fingerprints()
    taken = fingerprints.take([first, second])
    assert fingerprints.take([first, second]) is taken  # nothing looked at one by one
    second.CACHE["k"] = 1  # type: ignore[attr-defined]
    filled = fingerprints.take([first, second])
    assert audit.changed_globals(taken, filled) == ["second.CACHE"]
    first.LIMIT = 3  # type: ignore[attr-defined]
    second.CACHE = {"k": 1}  # type: ignore[attr-defined]  # rebound to an equal one
    rebound = fingerprints.take([first, second])
    assert audit.changed_globals(filled, rebound) == ["second.CACHE"]
    third = types.ModuleType("third")
    with_third = fingerprints.take([first, second, third])
    assert "third" in with_third
    assert audit.changed_globals(rebound, with_third) == []  # a module that appeared: an import


def test_a_snapshot_reads_the_environment_as_the_system_has_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAB_SNAPSHOT", "1")
    taken = audit.take_snapshot([], audit.Fingerprints())
    before = audit.Snapshot(taken.cwd, {}, taken.sys_path, {})
    left = audit.left_state("t", before, taken, [], "", "t.py:1")
    assert ("LAB_SNAPSHOT", "t.py:1") in [(s.resource, s.location) for s in left]


_CACHE: dict[str, str] = {}


def _helper() -> str:
    return _CACHE["a"]


def _test_calls_helper() -> None:
    _helper()


def _test_names_nothing() -> int:
    return len("x")


def _test_via_module() -> object:
    return audit.CWD_RESOURCE


@pytest.mark.parametrize(
    ("function", "qualified", "named"),
    [
        (_test_calls_helper, f"{__name__}._CACHE", True),
        (_test_names_nothing, f"{__name__}._CACHE", False),
        (_test_via_module, "pytest_parallel_lab.safety.audit.CWD_RESOURCE", True),
        (_test_via_module, "pytest_parallel_lab.safety.audit.FRAMEWORK_ENV", False),
    ],
)
def test_a_test_uses_a_global_its_code_or_its_modules_helpers_name(
    function: object, qualified: str, named: bool
) -> None:
    assert named_by([function], __name__).names(qualified) is named


def test_helpers_of_other_modules_are_not_followed() -> None:
    # Seen from another module, _helper is library code: its cache is not followed.
    assert not named_by([_test_calls_helper], "elsewhere").names(f"{__name__}._CACHE")
