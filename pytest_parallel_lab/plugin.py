"""The pytest plugin: its options, its hookspecs, and the feature plugins it registers.

Module-level hooks only. At configure time the options are read and checked once
(``options.py``); then each feature's glue is registered when it is enabled:
the marked tests always (``marked/hooks.py``: the marker and its items), suite
analysis when something times the suite (``suite/hooks.py``), the collision finder
with ``--parallel-safety`` (``safety/hooks.py``), the report when one was asked for
(``output/hooks.py``). Features never import each other's glue; this
module hands each what it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_parallel_lab import hookspecs
from pytest_parallel_lab.backends.builtin import builtin_backends
from pytest_parallel_lab.backends.registry import BackendRegistry
from pytest_parallel_lab.environment import GilWatch
from pytest_parallel_lab.options import (
    OPTIONS_KEY,
    LabOptions,
    add_options,
    calibrating_run,
    check_dask_scheduler,
    check_output_options,
    check_safety_options,
    lab_options,
    predict_from_saved_run,
    read_options,
)
from pytest_parallel_lab.vocabulary import Role

if TYPE_CHECKING:
    from pytest_parallel_lab.output.hooks import Contributor

MARKED_PLUGIN_NAME = "parallel-lab-marked"
SUITE_PLUGIN_NAME = "parallel-lab-suite"
SUITE_XDIST_PLUGIN_NAME = "parallel-lab-suite-xdist"
REPORT_PLUGIN_NAME = "parallel-lab-report"
GIL_PLUGIN_NAME = "parallel-lab-gil"
SAFETY_PLUGIN_NAME = "parallel-lab-safety"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_parallel_lab_register_backends(registry: BackendRegistry, config: pytest.Config) -> None:
    """The built-in backends, registered like any plugin's (the dask one pointed at
    ``--parallel-dask-scheduler`` when given)."""
    for backend in builtin_backends(lab_options(config).dask_scheduler):
        registry.register(backend)


def pytest_configure(config: pytest.Config) -> None:
    options = read_options(config)
    config.stash[OPTIONS_KEY] = options  # before the backends: the built-ins read it
    registry = _registry(config, options)
    saved = calibrating = None
    if options.xdist.role is not Role.WORKER:
        check_output_options(options)
        check_safety_options(options, config.pluginmanager.hasplugin("xdist"))
        saved = predict_from_saved_run(options)
        calibrating = calibrating_run(options)
    check_dask_scheduler(options)
    from pytest_parallel_lab.marked import hooks as marked_hooks
    from pytest_parallel_lab.marked.session import MARKED_KEY, MarkedSession

    marked = MarkedSession(config, options, registry)
    config.stash[MARKED_KEY] = marked
    watch = GilWatch.now()
    if watch.free_threaded:
        marked.gil_watch = watch
        config.pluginmanager.register(marked_hooks.GilWatchPlugin(marked, watch), GIL_PLUGIN_NAME)
    config.addinivalue_line("markers", marked_hooks.marker_help(marked))
    config.pluginmanager.register(marked_hooks, MARKED_PLUGIN_NAME)
    if options.xdist.role is Role.CONTROLLER:
        marked_hooks.listen_for_results(marked)  # results arrive from the workers
    contributors: list[Contributor] = [marked]
    if options.times_suite:
        from pytest_parallel_lab.suite.hooks import SuiteTimingPlugin, XdistSuiteHooks

        suite = SuiteTimingPlugin(config, options, saved, calibrating)
        config.pluginmanager.register(suite, SUITE_PLUGIN_NAME)
        if config.pluginmanager.hasplugin("xdist") and options.xdist.role is Role.CONTROLLER:
            config.pluginmanager.register(XdistSuiteHooks(suite), SUITE_XDIST_PLUGIN_NAME)
        marked.trace = suite.trace
        contributors.append(suite)
    if options.safety and options.xdist.role is Role.PLAIN:
        # Only here does the process's audit hook get installed (issue 13).
        from pytest_parallel_lab.safety.hooks import SafetyPlugin

        safety = SafetyPlugin(config, options)
        config.pluginmanager.register(safety, SAFETY_PLUGIN_NAME)
        contributors.append(safety)
    if options.reporting and options.xdist.role is not Role.WORKER:
        from pytest_parallel_lab.output.hooks import ReportPlugin

        config.pluginmanager.register(ReportPlugin(options, contributors), REPORT_PLUGIN_NAME)


def _registry(config: pytest.Config, options: LabOptions) -> BackendRegistry:
    """Every plugin's backends; --parallel-backend must name available ones."""
    registry = BackendRegistry()
    try:
        config.hook.pytest_parallel_lab_register_backends(registry=registry, config=config)
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(
            f"pytest_parallel_lab_register_backends: {exc}. Fix: give the plugin's backend "
            "another name (the built-ins are serial, thread, process, multiprocessing, asyncio, "
            "interpreter, dask, loky) "
            "and implement the Backend protocol"
        ) from None
    for name in options.defaults.backends or ():
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
    return registry
