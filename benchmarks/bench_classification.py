"""Does the diagnosis name the right class and backend for real workloads?

Runs classification_workloads.py (one workload per class) through pytest with
--parallel-report-json, then prints, per test, the expected class, the measured class,
the recommended backend and the reason. Targets: every measured class equals the
expected one, and the recommendation is the expected backend.

    python benchmarks/bench_classification.py [--rounds 5] [--check]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: test name -> (expected class, expected recommended backend)
EXPECTED = {
    "test_cpu_bound": ("cpu-bound", "process"),
    "test_gil_releasing": ("gil-releasing", "thread"),
    "test_io_bound": ("io-bound", "thread"),
    "test_io_bound_async": ("io-bound", "asyncio"),
    "test_overhead_bound": ("overhead-bound", "serial"),
    "test_blocking_in_loop": ("blocking-in-loop", "serial"),
}


def run(rounds: int) -> dict[str, dict[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(HERE / "classification_workloads.py"),
                "-q",
                "-p",
                "no:cacheprovider",
                f"--parallel-rounds={rounds}",
                f"--parallel-report-json={out}",
                "-W",
                "ignore::DeprecationWarning",
            ],
            check=True,
            cwd=HERE,
            stdout=subprocess.DEVNULL,
        )
        data = json.loads(out.read_text())
    return {r["test"].split("::")[-1]: r for r in data["recommendations"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a class or backend is wrong"
    )
    args = parser.parse_args()
    found = run(args.rounds)
    print(f"{'test':24} {'expected':17} {'measured':17} {'use':8} ok   reason")
    ok = True
    for test, (klass, backend) in EXPECTED.items():
        rec = found.get(test, {})
        right = rec.get("classification") == klass and rec.get("backend") == backend
        ok &= right
        print(
            f"{test:24} {klass:17} {rec.get('classification', '-'):17} {rec.get('backend', '-'):8} "
            f"{'yes' if right else 'NO ':4} {rec.get('reason', '')}"
        )
    print(
        f"{sum(1 for t in EXPECTED if found.get(t, {}).get('classification') == EXPECTED[t][0])}"
        f"/{len(EXPECTED)} classes right"
    )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
