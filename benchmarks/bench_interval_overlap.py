"""Does a speedup's interval cover the noise between runs? Repeated runs, pairs compared.

Runs the examples' CPU-bound (pure Python) and GIL-releasing (hashlib) workloads N
times, each run a fresh pytest process (``--parallel-backend=thread,process``), and
for each workload and backend counts the pairs of runs whose intervals overlap. An
interval that only reflects the rounds of one run misses the noise between runs, and
pairs of runs then disagree with certainty. Target (issue 10): at least 9 of every 10
pairs overlap for the CPU-bound process rows and the GIL-releasing thread rows, on a
quiet machine. Rows the plugin marked ``machine busy`` (it said the machine could not
give an answer, and drew none) are counted apart and left out of the pairs. Also prints
the median interval width, so that a method cannot pass by making every interval huge,
and the wall time of each run.

    python benchmarks/bench_interval_overlap.py [--runs 10]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "test_choosing_the_right_tool.py"
SELECT = "test_cpu_bound_pure_python or test_gil_releasing_hashing"
#: (test, backend) rows the target is about.
TARGETS = {
    ("test_cpu_bound_pure_python", "process"),
    ("test_gil_releasing_hashing", "thread"),
}


Row = tuple[float, float, float, bool]


def one_run(out: Path) -> tuple[dict[tuple[str, str], Row], float]:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(EXAMPLES),
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            SELECT,
            "--parallel-backend=thread,process",
            f"--parallel-report-json={out}",
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    rows = {}
    for r in json.loads(out.read_text())["results"]:
        s = r.get("speedup")
        if s:
            test = r["test"].split("::")[-1]
            busy = bool(r.get("machine_busy", False))
            rows[(test, r["backend"])] = (s["estimate"], s["ci_low"], s["ci_high"], busy)
    return rows, wall


def overlap(a: Row, b: Row) -> bool:
    return a[1] <= b[2] and b[1] <= a[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", metavar="DIR", help="Keep each run's JSON in DIR.")
    args = parser.parse_args()
    runs: list[dict[tuple[str, str], Row]] = []
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(args.keep or tmp)
        where.mkdir(parents=True, exist_ok=True)
        for i in range(args.runs):
            rows, wall = one_run(where / f"run{i}.json")
            runs.append(rows)
            walls.append(wall)
    keys = sorted({k for r in runs for k in r})
    table = []
    for key in keys:
        every = [r[key] for r in runs if key in r]
        intervals = [row for row in every if not row[3]]
        pairs = list(itertools.combinations(intervals, 2))
        agree = sum(overlap(a, b) for a, b in pairs)
        widths = [(hi - lo) / est for est, lo, hi, _ in intervals if est > 0]
        shown = ", ".join(f"{e:.2f} [{lo:.2f}-{hi:.2f}]" for e, lo, hi, _ in intervals[:3])
        table.append(
            [
                key[0],
                key[1],
                "target" if key in TARGETS else "",
                f"{len(every) - len(intervals)}/{len(every)}",
                f"{agree}/{len(pairs)}",
                f"{agree / len(pairs):.0%}" if pairs else "-",
                f"{statistics.median(widths):.0%}" if widths else "-",
                f"{min(r[0] for r in intervals):.2f}-{max(r[0] for r in intervals):.2f}"
                if intervals
                else "-",
                shown + (", ..." if len(intervals) > 3 else ""),
            ]
        )
    headers = [
        "test",
        "backend",
        "",
        "machine busy",
        "overlapping pairs",
        "share",
        "median width",
        "estimates",
        "first intervals",
    ]
    wall = statistics.median(walls)
    print(f"{args.runs} runs, Python {sys.version.split()[0]}, run wall median {wall:.1f} s")
    print(tabulate(table, headers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
