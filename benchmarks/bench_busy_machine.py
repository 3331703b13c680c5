"""Are the recommendations right on the machines people really have? Quiet, busy, quota.

Runs busy_workloads.py (pure-Python CPU, hashlib over 8 MiB, time.sleep, asyncio.sleep)
through pytest with --parallel-report-json, ``--runs`` times under each condition:

* ``quiet``: the machine as it is;
* ``hog``: beside a CPU hog this script starts (a process spinning on one CPU);
* ``quota``: inside a cgroup with a CPU quota of one CPU (cgroup v1 ``cpu`` or v2
  ``cpu.max``), which the script creates and removes; it needs root, and says so and
  leaves the condition out when it cannot.

Each recommendation is ``right`` (the expected model), ``honest`` (the plugin said the
machine could not show it: undecided with what the machine delivered, or a model named
but not shown, with the CPUs printed) or ``wrong``. Targets (issue 10): quiet, every
workload right in every run; hog and quota, nothing wrong; every quota run reporting
about 1 usable CPU.

    python benchmarks/bench_busy_machine.py [--runs 5] [--only quiet,hog,quota]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tabulate import tabulate

HERE = Path(__file__).resolve().parent
EXPECTED = {
    "test_pure_python_cpu": "process",
    "test_hashlib": "thread",
    "test_sleep": "thread",
    "test_asyncio_sleep": "asyncio",
}
CONDITIONS = ("quiet", "hog", "quota")
CGROUP_NAME = "pytest-parallel-lab-bench"


def spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def hog() -> Iterator[None]:
    """A process spinning on one CPU, stopped on the way out."""
    process = multiprocessing.get_context("spawn").Process(target=spin, daemon=True)
    process.start()
    try:
        yield
    finally:
        process.kill()
        process.join(10)


@contextlib.contextmanager
def quota_of_one_cpu() -> Iterator[Callable[[], None]]:
    """A cgroup with a quota of one CPU; yields what puts a child process into it."""
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    if v2.exists() and "cpu" in v2.read_text().split():
        group = Path("/sys/fs/cgroup") / CGROUP_NAME
        limits = {"cpu.max": "100000 100000\n"}
    else:
        group = Path("/sys/fs/cgroup/cpu") / CGROUP_NAME
        limits = {"cpu.cfs_period_us": "100000\n", "cpu.cfs_quota_us": "100000\n"}
    group.mkdir(exist_ok=True)

    def enter() -> None:  # runs in the child, before it becomes pytest
        (group / "cgroup.procs").write_text(f"{os.getpid()}\n")

    try:
        for name, value in limits.items():
            (group / name).write_text(value)
        print(f"quota: made cgroup {group} (1 CPU); it is removed at the end", file=sys.stderr)
        yield enter
    finally:
        for _ in range(50):  # a worker the run started may take a moment to exit
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
        else:
            print(f"quota: could not remove {group}; remove it with rmdir", file=sys.stderr)


def one_run(out: Path, enter: Callable[[], None] | None) -> dict[str, Any]:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(HERE / "busy_workloads.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            f"--parallel-report-json={out}",
        ],
        check=False,
        capture_output=True,
        cwd=out.parent,
        preexec_fn=enter,  # a cgroup is joined before exec, so pytest starts inside it
    )
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def judge(recommendation: dict[str, Any]) -> str:
    """'right', 'honest' (the machine could not show it, and the report says so) or 'wrong'."""
    test = str(recommendation["test"]).split("::")[-1]
    reason = str(recommendation.get("reason", ""))
    honest = "the machine delivered" in reason or "cannot show" in reason
    if recommendation["backend"] == EXPECTED[test]:
        return "right"  # shown, or named with why this machine could not show it
    return "honest" if honest else "wrong"


def usable_cpus(data: dict[str, Any]) -> str:
    environment = data["environment"]
    return f"{environment['usable_cpus']} ({environment.get('cpu_limit') or 'no limit'})"


def run_condition(
    condition: str, runs: int, tmp: Path, enter: Callable[[], None] | None
) -> tuple[list[list[object]], list[str]]:
    """One table row per workload, and a note for every answer that was not a plain 'right'."""
    tally: dict[str, dict[str, int]] = {test: {} for test in EXPECTED}
    cpus: set[str] = set()
    notes: list[str] = []
    for run in range(runs):
        data = one_run(tmp / f"{condition}{run}.json", enter)
        cpus.add(usable_cpus(data))
        for recommendation in data.get("recommendations", []):
            test = str(recommendation["test"]).split("::")[-1]
            verdict = judge(recommendation)
            tally[test][verdict] = tally[test].get(verdict, 0) + 1
            if verdict != "right" or not recommendation.get("shown", True):
                notes.append(f"{condition} run {run + 1} {test}: {recommendation['reason']}")
    rows: list[list[object]] = [
        [
            condition,
            test,
            EXPECTED[test],
            f"{counts.get('right', 0)}/{runs}",
            counts.get("honest", 0),
            counts.get("wrong", 0),
            ", ".join(sorted(cpus)),
        ]
        for test, counts in tally.items()
    ]
    return rows, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default=",".join(CONDITIONS))
    args = parser.parse_args()
    table: list[list[object]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for condition in [c for c in args.only.split(",") if c]:
            if condition == "quota" and os.geteuid() != 0:
                notes.append("quota: left out, creating a cgroup needs root")
                continue
            with contextlib.ExitStack() as stack:
                enter = None
                if condition == "hog":
                    stack.enter_context(hog())
                elif condition == "quota":
                    try:
                        enter = stack.enter_context(quota_of_one_cpu())
                    except OSError as exc:
                        notes.append(f"quota: left out, no cgroup could be made ({exc})")
                        continue
                rows, condition_notes = run_condition(condition, args.runs, Path(tmp), enter)
                table += rows
                notes += condition_notes
    headers = ["condition", "workload", "expected", "right", "honest", "wrong", "usable CPUs"]
    print(tabulate(table, headers))
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
