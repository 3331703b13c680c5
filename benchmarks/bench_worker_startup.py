"""A worker's start-up and collection under xdist, against the serial run's: fits ``STARTUP_RATIO``.

The prediction starts each simulated worker ``STARTUP_RATIO`` times the serial
process's own start-up (its age at the session start) after the controller's session
start, and lets it collect for the serial collection time, both slowed by the CPU
contention of the workers that start together (``suite/simulate.py``). This script
checks both on real suites (set up as ``bench_xdist_prediction.py`` sets them up): per
interleaved repeat it runs each suite serially, under ``-n 2`` and under ``-n 4``, all
with ``--parallel-report-json``, and prints a worker's measured start-up over the serial
age and its collection over the serial collection, each divided by the model's
contention for N workers on this machine's CPUs (1 for ``-n 2`` on 2 CPUs, 2 for
``-n 4``), and the time until every worker has collected (the collection barrier), as
measured and as the model puts it. The median of the start-up ratios is the one to fit.

    python benchmarks/bench_worker_startup.py [--repeats 3] [pkg[==ver]:testpath[:deps] ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).parent))
from bench_xdist_prediction import prepare_suite, run, suite_work

from pytest_parallel_lab.capacity import read_capacity
from pytest_parallel_lab.suite.model import STARTUP_RATIO

#: quick suites (1.5-16 s serially) of different start-ups and collections
DEFAULT_SUITES = [
    "toolz==1.0.0:toolz/tests:",
    "more-itertools==10.5.0:tests:",
    "docutils==0.21.2:test:",
    "parso==0.8.4:test:",
    "jsonschema==4.23.0:jsonschema/tests:attrs,jsonschema-specifications,referencing,rpds-py",
]
WORKERS = (2, 4)


def measure(base: list[str], source: Path, report: Path, workers: int) -> dict[str, Any]:
    extra = ["-n", str(workers)] if workers else []
    run([*base, *extra, f"--parallel-report-json={report}"], cwd=source, check=False)
    section: dict[str, Any] = json.loads(report.read_text())["suite"]
    return section


def bench_one(spec: str, repeats: int, work: Path, cpus: float) -> list[list[object]]:
    source, base = prepare_suite(spec, work)
    report = work / "report.json"
    ratios: dict[int, dict[str, list[float]]] = {
        n: {"start": [], "collect": [], "begin": [], "model": []} for n in WORKERS
    }
    for _ in range(repeats):  # interleaved
        serial = measure(base, source, report, 0)["calibration"]
        age = serial["startup_s"] / STARTUP_RATIO
        collection = serial["collection_s"]
        for n in WORKERS:
            contention = max(1.0, n / cpus)
            workers = measure(base, source, report, n)["workers"]
            got = ratios[n]
            got["start"] += [w["startup_s"] / age / contention for w in workers]
            got["collect"] += [w["collection_s"] / collection / contention for w in workers]
            got["begin"].append(max(w["startup_s"] + w["collection_s"] for w in workers))
            got["model"].append((serial["startup_s"] + collection) * contention)
    package = spec.split(":")[0]
    return [
        [
            package,
            f"-n {n}",
            statistics.median(got["start"]),
            statistics.median(got["collect"]),
            statistics.median(got["begin"]),
            statistics.median(got["model"]),
        ]
        for n, got in ratios.items()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", default=DEFAULT_SUITES)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cpus = read_capacity().cpus
    rows: list[list[object]] = []
    for spec in args.suites:
        with suite_work(spec, "bench-startup-") as work:
            rows += bench_one(spec, args.repeats, work, cpus)
            print(f"{spec}: done", file=sys.stderr, flush=True)
    print(
        f"{len(rows) // len(WORKERS)} suites, {args.repeats} interleaved repeats, medians; "
        f"{cpus:g} CPUs; STARTUP_RATIO {STARTUP_RATIO}; "
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}"
    )
    print(
        tabulate(
            rows,
            headers=[
                "package",
                "workers",
                "start-up / serial age",
                "collection / serial",
                "barrier s",
                "model's barrier s",
            ],
            floatfmt=".2f",
        )
    )
    if rows:
        starts = [float(row[2]) for row in rows]  # type: ignore[arg-type]
        collects = [float(row[3]) for row in rows]  # type: ignore[arg-type]
        print(
            f"median start-up ratio {statistics.median(starts):.2f} "
            f"(STARTUP_RATIO is {STARTUP_RATIO}); median collection ratio "
            f"{statistics.median(collects):.2f} (the model: 1)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
