"""What counts as touching a resource: open modes, ports, databases, exclusions."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from pytest_parallel_lab.document.safety import Access, ResourceKind
from pytest_parallel_lab.safety.access import (
    Event,
    Exclusions,
    Owner,
    command_resource,
    exclusions,
    machine_events,
    open_access,
    path_text,
    port_resource,
    sqlite_resource,
)


@pytest.mark.parametrize(
    ("mode", "flags", "access"),
    [
        ("r", 0, Access.READ),
        ("rb", 0, Access.READ),
        ("w", 0, Access.WRITE),
        ("ab", 0, Access.WRITE),
        ("x", 0, Access.WRITE),
        ("r+", 0, Access.WRITE),
        (None, os.O_RDONLY, Access.READ),
        (None, os.O_WRONLY, Access.WRITE),
        (None, os.O_RDWR, Access.WRITE),
        (None, os.O_RDONLY | os.O_CREAT, Access.WRITE),
        (None, None, Access.READ),
    ],
)
def test_an_open_writes_only_with_a_writing_mode_or_flag(
    mode: str | None, flags: int | None, access: Access
) -> None:
    assert open_access(mode, flags) is access


@pytest.mark.parametrize(
    ("value", "text"),
    [("a.txt", "a.txt"), (b"b.txt", "b.txt"), (Path("c.txt"), "c.txt"), (3, None), (None, None)],
)
def test_a_path_argument_is_text_and_a_descriptor_is_no_path(
    value: object, text: str | None
) -> None:
    assert path_text(value) == text


@pytest.mark.parametrize(
    ("family", "kind", "address", "resource"),
    [
        (socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 8123), (ResourceKind.PORT, "8123/tcp")),
        (socket.AF_INET, socket.SOCK_DGRAM, ("0.0.0.0", 5353), (ResourceKind.PORT, "5353/udp")),
        (socket.AF_INET6, socket.SOCK_STREAM, ("::1", 8123, 0, 0), (ResourceKind.PORT, "8123/tcp")),
        (socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 0), None),
        (
            socket.AF_UNIX,
            socket.SOCK_STREAM,
            "/run/app.sock",
            (ResourceKind.UNIX_SOCKET, "/run/app.sock"),
        ),
        (socket.AF_UNIX, socket.SOCK_STREAM, "\0abstract", None),
        (socket.AF_INET, socket.SOCK_STREAM, "garbage", None),
    ],
)
def test_a_fixed_port_is_a_resource_and_port_zero_is_not(
    family: int, kind: int, address: object, resource: tuple[ResourceKind, str] | None
) -> None:
    assert port_resource(family, kind, address) == resource


@pytest.mark.parametrize(
    ("database", "expected"),
    [
        (":memory:", None),
        ("", None),
        ("file::memory:?cache=shared", None),
        ("file:mem?mode=memory", None),
        ("/srv/app.db", ("/srv/app.db", Access.WRITE)),
        (Path("/srv/app.db"), ("/srv/app.db", Access.WRITE)),
        ("file:/srv/app.db?mode=ro", ("/srv/app.db", Access.READ)),
        ("file:///srv/app.db", ("/srv/app.db", Access.WRITE)),
    ],
)
def test_a_sqlite_file_is_a_resource_and_memory_is_not(
    database: object, expected: tuple[str, Access] | None
) -> None:
    assert sqlite_resource(database) == expected


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("/dev/null", True),
        ("/proc/self/stat", True),
        ("/sys/fs/cgroup/cpu.max", True),
        ("/tmp/pytest-of-me/pytest-3/test_x0/out.txt", True),
        ("/tmp/pytest-of-me", True),
        ("/repo/pkg/__pycache__/mod.cpython-311.pyc", True),
        ("/tmp/fixed.txt", False),
        ("/tmp/pytest-of-meow/x", False),
        ("/repo/data/out.csv", False),
        ("/device", False),
    ],
)
def test_pytest_temporary_folders_and_system_files_are_excluded(path: str, excluded: bool) -> None:
    assert exclusions(("/tmp/pytest-of-me",)).excludes(path) is excluded


def test_machine_events_drop_process_state_and_excluded_paths(tmp_path: Path) -> None:
    owner = Owner("t.py::test", "call")
    link = tmp_path / "link"
    target = tmp_path / "real"
    target.mkdir()
    link.symlink_to(target)
    events = [
        Event(owner, ResourceKind.FILE, "/dev/null", Access.WRITE),
        Event(owner, ResourceKind.ENV, "HOME", Access.WRITE),
        Event(owner, ResourceKind.PORT, "8123/tcp", Access.BIND),
        Event(owner, ResourceKind.FILE, str(link / "f.txt"), Access.WRITE),
    ]
    kept = machine_events(events, Exclusions())
    # The two spellings of one file are one resource: the resolved path.
    assert [(e.kind, e.resource) for e in kept] == [
        (ResourceKind.PORT, "8123/tcp"),
        (ResourceKind.FILE, str(target / "f.txt")),
    ]


@pytest.mark.parametrize(
    ("arguments", "cwd", "resource"),
    [
        (["redis-server", "--port", 7000], "/srv", "/srv$ redis-server --port 7000"),
        ("make serve", b"/srv", "/srv$ make serve"),  # shell=True: the line as given
        ([b"git", "status"], None, f"{os.getcwd()}$ git status"),
        (["echo", "two words"], "/srv", "/srv$ echo 'two words'"),
        ([], "/srv", None),
        (None, "/srv", None),
    ],
)
def test_a_command_is_its_line_and_where_it_runs(
    arguments: object, cwd: object, resource: str | None
) -> None:
    assert command_resource(arguments, cwd) == resource


def test_a_command_in_or_naming_a_tests_own_folder_belongs_to_no_other_test() -> None:
    excluded = exclusions(("/tmp/pytest-of-me",))
    assert excluded.excludes_command("/tmp/pytest-of-me/pytest-3/t0$ git init")
    assert excluded.excludes_command("/repo$ git init /tmp/pytest-of-me/pytest-3/t0/repo")
    assert not excluded.excludes_command("/repo$ cat /dev/null")
    assert not excluded.excludes_command("/repo$ git init /tmp/fixed-place")
