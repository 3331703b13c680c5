"""Collisions between tests on machine-wide resources, and the ``--dist`` that avoids each.

Pure. Two tests collide when both use a resource of the machine (a file, a SQLite
database, a port, a Unix socket) and at least one of them writes it (or binds it): on
two xdist workers they may run at once. A shared fixture is set up once per worker,
so a session (or package) fixture that writes a resource collides with its own
instances on the other workers — with every test of the session, whatever ``--dist``
— and a module or class fixture with those of its scope when the scope's tests are
split across workers.

What avoids a collision is what keeps its tests on one worker, in their order, as
pytest-xdist schedules them: ``loadscope`` keeps a class's tests (a module's, for
module-level functions) together, ``loadfile`` a file's, ``loadgroup`` the tests of
one ``xdist_group`` mark; under ``load`` and ``worksteal`` any two tests may run at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pytest_parallel_lab.document.safety import (
    Access,
    Finding,
    Problem,
    ResourceKind,
    Touch,
)
from pytest_parallel_lab.safety.access import Event

#: Fixture scopes that every xdist worker sets up for itself, whatever ``--dist``.
EVERY_WORKER_SCOPES = frozenset({"session", "package"})
#: Fixture scopes whose one instance serves several tests of one module or class.
UNIT_SCOPES = frozenset({"module", "class"})
#: The accesses that change a resource.
WRITES = frozenset({Access.WRITE, Access.BIND, Access.RUN})
#: What avoids a collision of tests that share neither a scope, a file nor a group.
GROUP_MARK = "xdist_group mark + --dist loadgroup"


@dataclass(frozen=True)
class TestPlace:
    """Where a test sits, as pytest-xdist's schedulers see it."""

    __test__ = False  # not a pytest test class

    nodeid: str
    #: the ``xdist_group`` mark's name, if it has one
    group: str | None = None
    #: the fixtures it uses (its closure, autouse ones included)
    fixtures: frozenset[str] = frozenset()

    @property
    def file(self) -> str:
        """What ``--dist loadfile`` keeps together: the test's file."""
        return self.nodeid.split("::", 1)[0]

    @property
    def scope(self) -> str:
        """What ``--dist loadscope`` keeps together: the class of a method, the module of
        a function (pytest-xdist splits the node id at its last ``::``)."""
        return self.nodeid.rsplit("::", 1)[0] if "::" in self.nodeid else self.nodeid


def avoided_by(places: Sequence[TestPlace]) -> str:
    """The least change of ``--dist`` (or the mark) that keeps *places* on one worker."""
    if len({p.scope for p in places}) <= 1:
        return "--dist loadscope"
    if len({p.file for p in places}) <= 1:
        return "--dist loadfile"
    groups = {p.group for p in places}
    if len(groups) == 1 and None not in groups:
        return "--dist loadgroup"
    return GROUP_MARK


def touch(event: Event) -> Touch:
    """An event as the document's :class:`Touch`."""
    owner = event.owner
    return Touch(
        owner.test, owner.phase, event.access, event.location, owner.fixture, owner.fixture_scope
    )


def unique_touches(events: Iterable[Event]) -> tuple[Touch, ...]:
    """Each distinct touch once, in the order they happened."""
    return tuple(dict.fromkeys(touch(e) for e in events))


def _fix(kind: ResourceKind, every_worker: str | None) -> str:
    if every_worker is not None:
        return (
            f"every xdist worker sets up its own {every_worker}: give each worker its own "
            "path (tmp_path_factory, or worker_id in the name), or guard it with a file lock"
        )
    if kind is ResourceKind.PORT:
        return "bind to port 0 and use the port the system chose (getsockname()[1])"
    if kind is ResourceKind.COMMAND:
        return (
            "run it in each test's own directory (cwd=tmp_path) with its own paths and ports, "
            "or keep these tests on one worker"
        )
    return "give each test its own path (tmp_path, or tmp_path_factory in a shared fixture)"


def find_collisions(
    events: Sequence[Event], places: Mapping[str, TestPlace], order: Mapping[str, int]
) -> list[Finding]:
    """The collisions among *events* (machine-wide resources, exclusions applied):
    one finding per resource, its tests in run order (*order*: node id to position)."""
    by_resource: dict[tuple[ResourceKind, str], list[Event]] = {}
    for event in events:
        # A database is a file: its connects and its removal are one resource.
        family = ResourceKind.FILE if event.kind is ResourceKind.SQLITE else event.kind
        by_resource.setdefault((family, event.resource), []).append(event)
    scope_sizes: dict[str, int] = {}
    file_sizes: dict[str, int] = {}
    for place in places.values():
        scope_sizes[place.scope] = scope_sizes.get(place.scope, 0) + 1
        file_sizes[place.file] = file_sizes.get(place.file, 0) + 1
    findings = []
    for (kind, resource), touched in by_resource.items():
        if not any(e.access in WRITES for e in touched):
            continue
        if any(e.kind is ResourceKind.SQLITE for e in touched):
            kind = ResourceKind.SQLITE
        units: set[tuple[str, ...]] = set()
        every_worker: str | None = None
        split_instance = False
        covered: set[str] = set()  # tests a module or class fixture's instance serves
        # A shared fixture's tests are those that use it, whichever one's setup ran it.
        users: set[str] = set()
        for event in touched:
            owner = event.owner
            place = places.get(owner.test, TestPlace(owner.test))
            if owner.fixture is None or owner.fixture_scope not in (
                *EVERY_WORKER_SCOPES,
                *UNIT_SCOPES,
            ):
                users.add(owner.test)
            if owner.fixture is not None and owner.fixture_scope in EVERY_WORKER_SCOPES:
                every_worker = every_worker or f"{owner.fixture_scope} fixture {owner.fixture!r}"
                units.add(("fixture", owner.fixture))
                users.update(p.nodeid for p in places.values() if owner.fixture in p.fixtures)
            elif owner.fixture is not None and owner.fixture_scope in UNIT_SCOPES:
                # One instance per module (or class): split when the module's tests are.
                where = place.file if owner.fixture_scope == "module" else place.scope
                sizes = file_sizes if owner.fixture_scope == "module" else scope_sizes
                split_instance = split_instance or sizes.get(where, 1) > 1
                units.add(("fixture", owner.fixture, where))
                covered.update(
                    p.nodeid
                    for p in places.values()
                    if (p.file if owner.fixture_scope == "module" else p.scope) == where
                )
                users.update(p for p in covered if owner.fixture in places[p].fixtures)
            else:
                units.add(("test", owner.test))
        if every_worker is None and not split_instance and len(units) < 2:
            continue
        tests = sorted(
            users or {e.owner.test for e in touched}, key=lambda t: order.get(t, len(order))
        )
        if every_worker is not None:
            avoided = None
        else:
            involved = [places.get(t, TestPlace(t)) for t in {*tests, *covered}]
            avoided = avoided_by(involved)
        findings.append(
            Finding(
                problem=Problem.COLLISION,
                kind=kind,
                resource=resource,
                tests=tuple(tests),
                touches=unique_touches(touched),
                avoided_by=avoided,
                fix=_fix(kind, every_worker),
            )
        )
    return findings


def find_thread_races(events: Sequence[Event]) -> list[Finding]:
    """Resources that two threads of one test, besides the main thread, wrote (tasks of
    the marker's thread backend, or threads the test started): one finding per test and
    resource. Nothing but a lock or a path per thread avoids it."""
    writers: dict[tuple[str, ResourceKind, str], list[Event]] = {}
    for event in events:
        if event.access in WRITES and event.thread:
            family = ResourceKind.FILE if event.kind is ResourceKind.SQLITE else event.kind
            writers.setdefault((event.owner.test, family, event.resource), []).append(event)
    return [
        Finding(
            problem=Problem.THREAD_RACE,
            kind=kind,
            resource=resource,
            tests=(test,),
            touches=unique_touches(written),
            avoided_by=None,
            fix="give each thread (each task) its own path or port, or guard it with a lock",
        )
        for (test, kind, resource), written in writers.items()
        if len({e.thread for e in written}) >= 2
    ]


@dataclass(frozen=True)
class GlobalWrite:
    """A module global rebound, or a container of one resized, while the tasks of one
    test ran at once in the marker's thread backend (no audit event tells which task)."""

    test: str
    name: str
    location: str
    tasks: int


def find_global_races(writes: Sequence[GlobalWrite]) -> list[Finding]:
    """One thread race per test and module global its threaded tasks wrote: tasks that
    write one global at once lose updates without the GIL (and with it, where a
    check-then-set spans bytecodes)."""
    first: dict[tuple[str, str], GlobalWrite] = {}
    for write in writes:
        first.setdefault((write.test, write.name), write)
    return [
        Finding(
            problem=Problem.THREAD_RACE,
            kind=ResourceKind.GLOBAL,
            resource=write.name,
            tests=(write.test,),
            touches=(Touch(write.test, "call", Access.WRITE, write.location),),
            avoided_by=None,
            fix="keep the state per task (a local, threading.local) or guard it with a lock",
        )
        for write in first.values()
    ]
