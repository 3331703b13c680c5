"""How long the main job takes, against another version of the plugin, side by side.

Runs ``pytest examples --parallel-report-json`` with this environment's Python and with
``--other PYTHON`` (an environment with another version installed, such as the last
release), alternating them over several repeats so that a change in the machine's load
hits both alike, and prints each run's wall time, the paired ratio (other / this) and
the recommendations of both, so that "faster with the same recommendations" is read off
one table. Target (issue 10): at least 1.5x faster than b85a481.

    python benchmarks/bench_examples_time.py --other /path/to/old/venv/bin/python [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent


def one_run(python: str, out: Path) -> tuple[float, dict[str, str]]:
    started = time.perf_counter()
    # Run from the output's folder: ``python -m`` puts the current folder first on the
    # path, and this checkout's plugin must not shadow the other environment's.
    subprocess.run(
        [
            python,
            "-m",
            "pytest",
            str(ROOT / "examples"),
            "-q",
            "-p",
            "no:cacheprovider",
            f"--parallel-report-json={out}",
        ],
        check=True,
        capture_output=True,
        cwd=out.parent,
    )
    wall = time.perf_counter() - started
    found = {}
    for r in json.loads(out.read_text()).get("recommendations", []):
        test = r["test"].split("::")[-1]
        if r.get("call_index") is not None:
            test += f" (map #{r['call_index'] + 1})"
        found[test] = r["backend"]
    return wall, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="The Python of the other version.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows, ratios = [], []
    answers: dict[str, dict[str, list[str]]] = {"this": {}, "other": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            walls = {}
            # Alternate which goes first, so that a drift of the machine hits both alike.
            order = ["other", "this"] if repeat % 2 == 0 else ["this", "other"]
            for name in order:
                python = sys.executable if name == "this" else args.other
                wall, found = one_run(python, Path(tmp) / f"{name}{repeat}.json")
                walls[name] = wall
                for test, backend in found.items():
                    answers[name].setdefault(test, []).append(backend)
            ratios.append(walls["other"] / walls["this"])
            rows.append(
                [repeat + 1, f"{walls['other']:.1f}", f"{walls['this']:.1f}", f"{ratios[-1]:.2f}"]
            )
    print(tabulate(rows, ["repeat", "other s", "this s", "other / this"]))
    print(f"median ratio: {statistics.median(ratios):.2f} (target at least 1.5)")
    print()
    tests = sorted(set(answers["this"]) | set(answers["other"]))
    table = [
        [test, ", ".join(answers["other"].get(test, [])), ", ".join(answers["this"].get(test, []))]
        for test in tests
    ]
    print(tabulate(table, ["test", "other recommends", "this recommends"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
