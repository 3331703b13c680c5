"""The recorder behind ``--parallel-safety``: audit events and cheap snapshots.

Nothing here knows pytest: the glue says who is running (an :class:`Owner`) and when
to take snapshots. Two sources:

- **Audit events** (``sys.addaudithook``, PEP 578): ``open`` (for writing or reading),
  ``os.remove``, ``os.rename``, ``os.mkdir``, ``os.rmdir``, ``os.truncate``,
  ``os.link``, ``os.symlink``, ``shutil.rmtree``, ``socket.bind``, ``sqlite3.connect``,
  ``os.putenv``/``os.unsetenv``, ``os.chdir`` and ``subprocess.Popen`` (a command line
  run in one place). An audit hook cannot be removed, so
  one is installed per process, the first time a session turns the recorder on, and
  returns at once while no session records (:data:`_SLOT`, the one module-level
  state of the package: the hook outlives every session).
- **Snapshots** where no event exists: the working directory, ``os.environ``,
  ``sys.path`` and the globals of the project's modules, before a test's setup and
  after its teardown (:func:`take_snapshot`, :func:`left_state`); reads of an
  environment variable an earlier test left, through ``os.environ``'s mapping methods
  while recording.

An event is attributed to the code that caused it: the first frame outside the
standard library, pytest, pluggy, pytest-xdist and this plugin (``file:line``). An
event with no such frame is pytest's own (``PYTEST_CURRENT_TEST``, its temporary
directories) and is dropped; so is an environment change made through
``monkeypatch``, which restores it.
"""

from __future__ import annotations

import operator
import os
import sys
import sysconfig
import threading
import types
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass
from itertools import chain
from typing import Any

from pytest_parallel_lab.document.safety import Access, ResourceKind
from pytest_parallel_lab.safety.access import (
    Event,
    Owner,
    command_resource,
    open_access,
    path_text,
    port_resource,
    sqlite_resource,
)
from pytest_parallel_lab.safety.order import LeftState

#: Packages whose frames are the test framework's, not the code under test.
FRAMEWORK_PACKAGES = ("_pytest", "pytest", "pluggy", "xdist", "execnet", "pytest_parallel_lab")
#: Environment variables pytest and pytest-xdist set for themselves.
FRAMEWORK_ENV = frozenset(
    {"PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"}
)
#: The same, as ``os.putenv`` and ``os.unsetenv`` see them (``os.environ`` encodes keys).
_FRAMEWORK_ENV_KEYS = FRAMEWORK_ENV | {os.fsencode(key) for key in FRAMEWORK_ENV}
#: Values a module global holds that are code, not state.
_CODE_TYPES = (
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    type,
)
#: Containers a cache lives in: their size changing is state changing.
_CONTAINERS = (dict, list, set, bytearray)


def _stdlib_folders() -> tuple[str, ...]:
    folders = []
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            folders += [os.path.realpath(path) + os.sep, os.path.abspath(path) + os.sep]
    return tuple(dict.fromkeys(folders))


def _framework_files() -> tuple[str, ...]:
    """The folders (or the file, for the ``pytest`` module) of the framework's packages."""
    found = []
    for name in FRAMEWORK_PACKAGES:
        where = getattr(sys.modules.get(name), "__file__", None)
        if where:
            is_package = os.path.basename(where) == "__init__.py"
            found.append(os.path.dirname(where) + os.sep if is_package else where)
    return tuple(found)


class AuditRecorder:
    """What the tests of one session touched, attributed to their owners."""

    def __init__(self, rootdir: str) -> None:
        self.rootdir = rootdir.rstrip(os.sep) + os.sep
        #: who is running (None between tests: events are not recorded)
        self.owner: Owner | None = None
        self.events: list[Event] = []
        #: (key, location) of each environment write of the running test, not via monkeypatch
        self.env_writes: list[tuple[str, str]] = []
        #: location of the running test's last chdir
        self.chdir_location = ""
        #: environment variables an earlier test left: a read of one is a use
        self.left_env: set[str] = set()
        #: the working directory an earlier test left: a relative path there is a use
        self.left_cwd: str | None = None
        #: (owner, kind, resource, location) of uses of state an earlier test left
        self.uses: list[tuple[Owner, ResourceKind, str, str]] = []
        self._main_thread = threading.main_thread().ident
        self._stdlib = _stdlib_folders()
        self._framework_files = _framework_files()
        self._framework: dict[str, bool] = {}
        self._skip_reads = tuple(
            dict.fromkeys(
                os.path.abspath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)
            )
        )
        self._handlers: dict[str, Callable[[tuple[Any, ...]], None]] = {
            "open": self._open,
            "os.remove": self._first_path_written,
            "os.rmdir": self._first_path_written,
            "os.mkdir": self._first_path_written,
            "os.truncate": self._first_path_written,
            "shutil.rmtree": self._first_path_written,
            "os.rename": self._two_paths_written,
            "os.link": self._second_path_written,
            "os.symlink": self._second_path_written,
            "socket.bind": self._bind,
            "sqlite3.connect": self._sqlite,
            "os.putenv": self._env_write,
            "os.unsetenv": self._env_write,
            "os.chdir": self._chdir,
            "subprocess.Popen": self._popen,
        }

    # --- the hook ------------------------------------------------------------------
    def on_event(self, event: str, args: tuple[Any, ...]) -> None:
        """Called by the process's audit hook for every audit event while active."""
        handler = self._handlers.get(event)
        if handler is None or self.owner is None:
            return
        try:
            handler(args)
        except Exception:  # an audit hook must never break the test
            return

    def _is_framework(self, filename: str) -> bool:
        if filename.startswith(("<", *self._framework_files)):
            return True  # frozen importlib, exec'd strings; pytest, pluggy, xdist, this plugin
        for folder in self._stdlib:
            if filename.startswith(folder):
                return not filename[len(folder) :].startswith(("site-packages", "dist-packages"))
        return False

    def _location(self) -> tuple[str, bool] | None:
        """(``file:line`` of the first frame outside the framework, whether monkeypatch
        is on the way there); None when every frame is the framework's."""
        frame: types.FrameType | None = sys._getframe(1)
        known = self._framework
        monkeypatched = False
        while frame is not None:
            filename = frame.f_code.co_filename
            framework = known.get(filename)
            if framework is None:
                framework = known[filename] = self._is_framework(filename)
            if not framework:
                shown = filename.removeprefix(self.rootdir)
                return f"{shown}:{frame.f_lineno}", monkeypatched
            if filename.endswith("monkeypatch.py"):
                monkeypatched = True
            frame = frame.f_back
        return None

    def _add(self, kind: ResourceKind, resource: str, access: Access) -> None:
        where = self._location()
        if where is None or self.owner is None:
            return
        ident = threading.get_ident()
        thread = 0 if ident == self._main_thread else ident
        self.events.append(Event(self.owner, kind, resource, access, where[0], thread))

    def _path(self, value: object) -> str | None:
        path = path_text(value)
        if path is None:
            return None
        if not os.path.isabs(path):
            # Relative to the directory an earlier test left (not to one this test
            # chose itself, with monkeypatch.chdir).
            if (
                self.left_cwd is not None
                and self.owner is not None
                and os.getcwd() == self.left_cwd
            ):
                where = self._location()
                if where is not None:
                    self.uses.append((self.owner, ResourceKind.CWD, CWD_RESOURCE, where[0]))
            path = os.path.abspath(path)
        return path

    def _open(self, args: tuple[Any, ...]) -> None:
        access = open_access(args[1] if len(args) > 1 else None, args[2] if len(args) > 2 else 0)
        path = self._path(args[0])
        if path is None or (access is Access.READ and path.startswith(self._skip_reads)):
            return  # the interpreter's and the installed packages' own files
        self._add(ResourceKind.FILE, path, access)

    def _first_path_written(self, args: tuple[Any, ...]) -> None:
        path = self._path(args[0])
        if path is not None:
            self._add(ResourceKind.FILE, path, Access.WRITE)

    def _second_path_written(self, args: tuple[Any, ...]) -> None:
        path = self._path(args[1])
        if path is not None:
            self._add(ResourceKind.FILE, path, Access.WRITE)

    def _two_paths_written(self, args: tuple[Any, ...]) -> None:
        self._first_path_written(args)
        self._second_path_written(args)

    def _bind(self, args: tuple[Any, ...]) -> None:
        sock, address = args[0], args[1]
        found = port_resource(getattr(sock, "family", -1), getattr(sock, "type", -1), address)
        if found is not None:
            self._add(found[0], found[1], Access.BIND)

    def _sqlite(self, args: tuple[Any, ...]) -> None:
        found = sqlite_resource(args[0])
        if found is not None:
            self._add(ResourceKind.SQLITE, found[0], found[1])

    def _popen(self, args: tuple[Any, ...]) -> None:
        # (executable, args, cwd, env): the command line as given, run where it runs
        resource = command_resource(args[1] if len(args) > 1 else args[0], args[2])
        if resource is not None:
            self._add(ResourceKind.COMMAND, resource, Access.RUN)

    def _env_write(self, args: tuple[Any, ...]) -> None:
        if args[0] in _FRAMEWORK_ENV_KEYS:
            return  # pytest's PYTEST_CURRENT_TEST, three times a test: no frame walk
        key = path_text(args[0])
        where = self._location()
        if key is None or where is None or where[1]:
            return  # pytest's own, or monkeypatch's (restored after the test)
        self.env_writes.append((key, where[0]))

    def _chdir(self, args: tuple[Any, ...]) -> None:
        where = self._location()
        if where is not None and not where[1]:
            self.chdir_location = where[0]

    # --- environment reads ---------------------------------------------------------
    def env_read(self, key: object) -> None:
        """``os.environ[key]`` (``get``, ``in``) while recording."""
        name = path_text(key)
        if name is None or name not in self.left_env or self.owner is None:
            return
        if any(written == name for written, _ in self.env_writes):
            return  # the test reads what it set itself
        where = self._location()
        # monkeypatch reads the old value to restore it: the test sets its own
        if where is not None and not where[1]:
            self.uses.append((self.owner, ResourceKind.ENV, name, where[0]))


#: The resource name of the working directory.
CWD_RESOURCE = "cwd"
#: The resource name of the import path.
SYS_PATH_RESOURCE = "sys.path"


class _Slot:
    """The process's one audit hook, and the recorder it feeds (None: not recording)."""

    def __init__(self) -> None:
        self.recorder: AuditRecorder | None = None
        self.installed = False
        self.original_getitem: Any = None

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        recorder = self.recorder
        if recorder is not None:
            recorder.on_event(event, args)


_SLOT = _Slot()


def activate(recorder: AuditRecorder) -> None:
    """Feed the process's audit hook (installed now if it is the first time) to
    *recorder*, and watch reads of ``os.environ``."""
    if not _SLOT.installed:
        sys.addaudithook(_SLOT.hook)
        _SLOT.installed = True
    _SLOT.recorder = recorder
    environ_class = type(os.environ)
    if _SLOT.original_getitem is None:
        original = _SLOT.original_getitem = environ_class.__getitem__

        def getitem(environ: Any, key: Any) -> Any:
            watching = _SLOT.recorder
            if watching is not None and watching.left_env and environ is os.environ:
                watching.env_read(key)
            return original(environ, key)

        environ_class.__getitem__ = getitem  # type: ignore[method-assign]


def deactivate() -> None:
    """Stop recording: the audit hook returns at once from now on, and ``os.environ``
    is as it was."""
    _SLOT.recorder = None
    if _SLOT.original_getitem is not None:
        type(os.environ).__getitem__ = _SLOT.original_getitem  # type: ignore[method-assign]
        _SLOT.original_getitem = None


# --- snapshots ---------------------------------------------------------------------


#: One module's globals: their names, their values (compared by identity: rebinding
#: changes it) and the sizes of its containers (a cache filling changes them). Values,
#: not ``id()``: every ``id()`` call is an audit event, which the hook would then see.
ModuleState = tuple[tuple[str, ...], tuple[object, ...], tuple[tuple[str, int], ...]]


def _same_values(old: tuple[object, ...], new: tuple[object, ...]) -> bool:
    return len(old) == len(new) and all(map(operator.is_, old, new))


@dataclass(frozen=True)
class Snapshot:
    """The process state a test may leave behind, before its setup or after its teardown."""

    cwd: str
    #: ``os.environ`` as the operating system has it (bytes on POSIX: copied at C speed)
    environ: Mapping[Any, Any]
    sys_path: tuple[str, ...]
    #: per watched module, its :data:`ModuleState`
    globals: Mapping[str, ModuleState]


class Fingerprints:
    """Takes :data:`ModuleState` of modules, remembering each one's containers until its
    globals are rebound.

    Most snapshots find nothing changed: the values of every watched module, in one
    tuple built and compared at C speed, are the same objects as last time, and so are
    the sizes of their containers. Then the last states are returned as they were (the
    same mapping: :func:`changed_globals` sees that at once) and no module is looked at
    one by one."""

    def __init__(self) -> None:
        self._containers: dict[str, tuple[tuple[object, ...], tuple[str, ...]]] = {}
        self._modules: tuple[types.ModuleType, ...] = ()
        self._values: tuple[object, ...] = ()
        self._lengths: tuple[int, ...] = ()
        self._held: tuple[Sized, ...] = ()
        self._sizes: tuple[int, ...] = ()
        self._last: dict[str, ModuleState] = {}

    def take(self, modules: Iterable[types.ModuleType]) -> Mapping[str, ModuleState]:
        watched = tuple(modules)
        scopes = tuple(map(vars, watched))
        values = tuple(chain.from_iterable(map(dict.values, scopes)))
        lengths = tuple(map(len, scopes))
        if (
            lengths == self._lengths
            and _same_values(self._modules, watched)
            and _same_values(self._values, values)
            and tuple(map(len, self._held)) == self._sizes
        ):
            return self._last
        found: dict[str, ModuleState] = {}
        held: list[Sized] = []
        for module, scope in zip(watched, scopes, strict=True):
            own = tuple(scope.values())
            known = self._containers.get(module.__name__)
            if known is None or not _same_values(known[0], own):
                names = tuple(
                    k for k, v in scope.items() if isinstance(v, _CONTAINERS) and k[:2] != "__"
                )
                known = self._containers[module.__name__] = (own, names)
            containers = [(k, scope[k]) for k in known[1] if k in scope]
            held.extend(container for _, container in containers)
            sizes = tuple((k, len(container)) for k, container in containers)
            found[module.__name__] = (tuple(scope), own, sizes)
        self._modules, self._values, self._lengths = watched, values, lengths
        self._held = tuple(held)
        self._sizes = tuple(map(len, self._held))
        self._last = found
        return found


def changed_globals(
    before: Mapping[str, ModuleState], after: Mapping[str, ModuleState]
) -> list[str]:
    """``module.NAME`` of each global rebound, or whose container changed size, between
    two snapshots; dunder names, and globals that only appeared (an import), left out."""
    changed: list[str] = []
    if before is after:
        return changed  # the same states: nothing was looked at again (Fingerprints)
    for module, state in after.items():
        old = before.get(module)
        if old is None or (_same_values(old[1], state[1]) and old[2] == state[2]):
            continue
        was = dict(zip(old[0], old[1], strict=True))
        names = {
            name
            for name, value in zip(state[0], state[1], strict=True)
            if name[:2] != "__" and was.get(name, value) is not value
        }
        old_sizes = dict(old[2])
        names.update(k for k, n in state[2] if old_sizes.get(k, n) != n)
        changed.extend(f"{module}.{name}" for name in sorted(names))
    return changed


def _environ_copy() -> Mapping[Any, Any]:
    data = getattr(os.environ, "_data", None)  # the encoded mapping behind os.environ
    return dict(data) if isinstance(data, dict) else dict(os.environ)


def take_snapshot(modules: Iterable[types.ModuleType], fingerprints: Fingerprints) -> Snapshot:
    """The state now; *modules* are the ones whose globals are watched."""
    try:
        cwd = os.getcwd()
    except OSError:  # the directory was removed under the test
        cwd = ""
    return Snapshot(cwd, _environ_copy(), tuple(sys.path), fingerprints.take(modules))


def left_state(
    test: str,
    before: Snapshot,
    after: Snapshot,
    env_writes: Iterable[tuple[str, str]],
    chdir_location: str,
    test_location: str,
) -> list[LeftState]:
    """What *test* changed between *before* and *after* and did not restore."""
    left = []
    written = dict(env_writes)  # the last write of each key
    environ_changed = before.environ != after.environ  # one comparison at C speed
    for raw in set(before.environ) | set(after.environ) if environ_changed else ():
        if before.environ.get(raw) == after.environ.get(raw):
            continue
        key = path_text(raw) or ""
        if key not in FRAMEWORK_ENV:
            left.append(LeftState(test, ResourceKind.ENV, key, written.get(key, test_location)))
    if before.cwd != after.cwd:
        left.append(
            LeftState(test, ResourceKind.CWD, CWD_RESOURCE, chdir_location or test_location)
        )
    if before.sys_path != after.sys_path:
        left.append(LeftState(test, ResourceKind.SYS_PATH, SYS_PATH_RESOURCE, test_location))
    for name in changed_globals(before.globals, after.globals):
        left.append(LeftState(test, ResourceKind.GLOBAL, name, test_location))
    return sorted(left, key=lambda state: (state.kind, state.resource))
