"""What suite timing costs: 2,000 trivial tests with a few fixtures, side by side.

Runs, interleaved over several repeats (each a fresh subprocess, so noise hits all
variants alike), and prints the median wall time of each and its ratio to the
plugin disabled:

* ``disabled``: ``-p no:parallel_lab``
* ``durations``: ``-p no:parallel_lab --durations=0`` (pytest's own per-test timing)
* ``no flags``: the plugin loaded, no option given (suite timing off)
* ``json``: ``--parallel-report-json`` (suite timing, prediction, the JSON file)
* ``trace``: ``--parallel-trace`` (suite timing and the trace file, no prediction)

Usage: python benchmarks/bench_suite_overhead.py [--tests 2000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tabulate import tabulate

FIXTURES = """
import pytest

@pytest.fixture(scope="session")
def config():
    return {"a": 1}

@pytest.fixture(scope="module")
def table(config):
    yield [config]

@pytest.fixture
def row(table):
    return table[0]
"""

VARIANTS = {
    "disabled": ["-p", "no:parallel_lab"],
    "durations": ["-p", "no:parallel_lab", "--durations=0"],
    "no flags": [],
    "json": ["--parallel-report-json=run.json"],
    "trace": ["--parallel-trace=trace.json"],
}


def write_suite(where: Path, tests: int, modules: int = 20) -> None:
    (where / "conftest.py").write_text(FIXTURES)
    per_module = tests // modules
    for m in range(modules):
        body = "\n".join(
            f"def test_{i}(row):\n    assert row['a'] == 1\n" for i in range(per_module)
        )
        (where / f"test_m{m}.py").write_text(body)


def run_once(where: Path, extra: list[str]) -> float:
    from time import perf_counter  # the benchmark's own clock, not the plugin's

    start = perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:asyncio",
            *extra,
        ],
        cwd=where,
        check=True,
        capture_output=True,
    )
    return perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        write_suite(where, args.tests)
        for extra in VARIANTS.values():  # warm-up: bytecode caches
            run_once(where, extra)
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.repeats):
            for name, extra in VARIANTS.items():
                times[name].append(run_once(where, extra))
    base = statistics.median(times["disabled"])
    rows = [
        [
            name,
            f"{statistics.median(t):.3f}",
            f"{min(t):.3f}",
            f"{statistics.median(t) / base:.3f}",
            f"{min(t) / min(times['disabled']):.3f}",
        ]
        for name, t in times.items()
    ]
    print(f"{args.tests} trivial tests, {args.repeats} interleaved repeats, process wall time")
    print(tabulate(rows, ["variant", "median s", "min s", "median ratio", "min ratio"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
