"""pytest glue: the ``parallel`` marker's items, the session state, the ``parallel_map``
fixture and the report (options are in ``options.py``, running marked items in
``marked_items.py``).

Everything that measures or analyses lives in pytest-free modules; this module only
translates between pytest and them. State lives on a :class:`LabSession` stored under
a ``StashKey``.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from pytest_parallel_lab import hookspecs, options, suite_plugin
from pytest_parallel_lab.backends.builtin import BUILTIN_BACKENDS
from pytest_parallel_lab.backends.registry import BackendRegistry, RunnerCache
from pytest_parallel_lab.marked.marker import (
    Defaults,
    MarkerError,
    ParallelSpec,
    auto_workers,
    parse_marker,
    usable_cpus,
)

if TYPE_CHECKING:
    # Imported where used: a run without marked tests and without a report never
    # loads the measurement, analysis and document modules.
    from pytest_parallel_lab.document.run import Environment, ResultRecord, RunDocument
    from pytest_parallel_lab.marked.hooks import ParallelMap
    from pytest_parallel_lab.marked.measure import Settings

BACKEND_ARG = "_parallel_lab_backend"
ITEM_HOOKS_NAME = "parallel-lab-marked-items"
WORKERS_ARG = "_parallel_lab_workers"
REPORT_ATTRIBUTE = "parallel_lab_results"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


# --- session state ------------------------------------------------------------------


@dataclass
class LabSession:
    """Per-session state: backends, started pools, collected results."""

    config: pytest.Config
    registry: BackendRegistry
    defaults: Defaults
    cpus: int
    xdist_workers: int
    xdist_worker: str | None
    runners: RunnerCache = field(default_factory=RunnerCache)
    #: Whether collection met a marked test (only then are the per-test hooks added).
    marked_collected: bool = False
    results: list[ResultRecord] = field(default_factory=list)
    document: RunDocument | None = None

    @property
    def reporting(self) -> bool:
        option = self.config.getoption
        return bool(
            option("parallel_report") or option("parallel_report_json") or option("parallel_html")
        )

    @functools.cached_property
    def environment(self) -> Environment:
        """What this run measured on (the document's ``environment`` block)."""
        from pytest_parallel_lab.environment import describe_environment

        return describe_environment(
            pytest_version=pytest.__version__,
            xdist_workers=self.xdist_workers,
            start_method=self.defaults.start_method,
            label=self.config.getoption("parallel_label"),
        )

    def listen_for_results(self) -> None:
        """Register the per-test hooks (once): only runs with marked tests pay for them."""
        if not self.config.pluginmanager.has_plugin(ITEM_HOOKS_NAME):
            from pytest_parallel_lab.marked.hooks import MarkedItemHooks

            self.config.pluginmanager.register(MarkedItemHooks(self), ITEM_HOOKS_NAME)

    def unavailable(self) -> dict[str, str]:
        reasons = {}
        for backend in self.registry:
            reason = backend.unavailable_reason()
            if reason is not None:
                reasons[backend.name] = reason
        return reasons

    def spec_for(self, node_name: str, marker: pytest.Mark) -> ParallelSpec:
        return parse_marker(
            marker.args,
            marker.kwargs,
            defaults=self.defaults,
            registered=self.registry.names(),
            unavailable=self.unavailable(),
        )

    def settings_for(self, item: pytest.Function, spec: ParallelSpec, **overrides: Any) -> Settings:
        from pytest_parallel_lab.marked.measure import Settings

        params = item.callspec.params
        backend = str(params[BACKEND_ARG])
        if WORKERS_ARG in params:
            workers = int(str(params[WORKERS_ARG]))
        elif spec.workers is not None:
            workers = spec.workers
        else:
            workers = auto_workers(self.cpus, self.xdist_workers)
        return Settings(
            nodeid=item.nodeid,
            test=test_id(item),
            backend=backend,
            workers=workers,
            min_speedup=spec.min_speedup,
            max_rounds=max(self.defaults.max_rounds, spec.rounds),
            expect=spec.expect,
            tasks=spec.tasks,
            rounds=spec.rounds,
            timeout_s=spec.timeout_s,
            start_method=spec.start_method,
            compare_results=spec.compare_results,
            usable_cpus=self.cpus,
            xdist_workers=self.xdist_workers,
            xdist_worker=self.xdist_worker,
            **overrides,
        )


LAB_KEY = pytest.StashKey[LabSession]()


def lab_session(config: pytest.Config) -> LabSession:
    return config.stash[LAB_KEY]


@pytest.hookimpl(trylast=True)
def pytest_parallel_lab_register_backends(registry: BackendRegistry) -> None:
    """The built-in backends, registered like any plugin's."""
    for backend in BUILTIN_BACKENDS:
        registry.register(backend)


def _xdist_counts(config: pytest.Config) -> tuple[int, str | None]:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return int(workerinput.get("workercount", 1)), str(workerinput.get("workerid"))
    numprocesses = getattr(config.option, "numprocesses", None)
    dist = getattr(config.option, "dist", "no")
    if isinstance(numprocesses, int) and numprocesses > 0 and dist != "no":
        return numprocesses, None
    return 0, None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "parallel(backend='all', workers='auto', tasks=8, rounds=5, start_method=None, timeout=60, "
        "compare_results=True): measure the test body serially and under each backend "
        "(serial, thread, process, multiprocessing, asyncio) and report the speedup.",
    )
    registry = BackendRegistry()
    try:
        config.hook.pytest_parallel_lab_register_backends(registry=registry)
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(
            f"pytest_parallel_lab_register_backends: {exc}. Fix: give the plugin's backend "
            "another name (the built-ins are serial, thread, process, multiprocessing, asyncio) "
            "and implement the Backend protocol"
        ) from None
    xdist_workers, xdist_worker = _xdist_counts(config)
    if xdist_worker is None:
        options.check_output_options(config)
    defaults = options.read_defaults(config)
    for name in defaults.backends or ():
        backend = registry.get(name)
        if backend is None:
            raise pytest.UsageError(
                f"--parallel-backend: unknown backend {name!r}; "
                f"available: {', '.join(registry.names())}"
            )
        reason = backend.unavailable_reason()
        if reason is not None:
            raise pytest.UsageError(
                f"--parallel-backend: backend {name!r} is not available here: {reason}"
            )
    lab = LabSession(
        config=config,
        registry=registry,
        defaults=defaults,
        cpus=usable_cpus(),
        xdist_workers=xdist_workers,
        xdist_worker=xdist_worker,
    )
    config.stash[LAB_KEY] = lab
    if xdist_workers and xdist_worker is None:
        lab.listen_for_results()  # the xdist controller: results arrive from workers
    suite_plugin.configure(config)


def write_output(
    session: pytest.Session, option: str, path: str, write: Callable[[str], None]
) -> None:
    """Write a file the user asked for. A failure (disk full, permissions changed during
    the run) is one warning naming the option and a failed exit status, never a
    traceback; the file is written whole or not at all."""
    target = os.path.join(session.config.invocation_params.dir, path)
    try:
        write(target)
    except OSError as exc:
        warnings.warn(
            pytest.PytestWarning(
                f"{options.flag(option)}={path}: the file could not be written "
                f"({exc.strerror or exc}); nothing was written. Fix: free space or give "
                "a file path in a writable directory"
            ),
            stacklevel=1,
        )
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    lab = config.stash.get(LAB_KEY, None)
    if lab is not None:
        lab.runners.close_all()
        # Printed and saved by now. Dropped before pytest's own unconfigure runs a full
        # garbage collection, which would otherwise walk every row of a large suite.
        lab.document = None


# --- collection: one item per backend ---------------------------------------------------


def marker_for(node: pytest.Item | Any, config: pytest.Config) -> pytest.Mark | None:
    """The node's parallel marker; with --parallel-all, an implicit one for every test."""
    marker: pytest.Mark | None = node.get_closest_marker("parallel")
    if marker is None and config.getoption("parallel_all"):
        marker = IMPLICIT_MARK
    return marker


#: What --parallel-all puts on unmarked tests (backends come from the defaults).
IMPLICIT_MARK = pytest.mark.parallel.mark


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = marker_for(metafunc.definition, metafunc.config)
    if marker is None:
        return
    lab = lab_session(metafunc.config)
    lab.marked_collected = True
    try:
        spec = lab.spec_for(metafunc.definition.nodeid, marker)
    except MarkerError:
        return  # reported as the item's error in pytest_runtest_setup
    metafunc.fixturenames.append(BACKEND_ARG)
    metafunc.parametrize(BACKEND_ARG, [pytest.param(name, id=name) for name in spec.backends])
    if spec.workers_sweep:
        metafunc.fixturenames.append(WORKERS_ARG)
        metafunc.parametrize(WORKERS_ARG, [pytest.param(n, id=f"w{n}") for n in spec.workers_sweep])


@pytest.fixture
def _parallel_lab_backend(request: pytest.FixtureRequest) -> str:
    """The backend this item measures (the id part ``[thread]``)."""
    return str(request.param)


@pytest.fixture
def _parallel_lab_workers(request: pytest.FixtureRequest) -> int:
    """The worker count of a sweep item (the id part ``[w4]``)."""
    return int(request.param)


def test_id(item: pytest.Function) -> str:
    """The node id without this plugin's parts of the parameter id (backend, workers)."""
    base = item.nodeid.split("[", 1)[0]
    params = item.callspec.params
    own = [str(params[BACKEND_ARG])]
    if WORKERS_ARG in params:
        own.append(f"w{params[WORKERS_ARG]}")
    suffix = "-".join(own)
    ids = item.callspec.id
    if ids == suffix:
        return base
    for rest in (ids.removesuffix(f"-{suffix}"), ids.removeprefix(f"{suffix}-")):
        if rest != ids:
            return f"{base}[{rest}]"
    return f"{base}[{ids}]"


def marked(item: pytest.Item) -> pytest.Mark | None:
    return marker_for(item, item.config) if isinstance(item, pytest.Function) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lab = lab_session(config)
    if lab.marked_collected:
        lab.listen_for_results()


def validate_marker(item: pytest.Item) -> None:
    """An item whose marker did not parse fails at setup with the parser's message."""
    marker = marked(item)
    if marker is None or (hasattr(item, "callspec") and BACKEND_ARG in item.callspec.params):
        return
    lab = lab_session(item.config)
    try:
        lab.spec_for(item.nodeid, marker)
    except MarkerError as exc:
        pytest.fail(f"{item.nodeid}: {exc}", pytrace=False)


def spec_and_backend(item: pytest.Item) -> ParallelSpec | None:
    marker = marked(item)
    if marker is None or not hasattr(item, "callspec") or BACKEND_ARG not in item.callspec.params:
        return None
    return lab_session(item.config).spec_for(item.nodeid, marker)


@pytest.fixture
def parallel_map(request: pytest.FixtureRequest) -> ParallelMap:
    """Measure ``map(fn, iterable)`` serially and under the test's backend.

    In a test marked ``@pytest.mark.parallel``, the body runs once and every call of
    ``parallel_map(fn, iterable)`` is the measured workload; it returns the results in
    order, like ``Pool.map`` and ``executor.map``.
    """
    from pytest_parallel_lab.marked.hooks import ParallelMap

    assert isinstance(request.node, pytest.Function)
    return ParallelMap(request.node)


def pytest_sessionfinish(session: pytest.Session) -> None:
    lab = lab_session(session.config)
    lab.runners.close_all()
    if lab.xdist_worker is not None or not lab.reporting:
        return
    from pytest_parallel_lab.document.run import RunDocument, save_document
    from pytest_parallel_lab.timing import utc_now_iso

    sections: dict[str, Any] = {}
    for contribution in session.config.hook.pytest_parallel_lab_document_sections(
        config=session.config
    ):
        if contribution:
            sections.update(contribution)
    results = tuple(lab.results)
    if results:
        from pytest_parallel_lab.marked.diagnosis import recommendations_section
        from pytest_parallel_lab.marked.scaling import scaling_section

        recommendations = recommendations_section(results, lab.environment)
        if recommendations:
            sections["recommendations"] = recommendations
        scaling = scaling_section(results, lab.environment)
        if scaling:
            sections["scaling"] = scaling
    lab.document = RunDocument(
        environment=lab.environment,
        results=results,
        created=utc_now_iso(),
        sections=sections,
    )
    document = lab.document
    json_path = session.config.getoption("parallel_report_json")
    if json_path:
        write_output(
            session,
            "parallel_report_json",
            json_path,
            lambda target: save_document(document, target),
        )
    html_path = session.config.getoption("parallel_html")
    if html_path:
        from pytest_parallel_lab.output.html import write_html

        title = session.config.getoption("parallel_label") or "pytest-parallel-lab"
        write_output(
            session,
            "parallel_html",
            html_path,
            lambda target: write_html([document], [title], target),
        )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lab = config.stash.get(LAB_KEY, None)
    if lab is None or lab.document is None or not config.getoption("parallel_report"):
        return
    terminalreporter.write_sep("=", "pytest-parallel-lab")
    from pytest_parallel_lab.output.text import (
        render_document,  # tabulate is imported only to print a report
    )

    for line in render_document(lab.document).splitlines():
        terminalreporter.write_line(line)
