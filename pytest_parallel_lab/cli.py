"""``pytest-parallel-lab``: show, compare, predict and draw saved runs.

Thin glue around the pure modules: it parses arguments, loads documents with
:func:`~pytest_parallel_lab.document.run.load_document` (JSON only; nothing is ever
unpickled or evaluated; regular files of a bounded size only, never waiting on a FIFO)
and turns every bad input into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_parallel_lab import __version__
from pytest_parallel_lab.document.codec import DocumentError
from pytest_parallel_lab.document.files import describe_size, output_path_problem
from pytest_parallel_lab.document.run import MAX_DOCUMENT_BYTES, RunDocument, load_document
from pytest_parallel_lab.output.compare import (
    CompareError,
    Run,
    build_matrix,
    find_regressions,
    format_regression,
    output_formats,
    render_matrix,
    run_name,
    select_baseline,
    unique_names,
)

if TYPE_CHECKING:
    from pytest_parallel_lab.suite.model import SuiteModel
    from pytest_parallel_lab.suite.simulate import SavedPrediction

PROG = "pytest-parallel-lab"
EXIT_OK = 0
EXIT_REGRESSION = 1
EXIT_USAGE = 2
#: The most workers ``predict -n`` simulates: its time and memory grow with the count
#: (a simulated worker per count, each test scheduled among them), and no machine
#: runs pytest-xdist with more.
MAX_PREDICTED_WORKERS = 1024

_LARGEST = describe_size(MAX_DOCUMENT_BYTES)
EXIT_CODES = f"""\
exit codes:
  0  success (for compare: no regression beyond --fail-on-regression)
  1  compare --fail-on-regression found a significant drop larger than the threshold
  2  bad input or usage: a file is missing, not a regular file, larger than {_LARGEST}, not
     JSON, truncated, not a run or holds NaN/Infinity; predict -n above {MAX_PREDICTED_WORKERS};
     unknown option
"""


class UsageProblem(Exception):
    """A problem with the input that the user must fix; reported as one line, exit 2."""


def collect_paths(arguments: Sequence[str]) -> list[Path]:
    """The files named by *arguments*: a folder stands for every ``*.json`` inside it (sorted,
    recursive); anything else is taken as a file and checked when it is loaded."""
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.json") if p.is_file())
            if not found:
                raise UsageProblem(f"{argument}: folder contains no .json files")
            paths.extend(found)
        else:
            paths.append(path)
    return paths


def load_runs(arguments: Sequence[str]) -> list[Run]:
    """Load every document named by *arguments* and give each a distinct column name."""
    paths = collect_paths(arguments)
    documents = [load_document(path) for path in paths]
    names = unique_names([run_name(doc, path) for doc, path in zip(documents, paths, strict=True)])
    return [Run(name, doc) for name, doc in zip(names, documents, strict=True)]


def parse_workers(values: Sequence[str]) -> list[int]:
    """``-n 2 -n 4,8`` -> ``[2, 4, 8]``; each count a positive integer up to
    :data:`MAX_PREDICTED_WORKERS`."""
    workers: list[int] = []
    for value in values:
        for part in value.split(","):
            text = part.strip()
            # isascii: isdigit() alone takes '²', which int() refuses.
            digits = text.lstrip("0") if text.isascii() and text.isdigit() else ""
            if not digits:
                raise UsageProblem(f"-n: {part!r} is not a positive worker count")
            # Compared as text first: int() of thousands of digits is refused, or slow.
            if len(digits) > len(str(MAX_PREDICTED_WORKERS)) or int(digits) > MAX_PREDICTED_WORKERS:
                shown = text if len(text) <= 12 else f"{text[:6]}…({len(text)} digits)"
                raise UsageProblem(
                    f"-n: {shown} workers is more than the prediction simulates "
                    f"(at most {MAX_PREDICTED_WORKERS})"
                )
            workers.append(int(digits))
    return workers


def percent(text: str) -> float:
    """argparse converter for ``--fail-on-regression``: a non-negative number of percent."""
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of percent") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def command_show(args: argparse.Namespace) -> int:
    """Print the terminal report of one saved run."""
    document = load_document(args.file)
    # Imported after loading, so a bad file is reported whatever state the report is in.
    from pytest_parallel_lab.output.text import render_document

    width = shutil.get_terminal_size().columns
    print(render_document(document, width, verbose=args.verbose))
    return EXIT_OK


def command_compare(args: argparse.Namespace) -> int:
    """Print the matrix; exit 1 when the regression gate is on and tripped."""
    runs = load_runs(args.files)
    baseline = select_baseline([run.name for run in runs], args.baseline)
    matrix = build_matrix(runs, baseline)
    sys.stdout.write(render_matrix(matrix, args.format))
    if args.fail_on_regression is None:
        return EXIT_OK
    regressions = find_regressions(matrix, args.fail_on_regression)
    for regression in regressions:
        print(f"regression: {format_regression(regression)}", file=sys.stderr)
    if regressions:
        print(
            f"{PROG}: {len(regressions)} significant drop(s) of more than "
            f"{args.fail_on_regression:g}% against {matrix.columns[baseline]}",
            file=sys.stderr,
        )
        return EXIT_REGRESSION
    return EXIT_OK


def load_durations_model(path: str) -> SuiteModel:
    """pytest-split's ``.test_durations`` file as a model (read as strictly as a run)."""
    from pytest_parallel_lab.document.files import read_regular_file
    from pytest_parallel_lab.document.strict_json import parse_strict_json
    from pytest_parallel_lab.suite.shards import model_from_durations

    try:
        text = read_regular_file(path, MAX_DOCUMENT_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{path}: cannot be read (not UTF-8 text: {exc.reason})") from None
    try:
        return model_from_durations(parse_strict_json(text, path), where=path)
    except ValueError as exc:
        raise DocumentError(str(exc)) from None


def command_shards(args: argparse.Namespace, workers: list[int]) -> int:
    """Print the prediction of a CI matrix of K shards each running -n N."""
    from pytest_parallel_lab.output.suite_text import render_shards
    from pytest_parallel_lab.suite.model import model_from_section
    from pytest_parallel_lab.suite.shards import predict_shards

    if args.shards < 1 or args.shards > MAX_PREDICTED_WORKERS:
        raise UsageProblem(f"--shards {args.shards}: give 1 to {MAX_PREDICTED_WORKERS} machines")
    if args.durations:
        model = load_durations_model(args.file)
    else:
        section = load_document(args.file).suite
        if section is None or not section.tests:
            raise DocumentError(f"{args.file}: the document has no 'suite' section with tests")
        model = model_from_section(section)
    dists = args.dist or ["load"]
    predictions = [
        predict_shards(model, k, n, dist)
        for k in range(1, args.shards + 1)
        for n in workers
        for dist in dists
    ]
    print(render_shards(predictions))
    return EXIT_OK


def command_durations(args: argparse.Namespace) -> int:
    """Write a run's test durations in pytest-split's ``.test_durations`` format."""
    import json

    from pytest_parallel_lab.document.files import write_atomically
    from pytest_parallel_lab.suite.model import model_from_section
    from pytest_parallel_lab.suite.shards import durations_of

    section = load_document(args.file).suite
    if section is None or not section.tests:
        raise DocumentError(f"{args.file}: the document has no 'suite' section with tests")
    problem = output_path_problem(args.output)
    if problem is not None:
        raise UsageProblem(f"{args.output}: {problem}; give a file path in a writable directory")
    durations = durations_of(model_from_section(section))
    write_atomically(args.output, json.dumps(durations, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(durations)} test durations to {args.output}")
    return EXIT_OK


def command_predict(args: argparse.Namespace) -> int:
    """Print the xdist wall-time prediction of a run's suite section."""
    workers = parse_workers(args.workers)
    if args.shards is not None:
        return command_shards(args, workers)
    if args.durations:
        raise UsageProblem("--durations reads pytest-split's file for --shards K; add --shards")
    document = load_document(args.file)
    # Imported lazily: the prediction model is only needed by this subcommand.
    from pytest_parallel_lab.output.suite_text import render_prediction
    from pytest_parallel_lab.suite.gateways import count_gateways
    from pytest_parallel_lab.suite.simulate import predict_saved_run

    try:
        saved = predict_saved_run(
            document, workers, args.dist or (), count_gateways(args.tx or ()), args.tx_startup
        )
    except DocumentError as exc:
        message = str(exc)
        # The model's messages are about the content; name the file as every error does.
        raise DocumentError(
            message if message.startswith(args.file) else f"{args.file}: {message}"
        ) from None
    except (ArithmeticError, KeyError) as exc:
        # A section that loads but does not add up (a test using a fixture that is not
        # shared, times that sum to zero or beyond a float): issue 14, never a traceback.
        raise DocumentError(
            f"{args.file}: the suite section cannot be simulated "
            f"({type(exc).__name__}: {exc}); is it a run saved by pytest-parallel-lab?"
        ) from None
    if not prediction_is_finite(saved):
        raise DocumentError(
            f"{args.file}: the suite section's times are too large or too small to simulate "
            "(a predicted time or its ratio to the serial time is not a finite number)"
        )
    print(render_prediction(saved.predictions, saved.advice, saved.serial_wall_s))
    return EXIT_OK


def tx_startup_seconds(text: str) -> float:
    """``--tx-startup SECONDS``: a finite number >= 0."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return seconds


def prediction_is_finite(saved: SavedPrediction) -> bool:
    """Whether every predicted time, and its ratio to the serial time that the report and
    the advice print, is a finite number (times near 1e308 or 1e-308 overflow)."""
    numbers = [n for p in saved.predictions for n in (p.wall_s, p.lower_bound_s)]
    serial = saved.serial_wall_s
    if serial:
        numbers += [serial / p.wall_s for p in saved.predictions if p.wall_s]
    return all(math.isfinite(n) for n in numbers)


def command_html(args: argparse.Namespace) -> int:
    """Write the self-contained HTML report of one or more runs."""
    from pytest_parallel_lab.output.html import write_html

    runs = load_runs(args.files)
    documents: list[RunDocument] = [run.document for run in runs]
    problem = output_path_problem(args.output)
    if problem is not None:
        raise UsageProblem(f"{args.output}: {problem}; give a file path in a writable directory")
    try:
        write_html(documents, [run.name for run in runs], args.output)
    except OSError as exc:
        raise UsageProblem(f"{args.output}: cannot be written ({exc.strerror or exc})") from None
    print(f"wrote {args.output}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Show, compare, predict, export and draw runs saved with --parallel-report-json."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    show = commands.add_parser("show", help="Print the terminal report of a saved run.")
    show.add_argument("file", metavar="FILE", help="A run saved with --parallel-report-json.")
    show.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="The full table: every measured column of every result.",
    )
    show.set_defaults(handler=command_show)

    compare = commands.add_parser(
        "compare",
        help="Compare runs: one row per test and backend, one column per run.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument(
        "files", metavar="FILE", nargs="+", help="Run files, or folders of *.json (recursive)."
    )
    compare.add_argument(
        "--baseline",
        metavar="NAME|INDEX",
        help="The run to compare against: a column name or a 0-based index (default: the first).",
    )
    compare.add_argument(
        "--fail-on-regression",
        metavar="PCT",
        type=percent,
        help="Exit 1 when a speedup dropped by more than PCT percent of the baseline's "
        "and the intervals do not overlap.",
    )
    compare.add_argument(
        "--format",
        default="simple",
        choices=output_formats(),
        metavar="FORMAT",
        help="Any tabulate format (simple, github, grid, ...), csv or markdown (default: simple).",
    )
    compare.set_defaults(handler=command_compare)

    predict = commands.add_parser(
        "predict", help="Predict the suite's wall time under pytest-xdist with N workers."
    )
    predict.add_argument("file", metavar="FILE", help="A run with a suite section.")
    predict.add_argument(
        "-n",
        dest="workers",
        metavar="N",
        action="append",
        required=True,
        help="Worker count; repeat or separate with commas (-n 2 -n 4,8).",
    )
    predict.add_argument(
        "--dist", action="append", metavar="MODE", help="xdist --dist mode(s) to predict."
    )
    predict.add_argument(
        "--shards",
        type=int,
        metavar="K",
        help="Predict a CI matrix of 1..K machines, each running -n N (split by duration, "
        "as pytest-split does).",
    )
    predict.add_argument(
        "--tx",
        action="append",
        metavar="SPEC",
        help="Also predict xdist's --tx gateways (repeat: --tx 2*popen --tx ssh=host); "
        "ssh and socket gateways are remote workers with CPUs of their own.",
    )
    predict.add_argument(
        "--tx-startup",
        type=tx_startup_seconds,
        metavar="SECONDS",
        help="Seconds a remote --tx gateway takes to start (default: like a local worker).",
    )
    predict.add_argument(
        "--durations",
        action="store_true",
        help="FILE is pytest-split's .test_durations (with --shards).",
    )
    predict.set_defaults(handler=command_predict)

    durations = commands.add_parser(
        "durations", help="Write a run's test durations in pytest-split's .test_durations format."
    )
    durations.add_argument("file", metavar="FILE", help="A run with a suite section.")
    durations.add_argument("-o", "--output", metavar="PATH", required=True, help="The file.")
    durations.set_defaults(handler=command_durations)

    html = commands.add_parser("html", help="Write a self-contained HTML report with charts.")
    html.add_argument(
        "files", metavar="FILE", nargs="+", help="Run files, or folders of *.json (recursive)."
    )
    html.add_argument("-o", "--output", metavar="PATH", required=True, help="The HTML file.")
    html.set_defaults(handler=command_html)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see ``--help``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except (DocumentError, CompareError, UsageProblem) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # pragma: no cover - e.g. piped into head
        return EXIT_OK
    return code
