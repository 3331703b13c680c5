"""The plugin's options: one ``parallel-lab`` group with ini twins, argparse converters
that turn bad values into usage errors naming the option and the fix, and the marker
defaults read from them."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import pytest

from pytest_parallel_lab import suite_plugin
from pytest_parallel_lab.marked.marker import (
    DEFAULT_MAX_ROUNDS,
    DEFAULT_ROUNDS,
    DEFAULT_TASKS,
    DEFAULT_TIMEOUT_S,
    Defaults,
    MarkerError,
    parse_min_speedup,
    parse_start_method,
    parse_timeout,
)

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


def number_option(
    option: str, parse: Callable[[str, float], float], argument: str, expected: str
) -> Callable[[str], float]:
    """A converter that reads a number and checks it with the marker's own parser."""

    def convert(text: str) -> float:
        try:
            return parse(argument, float(text))
        except (ValueError, MarkerError):
            raise _option_error(option, f"expected {expected}, got {text!r}") from None

    return convert


timeout_option = number_option(
    "--parallel-timeout", parse_timeout, "timeout", "a positive number of seconds"
)
min_speedup_option = number_option(
    "--parallel-min-speedup", parse_min_speedup, "min_speedup", "a number above 0"
)


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


def start_method_option(text: str) -> str | None:
    try:
        return parse_start_method("start_method", text)
    except MarkerError as exc:
        raise _option_error("--parallel-start-method", str(exc).split(": ", 1)[1]) from None


def add_options(parser: pytest.Parser) -> None:
    """Every option and ini value of the plugin, in one ``parallel-lab`` group."""
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


def read_defaults(config: pytest.Config) -> Defaults:
    """The marker defaults from the command line, else the ini file, else built-in."""

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


#: The options that name a file this plugin writes at the end of the session.
OUTPUT_OPTIONS = ("parallel_report_json", "parallel_html", "parallel_trace")


def flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def check_output_options(config: pytest.Config) -> None:
    """A report path that cannot be written is a usage error before any test runs."""
    paths = [(o, config.getoption(o, None)) for o in OUTPUT_OPTIONS]
    if not any(path for _, path in paths):
        return
    from pytest_parallel_lab.document.run import output_path_problem

    for option, path in paths:
        if path:
            problem = output_path_problem(os.path.join(config.invocation_params.dir, path))
            if problem is not None:
                raise pytest.UsageError(
                    f"{flag(option)}={path}: {problem}. "
                    "Fix: give a file path in a writable directory"
                )
