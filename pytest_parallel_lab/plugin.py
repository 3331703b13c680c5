"""pytest glue: options, the ``parallel`` marker, the ``parallel_map`` fixture, the report.

Everything that measures or analyses lives in pytest-free modules; this module only
translates between pytest and them. State lives on a :class:`LabSession` stored under
a ``StashKey``.
"""

from __future__ import annotations

import argparse
import functools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from . import hookspecs, suite_plugin
from .backends.builtin import BUILTIN_BACKENDS
from .backends.registry import BackendRegistry, RunnerCache
from .marker import (
    DEFAULT_MAX_ROUNDS,
    DEFAULT_ROUNDS,
    DEFAULT_TASKS,
    DEFAULT_TIMEOUT_S,
    Defaults,
    MarkerError,
    ParallelSpec,
    auto_workers,
    parse_marker,
    parse_min_speedup,
    parse_start_method,
    parse_timeout,
    usable_cpus,
)

if TYPE_CHECKING:
    # Imported where used: a run without marked tests and without a report never
    # loads the measurement, analysis and document modules.
    from .document import Environment, ResultRecord, RunDocument
    from .marked_items import ParallelMap
    from .workload import Settings

BACKEND_ARG = "_parallel_lab_backend"
ITEM_HOOKS_NAME = "parallel-lab-marked-items"
WORKERS_ARG = "_parallel_lab_workers"
REPORT_ATTRIBUTE = "parallel_lab_results"

HELP_REPORT = (
    "Show the pytest-parallel-lab report (speedups of marked tests) in the terminal summary."
)
HELP_JSON = "Write the pytest-parallel-lab results as JSON to PATH (atomically)."
HELP_ROUNDS = f"Paired measurement rounds per marked test (default {DEFAULT_ROUNDS})."
HELP_TIMEOUT = (
    f"Seconds one run of a workload may take before it fails (default {DEFAULT_TIMEOUT_S:g})."
)
HELP_TASKS = f"Default tasks per measurement for marked tests (default {DEFAULT_TASKS})."
HELP_WORKERS = (
    'Default workers for marked tests: an int or "auto" (default "auto": the usable CPUs).'
)
HELP_START = "Default multiprocessing start method for process backends (fork, spawn, forkserver)."
HELP_LABEL = "A name for this run, stored in the JSON environment (for comparing runs)."
HELP_HTML = "Write a self-contained HTML report with charts to PATH."
HELP_BACKEND = "Comma-separated backends that replace the backends of every marked test."
HELP_ALL = "Treat every selected test as marked (with --parallel-backend, default thread,process)."
HELP_MIN_SPEEDUP = "Fail a marked test whose speedup interval lies wholly below this (e.g. 1.5)."
HELP_MAX_ROUNDS = (
    "Rounds a min_speedup gate may grow to before it says inconclusive "
    f"(default {DEFAULT_MAX_ROUNDS})."
)
#: Backends --parallel-all uses when --parallel-backend is not given.
PARALLEL_ALL_BACKENDS = ("thread", "process")


# --- option parsing (argparse converters: bad values are usage errors) ------------


def _option_error(option: str, problem: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{option}: {problem}")


def positive_int_option(option: str) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _option_error(option, f"expected an integer >= 1, got {text!r}") from None
        if value < 1:
            raise _option_error(option, f"expected an integer >= 1, got {text!r}")
        return value

    return convert


def timeout_option(text: str) -> float:
    try:
        return parse_timeout("timeout", float(text))
    except (ValueError, MarkerError):
        raise _option_error(
            "--parallel-timeout", f"expected a positive number of seconds, got {text!r}"
        ) from None


def workers_option(text: str) -> int | None:
    if text == "auto":
        return None
    return positive_int_option("--parallel-workers")(text)


def backend_list_option(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise _option_error(
            "--parallel-backend", f"expected backend names like thread,process, got {text!r}"
        )
    return names


def min_speedup_option(text: str) -> float:
    try:
        return parse_min_speedup("min_speedup", float(text))
    except (ValueError, MarkerError):
        raise _option_error(
            "--parallel-min-speedup", f"expected a number above 0, got {text!r}"
        ) from None


def start_method_option(text: str) -> str | None:
    try:
        return parse_start_method("start_method", text)
    except MarkerError as exc:
        raise _option_error("--parallel-start-method", str(exc).split(": ", 1)[1]) from None


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(
        "parallel-lab", "pytest-parallel-lab: measure speedups under concurrency"
    )
    group.addoption("--parallel-report", action="store_true", default=False, help=HELP_REPORT)
    group.addoption("--parallel-report-json", metavar="PATH", default=None, help=HELP_JSON)
    group.addoption("--parallel-html", metavar="PATH", default=None, help=HELP_HTML)
    group.addoption("--parallel-label", metavar="NAME", default=None, help=HELP_LABEL)
    group.addoption(
        "--parallel-rounds",
        metavar="N",
        type=positive_int_option("--parallel-rounds"),
        help=HELP_ROUNDS,
    )
    group.addoption("--parallel-timeout", metavar="SECONDS", type=timeout_option, help=HELP_TIMEOUT)
    group.addoption(
        "--parallel-tasks",
        metavar="N",
        type=positive_int_option("--parallel-tasks"),
        help=HELP_TASKS,
    )
    group.addoption("--parallel-workers", metavar="N", type=workers_option, help=HELP_WORKERS)
    group.addoption(
        "--parallel-start-method", metavar="METHOD", type=start_method_option, help=HELP_START
    )
    group.addoption(
        "--parallel-backend", metavar="NAMES", type=backend_list_option, help=HELP_BACKEND
    )
    group.addoption("--parallel-all", action="store_true", default=False, help=HELP_ALL)
    group.addoption(
        "--parallel-min-speedup", metavar="X", type=min_speedup_option, help=HELP_MIN_SPEEDUP
    )
    group.addoption(
        "--parallel-max-rounds",
        metavar="N",
        type=positive_int_option("--parallel-max-rounds"),
        help=HELP_MAX_ROUNDS,
    )
    parser.addini("parallel_min_speedup", HELP_MIN_SPEEDUP, default="")
    parser.addini("parallel_max_rounds", HELP_MAX_ROUNDS, default=str(DEFAULT_MAX_ROUNDS))
    parser.addini("parallel_rounds", HELP_ROUNDS, default=str(DEFAULT_ROUNDS))
    parser.addini("parallel_timeout", HELP_TIMEOUT, default=str(DEFAULT_TIMEOUT_S))
    parser.addini("parallel_tasks", HELP_TASKS, default=str(DEFAULT_TASKS))
    parser.addini("parallel_workers", HELP_WORKERS, default="auto")
    parser.addini("parallel_start_method", HELP_START, default="")
    suite_plugin.add_options(group, parser)


def _ini_value(config: pytest.Config, name: str, convert: Callable[[str], Any]) -> Any:
    text = str(config.getini(name)).strip()
    try:
        return convert(text)
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(
            f"ini option {name} = {text!r}: {str(exc).split(': ', 1)[1]}"
        ) from None


def _defaults(config: pytest.Config) -> Defaults:
    def pick(option: str, ini: str, convert: Callable[[str], Any]) -> Any:
        value = config.getoption(option)
        return value if value is not None else _ini_value(config, ini, convert)

    start_ini = str(config.getini("parallel_start_method")).strip()
    start = config.getoption("parallel_start_method")
    if start is None and start_ini:
        start = _ini_value(config, "parallel_start_method", start_method_option)
    return Defaults(
        rounds=pick("parallel_rounds", "parallel_rounds", positive_int_option("parallel_rounds")),
        timeout_s=pick("parallel_timeout", "parallel_timeout", timeout_option),
        tasks=pick("parallel_tasks", "parallel_tasks", positive_int_option("parallel_tasks")),
        workers=config.getoption("parallel_workers")
        if config.getoption("parallel_workers") is not None
        else _ini_value(config, "parallel_workers", workers_option),
        start_method=start,
        min_speedup=config.getoption("parallel_min_speedup")
        if config.getoption("parallel_min_speedup") is not None
        else (
            _ini_value(config, "parallel_min_speedup", min_speedup_option)
            if str(config.getini("parallel_min_speedup")).strip()
            else None
        ),
        max_rounds=pick(
            "parallel_max_rounds", "parallel_max_rounds", positive_int_option("parallel_max_rounds")
        ),
        backends=config.getoption("parallel_backend")
        or (PARALLEL_ALL_BACKENDS if config.getoption("parallel_all") else None),
    )


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
        from .environment import describe_environment

        return describe_environment(
            pytest_version=pytest.__version__,
            xdist_workers=self.xdist_workers,
            start_method=self.defaults.start_method,
            label=self.config.getoption("parallel_label"),
        )

    def listen_for_results(self) -> None:
        """Register the per-test hooks (once): only runs with marked tests pay for them."""
        if not self.config.pluginmanager.has_plugin(ITEM_HOOKS_NAME):
            from .marked_items import MarkedItemHooks

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
        from .workload import Settings

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
        check_output_options(config)
    defaults = _defaults(config)
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


#: The options that name a file this plugin writes at the end of the session.
OUTPUT_OPTIONS = ("parallel_report_json", "parallel_html", "parallel_trace")


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def check_output_options(config: pytest.Config) -> None:
    """A report path that cannot be written is a usage error before any test runs."""
    paths = [(o, config.getoption(o, None)) for o in OUTPUT_OPTIONS]
    if not any(path for _, path in paths):
        return
    from .document import output_path_problem

    for option, path in paths:
        if path:
            problem = output_path_problem(os.path.join(config.invocation_params.dir, path))
            if problem is not None:
                raise pytest.UsageError(
                    f"{_flag(option)}={path}: {problem}. "
                    "Fix: give a file path in a writable directory"
                )


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
                f"{_flag(option)}={path}: the file could not be written "
                f"({exc.strerror or exc}); nothing was written. Fix: free space or give "
                "a file path in a writable directory"
            ),
            stacklevel=1,
        )
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR


def pytest_unconfigure(config: pytest.Config) -> None:
    lab = config.stash.get(LAB_KEY, None)
    if lab is not None:
        lab.runners.close_all()


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
    from .marked_items import ParallelMap

    assert isinstance(request.node, pytest.Function)
    return ParallelMap(request.node)


def pytest_sessionfinish(session: pytest.Session) -> None:
    lab = lab_session(session.config)
    lab.runners.close_all()
    if lab.xdist_worker is not None or not lab.reporting:
        return
    from .document import RunDocument, save_document
    from .timing import utc_now_iso

    sections: dict[str, Any] = {}
    for contribution in session.config.hook.pytest_parallel_lab_document_sections(
        config=session.config
    ):
        if contribution:
            sections.update(contribution)
    results = tuple(lab.results)
    if results:
        from .diagnosis import recommendations_section
        from .scaling import scaling_section

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
        from .html_report import write_html

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
    from .report import render_document  # tabulate is imported only to print a report

    for line in render_document(lab.document).splitlines():
        terminalreporter.write_line(line)
