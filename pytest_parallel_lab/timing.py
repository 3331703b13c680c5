"""The one place where pytest-parallel-lab reads clocks.

Every measurement goes through these names, read at call time (``timing.perf_counter()``),
so that tests can patch time and exercise timing rules without sleeping, the way
pytest's own ``_pytest.timing`` is used: the tests' ``fake_clock`` fixture replaces
both (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any

_getrusage: Any
try:
    from resource import RUSAGE_CHILDREN as _RUSAGE_CHILDREN
    from resource import getrusage as _getrusage
except ImportError:  # pragma: no cover - Windows: no resource module
    _getrusage = None

#: Monotonic wall clock for intervals (seconds, arbitrary origin; on Linux it is
#: CLOCK_MONOTONIC, so values taken in different processes are comparable).
perf_counter = time.perf_counter

#: CPU time of this process, all threads (seconds).
process_time = time.process_time

#: CPU time of the calling thread only (seconds).
thread_time = time.thread_time


def cpu_time() -> float:
    """CPU seconds of this process (all threads) and of the children it has waited for
    (a test's ``subprocess.run``): what a test takes from the machine's CPUs. About 2
    microseconds a reading."""
    return time.process_time() + children_cpu_time()


def children_cpu_time() -> float:
    """CPU seconds of the children this process has waited for (0 where the platform
    does not tell)."""
    if _getrusage is None:  # pragma: no cover - Windows
        return 0.0
    children = _getrusage(_RUSAGE_CHILDREN)
    return float(children.ru_utime + children.ru_stime)


def machine_cpu_seconds() -> tuple[float, float] | None:
    """(busy, steal): CPU seconds the whole machine has spent busy, and lost to a
    hypervisor, since boot, summed over its CPUs (Linux ``/proc/stat``); None where the
    platform does not tell. Compared before and after a measurement, they show what
    other processes took meanwhile."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal ...: guest time is inside user.
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
    return (user + nice + system + irq + softirq) / tick, steal / tick


def own_cpu_seconds() -> float | None:
    """CPU seconds this process and its live descendants (pool workers, a forkserver and
    its workers) have used, all threads included (Linux ``/proc``); None elsewhere."""
    try:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in _descendants(os.getpid()):
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    except (OSError, ValueError, IndexError):
        return None
    return time.process_time() + total


def _descendants(pid: int) -> list[int]:
    """The live descendants of *pid*, from ``/proc/PID/task/TID/children``."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in os.listdir(f"/proc/{parent}/task"):
            try:
                with open(f"/proc/{parent}/task/{task}/children", encoding="ascii") as handle:
                    children = [int(c) for c in handle.read().split()]
            except FileNotFoundError:  # the thread ended meanwhile
                continue
            found.extend(children)
            pending.extend(children)
    return found


def utc_now_iso() -> str:
    """The current UTC time as an ISO 8601 string with second precision."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
