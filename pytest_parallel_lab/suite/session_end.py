"""The end of an xdist session, calibrated on this machine: how long a worker takes to exit.

Issue 11 measured 0.7-2.6 s between an xdist session's last test and its end (the
controller waiting for the worker interpreters to exit, their own end-of-session
work), where the model allowed a constant 0.15 s. It is calibrated the way a
worker's start-up is: from an interpreter of this machine. :class:`InterpreterExitProbe`
starts one at the session start that imports pytest and the run's plugins, as a
worker does; once it has, it is told to exit, and the time from that word to its
end is timed (while the tests run, where the platform allows). It runs at the lowest
priority (``nice 19``): it takes a CPU the run leaves idle, and on a busy machine
(a shared runner, a second job) next to nothing, instead of slowing the tests it
calibrates from; the session end never waits for a probe still importing, it stops
it and keeps the default. Its exit is the CPU time it took (``wait4``), when that is
less than its wall time: a low-priority exit beside busy CPUs waits for them, a
worker's does not (the model slows the exit by the CPUs' contention itself). An interpreter's
exit (garbage collection, module teardown) grows with what it holds, and a worker
that ran the suite holds what the tests imported and built: :func:`session_end_s`
scales the probe's exit by this process's allocated memory blocks over the probe's
(``sys.getallocatedblocks``, read in constant time). When nothing could be measured
the calibration keeps :data:`~pytest_parallel_lab.document.suite.XDIST_SHUTDOWN_S`.
"""

from __future__ import annotations

import contextlib
import os
import platform
import select
import subprocess
import sys
import threading
from collections.abc import Sequence

from pytest_parallel_lab import timing

#: What the probe runs: import what a worker imports, say how much it holds, wait for
#: the word to exit (a line: not the end of its stdin, which a process the tests forked
#: may hold open).
PROBE_CODE = """
import importlib, os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C to the run is not for it
try:
    os.nice(19)
except (AttributeError, OSError):
    pass
import pytest
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        pass
sys.stdout.write(f"{sys.getallocatedblocks()} {time.process_time()!r}\\n")
sys.stdout.flush()
sys.stdin.readline()
"""
#: How long the session end waits for a probe still importing, and for its exit.
PROBE_TIMEOUT_S = 10.0


def session_end_s(exit_s: float, probe_blocks: int, blocks: int) -> float:
    """A worker's exit: the probe's *exit_s*, times what this process holds
    (*blocks*) over what the probe held, never less than the probe's own."""
    if probe_blocks <= 0:
        return exit_s
    return exit_s * max(1.0, blocks / probe_blocks)


class InterpreterExitProbe:
    """An interpreter started now that imported *modules*, timed as it exits.

    Where the platform can wait for a process without reaping it (``os.waitid`` with
    ``WNOWAIT``), a thread tells the probe to exit as soon as it is ready and times
    its exit while the tests run, so the session end only reads the result; the
    probe is reaped at the session end, after every test (a reaped child's CPU counts
    in ``timing.cpu_time``, which would charge it to the test then running).
    Elsewhere :meth:`measure` times the exit itself.
    """

    def __init__(self, modules: Sequence[str]) -> None:
        self.process: subprocess.Popen[bytes] | None
        #: (exit seconds, the probe's allocated blocks, its CPU seconds when ready), once
        #: timed
        self.timed: tuple[float, int, float] | None = None
        self.thread: threading.Thread | None = None
        #: set once the probe said it is ready (or could not be): from then on its
        #: exit takes a moment, not an import
        self.ready = threading.Event()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", PROBE_CODE, *modules],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
                # In the run's session: a process of a session of its own gets a CPU
                # share of its own where the kernel groups by session (Linux's
                # autogroup), whatever its priority. It ignores Ctrl-C and ends with the
                # run: its stdin closes when the run's process does.
            )
        except OSError:
            self.process = None
            return
        if hasattr(os, "waitid") and hasattr(os, "WNOWAIT"):
            self.thread = threading.Thread(
                target=self._time_meanwhile, name="parallel-lab-exit-probe", daemon=True
            )
            self.thread.start()

    def _time_meanwhile(self) -> None:
        process = self.process
        if process is not None:
            self.timed = _time_exit(process, reap=False, ready=self.ready)
        self.ready.set()

    def measure(self) -> float | None:
        """The session end a worker would take (:func:`session_end_s`), or None when the
        probe did not start, was still importing, or did not exit in time. Once: the
        probe is gone after."""
        timed = self.measure_exit()
        if timed is None:
            return None
        return session_end_s(timed[0], timed[1], sys.getallocatedblocks())

    def measure_exit(self) -> tuple[float, int] | None:
        """The probe's own exit and the memory blocks it held then (what
        :func:`session_end_s` scales), or None as :meth:`measure`."""
        process, self.process = self.process, None
        if process is None:
            return None
        cpu: float | None = None
        try:
            if self.thread is not None:
                if not self.ready.is_set():
                    return None  # still importing: stopped, not waited for
                self.thread.join(PROBE_TIMEOUT_S)
                timed = self.timed
                if timed is not None:
                    cpu = _reaped_cpu(process)
            else:
                timed = _time_exit(process, reap=True)
        finally:
            _stop(process)
        if timed is None:
            return None
        exit_s, blocks, ready_cpu = timed
        if cpu is not None and 0.0 < cpu - ready_cpu < exit_s:
            exit_s = cpu - ready_cpu
        return exit_s, blocks

    def close(self) -> None:
        """Stop a probe that was never measured (a run that ended early)."""
        process, self.process = self.process, None
        if process is not None:
            _stop(process)


#: How long a probe's measured exit is kept in pytest's cache for this machine, Python
#: and set of plugins: a day of runs starts no probe after the first.
CACHE_KEY = "parallel_lab/session_end"
CACHE_DAYS = 1.0


def probe_identity(modules: Sequence[str]) -> str:
    """What a cached exit was measured for: the host, this interpreter and its version,
    and the plugin modules a worker imports (a restored ``.pytest_cache`` on another
    runner, or another virtualenv, measures again)."""
    return "|".join(
        [platform.node(), sys.executable, sys.version.split()[0], *sorted(set(modules))]
    )


def cached_exit(entry: object, identity: str, now: float) -> tuple[float, int] | None:
    """The (exit seconds, blocks) of a cache *entry* measured for *identity* less than
    :data:`CACHE_DAYS` before *now* (``time.time()``), or None: another machine, too old,
    or not an entry at all (the file is the user's: anything may be in it)."""
    if not isinstance(entry, dict) or entry.get("identity") != identity:
        return None
    exit_s, blocks, at = entry.get("exit_s"), entry.get("blocks"), entry.get("at")
    if not (isinstance(exit_s, float) and isinstance(at, float) and type(blocks) is int):
        return None
    if not (0.0 < exit_s < PROBE_TIMEOUT_S and blocks > 0 and 0.0 <= now - at < CACHE_DAYS * 86400):
        return None
    return exit_s, blocks


def cache_entry(identity: str, exit_s: float, blocks: int, now: float) -> dict[str, object]:
    """What :func:`cached_exit` reads back."""
    return {"identity": identity, "exit_s": exit_s, "blocks": blocks, "at": now}


def _time_exit(
    process: subprocess.Popen[bytes], reap: bool, ready: threading.Event | None = None
) -> tuple[float, int, float] | None:
    """Wait for the probe to be ready, tell it to exit and time its exit: (seconds, its
    allocated blocks, its CPU seconds when it was ready), or None. Without *reap* the
    exited probe is left to be reaped; *ready* is set once it said it is."""
    if process.stdout is None or process.stdin is None:
        return None
    try:
        found, _, _ = select.select([process.stdout], [], [], PROBE_TIMEOUT_S)
        line = process.stdout.readline() if found else b""
        if ready is not None:
            ready.set()
        fields = line.split()
        if not fields or not fields[0].isdigit():
            return None
        ready_cpu = float(fields[1]) if len(fields) > 1 else 0.0
        start = timing.perf_counter()
        process.stdin.write(b"exit\n")
        process.stdin.flush()
        if reap:
            process.wait(PROBE_TIMEOUT_S)
        else:
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        return timing.perf_counter() - start, int(fields[0]), ready_cpu
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def _reaped_cpu(process: subprocess.Popen[bytes]) -> float | None:
    """Reap the exited probe and return the CPU seconds it took, or None (not on this
    platform, or not exited)."""
    wait4 = getattr(os, "wait4", None)
    if wait4 is None:
        return None
    try:
        pid, _, usage = wait4(process.pid, os.WNOHANG)
    except OSError:
        return None
    if pid != process.pid:
        return None
    process.returncode = 0  # reaped here: Popen must not wait for it again
    return float(usage.ru_utime + usage.ru_stime)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            # a probe that died: the word to exit is left unsent, and that is all
            with contextlib.suppress(OSError):
                stream.close()
