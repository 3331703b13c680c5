"""Order dependence: state of the process that a test left and a later test used.

Pure. Environment variables, the working directory, ``sys.path`` and module globals
belong to one process: an xdist worker cannot collide with another on them, but a
test that changes one and does not restore it leaves it to every test after it in its
process. A later test that uses it passes serially because the earlier one ran first;
under ``-n N`` the earlier one may run on another worker, or after it. Each use is
reported with the test that left the state (the latest before it); state no later
test was seen to use is a ``leak``, which breaks as soon as one does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_parallel_lab.document.safety import Access, Finding, Problem, ResourceKind, Touch
from pytest_parallel_lab.safety.collisions import TestPlace, avoided_by

#: How to change each kind of state so that it is restored after the test.
RESTORE = {
    ResourceKind.ENV: "set it with monkeypatch.setenv / delenv, which restore it",
    ResourceKind.CWD: "change it with monkeypatch.chdir, which restores it",
    ResourceKind.SYS_PATH: "change it with monkeypatch.syspath_prepend, which restores it",
    ResourceKind.GLOBAL: "change it with monkeypatch.setattr, or reset it in a fixture",
}


@dataclass(frozen=True)
class LeftState:
    """State a test changed and had not restored when its teardown ended."""

    test: str
    kind: ResourceKind
    resource: str
    #: where it was changed (``file:line``), when an event said so
    location: str = ""


@dataclass(frozen=True)
class StateUse:
    """A test's use of state an earlier test had left (read, or depended on)."""

    test: str
    phase: str
    kind: ResourceKind
    resource: str
    location: str = ""


def find_order_dependence(
    left: Sequence[LeftState],
    uses: Sequence[StateUse],
    places: Mapping[str, TestPlace],
    order: Mapping[str, int],
) -> list[Finding]:
    """One ``order`` finding per state left and used later, one ``leak`` per state left
    that no later test used. *order* maps a node id to its position in the run."""

    def position(test: str) -> int:
        return order.get(test, len(order))

    users: dict[int, list[StateUse]] = {}
    for use in uses:
        before = [
            i
            for i, state in enumerate(left)
            if (state.kind, state.resource) == (use.kind, use.resource)
            and position(state.test) < position(use.test)
        ]
        if before:
            latest = max(before, key=lambda i: position(left[i].test))
            users.setdefault(latest, []).append(use)
    findings = []
    for index, state in enumerate(left):
        found = users.get(index, [])
        later = sorted({u.test for u in found}, key=position)
        leaving = Touch(state.test, "teardown", Access.LEFT, state.location)
        fix = RESTORE[state.kind]
        if not later:
            findings.append(
                Finding(
                    Problem.LEAK, state.kind, state.resource, (state.test,), (leaving,), None, fix
                )
            )
            continue
        touches = (
            leaving,
            *dict.fromkeys(Touch(u.test, u.phase, Access.USED, u.location) for u in found),
        )
        tests = (state.test, *later)
        findings.append(
            Finding(
                Problem.ORDER,
                state.kind,
                state.resource,
                tests,
                touches,
                avoided_by([places.get(t, TestPlace(t)) for t in tests]),
                f"{fix}; and let {_short(later[0])} set up what it needs (a fixture)",
            )
        )
    return findings


def _short(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1]
