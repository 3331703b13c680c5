"""Check the xdist prediction against real open-source suites on this machine.

For each package: ``pip download --no-binary :all: --no-deps`` its sdist into a
temporary directory, unpack it, make a temporary venv (which sees this venv's pytest,
pytest-xdist and pytest-parallel-lab through a ``.pth`` file), install the package and
its test dependencies there, run the suite serially with ``--parallel-report-json``,
then under each of :data:`MODES` (``-n 2`` and ``-n 4`` with ``load``, ``-n 2`` with
``worksteal`` and ``loadfile``), interleaved, and compare each predicted session time
with the one pytest reports, and with the naive serial/N; and whether the recommended
configuration was the fastest measured one (a recommendation outside those modes is run
for real too); and the plugin's cost: each repeat also runs the suite serially with
``-p no:parallel_lab``.

``--condition`` plays the machines people have: ``hog`` runs everything beside a process
spinning on one CPU (a busy shared runner: the serial run measures the other processes'
demand and the prediction must allow for it), ``quota`` runs every pytest inside a cgroup
with a quota of one CPU (a container; needs root), ``quiet`` the machine as it is.

Each suite runs once before anything is measured (``-p no:parallel_lab``): the first run
of a freshly installed suite reads its files from disk and builds what it caches.

``--calibrate`` then runs each whole suite once under ``-n 2`` with
``--parallel-report-json`` (as a CI job saves one), and beside each prediction of the
serial run puts the one ``--parallel-calibrate-from`` makes from the same serial report
and that run (the plugin's own functions, in this process): the tables gain a
"calibrated" column. Its ``-n 2 --dist load`` is not an independent check (the
calibrating run is one of that mode); the other modes are.

Usage: python benchmarks/bench_xdist_prediction.py [--repeats 2] [--save results.jsonl]
[--keep DIR] [--condition quiet|hog|quota] [--calibrate] [pkg[==ver]:testpath[:deps] ...];
``--load results.jsonl`` prints the tables again; ``--keep`` copies each serial run's
report (and with ``--calibrate`` the -n 2 run's) into DIR.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_busy_machine import hog, quota_of_one_cpu
from tabulate import tabulate

#: package spec, test path inside the sdist, extra test dependencies (comma separated)
DEFAULT_SUITES = [
    # unittest subTest (all three): pytest 9 reports each subtest to the controller
    "pyparsing==3.2.0:tests/test_unit.py:",
    "docutils==0.21.2:test:",
    "more-itertools==10.5.0:tests:",
    # >= 5,000 tests (the package is installed with --no-deps: jsonschema's are listed)
    "babel==2.16.0:tests:freezegun,pytz",
    "jsonschema==4.23.0:jsonschema/tests:attrs,jsonschema-specifications,referencing,rpds-py",
    # tests that mostly wait: child processes and sockets; sleeps and timeouts in threads
    "execnet==2.1.1:testing:",
    "func-timeout==4.3.5:tests:",
    # CPU-bound, many tests; small and fast
    "pygments==2.18.0:tests:wcag-contrast-ratio",
    "parso==0.8.4:test:",
    "toolz==1.0.0:toolz/tests:",
    # >= 60 s serially (about 80 s on a 2-CPU VM): 342 CPU-bound numerical tests
    "mpmath==1.3.0:mpmath/tests:",
]
#: the (-n, --dist) configurations run for real beside the prediction
MODES = [(2, "load"), (4, "load"), (2, "worksteal"), (2, "loadfile")]
SESSION_TIME = re.compile(r"(?:passed|failed|error|errors|skipped|xfailed)\b[^\n]* in ([0-9.]+)s")


#: The longest one run of a suite may take before it counts as hung (execnet's own suite
#: once hung under -n 4 --dist worksteal): its whole process group is killed.
RUN_TIMEOUT_S = 900


def run(
    cmd: list[str],
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = RUN_TIMEOUT_S,
    enter: Callable[[], None] | None = None,
) -> str:
    """*cmd*'s output; *enter* runs in the child before it execs (joins a cgroup)."""
    # Its own session: on a timeout the xdist workers go with it (they hold its pipes).
    process = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=enter,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise RuntimeError(f"{' '.join(cmd)} hung: killed after {timeout:g}s") from None
    result = subprocess.CompletedProcess(cmd, process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return result.stdout + result.stderr


def unpack(archive: Path, into: Path) -> Path:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(into)
    else:
        with tarfile.open(archive) as handle:
            handle.extractall(into, filter="data")
    return next(p for p in into.iterdir() if p.is_dir())


def make_venv(where: Path) -> Path:
    run([sys.executable, "-m", "venv", "--without-pip", str(where)])
    python = where / "bin" / "python"
    purelib = run([str(python), "-c", "import sysconfig;print(sysconfig.get_path('purelib'))"])
    # The temp venv sees this venv's packages (pytest, xdist, the plugin) after its own.
    # addsitedir (not a bare path) so that the outer .pth files, such as an editable
    # install of the plugin, are processed too.
    outer = sysconfig.get_path("purelib")
    Path(purelib.strip(), "outer.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    return python


def session_time(output: str) -> float:
    times = SESSION_TIME.findall(output)
    if not times:
        raise RuntimeError(f"no session time in: {output[-1500:]!r}")
    return float(times[-1])


@contextlib.contextmanager
def suite_work(spec: str, prefix: str) -> Iterator[Path]:
    """A temporary directory for *spec*'s sdist, venv and runs, removed after; an error
    in the block skips the suite with a line on stderr (one broken sdist must not hide
    the others)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    except Exception as exc:
        print(f"{spec}: skipped ({str(exc).splitlines()[0][:200]})", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def prepare_suite(spec: str, work: Path) -> tuple[Path, list[str]]:
    """Download, unpack and install *spec* (``pkg[==ver]:testpath[:deps]``) under *work*:
    the unpacked source (where to run) and the pytest command line that runs its suite."""
    package, testpath, deps = [*spec.split(":"), "", ""][:3]
    download = work / "download"
    download.mkdir()
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-binary",
            ":all:",
            "--no-deps",
            "-q",
            "-d",
            str(download),
            package,
        ]
    )
    source = unpack(next(download.iterdir()), work / "src")
    python = make_venv(work / "venv")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(source),
        ]
    )
    if deps:
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(python),
                "install",
                "-q",
                *deps.split(","),
            ]
        )
    # pytest-asyncio of the outer venv warns at configure, an error under strict filterwarnings
    base = [
        str(python),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:asyncio",
        testpath,
    ]
    return source, base


def calibrated_predictions(
    report: Path, calibration: Path
) -> tuple[dict[tuple[int, str], float], tuple[int, str | None], float]:
    """What ``--parallel-calibrate-from=calibration`` predicts from the serial *report*:
    each (-n, --dist), the recommendation, and the repeated work (one full miss) the
    -n 2 run found."""
    from pytest_parallel_lab.document.run import load_document
    from pytest_parallel_lab.suite.calibration_run import calibrate_with_run
    from pytest_parallel_lab.suite.model import model_from_section
    from pytest_parallel_lab.suite.simulate import advise, predict_all

    section = load_document(report).suite
    saved = load_document(calibration).suite
    assert section is not None
    assert saved is not None
    calibrated_section = calibrate_with_run(section, saved)
    predictions = predict_all(model_from_section(calibrated_section), sorted({w for w, _ in MODES}))
    advice = advise(predictions, section.wall_s)
    by_mode = {(p.workers, p.dist): p.wall_s for p in predictions}
    cal = calibrated_section.calibration
    assert cal is not None
    return by_mode, (advice.workers, advice.dist), sum(cal.repeated.values())


def bench_one(
    spec: str,
    repeats: int,
    work: Path,
    keep: Path | None = None,
    enter: Callable[[], None] | None = None,
    calibrate: bool = False,
) -> dict[str, object]:
    """One suite's predictions against its actual runs; every pytest run calls *enter*
    before it execs (``--condition quota``); with *calibrate*, the calibrated
    predictions beside them."""
    package = spec.split(":")[0]
    source, base = prepare_suite(spec, work)
    # A first run of a freshly installed suite reads every file from disk and builds
    # what the package caches on first use: not a run like the ones measured after it.
    # (A calibrating run on babel that was this first run took 18.0 s where the
    # measured -n 2 runs took 14.4 s, and found twice the repeated work of a warm one.)
    run([*base, "-p", "no:parallel_lab"], cwd=source, check=False, enter=enter)
    calibration = work / "calibration.json"
    if calibrate:
        # A whole -n 2 run, as CI saves one: a run of some files would miss the tests
        # that warm the caches in the serial run.
        run(
            [*base, "-n", "2", f"--parallel-report-json={calibration}"],
            cwd=source,
            check=False,
            enter=enter,
        )
        if keep is not None:
            shutil.copyfile(calibration, keep / f"{package}-calibration.json")
    calibrated: dict[tuple[int, str], list[float]] = {mode: [] for mode in MODES}
    calibrated_advice: list[tuple[int, str | None]] = []
    repeated_found: list[float] = []
    predicted: dict[tuple[int, str], list[float]] = {mode: [] for mode in MODES}
    actual: dict[tuple[int, str], list[float]] = {mode: [] for mode in MODES}
    serial: list[float] = []
    disabled: list[float] = []
    advice: list[tuple[int, str | None]] = []
    failed: set[tuple[int, str]] = set()  # recommendations that could not be run
    tests = 0
    for repeat in range(repeats):  # interleaved: every mode once per repeat
        # The plugin's cost: the same serial run with the plugin disabled, beside it.
        out = run([*base, "-p", "no:parallel_lab"], cwd=source, check=False, enter=enter)
        disabled.append(session_time(out))
        report = work / "serial.json"
        out = run(
            [*base, "--parallel-predict=2,4", f"--parallel-report-json={report}"],
            cwd=source,
            check=False,
            enter=enter,
        )
        serial.append(session_time(out))
        if keep is not None:  # to predict again from the same runs (another model)
            shutil.copyfile(report, keep / f"{package}-serial-{repeat}.json")
        suite = json.loads(report.read_text())["suite"]
        tests = len(suite["tests"])
        for mode in MODES:
            predicted[mode].append(
                next(p["wall_s"] for p in suite["prediction"] if (p["workers"], p["dist"]) == mode)
            )
        recommended = suite["recommended"]
        chosen = (recommended["workers"], recommended["dist"])
        advice.append(chosen)
        if calibrate:
            by_mode, their_choice, repeated = calibrated_predictions(report, calibration)
            for mode in MODES:
                calibrated[mode].append(by_mode[mode])
            calibrated_advice.append(their_choice)
            repeated_found.append(repeated)
        if chosen[0] and chosen not in actual and chosen not in failed:
            # A recommendation outside MODES is run for real too, from this repeat on.
            actual[chosen] = []
        for workers, dist in list(actual):
            try:
                # a recommendation outside MODES may hang where they did not: a bound
                limit = RUN_TIMEOUT_S if (workers, dist) in MODES else max(60.0, 3 * max(serial))
                out = run(
                    [*base, "-n", str(workers), "--dist", dist],
                    cwd=source,
                    check=False,
                    timeout=limit,
                    enter=enter,
                )
                actual[(workers, dist)].append(session_time(out))
            except RuntimeError as exc:
                if (workers, dist) in MODES:
                    raise
                # the recommendation could not be run for real: "not measured"
                print(f"{package} -n {workers} {dist}: {exc}", file=sys.stderr)
                del actual[(workers, dist)]
                failed.add((workers, dist))
    # medians: this machine is shared and a single run can be off by half
    s = statistics.median(serial)
    overhead = statistics.median(j / d for j, d in zip(serial, disabled, strict=True))
    result: dict[str, object] = {
        "package": package,
        "tests": tests,
        "serial": s,
        "disabled": statistics.median(disabled),
        "overhead": overhead,
        "repeats": repeats,
    }
    for mode in MODES:
        result[f"{mode}"] = (statistics.median(predicted[mode]), statistics.median(actual[mode]))
    measured = {mode: statistics.median(times) for mode, times in actual.items() if times}
    measured[(0, None)] = s  # type: ignore[index]
    best = min(measured, key=lambda m: measured[m])
    chosen = statistics.mode(advice)
    chosen_time = measured.get(chosen)  # type: ignore[call-overload]
    result["advice"] = (chosen, best, chosen_time, measured[best])
    if calibrate:
        result["repeated s"] = statistics.median(repeated_found)
        for mode in MODES:
            result[f"{mode} calibrated"] = statistics.median(calibrated[mode])
        theirs = statistics.mode(calibrated_advice)
        result["calibrated advice"] = (theirs, best, measured.get(theirs), measured[best])  # type: ignore[call-overload]
    return result


def mode_table(rows: list[dict[str, object]], mode: tuple[int, str]) -> str:
    table = []
    for row in rows:
        p, a = row[f"{mode}"]  # type: ignore[misc]
        s = row["serial"]
        naive = s / mode[0]  # type: ignore[operator]
        table.append(
            [
                row["package"],
                row["tests"],
                f"{s:.2f}",
                f"{a:.2f}",
                f"{p:.2f}",
                f"{100 * (p - a) / a:+.1f}%",
                f"{100 * (naive - a) / a:+.1f}%",
            ]
        )
    headers = ["package", "tests", "serial s", "actual s", "predicted s", "error", "naive error"]
    if any(f"{mode} calibrated" in row for row in rows):
        headers += ["calibrated s", "calibrated error"]
        for line, row in zip(table, rows, strict=True):
            c = row.get(f"{mode} calibrated")
            a = float(line[3])
            line += ["", ""] if c is None else [f"{c:.2f}", f"{100 * (c - a) / a:+.1f}%"]  # type: ignore[operator]
    return f"-n {mode[0]} --dist {mode[1]}\n" + tabulate(table, headers)


def overhead_table(rows: list[dict[str, object]]) -> str:
    """The plugin's cost on each suite: its serial run with ``--parallel-report-json``
    (and ``--parallel-predict=2,4``, more simulation than the default) against the same
    run with ``-p no:parallel_lab``, the median of the per-repeat ratios; target 2%."""
    table = []
    for row in rows:
        if "overhead" not in row:
            continue  # saved by an older version of this script
        ratio = float(row["overhead"])  # type: ignore[arg-type]
        table.append(
            [
                row["package"],
                row["tests"],
                f"{row['disabled']:.2f}",
                f"{row['serial']:.2f}",
                f"{ratio:.3f}",
                "ok" if ratio <= 1.02 else "over",
            ]
        )
    headers = ["package", "tests", "disabled s", "json s", "paired ratio", "<= 1.02"]
    return "the plugin's cost, serial session time\n" + tabulate(table, headers)


def advice_table(rows: list[dict[str, object]], key: str = "advice") -> str:
    table = []
    for row in rows:
        if key not in row:
            continue
        chosen, best, chosen_time, best_time = row[key]  # type: ignore[misc]

        def name(mode: tuple[int, str | None]) -> str:
            return "serial" if mode[0] == 0 else f"-n {mode[0]} {mode[1]}"

        table.append(
            [
                row["package"],
                name(chosen),
                name(best),
                "not measured" if chosen_time is None else f"{chosen_time / best_time:.2f}",
            ]
        )
    headers = ["package", "recommended", "actual best", "recommended / best"]
    title = "recommendation" if key == "advice" else "calibrated recommendation"
    return f"{title} (among serial and the measured modes)\n" + tabulate(table, headers)


def repeated_table(rows: list[dict[str, object]]) -> str:
    """The repeated work each suite's -n 2 run found (``--calibrate``), against the
    serial run's time."""
    table = [
        [row["package"], f"{row['repeated s']:.2f}", f"{row['serial']:.2f}"]
        for row in rows
        if "repeated s" in row
    ]
    return "work repeated on a worker that missed what warmed it (calibration)\n" + tabulate(
        table, ["package", "repeated s (one full miss)", "serial s"]
    )


def _to_json(row: dict[str, object]) -> dict[str, object]:
    return {str(key): value for key, value in row.items()}


def _from_json(saved: dict[str, Any]) -> dict[str, object]:
    """A saved row back as :func:`bench_one` made it (tuples, not lists)."""
    row: dict[str, object] = dict(saved)
    for mode in MODES:
        row[f"{mode}"] = tuple(saved[f"{mode}"])
    for key in ("advice", "calibrated advice"):
        if key in saved:
            chosen, best, chosen_time, best_time = saved[key]
            row[key] = (tuple(chosen), tuple(best), chosen_time, best_time)
    return row


def _progress(row: dict[str, object]) -> str:
    """One line: each mode's predicted / actual seconds."""
    parts = []
    for mode in MODES:
        predicted, actual = row[f"{mode}"]  # type: ignore[misc]
        parts.append(f"-n {mode[0]} {mode[1]} {predicted:.2f}/{actual:.2f}")
    return f"serial {row['serial']:.2f}; predicted/actual " + ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", default=DEFAULT_SUITES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--save",
        type=Path,
        help="append each suite's result to this JSON-lines file as soon as it is measured",
    )
    parser.add_argument(
        "--load",
        type=Path,
        help="print the tables of the results saved with --save instead of measuring",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="copy each serial run's JSON report into this directory "
        "(PACKAGE==VERSION-serial-REPEAT.json), to predict again from the same runs",
    )
    parser.add_argument(
        "--condition",
        choices=("quiet", "hog", "quota"),
        default="quiet",
        help="quiet: the machine as it is; hog: beside a process spinning on one CPU; "
        "quota: every pytest in a cgroup with a quota of one CPU (root)",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="also predict with --parallel-calibrate-from a whole -n 2 run of each "
        "suite, from the same serial reports",
    )
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    if args.load is not None:
        rows = [_from_json(json.loads(line)) for line in args.load.read_text().splitlines()]
    with contextlib.ExitStack() as stack:
        enter = None
        if args.load is None and args.condition == "hog":
            stack.enter_context(hog())
        elif args.load is None and args.condition == "quota":
            enter = stack.enter_context(quota_of_one_cpu())
        for spec in [] if args.load is not None else args.suites:
            with suite_work(spec, "bench-xdist-") as work:
                row = bench_one(spec, args.repeats, work, args.keep, enter, args.calibrate)
                rows.append(row)
                print(f"{spec}: done {_progress(row)}", file=sys.stderr, flush=True)
                if args.save is not None:
                    with args.save.open("a", encoding="utf-8") as handle:
                        handle.write(json.dumps(_to_json(row)) + "\n")
    condition = "" if args.load is not None else f"; condition {args.condition}"
    # a saved file says how many repeats made it (older ones do not: unknown)
    counts = {row.get("repeats", "?") for row in rows} if args.load is not None else {args.repeats}
    repeats = "/".join(str(c) for c in sorted(counts, key=str))
    print(
        f"{len(rows)} suites, {repeats} interleaved repeats, medians; "
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}"
        f"{condition}"
    )
    for mode in MODES:
        print()
        print(mode_table(rows, mode))
    print()
    print(advice_table(rows))
    if any("calibrated advice" in row for row in rows):
        print()
        print(advice_table(rows, "calibrated advice"))
        print()
        print(repeated_table(rows))
    print()
    print(overhead_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
