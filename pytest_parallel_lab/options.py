"""Every option of the plugin, read once at configure time into one frozen object.

One ``parallel-lab`` group with ini twins; argparse converters turn bad command-line
values into usage errors naming the option and the fix, and :func:`read_options`
checks the ini values with the same converters before any test runs. Everything
else asks the :class:`LabOptions` in the config's stash, so there is one answer to
"is reporting on?", "does the suite get timed?" and "which xdist role is this?".
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import pytest

from pytest_parallel_lab.capacity import CpuCapacity, read_capacity
from pytest_parallel_lab.environment import XdistRun, describe_environment
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
from pytest_parallel_lab.vocabulary import Role

if TYPE_CHECKING:
    from pytest_parallel_lab.document.records import Environment
    from pytest_parallel_lab.document.suite import SuiteSection
    from pytest_parallel_lab.suite.simulate import SavedPrediction

T = TypeVar("T")

HELP_REPORT = (
    "Show the pytest-parallel-lab report (speedups of marked tests) in the terminal summary."
)
HELP_JSON = "Write the pytest-parallel-lab results as JSON to PATH (atomically)."
HELP_HTML = "Write a self-contained HTML report with charts to PATH."
HELP_LABEL = "A name for this run, stored in the JSON environment (for comparing runs)."
HELP_ROUNDS = f"Paired measurement rounds per marked test (default {DEFAULT_ROUNDS})."
HELP_TIMEOUT = (
    f"Seconds one run of a workload may take before it fails (default {DEFAULT_TIMEOUT_S:g})."
)
HELP_TASKS = f"Default tasks per measurement for marked tests (default {DEFAULT_TASKS})."
HELP_WORKERS = (
    'Default workers for marked tests: an int or "auto" (default "auto": the usable CPUs).'
)
HELP_START = "Default multiprocessing start method for process backends (fork, spawn, forkserver)."
HELP_BACKEND = "Comma-separated backends that replace the backends of every marked test."
HELP_ALL = "Treat every selected test as marked (with --parallel-backend, default thread,process)."
HELP_MIN_SPEEDUP = "Fail a marked test whose speedup interval lies wholly below this (e.g. 1.5)."
HELP_MAX_ROUNDS = (
    "Rounds a min_speedup gate may grow to before it says inconclusive "
    f"(default {DEFAULT_MAX_ROUNDS})."
)
HELP_TRACE = "Write a Chrome trace-event JSON of tests and fixtures per worker to PATH."
HELP_PREDICT_SHARDS = (
    "Also predict a CI matrix of 1..K machines each running -n N (split by duration, "
    "as pytest-split does)."
)
#: The most machines --parallel-predict-shards simulates.
MAX_PREDICTED_SHARDS = 256
HELP_PREDICT = "Worker counts to predict the xdist wall time for, e.g. 2,4,8 (default 2..CPUs)."
HELP_PREDICT_FROM = "Predict the xdist wall time from a saved --parallel-report-json run."
HELP_CALIBRATE_FROM = (
    "Calibrate this run's xdist prediction with a saved -n N run of the same suite on "
    "this machine (pytest -n 2 --parallel-report-json=PATH): the work tests repeat on a "
    "worker that did not run what warmed their caches, a worker's start-up and session "
    "end, the controller's cost per report."
)
HELP_PREDICT_TX_STARTUP = (
    "Seconds a remote xdist gateway (--tx ssh=..., socket=...) takes to start: the "
    "prediction adds the run's --tx gateways as workers with this start-up and CPUs of "
    "their own (default: like a local worker)."
)
HELP_DASK_SCHEDULER = (
    "Run the dask backend on the cluster at ADDRESS (tcp://host:8786, or a scheduler file) "
    "instead of a LocalCluster of its own; that cluster is never shut down."
)
HELP_SAFETY = (
    "Run the suite serially and find the tests that would collide under pytest -n N "
    "(files, ports, databases, env vars, the working directory, module globals)."
)
HELP_NO_SAFETY = "Turn --parallel-safety off (also when addopts or the ini turn it on)."
HELP_SAFETY_CONFIRM = (
    "Rerun the tests of --parallel-safety's findings under pytest -n N a few times and "
    "report which failed for real (needs pytest-xdist)."
)
HELP_SAFETY_FAIL = "Fail the run (exit status 1) when --parallel-safety finds anything."

#: Backends --parallel-all uses when --parallel-backend is not given.
PARALLEL_ALL_BACKENDS = ("thread", "process")


# --- converters: a bad value is an ArgumentTypeError naming the option ---------------


def _option_error(option: str, problem: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{option}: {problem}")


def positive_int_option(option: str) -> Callable[[str], int]:
    """A converter for an integer >= 1."""

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
    """``auto`` (None) or a positive worker count."""
    if text == "auto":
        return None
    return positive_int_option("--parallel-workers")(text)


def backend_list_option(text: str) -> tuple[str, ...]:
    """``thread,process``; the names are checked against the registry at configure."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise _option_error(
            "--parallel-backend", f"expected backend names like thread,process, got {text!r}"
        )
    return names


def start_method_option(text: str) -> str | None:
    """A start method this platform has."""
    try:
        return parse_start_method("start_method", text)
    except MarkerError as exc:
        raise _option_error("--parallel-start-method", str(exc).split(": ", 1)[1]) from None


def worker_counts_option(text: str) -> tuple[int, ...]:
    """``2,4,8``: positive worker counts to predict."""
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise _option_error(
            "--parallel-predict", f"expected worker counts like 2,4,8, got {text!r}"
        ) from None
    if not counts or min(counts) < 1:
        raise _option_error(
            "--parallel-predict",
            f"worker counts must be positive integers like 2,4,8, got {text!r}",
        )
    return counts


def nonnegative_seconds(text: str) -> float | None:
    """*text* as a finite number of seconds >= 0, or None when it is not one."""
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def tx_startup_option(text: str) -> float:
    """``SECONDS``: a remote gateway's start-up, a finite number >= 0."""
    seconds = nonnegative_seconds(text)
    if seconds is None:
        raise _option_error(
            "--parallel-predict-tx-startup",
            f"expected a number of seconds >= 0 (e.g. 2.5), got {text!r}",
        )
    return seconds


def shards_option(text: str) -> int:
    """``K``: 1 to MAX_PREDICTED_SHARDS machines."""
    shards = positive_int_option("--parallel-predict-shards")(text)
    if shards > MAX_PREDICTED_SHARDS:
        raise _option_error(
            "--parallel-predict-shards",
            f"{shards} machines is more than the {MAX_PREDICTED_SHARDS} it simulates",
        )
    return shards


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
    group.addoption("--parallel-trace", metavar="PATH", default=None, help=HELP_TRACE)
    group.addoption(
        "--parallel-predict", metavar="N,N", type=worker_counts_option, help=HELP_PREDICT
    )
    group.addoption("--parallel-predict-from", metavar="PATH", default=None, help=HELP_PREDICT_FROM)
    group.addoption(
        "--parallel-calibrate-from", metavar="PATH", default=None, help=HELP_CALIBRATE_FROM
    )
    group.addoption(
        "--parallel-predict-shards",
        metavar="K",
        type=shards_option,
        default=None,
        help=HELP_PREDICT_SHARDS,
    )
    group.addoption(
        "--parallel-predict-tx-startup",
        metavar="SECONDS",
        type=tx_startup_option,
        default=None,
        help=HELP_PREDICT_TX_STARTUP,
    )
    group.addoption(
        "--parallel-dask-scheduler", metavar="ADDRESS", default=None, help=HELP_DASK_SCHEDULER
    )
    group.addoption("--parallel-safety", action="store_true", default=None, help=HELP_SAFETY)
    group.addoption(
        "--no-parallel-safety", dest="parallel_safety", action="store_false", help=HELP_NO_SAFETY
    )
    group.addoption(
        "--parallel-safety-confirm",
        metavar="N",
        type=positive_int_option("--parallel-safety-confirm"),
        default=None,
        help=HELP_SAFETY_CONFIRM,
    )
    group.addoption(
        "--parallel-safety-fail", action="store_true", default=False, help=HELP_SAFETY_FAIL
    )
    parser.addini("parallel_rounds", HELP_ROUNDS, default=str(DEFAULT_ROUNDS))
    parser.addini("parallel_timeout", HELP_TIMEOUT, default=str(DEFAULT_TIMEOUT_S))
    parser.addini("parallel_tasks", HELP_TASKS, default=str(DEFAULT_TASKS))
    parser.addini("parallel_workers", HELP_WORKERS, default="auto")
    parser.addini("parallel_start_method", HELP_START, default="")
    parser.addini("parallel_min_speedup", HELP_MIN_SPEEDUP, default="")
    parser.addini("parallel_max_rounds", HELP_MAX_ROUNDS, default=str(DEFAULT_MAX_ROUNDS))
    parser.addini("parallel_predict", HELP_PREDICT, default="")
    parser.addini("parallel_predict_shards", HELP_PREDICT_SHARDS, default="")
    parser.addini("parallel_predict_tx_startup", HELP_PREDICT_TX_STARTUP, default="")
    parser.addini("parallel_dask_scheduler", HELP_DASK_SCHEDULER, default="")
    parser.addini("parallel_safety", HELP_SAFETY, type="bool", default=False)


# --- reading them once ---------------------------------------------------------------


@dataclass(frozen=True)
class LabOptions:
    """What this run asked of the plugin, validated, and the role it plays."""

    report: bool = False
    report_json: str | None = None
    html: str | None = None
    trace: str | None = None
    label: str | None = None
    #: worker counts to predict besides 2..usable CPUs
    predict: tuple[int, ...] = ()
    predict_from: str | None = None
    #: --parallel-calibrate-from: a saved -n N run that calibrates this run's prediction
    calibrate_from: str | None = None
    #: --parallel-predict-shards: predict 1..K machines (None: not asked)
    predict_shards: int | None = None
    #: xdist's ``--tx`` specs of this run (remote ones are predicted as gateways)
    tx: tuple[str, ...] = ()
    #: --parallel-predict-tx-startup: a remote gateway's start-up (None: like a local worker)
    tx_startup: float | None = None
    parallel_all: bool = False
    defaults: Defaults = field(default_factory=Defaults)
    xdist: XdistRun = field(default_factory=XdistRun)
    capacity: CpuCapacity = field(default_factory=lambda: CpuCapacity(1, 1.0))
    #: where relative output paths start (pytest's invocation directory)
    invocation_dir: str = "."
    #: --parallel-dask-scheduler: the cluster the dask backend uses (None: a LocalCluster)
    dask_scheduler: str | None = None
    #: ``--parallel-safety``: find the tests that collide under -n N
    safety: bool = False
    #: ``--parallel-safety-confirm=N``: rerun the findings under -n N
    safety_confirm: int | None = None
    #: ``--parallel-safety-fail``: findings fail the run
    safety_fail: bool = False

    @property
    def cpus(self) -> int:
        """Whole CPUs this process may use (``workers="auto"``)."""
        return self.capacity.usable

    @property
    def reporting(self) -> bool:
        """A report of any kind was asked for: the terminal section, JSON or HTML."""
        return bool(self.report or self.report_json or self.html)

    @property
    def times_suite(self) -> bool:
        """Every test and fixture gets timed: for a report, a trace or a prediction."""
        return self.reporting or bool(self.trace or self.predict_from)

    def path(self, given: str) -> str:
        """*given* (an output or input path option) from pytest's invocation directory."""
        return os.path.join(self.invocation_dir, given)

    @functools.cached_property
    def environment(self) -> Environment:
        """What this run measures on (the document's ``environment`` block); worked out
        when first asked, since a run without marked tests or report never needs it."""
        return describe_environment(
            pytest_version=pytest.__version__,
            capacity=self.capacity,
            xdist_workers=self.xdist.workers,
            start_method=self.defaults.start_method,
            label=self.label,
        )


OPTIONS_KEY = pytest.StashKey[LabOptions]()


def lab_options(config: pytest.Config) -> LabOptions:
    """The options :func:`read_options` stored at configure time."""
    return config.stash[OPTIONS_KEY]


def read_options(config: pytest.Config) -> LabOptions:
    """Every option from the command line, else the ini file, else its default.

    A bad ini value is a usage error here, before any test runs, in every run: also
    when the command line gives the option (issue 14: a bad value in a file is a
    mistake whether or not this run reads it).
    """

    def pick(option: str, ini: str, convert: Callable[[str], T]) -> T | None:
        text = str(config.getini(ini)).strip()
        from_ini = None
        if text:
            try:
                from_ini = convert(text)
            except argparse.ArgumentTypeError as exc:
                where = _ini_source(config, ini)
                raise pytest.UsageError(
                    f"ini option {ini} = {text!r} ({where}): {str(exc).split(': ', 1)[1]}. "
                    f"Fix: correct or remove {ini} in {where}"
                ) from None
        value: T | None = config.getoption(option)
        return from_ini if value is None else value

    def required(value: T | None) -> T:
        assert value is not None  # the ini option has a default
        return value

    parallel_all = bool(config.getoption("parallel_all"))
    defaults = Defaults(
        rounds=required(
            pick("parallel_rounds", "parallel_rounds", positive_int_option("--parallel-rounds"))
        ),
        timeout_s=required(pick("parallel_timeout", "parallel_timeout", timeout_option)),
        tasks=required(
            pick("parallel_tasks", "parallel_tasks", positive_int_option("--parallel-tasks"))
        ),
        workers=pick("parallel_workers", "parallel_workers", workers_option),
        start_method=pick("parallel_start_method", "parallel_start_method", start_method_option),
        min_speedup=pick("parallel_min_speedup", "parallel_min_speedup", min_speedup_option),
        max_rounds=required(
            pick(
                "parallel_max_rounds",
                "parallel_max_rounds",
                positive_int_option("--parallel-max-rounds"),
            )
        ),
        backends=config.getoption("parallel_backend")
        or (PARALLEL_ALL_BACKENDS if parallel_all else None),
    )
    option = config.option
    confirm: int | None = config.getoption("parallel_safety_confirm")
    fail = bool(config.getoption("parallel_safety_fail"))
    given: bool | None = config.getoption("parallel_safety")
    # The command line first (--no-parallel-safety turns it off whatever else says),
    # then the ini; confirming or gating findings asks for them.
    safety = given if given is not None else bool(config.getini("parallel_safety"))
    safety = safety or (given is None and (confirm is not None or fail))
    return LabOptions(
        report=bool(config.getoption("parallel_report")),
        report_json=config.getoption("parallel_report_json"),
        html=config.getoption("parallel_html"),
        trace=config.getoption("parallel_trace"),
        label=config.getoption("parallel_label"),
        predict=pick("parallel_predict", "parallel_predict", worker_counts_option) or (),
        predict_from=config.getoption("parallel_predict_from"),
        calibrate_from=config.getoption("parallel_calibrate_from"),
        predict_shards=pick("parallel_predict_shards", "parallel_predict_shards", shards_option),
        tx=tuple(str(spec) for spec in getattr(option, "tx", None) or ()),
        tx_startup=pick(
            "parallel_predict_tx_startup", "parallel_predict_tx_startup", tx_startup_option
        ),
        parallel_all=parallel_all,
        defaults=defaults,
        xdist=XdistRun.from_settings(
            getattr(config, "workerinput", None),
            getattr(option, "numprocesses", None),
            getattr(option, "dist", "no"),
            getattr(option, "tx", None) or (),
        ),
        capacity=read_capacity(),
        invocation_dir=str(config.invocation_params.dir),
        dask_scheduler=pick("parallel_dask_scheduler", "parallel_dask_scheduler", str) or None,
        safety=safety,
        safety_confirm=confirm if safety else None,
        safety_fail=fail and safety,
    )


def _ini_source(config: pytest.Config, ini: str) -> str:
    """Where an ini value came from: ``-o`` on the command line, or the ini file."""
    overrides = getattr(config.option, "override_ini", None) or ()
    if any(str(given).partition("=")[0].strip() == ini for given in overrides):
        return "-o on the command line"
    return str(config.inipath) if config.inipath is not None else "the ini file"


def flag(option: str) -> str:
    """``parallel_report_json`` as the user typed it: ``--parallel-report-json``."""
    return "--" + option.replace("_", "-")


def check_output_options(options: LabOptions) -> None:
    """A report path that cannot be written is a usage error before any test runs."""
    paths = [
        ("parallel_report_json", options.report_json),
        ("parallel_html", options.html),
        ("parallel_trace", options.trace),
    ]
    if not any(path for _, path in paths):
        return
    from pytest_parallel_lab.document.files import output_path_problem

    for option, path in paths:
        if path:
            problem = output_path_problem(options.path(path))
            if problem is not None:
                raise pytest.UsageError(
                    f"{flag(option)}={path}: {problem}. "
                    "Fix: give a file path in a writable directory"
                )


def check_dask_scheduler(options: LabOptions) -> None:
    """``--parallel-dask-scheduler`` must name a scheduler that answers, and the dask
    extra must be installed: a usage error before any test runs."""
    given = options.dask_scheduler
    if not given:
        return
    from pytest_parallel_lab.backends.dask_cluster import (
        dask_support,
        resolve_scheduler,
        scheduler_unreachable,
    )

    option = flag("parallel_dask_scheduler")
    missing = dask_support()
    if missing is not None:
        raise pytest.UsageError(f"{option}={given}: the dask backend {missing}")
    try:
        address = resolve_scheduler(given)
    except ValueError as exc:
        raise pytest.UsageError(
            f"{option}={given}: {exc}. Fix: give a scheduler address such as "
            "tcp://127.0.0.1:8786 or the path of a scheduler file"
        ) from None
    problem = scheduler_unreachable(address)
    if problem is not None:
        raise pytest.UsageError(
            f"{option}={given}: {problem}. Fix: start the scheduler (dask scheduler), "
            "correct the address, or leave the option out for a LocalCluster"
        )


def check_safety_options(options: LabOptions, xdist_installed: bool) -> None:
    """``--parallel-safety`` watches one serial run; its confirmation needs pytest-xdist."""
    if not options.safety:
        return
    if options.xdist.role is Role.CONTROLLER:
        raise pytest.UsageError(
            f"--parallel-safety runs the suite serially to see what each test touches; under "
            f"-n {options.xdist.workers} the tests run in {options.xdist.workers} processes "
            "it cannot watch. Fix: drop -n (or use -n 0; --no-parallel-safety when the ini "
            "turns it on); --parallel-safety-confirm=N reruns the findings under -n N for you"
        )
    confirm = options.safety_confirm
    if confirm is not None and not xdist_installed:
        raise pytest.UsageError(
            f"--parallel-safety-confirm={confirm}: rerunning the findings under -n {confirm} "
            "needs pytest-xdist, which is not installed. Fix: pip install pytest-xdist, or "
            "drop --parallel-safety-confirm"
        )


def predict_from_saved_run(options: LabOptions) -> SavedPrediction | None:
    """``--parallel-predict-from``'s saved run, loaded and predicted once, at configure
    time: a file that is missing, unreadable, not a run or without suite timing is a
    usage error before any test runs (issue 14: it was a line in the summary after
    every test had run, and the exit status 0)."""
    given = options.predict_from
    if not given:
        return None
    from pytest_parallel_lab.document.codec import DocumentError
    from pytest_parallel_lab.document.run import load_document
    from pytest_parallel_lab.suite.simulate import predict_saved_run

    option = flag("parallel_predict_from")
    try:
        document = load_document(options.path(given))
    except DocumentError as exc:
        raise pytest.UsageError(
            f"{option}={given}: {exc}. Fix: give the path of a run saved with "
            "pytest --parallel-report-json=PATH"
        ) from None
    try:
        return predict_saved_run(document, options.predict)
    except DocumentError as exc:
        raise pytest.UsageError(f"{option}={given}: {exc}") from None


def calibrating_run(options: LabOptions) -> SuiteSection | None:
    """``--parallel-calibrate-from``'s saved ``-n N`` run, loaded and checked at
    configure time: a file that is missing, not a run, or not an xdist run with suite
    timing is a usage error before any test runs, and so is the option on a run that
    makes no prediction of its own (one under -n, or without a report)."""
    given = options.calibrate_from
    if not given:
        return None
    from pytest_parallel_lab.document.codec import DocumentError
    from pytest_parallel_lab.document.run import load_document
    from pytest_parallel_lab.suite.calibration_run import check_xdist_run

    option = flag("parallel_calibrate_from")
    if options.xdist.role is Role.CONTROLLER:
        raise pytest.UsageError(
            f"{option}={given}: this run uses -n, and its own workers calibrate its "
            f"prediction. Fix: drop {option}, or run without -n"
        )
    if not options.reporting:
        raise pytest.UsageError(
            f"{option}={given} calibrates this run's xdist prediction, and no report asks "
            "for one. Fix: add --parallel-report (or --parallel-report-json=PATH, "
            "--parallel-html=PATH)"
        )
    try:
        return check_xdist_run(load_document(options.path(given)).suite)
    except DocumentError as exc:
        raise pytest.UsageError(
            f"{option}={given}: {exc}. Fix: give the path of a run saved with "
            "pytest -n 2 --parallel-report-json=PATH"
        ) from None


def write_output(
    session: pytest.Session, option: str, path: str, write: Callable[[str], None]
) -> None:
    """Write a file the option *option* asked for. A failure (disk full, permissions
    changed during the run) is one warning naming the option and a failed exit status,
    never a traceback; the file is written whole or not at all."""
    try:
        write(lab_options(session.config).path(path))
    except OSError as exc:
        warnings.warn(
            pytest.PytestWarning(
                f"{flag(option)}={path}: the file could not be written "
                f"({exc.strerror or exc}); nothing was written. Fix: free space or give "
                "a file path in a writable directory"
            ),
            stacklevel=1,
        )
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
