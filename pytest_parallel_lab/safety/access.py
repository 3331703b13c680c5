"""What counts as a test touching a shared resource, decided from plain values.

Pure: the audit hook (``audit.py``) hands over what an event said (a path and an open
mode, a socket's family and address, a database name) and gets back the resource and
the access, or None when the event touches nothing another test could collide on:
a read-only open is a read, never a write; port 0 is a port of the system's choosing;
``/dev``, ``/proc``, ``/sys``, bytecode caches and the temporary directories pytest
gives each test (``tmp_path``, ``tmpdir``, ``tmp_path_factory``'s base) belong to no
other test (:class:`Exclusions`, applied once at the end, when the base is known).
"""

from __future__ import annotations

import os
import shlex
import socket
from dataclasses import dataclass

from pytest_parallel_lab.document.safety import Access, ResourceKind

#: Open flags that write: any of them makes an ``os.open`` a write.
WRITE_FLAGS = (
    os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_EXCL", 0)
)
#: Characters of a ``open()`` mode that write.
WRITE_MODE_CHARACTERS = frozenset("wax+")
#: Folders of the system's own files: devices, processes, kernel settings.
SYSTEM_FOLDERS = ("/dev", "/proc", "/sys")


@dataclass(frozen=True)
class Owner:
    """Who was running when an event came: a test's phase, and the fixture if any."""

    test: str
    phase: str
    fixture: str | None = None
    fixture_scope: str | None = None


@dataclass(frozen=True)
class Event:
    """One access to a resource, attributed to its :class:`Owner`."""

    owner: Owner
    kind: ResourceKind
    resource: str
    access: Access
    location: str = ""
    #: the thread it came from, 0 for the main thread (the marker's thread backend and a
    #: test's own threads run elsewhere)
    thread: int = 0


def open_access(mode: object, flags: object) -> Access:
    """The access of an ``open`` audit event: ``open()`` gives a mode string, ``os.open``
    none (its flags say)."""
    if isinstance(mode, str):
        return Access.WRITE if WRITE_MODE_CHARACTERS & set(mode) else Access.READ
    if isinstance(flags, int) and flags & WRITE_FLAGS:
        return Access.WRITE
    return Access.READ


def path_text(path: object) -> str | None:
    """A path argument as text; None for a file descriptor or anything that is no path."""
    if isinstance(path, bytes):
        return os.fsdecode(path)
    if isinstance(path, str):
        return path
    if isinstance(path, os.PathLike):
        value = os.fspath(path)
        return os.fsdecode(value) if isinstance(value, bytes) else value
    return None


def port_resource(family: int, kind: int, address: object) -> tuple[ResourceKind, str] | None:
    """The resource a socket bound to *address* takes: ``8123/tcp`` for a fixed port, a
    path for a Unix socket; None for port 0 (the system picks a free one) and for the
    abstract Unix namespace and families with no address another test could take."""
    if family in (socket.AF_INET, getattr(socket, "AF_INET6", -1)):
        if not isinstance(address, tuple) or len(address) < 2:
            return None
        port = address[1]
        if not isinstance(port, int) or port == 0:
            return None
        transport = "udp" if kind == socket.SOCK_DGRAM else "tcp"
        return ResourceKind.PORT, f"{port}/{transport}"
    if family == getattr(socket, "AF_UNIX", -1):
        path = path_text(address)
        if not path or path.startswith("\0"):
            return None
        return ResourceKind.UNIX_SOCKET, os.path.abspath(path)
    return None


def sqlite_resource(database: object) -> tuple[str, Access] | None:
    """The file a ``sqlite3.connect`` opens and how: None for an in-memory database; a
    ``file:`` URI's path, read-only with ``mode=ro``."""
    name = path_text(database)
    if name is None or name in ("", ":memory:"):
        return None
    access = Access.WRITE
    if name.startswith("file:"):
        path, _, query = name[5:].partition("?")
        options = dict(part.partition("=")[::2] for part in query.split("&") if part)
        if options.get("mode") == "memory" or path in ("", ":memory:"):
            return None
        if options.get("mode") == "ro" or options.get("immutable") == "1":
            access = Access.READ
        name = path.removeprefix("//")  # file:///abs/path
    return os.path.abspath(name), access


#: What separates the working directory from the command line in a command's resource.
COMMAND_SEPARATOR = "$ "


def command_resource(arguments: object, cwd: object) -> str | None:
    """The resource a ``subprocess.Popen`` takes: ``CWD$ ARGV`` (one command line run in
    one place); None when there is no command line to show."""
    if isinstance(arguments, (str, bytes, os.PathLike)):
        parts = [path_text(arguments)]
    elif isinstance(arguments, (list, tuple)):
        parts = [path_text(a) if not isinstance(a, (int, float)) else str(a) for a in arguments]
    else:
        return None
    if not parts or any(part is None for part in parts):
        return None
    where = path_text(cwd) if cwd is not None else None
    folder = os.path.abspath(where) if where else os.getcwd()
    line = parts[0] if len(parts) == 1 else shlex.join(p for p in parts if p is not None)
    return f"{folder}{COMMAND_SEPARATOR}{line}"


@dataclass(frozen=True)
class Exclusions:
    """Folders whose files no other test shares: pytest's temporary base (each test's
    ``tmp_path`` and ``tmp_path_factory``'s directories are under it) and the system's."""

    folders: tuple[str, ...] = SYSTEM_FOLDERS

    def excludes(self, path: str) -> bool:
        """Whether *path* (absolute) belongs to no other test."""
        if "__pycache__" in path or path.endswith((".pyc", ".pyo")):
            return True  # bytecode, written atomically by the import system
        return any(path == folder or path.startswith(folder + os.sep) for folder in self.folders)

    def excludes_command(self, resource: str) -> bool:
        """Whether a command (:func:`command_resource`) runs in, or names, a folder of
        one test's own (its ``tmp_path``): it belongs to no other test."""
        folder, _, line = resource.partition(COMMAND_SEPARATOR)
        if self.excludes(folder) or self.excludes(os.path.realpath(folder)):
            return True
        own = [f for f in self.folders if f not in SYSTEM_FOLDERS]
        return any(f + os.sep in line for f in own)


def exclusions(temporary_bases: tuple[str, ...]) -> Exclusions:
    """:class:`Exclusions` for pytest's temporary bases, as given and resolved (a
    symlinked ``/tmp`` is seen under both names)."""
    folders = list(SYSTEM_FOLDERS)
    for base in temporary_bases:
        for form in (os.path.abspath(base), os.path.realpath(base)):
            if form not in folders:
                folders.append(form)
    return Exclusions(tuple(folders))


#: The resource kinds shared by every process of the machine (xdist workers included).
MACHINE_KINDS = frozenset(
    {
        ResourceKind.FILE,
        ResourceKind.SQLITE,
        ResourceKind.PORT,
        ResourceKind.UNIX_SOCKET,
        ResourceKind.COMMAND,
    }
)
#: The resource kinds of one process: a test can only leave them to the tests after it.
PROCESS_KINDS = frozenset(
    {ResourceKind.ENV, ResourceKind.CWD, ResourceKind.SYS_PATH, ResourceKind.GLOBAL}
)


def machine_events(events: list[Event], excluded: Exclusions) -> list[Event]:
    """The events on machine-wide resources that count: outside the exclusions, with
    the path resolved (two spellings of one file are one resource)."""
    resolved: dict[str, str] = {}
    kept = []
    for event in events:
        if event.kind not in MACHINE_KINDS:
            continue
        if event.kind is ResourceKind.PORT:
            kept.append(event)
            continue
        if event.kind is ResourceKind.COMMAND:
            if not excluded.excludes_command(event.resource):
                kept.append(event)
            continue
        path = resolved.get(event.resource)
        if path is None:
            path = resolved[event.resource] = os.path.realpath(event.resource)
        if excluded.excludes(event.resource) or excluded.excludes(path):
            continue
        kept.append(event if path == event.resource else _with_resource(event, path))
    return kept


def _with_resource(event: Event, resource: str) -> Event:
    return Event(event.owner, event.kind, resource, event.access, event.location, event.thread)
