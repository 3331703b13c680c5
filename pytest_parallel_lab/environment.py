"""The machine and interpreter a run measures on: CPUs, GIL, start method, xdist role.

Pure (no pytest): the glue works these out once at configure time and hands them on,
and :func:`describe_environment` makes the document's ``environment`` block.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_parallel_lab import __version__
from pytest_parallel_lab.capacity import CpuCapacity, read_capacity
from pytest_parallel_lab.vocabulary import Role

if TYPE_CHECKING:
    from pytest_parallel_lab.document.records import Environment


def usable_cpus() -> int:
    """Whole CPUs this process may use: affinity, ``PYTHON_CPU_COUNT`` and a cgroup quota
    (see :mod:`pytest_parallel_lab.capacity`)."""
    return read_capacity().usable


@dataclass(frozen=True)
class XdistRun:
    """This process's part in a pytest-xdist run, worked out once."""

    role: Role = Role.PLAIN
    #: the ``-n`` worker count (0 without xdist)
    workers: int = 0
    #: ``gw0``, ... in a worker
    worker_id: str | None = None
    #: the ``--dist`` mode
    dist: str = "no"

    @classmethod
    def from_settings(
        cls,
        workerinput: Mapping[str, Any] | None,
        numprocesses: Any,
        dist: Any,
        tx: Sequence[str] = (),
    ) -> XdistRun:
        """From xdist's ``config.workerinput`` (in a worker) or its ``-n``, ``--dist`` and
        ``--tx`` options (on the controller)."""
        if workerinput is not None:
            return cls(
                Role.WORKER,
                int(workerinput.get("workercount", 1)),
                str(workerinput.get("workerid")),
                str(dist or "load"),
            )
        if dist in (None, "no"):
            return cls()
        if isinstance(numprocesses, int) and numprocesses > 0:
            return cls(Role.CONTROLLER, numprocesses, None, str(dist))
        gateways = sum(_gateways(spec) for spec in tx or ())
        return cls(Role.CONTROLLER, gateways, None, str(dist)) if gateways else cls()


def _gateways(spec: str) -> int:
    """How many workers one ``--tx`` spec starts: ``3*popen`` three, ``ssh=host`` one."""
    count, star, _ = spec.partition("*")
    return int(count) if star and count.isdigit() else 1


def gil_enabled() -> bool:
    """Whether the GIL is on in this process right now (3.13+ can turn it off)."""
    check = getattr(sys, "_is_gil_enabled", None)
    return bool(check()) if check is not None else True


def free_threaded_build() -> bool:
    """Whether the interpreter was built with ``Py_GIL_DISABLED`` (the 't' builds)."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def gil_forced() -> str | None:
    """How the user set the GIL for this process, if they did: ``PYTHON_GIL=1`` or
    ``-X gil=0`` (as written); None when the build's default applies."""
    option = getattr(sys, "_xoptions", {}).get("gil")
    if option is not None:
        return f"-X gil={option}"
    value = os.environ.get("PYTHON_GIL")
    return f"PYTHON_GIL={value}" if value else None


#: CPython's RuntimeWarning when an extension without free-threading support turns the
#: GIL on at import (3.13+): "The global interpreter lock (GIL) has been enabled to load
#: module '_x', which has not declared that it can run safely without the GIL. ..."
_GIL_ENABLED_TO_LOAD = re.compile(r"GIL\) has been enabled to load module '(?P<module>[^']+)'")


def gil_reenabling_module(message: str) -> str | None:
    """The module a 'GIL has been enabled to load module' warning names, if it is one."""
    found = _GIL_ENABLED_TO_LOAD.search(message)
    return found.group("module") if found else None


@dataclass(frozen=True)
class GilWatch:
    """The GIL of a free-threaded build, watched from the start of the session: a C
    extension that does not declare free-threading support turns it on at import, for
    the rest of the process (pytest-run-parallel reports the same)."""

    free_threaded: bool
    enabled_at_start: bool
    #: PYTHON_GIL / -X gil as set at the start, if set
    forced: str | None = None

    @classmethod
    def now(cls) -> GilWatch:
        return cls(free_threaded_build(), gil_enabled(), gil_forced())

    def reenabled(self, enabled_now: bool) -> bool:
        """The GIL was off at the start and is on now: something turned it on."""
        return self.free_threaded and not self.enabled_at_start and enabled_now

    def describe(self, enabled_now: bool, modules: Sequence[str] = ()) -> str | None:
        """What a free-threaded run should be told about its GIL, or None (a default
        build, or the GIL off throughout)."""
        if not self.free_threaded:
            return None
        if self.enabled_at_start:
            how = f" by {self.forced}" if self.forced else ""
            return (
                f"the GIL is enabled{how} on this free-threaded build: threads run Python "
                "code one at a time, as on a default build"
            )
        if not enabled_now:
            return None
        by = f" to load {', '.join(repr(m) for m in modules)}" if modules else ""
        return (
            f"the GIL was re-enabled at runtime{by}: an extension module that has not "
            "declared free-threading support was imported, and thread measurements after "
            "it ran under the GIL. Fix: use a version of it that supports free-threading, "
            "or run with PYTHON_GIL=0 (at your own risk)"
        )


def platform_name() -> str:
    """``platform.platform()``, without its cost on glibc Linux: there it reads the whole
    interpreter binary to find the C library's version (7 ms), which glibc tells at once."""
    uname = platform.uname()
    if uname.system == "Linux":
        try:
            libc = os.confstr("CS_GNU_LIBC_VERSION")
        except (ValueError, OSError, AttributeError):
            libc = None
        if libc and libc.startswith("glibc "):
            version = libc.split()[1]
            return f"{uname.system}-{uname.release}-{uname.machine}-with-glibc{version}"
    return platform.platform()


def describe_environment(
    *,
    pytest_version: str,
    capacity: CpuCapacity,
    xdist_workers: int = 0,
    start_method: str | None = None,
    label: str | None = None,
) -> Environment:
    """The environment block for this process, whose CPUs are *capacity*."""
    from pytest_parallel_lab.document.records import Environment  # only for a report

    return Environment(
        python_version=platform.python_version(),
        implementation=platform.python_implementation(),
        gil_enabled=gil_enabled(),
        free_threaded_build=free_threaded_build(),
        cpu_count=capacity.online,
        usable_cpus=capacity.usable,
        cpu_capacity=capacity.cpus,
        cpu_limit=capacity.limit,
        platform=platform_name(),
        machine=platform.machine(),
        pytest_version=pytest_version,
        plugin_version=__version__,
        xdist_workers=xdist_workers,
        start_method=start_method or default_start_method(),
        tox_env=os.environ.get("TOX_ENV_NAME") or None,
        label=label,
    )


def default_start_method() -> str:
    """The start method a process pool gets here when none is given.

    Only ``multiprocessing`` can change it, so while nothing in this process has
    imported that (5 ms to import, for a report that may have no pools at all), the
    answer is the platform's default, as CPython picks it.
    """
    multiprocessing = sys.modules.get("multiprocessing")
    if multiprocessing is None:
        return platform_default_start_method()
    methods = multiprocessing.get_all_start_methods()
    chosen: str | None = multiprocessing.get_start_method(allow_none=True)
    return chosen or (methods[0] if methods else "none")


def platform_default_start_method(
    platform_id: str = sys.platform, version: tuple[int, int] = sys.version_info[:2]
) -> str:
    """CPython's default: spawn on Windows and macOS; on other POSIX systems fork up to
    3.13 and forkserver from 3.14."""
    if platform_id in ("win32", "darwin"):
        return "spawn"
    return "forkserver" if version >= (3, 14) else "fork"
