"""How many CPUs this process can really use: the affinity mask, ``PYTHON_CPU_COUNT``
and a cgroup CPU quota (v1 and v2, read from the process's own cgroup), the least of
them, and which one it is.

CI runners and containers often have a quota (Docker ``--cpus``, Kubernetes limits)
below the CPUs that ``os.cpu_count()`` and the affinity mask report; a plugin that
counts CPUs without it expects a 2x speedup that a 1-CPU quota can never give.

Pure: every file is read through *root* (``/`` on a real machine), so the rules are
tested on a fake tree of ``/proc`` and ``/sys`` files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class CpuCapacity:
    """The CPUs this process may use, and what limits them."""

    #: ``os.cpu_count()``: the CPUs the machine has online
    online: int
    #: the CPU time per second this process may get (a quota can be a fraction)
    cpus: float
    #: what limits it, in words ("cgroup quota 100000/100000"), or "" when nothing does
    limit: str = ""

    @property
    def usable(self) -> int:
        """Whole CPUs to size pools with (``workers="auto"``): a 1.5-CPU quota keeps 2
        workers busy, a 0.5-CPU quota one."""
        return max(1, math.ceil(self.cpus - 1e-9))

    def describe(self) -> str:
        """'1 usable CPU: cgroup quota 100000/100000 of 2 online' (the report header)."""
        count = f"{self.usable} usable CPU" + ("" if self.usable == 1 else "s")
        if not self.limit:
            return count
        share = "" if self.cpus == self.usable else f" ({self.cpus:g} CPUs of time)"
        return f"{count}{share}: {self.limit} of {self.online} online"


def read_capacity(
    root: Path = Path("/"),
    environ: Mapping[str, str] = os.environ,
    online: int | None = None,
    affinity: int | None = None,
    process_cpu_count: Callable[[], int | None] | None = None,
) -> CpuCapacity:
    """This process's :class:`CpuCapacity`. The arguments after *root* default to this
    process's own (``os.cpu_count()``, the affinity mask, ``os.process_cpu_count``)."""
    machine = online if online is not None else os.cpu_count() or 1
    limits: list[tuple[float, str]] = []
    mask = affinity if affinity is not None else _affinity()
    if mask is not None and mask < machine:
        limits.append((float(mask), f"affinity mask of {mask}"))
    counted = _counted_cpus(environ, process_cpu_count)
    if counted is not None and counted < min([machine, *(c for c, _ in limits)]):
        limits.append((float(counted), f"PYTHON_CPU_COUNT={counted}"))
    quota = cgroup_quota(root)
    if quota is not None and quota[0] < machine:
        limits.append(quota)
    if not limits:
        return CpuCapacity(machine, float(machine))
    cpus, words = min(limits, key=lambda limit: limit[0])
    return CpuCapacity(machine, cpus, words)


def _affinity() -> int | None:
    getter = getattr(os, "sched_getaffinity", None)
    return len(getter(0)) if getter is not None else None


def _counted_cpus(
    environ: Mapping[str, str], process_cpu_count: Callable[[], int | None] | None
) -> int | None:
    """``PYTHON_CPU_COUNT`` (Python 3.13+ applies it to ``os.process_cpu_count()``; older
    Pythons ignore it, so it is read here too)."""
    text = environ.get("PYTHON_CPU_COUNT", "")
    if text.isdigit() and int(text) > 0:
        return int(text)
    counter = process_cpu_count or getattr(os, "process_cpu_count", None)
    if counter is None:
        return None
    count: int | None = counter()
    return count


def cgroup_quota(root: Path = Path("/")) -> tuple[float, str] | None:
    """The tightest CPU quota on this process's cgroup and its ancestors, as (CPUs,
    words), or None without one (no cgroup, no quota, or not Linux)."""
    found: list[tuple[float, str]] = []
    for directory, version in _cpu_cgroup_directories(root):
        for folder in _up_to_mount(directory):
            quota = _read_quota(folder, version)
            if quota is not None:
                found.append(quota)
    return min(found, key=lambda q: q[0]) if found else None


def _read_quota(folder: Path, version: int) -> tuple[float, str] | None:
    if version == 2:
        text = _read(folder / "cpu.max")
        if text is None:
            return None
        parts = text.split()
        if len(parts) != 2 or parts[0] == "max" or not parts[0].isdigit() or not parts[1].isdigit():
            return None
        quota, period = int(parts[0]), int(parts[1])
    else:
        quota_text = _read(folder / "cpu.cfs_quota_us")
        period_text = _read(folder / "cpu.cfs_period_us")
        if quota_text is None or period_text is None:
            return None
        try:
            quota, period = int(quota_text), int(period_text)
        except ValueError:
            return None
    if quota <= 0 or period <= 0:  # -1 (v1) or 0: no quota
        return None
    return quota / period, f"cgroup quota {quota}/{period}"


def _cpu_cgroup_directories(root: Path) -> Iterator[tuple[Path, int]]:
    """The directories of this process's CPU cgroups: (path, cgroup version)."""
    membership = _read(root / "proc/self/cgroup")
    mounts = _read(root / "proc/self/mountinfo")
    if membership is None or mounts is None:
        return
    for line in membership.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        hierarchy, controllers, path = fields
        version = 2 if hierarchy == "0" and not controllers else 1
        if version == 1 and "cpu" not in controllers.split(","):
            continue
        for mount_root, mount_point in _cgroup_mounts(mounts, version):
            relative = _relative(PurePosixPath(path), PurePosixPath(mount_root))
            if relative is not None:
                yield root / mount_point.lstrip("/") / relative, version


def _cgroup_mounts(mountinfo: str, version: int) -> Iterator[tuple[str, str]]:
    """(root inside the hierarchy, mount point) of each cgroup mount of *version*
    (v1: only those with the cpu controller)."""
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        fstype, options = tail[0], tail[2].split(",")
        if (version == 2 and fstype == "cgroup2") or (
            version == 1 and fstype == "cgroup" and "cpu" in options
        ):
            yield fields[3], fields[4]


def _relative(path: PurePosixPath, mount_root: PurePosixPath) -> str | None:
    try:
        return str(path.relative_to(mount_root)).removeprefix(".")
    except ValueError:
        return None


def _up_to_mount(directory: Path) -> Iterator[Path]:
    """*directory*, then each parent that is still a cgroup (a quota on an ancestor
    limits its descendants too)."""
    current = directory
    while True:
        yield current
        parent = current.parent
        if parent == current or not (parent / "cgroup.procs").exists():
            return
        current = parent


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
