"""``--parallel-safety`` on real open-source suites: its findings, how many a real
``-n 2`` run reproduces, and what it costs.

For each package: ``pip download --no-binary :all: --no-deps`` its sdist, unpack it,
make a temporary venv that sees this venv's pytest, pytest-xdist and the plugin
(``bench_xdist_prediction.make_venv``), install the package (and its test
dependencies), check that the suite runs serially, then

* one run with ``--parallel-safety --parallel-safety-confirm=2`` and the JSON: the
  findings by problem (collision, order, leak) and how many of those a confirming
  run can test (collisions and order dependences) failed under ``-n 2``;
* the overhead: serial runs without and with ``--parallel-safety``, interleaved in a
  new order each repeat, each a fresh subprocess; per repeat the ratio of pytest's
  session times (with / without), and the median of those paired ratios (target:
  at most 1.15). The best-of times are printed too.

Usage: python benchmarks/bench_safety.py [--repeats 5] [pkg==ver:testpath[:deps] ...]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench_xdist_prediction import make_venv, run, session_time, unpack
from tabulate import tabulate

#: package spec, test path inside the sdist, extra test dependencies (comma separated)
DEFAULT_SUITES = [
    "more-itertools==10.5.0:tests:",
    "toolz==1.0.0:toolz/tests:",
    "idna==3.10:tests:",
    "parso==0.8.4:test:",
    # writes its databases to fixed paths in the repository: real collisions
    "sqlitedict==2.1.0:tests:",
]
#: The overhead the issue allows: a serial run with --parallel-safety over one without.
TARGET_RATIO = 1.15


def prepare(spec: str, work: Path) -> tuple[list[str], Path]:
    """The pytest command of the suite (without options) and where to run it."""
    package, testpath, deps = [*spec.split(":"), "", ""][:3]
    download = work / "download"
    download.mkdir()
    pip = [sys.executable, "-m", "pip"]
    run([*pip, "download", "--no-binary", ":all:", "--no-deps", "-q", "-d", str(download), package])
    source = unpack(next(download.iterdir()), work / "src")
    python = make_venv(work / "venv")
    run([*pip, "--python", str(python), "install", "-q", "--no-deps", str(source)])
    if deps:
        run([*pip, "--python", str(python), "install", "-q", *deps.split(",")])
    # pytest-asyncio of the outer venv warns at configure, an error under strict filterwarnings
    base = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"]
    return [*base, testpath], source


def bench_one(spec: str, repeats: int, work: Path) -> list[object]:
    command, source = prepare(spec, work)
    plain = run(command, cwd=source, check=False)
    if " passed" not in plain:
        raise RuntimeError(f"the suite does not run serially: {plain[-500:]}")
    report = work / "safety.json"
    out = run(
        [*command, "--parallel-safety-confirm=2", f"--parallel-report-json={report}"],
        cwd=source,
        check=False,
    )
    safety = json.loads(report.read_text())["safety"]
    findings = safety["findings"]
    problems = ("collision", "order", "leak")
    by_problem = {p: sum(f["problem"] == p for f in findings) for p in problems}
    checkable = [f for f in findings if f["confirmed"] is not None]
    confirmed = sum(bool(f["confirmed"]) for f in checkable)
    confirm = safety.get("confirm") or {}
    for number, finding in enumerate(findings, 1):
        tests = ", ".join(t.split("::", 1)[-1] for t in finding["tests"][:3])
        print(
            f"  #{number} {finding['problem']} {finding['kind']} {finding['resource'][-60:]}"
            f"  [{tests}{' ...' if len(finding['tests']) > 3 else ''}]"
            f"  confirmed={finding['confirmed']}",
            flush=True,
        )
    if confirm.get("problem"):
        print(f"  confirmation: {confirm['problem']}", flush=True)
    del out
    times: dict[str, list[float]] = {"plain": [], "safety": []}
    ratios = []
    for _ in range(repeats):
        variants = ["plain", "safety"]
        random.shuffle(variants)
        this: dict[str, float] = {}
        for variant in variants:
            extra = ["--parallel-safety"] if variant == "safety" else []
            this[variant] = session_time(run([*command, *extra], cwd=source, check=False))
            times[variant].append(this[variant])
        ratios.append(this["safety"] / this["plain"])
    ratio = statistics.median(ratios)
    return [
        spec.split(":")[0],
        safety["tests"],
        by_problem["collision"],
        by_problem["order"],
        by_problem["leak"],
        f"{confirmed}/{len(checkable)}",
        f"{statistics.median(times['plain']):.2f}",
        f"{statistics.median(times['safety']):.2f}",
        f"{min(times['plain']):.2f}/{min(times['safety']):.2f}",
        f"{ratio:.3f}",
        "ok" if ratio <= TARGET_RATIO else "over",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", default=DEFAULT_SUITES)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for spec in args.suites:
        print(spec, flush=True)
        work = Path(tempfile.mkdtemp(prefix="bench-safety-"))
        try:
            rows.append(bench_one(spec, args.repeats, work))
        except Exception as exc:  # one broken sdist must not hide the others
            print(f"{spec}: skipped ({str(exc).splitlines()[0][:200]})", file=sys.stderr)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print()
    headers = [
        "package",
        "tests",
        "collisions",
        "order",
        "leaks",
        "confirmed -n2",
        "serial s",
        "safety s",
        "best s",
        "paired ratio",
        f"<= {TARGET_RATIO}",
    ]
    print(tabulate(rows, headers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
