"""Check the xdist prediction against real open-source suites on this machine.

For each package: ``pip download --no-binary :all: --no-deps`` its sdist into a
temporary directory, unpack it, make a temporary venv (which sees this venv's pytest,
pytest-xdist and pytest-parallel-lab through a ``.pth`` file), install the package and
its test dependencies there, run the suite serially with ``--parallel-report-json``,
then with ``-n 2``, and compare the predicted ``-n 2`` session time with the one
pytest reports, and with the naive serial/2.

Usage: python benchmarks/bench_xdist_prediction.py [--repeats 2] [pkg[==ver]:testpath[:deps] ...]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from pathlib import Path

from tabulate import tabulate

#: package spec, test path inside the sdist, extra test dependencies (comma separated)
DEFAULT_SUITES = [
    "more-itertools==10.5.0:tests:",
    "toolz==1.0.0:toolz/tests:",
    "parso==0.8.4:test:",
    "jinja2==3.1.4:tests:markupsafe",
    "idna==3.10:tests:",
]
SESSION_TIME = re.compile(r"(?:passed|failed|error|errors|skipped|xfailed)\b[^\n]* in ([0-9.]+)s")


def run(cmd: list[str], cwd: Path | None = None, check: bool = True) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
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


def bench_one(spec: str, repeats: int, work: Path) -> list[object]:
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
    predicted, serial, actual = [], [], []
    for _ in range(repeats):
        report = work / "serial.json"
        out = run([*base, f"--parallel-report-json={report}"], cwd=source, check=False)
        serial.append(session_time(out))
        suite = json.loads(report.read_text())["suite"]
        predicted.append(
            next(
                p["wall_s"]
                for p in suite["prediction"]
                if p["workers"] == 2 and p["dist"] == "load"
            )
        )
        out = run([*base, "-n", "2"], cwd=source, check=False)
        actual.append(session_time(out))
    # medians: this machine is shared and a single run can be off by half
    s, a, p = statistics.median(serial), statistics.median(actual), statistics.median(predicted)
    return [
        package,
        len(suite["tests"]),
        f"{s:.2f}",
        f"{a:.2f}",
        f"{p:.2f}",
        f"{100 * (p - a) / a:+.1f}%",
        f"{s / 2:.2f}",
        f"{100 * (s / 2 - a) / a:+.1f}%",
        f"{min(actual):.2f}-{max(actual):.2f}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", default=DEFAULT_SUITES)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for spec in args.suites:
        work = Path(tempfile.mkdtemp(prefix="bench-xdist-"))
        try:
            rows.append(bench_one(spec, args.repeats, work))
        except Exception as exc:  # one broken sdist must not hide the others
            print(f"{spec}: skipped ({str(exc).splitlines()[0][:200]})", file=sys.stderr)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(tabulate(rows[-1:], tablefmt="plain"), flush=True) if rows else None
    print()
    print(
        tabulate(
            rows,
            [
                "package",
                "tests",
                "serial s",
                "actual -n2 s",
                "predicted s",
                "pred err",
                "naive s",
                "naive err",
                "actual range",
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
