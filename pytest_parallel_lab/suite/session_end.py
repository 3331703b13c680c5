"""The end of an xdist session, calibrated on this machine: how long a worker takes to exit.

Issue 11 measured 0.7-2.6 s between an xdist session's last test and its end (the
controller waiting for the worker interpreters to exit, their own end-of-session
work), where the model allowed a constant 0.15 s. It is calibrated the way a
worker's start-up is: from an interpreter of this machine. :class:`InterpreterExitProbe`
starts one at the session start that imports pytest and the run's plugins, as a
worker does, and waits; at the session end it is told to exit, and the time from
that word to its end is timed. An interpreter's exit (garbage collection, module
teardown) grows with what it holds, and a worker that ran the suite holds what the
tests imported and built: :func:`session_end_s` scales the probe's exit by this
process's allocated memory blocks over the probe's (``sys.getallocatedblocks``, read
in constant time). When nothing could be measured the calibration keeps
:data:`~pytest_parallel_lab.document.suite.XDIST_SHUTDOWN_S`.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
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
    """An interpreter started now that imported *modules*; :meth:`measure` times its exit."""

    def __init__(self, modules: Sequence[str]) -> None:
        self.process: subprocess.Popen[bytes] | None
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

    def measure(self) -> float | None:
        """The session end a worker would take (:func:`session_end_s`), or None when the
        probe did not start, import or exit in time. Once: the probe is gone after."""
        process, self.process = self.process, None
        if process is None or process.stdout is None or process.stdin is None:
            return None
        try:
            ready, _, _ = select.select([process.stdout], [], [], PROBE_TIMEOUT_S)
            line = process.stdout.readline() if ready else b""
            if not line.strip().isdigit():
                return None
            start = timing.perf_counter()
            process.stdin.write(b"exit\n")
            process.stdin.flush()
            process.wait(PROBE_TIMEOUT_S)
            exit_s = timing.perf_counter() - start
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return None
        finally:
            _stop(process)
        return session_end_s(exit_s, int(line), sys.getallocatedblocks())

    def close(self) -> None:
        """Stop a probe that was never measured (a run that ended early)."""
        process, self.process = self.process, None
        if process is not None:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            # a probe that died: the word to exit is left unsent, and that is all
            with contextlib.suppress(OSError):
                stream.close()
