"""The end of an xdist session, calibrated on this machine: how long a worker takes to exit.

Issue 11 measured 0.7-2.6 s between an xdist session's last test and its end (the
controller waiting for the worker interpreters to exit, their own end-of-session
work), where the model allowed a constant 0.15 s. It is calibrated the way a
worker's start-up is: from an interpreter of this machine. :class:`InterpreterExitProbe`
starts one at the session start that imports pytest and the run's plugins, as a
worker does; once it has, it is told to exit, and the time from that word to its
end is timed (while the tests run, where the platform allows). An interpreter's
exit (garbage collection, module teardown) grows with what it holds, and a worker
that ran the suite holds what the tests imported and built: :func:`session_end_s`
scales the probe's exit by this process's allocated memory blocks over the probe's
(``sys.getallocatedblocks``, read in constant time). When nothing could be measured
the calibration keeps :data:`~pytest_parallel_lab.document.suite.XDIST_SHUTDOWN_S`.
"""

from __future__ import annotations

import contextlib
import os
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
import importlib, sys
import pytest
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        pass
sys.stdout.write(f"{sys.getallocatedblocks()}\\n")
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
        #: (exit seconds, the probe's allocated blocks), once timed
        self.timed: tuple[float, int] | None = None
        self.thread: threading.Thread | None = None
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", PROBE_CODE, *modules],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
                # Out of the run's process group: Ctrl-C to the run is not for it. It
                # still ends with the run: its stdin closes when the run's process does.
                start_new_session=True,
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
            self.timed = _time_exit(process, reap=False)

    def measure(self) -> float | None:
        """The session end a worker would take (:func:`session_end_s`), or None when the
        probe did not start, import or exit in time. Once: the probe is gone after."""
        process, self.process = self.process, None
        if process is None:
            return None
        try:
            if self.thread is not None:
                self.thread.join(2 * PROBE_TIMEOUT_S)
                timed = self.timed
            else:
                timed = _time_exit(process, reap=True)
        finally:
            _stop(process)
        if timed is None:
            return None
        return session_end_s(timed[0], timed[1], sys.getallocatedblocks())

    def close(self) -> None:
        """Stop a probe that was never measured (a run that ended early)."""
        process, self.process = self.process, None
        if process is not None:
            _stop(process)


def _time_exit(process: subprocess.Popen[bytes], reap: bool) -> tuple[float, int] | None:
    """Wait for the probe to be ready, tell it to exit and time its exit: (seconds, its
    allocated blocks), or None. Without *reap* the exited probe is left to be reaped."""
    if process.stdout is None or process.stdin is None:
        return None
    try:
        ready, _, _ = select.select([process.stdout], [], [], PROBE_TIMEOUT_S)
        line = process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            return None
        start = timing.perf_counter()
        process.stdin.write(b"exit\n")
        process.stdin.flush()
        if reap:
            process.wait(PROBE_TIMEOUT_S)
        else:
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        return timing.perf_counter() - start, int(line)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            # a probe that died: the word to exit is left unsent, and that is all
            with contextlib.suppress(OSError):
                stream.close()
