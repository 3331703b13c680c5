"""Collisions between tests, and the --dist or mark that avoids each."""

from __future__ import annotations

import pytest

from pytest_parallel_lab.document.safety import Access, Problem, ResourceKind
from pytest_parallel_lab.safety.access import Event, Owner
from pytest_parallel_lab.safety.collisions import (
    GROUP_MARK,
    GlobalWrite,
    TestPlace,
    avoided_by,
    find_collisions,
    find_global_races,
    find_thread_races,
)

R, W, B = Access.READ, Access.WRITE, Access.BIND


def place(nodeid: str, group: str | None = None, fixtures: tuple[str, ...] = ()) -> TestPlace:
    return TestPlace(nodeid, group, frozenset(fixtures))


@pytest.mark.parametrize(
    ("nodeids", "groups", "expected"),
    [
        (["a.py::t1", "a.py::t2"], [None, None], "--dist loadscope"),
        (["a.py::C::t1", "a.py::C::t2[1]"], [None, None], "--dist loadscope"),
        (["a.py::C::t1", "a.py::D::t2"], [None, None], "--dist loadfile"),
        (["a.py::t1", "a.py::C::t2"], [None, None], "--dist loadfile"),
        (["a.py::t1", "b.py::t2"], ["db", "db"], "--dist loadgroup"),
        (["a.py::t1", "b.py::t2"], ["db", None], GROUP_MARK),
        (["a.py::t1", "b.py::t2"], [None, None], GROUP_MARK),
    ],
)
def test_the_least_change_that_keeps_tests_on_one_worker_is_named(
    nodeids: list[str], groups: list[str | None], expected: str
) -> None:
    assert avoided_by([place(n, g) for n, g in zip(nodeids, groups, strict=True)]) == expected


def event(test: str, access: Access, resource: str = "/repo/out.txt", **owner: str) -> Event:
    kind = ResourceKind.PORT if resource.endswith("/tcp") else ResourceKind.FILE
    return Event(Owner(test, owner.pop("phase", "call"), **owner), kind, resource, access, "x.py:1")


PLACES = {
    n: place(n, fixtures=("db",) if n.startswith("a.py") else ())
    for n in ("a.py::t1", "a.py::t2", "b.py::t3", "b.py::t4")
}
ORDER = {n: i for i, n in enumerate(PLACES)}


@pytest.mark.parametrize(
    ("events", "tests", "avoided"),
    [
        # two writers in one module, a writer and a reader in two files
        (
            [event("a.py::t1", W), event("a.py::t2", W)],
            ("a.py::t1", "a.py::t2"),
            "--dist loadscope",
        ),
        ([event("b.py::t3", R), event("a.py::t1", W)], ("a.py::t1", "b.py::t3"), GROUP_MARK),
        # two binds of one port
        (
            [event("a.py::t1", B, "8123/tcp"), event("b.py::t4", B, "8123/tcp")],
            ("a.py::t1", "b.py::t4"),
            GROUP_MARK,
        ),
        # a session fixture's write collides with its own instances on other workers
        (
            [event("a.py::t1", W, phase="setup", fixture="db", fixture_scope="session")],
            ("a.py::t1", "a.py::t2"),
            None,
        ),
        # a test writing what a session fixture reads
        (
            [
                event("a.py::t1", R, phase="setup", fixture="db", fixture_scope="session"),
                event("b.py::t3", W),
            ],
            ("a.py::t1", "a.py::t2", "b.py::t3"),
            None,
        ),
        # a module fixture whose module's tests may be split
        (
            [event("a.py::t1", W, phase="setup", fixture="db", fixture_scope="module")],
            ("a.py::t1", "a.py::t2"),
            "--dist loadscope",
        ),
    ],
)
def test_collisions_name_their_tests_in_run_order_and_what_avoids_them(
    events: list[Event], tests: tuple[str, ...], avoided: str | None
) -> None:
    [finding] = find_collisions(events, PLACES, ORDER)
    assert finding.problem is Problem.COLLISION
    assert finding.tests == tests
    assert finding.avoided_by == avoided


@pytest.mark.parametrize(
    "events",
    [
        [],
        [event("a.py::t1", R), event("a.py::t2", R)],  # readers only
        [event("a.py::t1", W), event("a.py::t1", R, phase="teardown")],  # one test
        [event("b.py::t3", B, "8123/tcp")],  # one bind
        # a module fixture of a one-test module has one instance
        [event("c.py::t5", W, phase="setup", fixture="m", fixture_scope="module")],
    ],
)
def test_nothing_collides_without_a_writer_and_a_second_user(events: list[Event]) -> None:
    places = {**PLACES, "c.py::t5": place("c.py::t5")}
    assert find_collisions(events, places, ORDER) == []


def test_a_touch_is_listed_once_per_test_phase_access_and_line() -> None:
    events = [event("a.py::t1", W), event("a.py::t1", W), event("a.py::t2", W)]
    [finding] = find_collisions(events, PLACES, ORDER)
    assert [t.test for t in finding.touches] == ["a.py::t1", "a.py::t2"]


def test_a_database_file_removed_and_connected_to_is_one_sqlite_resource() -> None:
    events = [
        Event(Owner("a.py::t1", "call"), ResourceKind.SQLITE, "/repo/app.db", W),
        Event(Owner("a.py::t2", "call"), ResourceKind.FILE, "/repo/app.db", W),
    ]
    [finding] = find_collisions(events, PLACES, ORDER)
    assert (finding.kind, finding.tests) == (ResourceKind.SQLITE, ("a.py::t1", "a.py::t2"))


def written(test: str, thread: int, resource: str = "/repo/out.txt") -> Event:
    return Event(Owner(test, "call"), ResourceKind.FILE, resource, W, "x.py:1", thread)


@pytest.mark.parametrize(
    ("events", "races"),
    [
        ([written("a.py::t1", 11), written("a.py::t1", 12)], [("a.py::t1", "/repo/out.txt")]),
        ([written("a.py::t1", 11), written("a.py::t1", 11)], []),  # one thread
        ([written("a.py::t1", 0), written("a.py::t1", 12)], []),  # the main thread and one
        ([written("a.py::t1", 11), written("a.py::t2", 12)], []),  # two tests: a collision
        ([written("a.py::t1", 11, "/a"), written("a.py::t1", 12, "/b")], []),  # two paths
    ],
)
def test_two_threads_of_one_test_writing_one_resource_are_a_race(
    events: list[Event], races: list[tuple[str, str]]
) -> None:
    found = find_thread_races(events)
    assert [(f.tests[0], f.resource) for f in found] == races
    assert all(f.problem is Problem.THREAD_RACE and f.avoided_by is None for f in found)


def test_a_global_the_threaded_tasks_of_a_test_wrote_is_one_race_per_test_and_name() -> None:
    writes = [
        GlobalWrite("a.py::t1[thread]", "a.CACHE", "a.py:3", 4),
        GlobalWrite("a.py::t1[thread]", "a.CACHE", "a.py:3", 4),  # a later round
        GlobalWrite("a.py::t1[thread]", "a.COUNT", "a.py:3", 4),
        GlobalWrite("a.py::t2[thread]", "a.CACHE", "a.py:9", 2),
    ]
    found = find_global_races(writes)
    assert [(f.tests, f.resource, f.kind) for f in found] == [
        (("a.py::t1[thread]",), "a.CACHE", ResourceKind.GLOBAL),
        (("a.py::t1[thread]",), "a.COUNT", ResourceKind.GLOBAL),
        (("a.py::t2[thread]",), "a.CACHE", ResourceKind.GLOBAL),
    ]
    assert all(f.problem is Problem.THREAD_RACE and f.avoided_by is None for f in found)
    assert found[2].touches[0].location == "a.py:9"
