"""Peak processes and threads of a run whose marked tests ask for ever more workers.

The growth cases of issue 14: 40 ``process`` tests with ``workers=1..40`` and 200
``thread`` tests with ``workers=1..200``. Each case runs in a fresh directory under each
given interpreter (this checkout's, and another checkout's venv to compare with), while
a sampler counts the pytest process's descendants and its threads every 20 ms.

    python benchmarks/bench_pool_footprint.py [--python /other/venv/bin/python ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tabulate import tabulate

CASES = {
    "40 process tests, workers=1..40": (
        "process",
        40,
    ),
    "200 thread tests, workers=1..200": ("thread", 200),
}

TEMPLATE = """
import pytest

@pytest.mark.parametrize("n", range(1, {count} + 1))
def test_placeholder(n):
    pass
{tests}
"""


def suite(backend: str, count: int) -> str:
    tests = "".join(
        f"\n@pytest.mark.parallel(backend={backend!r}, workers={n}, tasks=1, rounds=2)\n"
        f"def test_w{n}():\n    pass\n"
        for n in range(1, count + 1)
    )
    return TEMPLATE.format(count=1, tests=tests)


def descendants(pid: int) -> list[int]:
    """The pids of *pid*'s descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def threads_of(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def run(python: str, backend: str, count: int) -> tuple[int, int, float, int]:
    """Peak descendant processes, peak threads of pytest, wall seconds, exit status."""
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "test_growth.py").write_text(suite(backend, count))
        started = time.perf_counter()
        process = subprocess.Popen(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_growth.py"],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak_processes = peak_threads = 0
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak_processes, peak_threads
            while not stop.is_set():
                peak_processes = max(peak_processes, len(descendants(process.pid)))
                peak_threads = max(peak_threads, threads_of(process.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = process.wait()
        stop.set()
        sampler.join()
        return peak_processes, peak_threads, time.perf_counter() - started, rc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", default=[], help="another interpreter")
    args = parser.parse_args()
    pythons = [sys.executable, *args.python]
    rows = []
    for case, (backend, count) in CASES.items():
        for python in pythons:
            processes, threads, wall, rc = run(python, backend, count)
            rows.append([case, python, processes, threads, f"{wall:.1f}", rc])
    print(
        tabulate(
            rows,
            headers=["case", "interpreter", "peak processes", "peak threads", "wall s", "exit"],
        )
    )


if __name__ == "__main__":
    main()
