"""Pytest glue for suite analysis: its options and when its hooks are registered.

The hook objects (``suite_hooks.py``) are imported and registered by :func:`configure`
only when a report, a JSON file, a trace or a prediction from a file was asked for, so
a plain run neither imports nor pays for them.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest

PLUGIN_NAME = "parallel-lab-suite"
XDIST_PLUGIN_NAME = "parallel-lab-suite-xdist"
REPORT_ATTRIBUTE = "parallel_lab_suite"

HELP_TRACE = "Write a Chrome trace-event JSON of tests and fixtures per worker to PATH."
HELP_PREDICT = "Worker counts to predict the xdist wall time for, e.g. 2,4,8 (default 2..CPUs)."
HELP_PREDICT_FROM = "Predict the xdist wall time from a saved --parallel-report-json run."


def worker_counts_option(text: str) -> list[int]:
    """Parse ``2,4,8``; argparse turns the error into a usage error naming the option."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected worker counts like 2,4,8, got {text!r}"
        ) from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"worker counts must be positive integers, got {text!r}")
    return counts


def add_options(group: Any, parser: pytest.Parser) -> None:
    """Add the suite-analysis options to the ``parallel-lab`` group (called by plugin.py)."""
    group.addoption("--parallel-trace", metavar="PATH", default=None, help=HELP_TRACE)
    group.addoption(
        "--parallel-predict",
        metavar="N,N",
        type=worker_counts_option,
        default=None,
        help=HELP_PREDICT,
    )
    group.addoption("--parallel-predict-from", metavar="PATH", default=None, help=HELP_PREDICT_FROM)
    parser.addini("parallel_predict", HELP_PREDICT, default="")


def configure(config: pytest.Config) -> None:
    """Register the suite plugin when enabled (called from plugin.py's pytest_configure)."""
    wanted = any(
        config.getoption(name, None)
        for name in (
            "parallel_report",
            "parallel_report_json",
            "parallel_trace",
            "parallel_predict_from",
        )
    )
    if not wanted or config.pluginmanager.has_plugin(PLUGIN_NAME):
        return
    from pytest_parallel_lab.suite.hooks import SuiteTimingPlugin, XdistSuiteHooks

    plugin = SuiteTimingPlugin(config)
    config.pluginmanager.register(plugin, PLUGIN_NAME)
    if config.pluginmanager.hasplugin("xdist") and not plugin.is_worker:
        config.pluginmanager.register(XdistSuiteHooks(plugin), XDIST_PLUGIN_NAME)


def add_trace_events(config: pytest.Config, events: list[dict[str, Any]]) -> None:
    """Add events (``trace.complete_event``) to the trace, e.g. pool-worker tasks."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is not None:
        plugin.extra_trace_events.extend(events)


def trace_origin(config: pytest.Config) -> float | None:
    """The perf_counter value trace times count from, or None when no trace is written."""
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if plugin is not None and config.getoption("parallel_trace", None):
        return float(plugin.origin)
    return None
