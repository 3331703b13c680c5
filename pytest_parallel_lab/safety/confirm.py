"""``--parallel-safety-confirm=N``: rerun the findings' tests under ``pytest -n N``.

No pytest import: the glue gives the command's parts, this runs it a few times in a
child process and reads which tests failed from the JUnit XML pytest writes (its own
``--junitxml``, so the child needs nothing of this plugin). The child and its xdist
workers are one process group of their own, killed when a run times out and when
Ctrl-C (or any exception) stops the parent; on Linux the child also dies with its
parent (``PR_SET_PDEATHSIG``), however the parent ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_parallel_lab.document.safety import ConfirmRun

#: How many times the tests are rerun under -n N (a collision needs the tests to meet).
CONFIRM_RUNS = 3
#: Seconds a child is given to end after SIGTERM before it is killed.
TERMINATE_GRACE_S = 1.0
#: pytest's exit statuses of a run that ran its tests (0 passed, 1 some failed).
RAN_TESTS = (0, 1)
#: The ``problem`` of a confirmation that Ctrl-C stopped.
INTERRUPTED = "interrupted (Ctrl-C)"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ConfirmCommand:
    """How to start the confirming pytest: the interpreter, where, and with what."""

    workers: int
    #: the node ids to rerun, or the session's own arguments for the whole suite
    arguments: tuple[str, ...]
    rootdir: str
    inifile: str | None = None
    timeout_s: float = 600.0
    #: the environment the session started with (not what its tests left in it)
    environ: Mapping[str, str] | None = None

    def argv(self, junit_path: str) -> list[str]:
        """The child's command line (this plugin's safety off in it)."""
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            str(self.workers),
            "--dist",
            "load",
            "-q",
            "-p",
            "no:cacheprovider",
            "--no-parallel-safety",
            f"--junitxml={junit_path}",
            f"--rootdir={self.rootdir}",
        ]
        if self.inifile:
            command += ["-c", self.inifile]
        return [*command, "--", *self.arguments] if self.arguments else command


def junit_address(nodeid: str) -> tuple[str, str]:
    """The (classname, name) pytest's JUnit XML gives *nodeid* (its ``mangle_test_address``:
    parameters kept whole, the file as a dotted path without ``.py``)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = names[0].replace("/", ".").removesuffix(".py")
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def failed_tests(xml_text: str, tests: Sequence[str]) -> set[str]:
    """Which of *tests* have a failure or an error in the JUnit XML *xml_text*."""
    addresses = {junit_address(t): t for t in tests}
    failed = set()
    root = ElementTree.fromstring(xml_text)
    for case in root.iter("testcase"):
        if case.find("failure") is None and case.find("error") is None:
            continue
        key = (case.get("classname", ""), case.get("name", ""))
        if key in addresses:
            failed.add(addresses[key])
    return failed


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """End *process* and its process group (its xdist workers): SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(TERMINATE_GRACE_S)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # workers that outlived their controller


def run_confirmation(
    command: ConfirmCommand, tests: Sequence[str], runs: int = CONFIRM_RUNS
) -> ConfirmRun:
    """Rerun under ``-n N`` up to *runs* times (fewer once every one of *tests* failed);
    the tests of *tests* that failed in any run."""
    failed: set[str] = set()
    done = 0
    problem = ""
    with tempfile.TemporaryDirectory(prefix="parallel-safety-") as folder:
        junit = os.path.join(folder, "confirm.xml")
        log_path = os.path.join(folder, "confirm.log")
        for _ in range(runs):
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    command.argv(junit),
                    cwd=command.rootdir,
                    env=None if command.environ is None else dict(command.environ),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
                try:
                    status = process.wait(command.timeout_s)
                except subprocess.TimeoutExpired:
                    stop_group(process)
                    problem = f"a run under -n {command.workers} took over {command.timeout_s:g} s"
                    break
                except KeyboardInterrupt:  # Ctrl-C: no child outlives the session
                    stop_group(process)
                    problem = INTERRUPTED
                    break
                except BaseException:
                    stop_group(process)
                    raise
                stop_group(process)  # xdist workers still shutting down
            done += 1
            if status not in RAN_TESTS:
                with open(log_path, "rb") as log:
                    tail = log.read()[-400:].decode("utf-8", "replace").strip().splitlines()
                problem = f"pytest -n {command.workers} exited with status {status}" + (
                    f": {tail[-1]}" if tail else ""
                )
                break
            try:
                with open(junit, encoding="utf-8") as handle:
                    failed |= failed_tests(handle.read(), tests)
            except (OSError, ElementTree.ParseError) as exc:
                problem = f"pytest -n {command.workers} wrote no readable JUnit XML ({exc})"
                break
            if failed >= set(tests):
                break
    ordered = tuple(t for t in tests if t in failed)
    return ConfirmRun(command.workers, done, len(tests), ordered, problem)
