"""pytest glue for ``--parallel-safety``: who is running, snapshots around each test,
the section at the end, the confirming run and the gate.

Registered by ``plugin.py`` only when the option is on, in a serial run (the options
refuse ``-n N``): without it no audit hook is installed and nothing here runs. Each
event the recorder (``audit.py``) sees is attributed to the running test and phase —
setup, call or teardown — and to the fixture being set up or torn down, if any.
State a fixture broader than a function sets up (an environment variable a session
fixture exports) is that fixture's, which every xdist worker sets up for itself: it
is not counted as left by the test whose setup ran it.
"""

from __future__ import annotations

import functools
import os
import sys
import types
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import Any

import pytest

from pytest_parallel_lab import timing
from pytest_parallel_lab.backends.inprocess import THREAD_BATCH_WATCHERS
from pytest_parallel_lab.document.run import RunDocument
from pytest_parallel_lab.document.safety import ResourceKind, SafetySection
from pytest_parallel_lab.options import LabOptions
from pytest_parallel_lab.safety import audit
from pytest_parallel_lab.safety.access import Owner
from pytest_parallel_lab.safety.collisions import GlobalWrite, TestPlace
from pytest_parallel_lab.safety.confirm import INTERRUPTED, ConfirmCommand, run_confirmation
from pytest_parallel_lab.safety.order import LeftState, StateUse
from pytest_parallel_lab.safety.references import Names, named_by
from pytest_parallel_lab.safety.section import (
    build_safety_section,
    confirmable_tests,
    with_confirmation,
)

SECTION_TITLE = "pytest-parallel-lab: parallel safety"
#: The most bytes of node ids a confirming run takes on its command line; beyond, files.
MAX_CONFIRM_ARGUMENT_BYTES = 1 << 20
#: A confirming run may take this many times the serial session, and at least a minute.
CONFIRM_TIMEOUT_FACTOR = 10.0
CONFIRM_TIMEOUT_MIN_S = 60.0


def _group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    if mark is None:
        return None
    name = mark.args[0] if mark.args else mark.kwargs.get("name")
    return None if name is None else str(name)


def _test_location(item: pytest.Item) -> str:
    path, line, _ = item.location
    return f"{path}:{(line or 0) + 1}"


def _nothing() -> None:
    pass


def _functions(item: pytest.Item) -> list[object]:
    """The test function and its fixtures' functions (pytest's fixture info)."""
    functions: list[object] = [getattr(item, "obj", None)]
    info = getattr(item, "_fixtureinfo", None)
    for definitions in getattr(info, "name2fixturedefs", {}).values():
        functions.extend(getattr(d, "func", None) for d in definitions)
    return functions


class SafetyPlugin:
    """Records what each test touches and contributes the ``safety`` section."""

    def __init__(self, config: pytest.Config, options: LabOptions) -> None:
        self.config = config
        self.options = options
        self.rootdir = str(config.rootpath)
        self.recorder = audit.AuditRecorder(self.rootdir)
        self.items: dict[str, pytest.Item] = {}
        self.places: dict[str, TestPlace] = {}
        self.order: dict[str, int] = {}
        self.left: list[LeftState] = []
        self.global_uses: list[StateUse] = []
        #: state set up by fixtures broader than a function: theirs, not a test's
        self.fixture_state: set[tuple[ResourceKind, str]] = set()
        self.left_globals: set[str] = set()
        #: module globals the marker's threaded tasks of one test wrote at once
        self.global_writes: list[GlobalWrite] = []
        self.serially_failed: set[str] = set()
        self.test: str | None = None
        self.phase = "setup"
        self.fixtures: list[tuple[str, str]] = []
        self.before: audit.Snapshot | None = None
        self.last_after: audit.Snapshot | None = None
        self._modules: list[types.ModuleType] = []
        self._modules_seen = -1
        self.fingerprints = audit.Fingerprints()
        self._names: dict[tuple[tuple[object, ...], str | None], Names] = {}
        self.started = timing.perf_counter()
        self.section: SafetySection | None = None
        #: the confirming run's environment: the session's, before a test changed it
        self.environ = dict(os.environ)

    # --- who is running ------------------------------------------------------------
    def _set_owner(self) -> None:
        if self.test is None:
            self.recorder.owner = None
            return
        fixture, scope = self.fixtures[-1] if self.fixtures else (None, None)
        self.recorder.owner = Owner(self.test, self.phase, fixture, scope)

    def _watched_modules(self) -> list[types.ModuleType]:
        """The project's modules (under the rootdir, not installed packages, not the
        framework), looked up again only when something was imported."""
        if len(sys.modules) != self._modules_seen:
            self._modules_seen = len(sys.modules)
            root = self.rootdir.rstrip(os.sep) + os.sep
            prefixes = tuple(
                os.path.abspath(p) + os.sep for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}
            )
            framework = audit.FRAMEWORK_PACKAGES
            self._modules = [
                m
                for name, m in list(sys.modules.items())
                if isinstance(m, types.ModuleType)
                and isinstance(getattr(m, "__file__", None), str)
                and str(m.__file__).startswith(root)
                and not str(m.__file__).startswith(prefixes)
                and "site-packages" not in str(m.__file__)
                and name.partition(".")[0] not in framework
            ]
        return self._modules

    def _named_by(self, item: pytest.Item) -> Names:
        """What the item's function and fixtures name; the tests of one parametrized
        function share it (code does not change within a session)."""
        functions = tuple(_functions(item))
        module = getattr(getattr(item, "module", None), "__name__", None)
        key = (functions, module)
        try:
            names = self._names.get(key)
        except TypeError:  # a fixture function that cannot be hashed
            return named_by(functions, module)
        if names is None:
            names = self._names[key] = named_by(functions, module)
        return names

    def _watch_thread_batch(self, tasks: int) -> Callable[[], None]:
        """Before the marker's thread backend runs *tasks* at once: what to call after,
        which notes the module globals the tasks rebound or filled meanwhile."""
        test, item = self.test, self.items.get(self.test or "")
        if test is None or tasks < 2:
            return _nothing
        before = self.fingerprints.take(self._watched_modules())

        def after() -> None:
            now = self.fingerprints.take(self._watched_modules())
            location = _test_location(item) if item is not None else test
            self.global_writes.extend(
                GlobalWrite(test, name, location, tasks)
                for name in audit.changed_globals(before, now)
            )

        return after

    def _snapshot(self) -> audit.Snapshot:
        """A snapshot, whose own reads of ``os.environ`` are no test's."""
        owner, self.recorder.owner = self.recorder.owner, None
        try:
            return audit.take_snapshot(self._watched_modules(), self.fingerprints)
        finally:
            self.recorder.owner = owner

    # --- session -------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.started = timing.perf_counter()
        audit.activate(self.recorder)
        THREAD_BATCH_WATCHERS.append(self._watch_thread_batch)

    def _stop_watching(self) -> None:
        audit.deactivate()
        while self._watch_thread_batch in THREAD_BATCH_WATCHERS:
            THREAD_BATCH_WATCHERS.remove(self._watch_thread_batch)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.last_after = None
        for item in session.items:
            self.items[item.nodeid] = item
            fixtures = frozenset(getattr(item, "fixturenames", ()))
            self.places[item.nodeid] = TestPlace(item.nodeid, _group(item), fixtures)

    # --- tests ---------------------------------------------------------------------
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.order.setdefault(nodeid, len(self.order))
        item = self.items.get(nodeid)
        if self.left_globals and item is not None:
            names = self._named_by(item)
            for name in sorted(self.left_globals):
                if names.names(name):
                    self.global_uses.append(
                        StateUse(nodeid, "call", ResourceKind.GLOBAL, name, _test_location(item))
                    )
        # What the last test left is what this one starts from: between the two only
        # pytest ran (and a rerun that changed nothing costs one snapshot, not two).
        self.before = self.last_after if self.last_after is not None else self._snapshot()
        self.last_after = None
        self.test, self.phase, self.fixtures = nodeid, "setup", []
        self.recorder.env_writes, self.recorder.chdir_location = [], ""
        self._set_owner()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.phase = "setup"
        self._set_owner()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        self.phase = "call"
        self._set_owner()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        self.phase = "teardown"
        self._set_owner()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.serially_failed.add(report.nodeid)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        recorder = self.recorder
        self.test = None
        self._set_owner()
        before, item = self.before, self.items.get(nodeid)
        if before is None:
            return
        after = self.last_after = self._snapshot()
        location = _test_location(item) if item is not None else nodeid
        for state in audit.left_state(
            nodeid, before, after, recorder.env_writes, recorder.chdir_location, location
        ):
            if (state.kind, state.resource) in self.fixture_state:
                continue
            self.left.append(state)
            if state.kind is ResourceKind.ENV:
                recorder.left_env.add(state.resource)
            elif state.kind is ResourceKind.CWD:
                recorder.left_cwd = after.cwd
            elif state.kind is ResourceKind.GLOBAL:
                self.left_globals.add(state.resource)
        self.before = None

    # --- fixtures ------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Generator[None, Any, Any]:
        scope = str(fixturedef.scope)
        broad = scope != "function" and self.test is not None
        before = self._snapshot() if broad else None
        self.fixtures.append((str(fixturedef.argname), scope))
        self._set_owner()
        try:
            return (yield)
        finally:
            self.fixtures.pop()
            self._set_owner()
            if before is not None:
                after = self._snapshot()
                for state in audit.left_state("", before, after, (), "", ""):
                    self.fixture_state.add((state.kind, state.resource))
            fixturedef.addfinalizer(
                functools.partial(self._fixture_teardown, str(fixturedef.argname), scope)
            )

    def _fixture_teardown(self, name: str, scope: str) -> None:
        self.fixtures.append((name, scope))
        self._set_owner()

    def pytest_fixture_post_finalizer(self, fixturedef: Any, request: Any) -> None:
        if self.fixtures and self.fixtures[-1][0] == fixturedef.argname:
            self.fixtures.pop()
            self._set_owner()

    # --- end of session ------------------------------------------------------------
    # tryfirst: the section exists before the report plugin builds the document.
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._stop_watching()
        self.test = None
        recorder = self.recorder
        uses = [
            StateUse(owner.test, owner.phase, kind, resource, location)
            for owner, kind, resource, location in recorder.uses
        ] + self.global_uses
        factory = getattr(self.config, "_tmp_path_factory", None)
        base = getattr(factory, "_basetemp", None)
        given = getattr(factory, "_given_basetemp", None)
        # pytest-of-<user> holds every run's base (it prunes old ones at the first
        # tmp_path of a session); a --basetemp given is the base itself.
        bases = () if base is None else (str(base) if given is not None else str(base.parent),)
        section = build_safety_section(
            recorder.events, self.left, uses, self.places, self.order, bases, self.global_writes
        )
        if (
            self.options.safety_confirm is not None
            and session.exitstatus != pytest.ExitCode.INTERRUPTED
        ):
            section = self._confirm(session, section)
        self.section = section
        if self.options.safety_fail and section.findings and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _confirm(self, session: pytest.Session, section: SafetySection) -> SafetySection:
        workers = self.options.safety_confirm
        assert workers is not None
        tests = [t for t in confirmable_tests(section, list(self.order)) if t in self.items]
        if not tests:
            return section
        arguments = tests
        if sum(len(t) + 1 for t in tests) > MAX_CONFIRM_ARGUMENT_BYTES:
            arguments = list(dict.fromkeys(t.split("::", 1)[0] for t in tests))
        wall = timing.perf_counter() - self.started
        inifile = self.config.inipath
        command = ConfirmCommand(
            workers=workers,
            arguments=tuple(arguments),
            rootdir=self.rootdir,
            inifile=str(inifile) if inifile is not None else None,
            timeout_s=max(CONFIRM_TIMEOUT_MIN_S, CONFIRM_TIMEOUT_FACTOR * wall),
            environ=self.environ,
        )
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"parallel safety: rerunning {len(tests)} tests under -n {workers} to confirm "
                f"{len(section.findings)} findings"
            )
        run = run_confirmation(command, tests)
        if run.problem == INTERRUPTED:
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        run = replace(run, failed=tuple(t for t in run.failed if t not in self.serially_failed))
        return with_confirmation(section, run)

    def contribute(self, document: RunDocument) -> RunDocument:
        """The ``safety`` section of the run document."""
        return replace(document, safety=self.section)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.section is None or self.options.report:
            return  # --parallel-report prints it within its own section
        from pytest_parallel_lab.output.safety_text import render_safety_section

        terminalreporter.write_sep("=", SECTION_TITLE)
        width = self.config.get_terminal_writer().fullwidth
        verbose = max(0, self.config.getoption("verbose"))
        for line in render_safety_section(self.section, width, verbose).splitlines():
            terminalreporter.write_line(line)

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self) -> None:
        self._stop_watching()
        self.items, self.places = {}, {}
        self.recorder = audit.AuditRecorder(self.rootdir)
