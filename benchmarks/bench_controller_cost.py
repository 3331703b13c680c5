"""What an xdist controller and a worker spend per test report, against the timed round trip.

Fits ``CONTROLLER_REPORT_RATIO`` and ``WORKER_REPORT_RATIO`` of
``pytest_parallel_lab/document/suite.py``. For suites of trivial tests of two sizes
(and, with ``--output``, tests that print), it runs in one go, interleaved:

* the suite serially, recording the process's CPU time;
* the suite under ``-n 1``, recording the controller's own CPU time and the whole
  run's (controller and worker);
* the round trip of the suite's reports as the plugin times it
  (``suite/hooks.py: report_roundtrip_s``).

The difference between the two sizes removes start-up and collection: the
controller's CPU per report is ``d(controller CPU) / d(reports)``, the worker's extra
per report is ``d(worker CPU - serial CPU) / d(reports)``. CPU time, not wall time,
so another process on the machine changes the figures little. The machine sets
``PYTHONDONTWRITEBYTECODE`` as it finds it; the table says which.

    python benchmarks/bench_controller_cost.py [--sizes 2000,6000] [--repeats 3] [--output]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tabulate import tabulate

CONFTEST = """
import os, time
import pytest
from pytest_parallel_lab.suite.hooks import report_roundtrip_s

SAMPLE = []

def pytest_runtest_logreport(report):
    if len(SAMPLE) < 256 and not hasattr(report, "node"):
        SAMPLE.append(report)

def pytest_unconfigure(config):
    # at unconfigure xdist's workers have exited and been waited for: their CPU
    # is in the children's times
    if hasattr(config, "workerinput"):
        return
    t = os.times()
    rt = report_roundtrip_s(config, SAMPLE) if SAMPLE else None
    children = t.children_user + t.children_system
    print(f"\\nBENCH cpu={t.user + t.system:.4f} children={children:.4f} "
          f"roundtrip={rt if rt is not None else -1:.9f}", flush=True)
"""

TESTS = """
import pytest
@pytest.mark.parametrize("i", range({count}))
def test_tiny(i):
    {body}
"""


def run(directory: Path, workers: int) -> tuple[float, float, float]:
    """(own CPU, children's CPU, round trip) of one pytest run."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:parallel_lab"]
    args += ["-n", str(workers)] if workers else ["-p", "no:xdist"]
    out = subprocess.run(args, cwd=directory, capture_output=True, text=True, check=False).stdout
    found = re.search(r"BENCH cpu=([\d.]+) children=([\d.]+) roundtrip=(-?[\d.]+)", out)
    if found is None:
        raise SystemExit(f"no measurement in the output of {args}:\n{out[-2000:]}")
    cpu, children, roundtrip = (float(g) for g in found.groups())
    return cpu, children, roundtrip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,6000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", action="store_true", help="tests print 2 KiB each")
    args = parser.parse_args()
    small, large = (int(s) for s in args.sizes.split(","))
    body = 'print("x" * 2048)' if args.output else "assert i >= 0"
    figures: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {}
        for size in (small, large):
            d = Path(tmp, str(size))
            d.mkdir()
            (d / "conftest.py").write_text(CONFTEST)
            (d / "test_tiny.py").write_text(TESTS.format(count=size, body=body))
            dirs[size] = d
        for _ in range(args.repeats):  # interleaved: each repeat runs every case once
            for size in (small, large):
                figures.setdefault((size, "serial"), []).append(run(dirs[size], 0))
                figures.setdefault((size, "-n 1"), []).append(run(dirs[size], 1))

    def median(size: int, mode: str, field: int) -> float:
        return statistics.median(f[field] for f in figures[(size, mode)])

    reports = 3 * (large - small)
    controller = (median(large, "-n 1", 0) - median(small, "-n 1", 0)) / reports
    worker_total = {s: median(s, "-n 1", 1) for s in (small, large)}
    serial = {s: median(s, "serial", 0) for s in (small, large)}
    worker_extra = (
        (worker_total[large] - serial[large]) - (worker_total[small] - serial[small])
    ) / (reports)
    roundtrip = statistics.median(
        f[2] for key, rows in figures.items() if key[1] == "serial" for f in rows
    )
    rows = [
        [
            "controller CPU per report",
            f"{controller * 1e6:.0f} us",
            f"{controller / roundtrip:.2f}",
        ],
        [
            "worker extra CPU per report",
            f"{worker_extra * 1e6:.0f} us",
            f"{worker_extra / roundtrip:.2f}",
        ],
        ["timed round trip per report", f"{roundtrip * 1e6:.0f} us", "1.00"],
    ]
    print(
        f"sizes {small} and {large} tests ({'2 KiB output each' if args.output else 'no output'}), "
        f"{args.repeats} interleaved repeats, medians; "
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}"
    )
    print(tabulate(rows, headers=["", "per report", "over round trip"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
