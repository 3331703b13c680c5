"""What ``--parallel-safety`` found: the ``safety`` section of the run document.

Built once by the safety feature (``safety/collisions.py``, ``safety/order.py``) and
completed by ``--parallel-safety-confirm`` (``safety/confirm.py``); the same
:class:`SafetySection` feeds the terminal report, the HTML page and the JSON. Keys are
described in ``docs/parallel-safety.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_parallel_lab.vocabulary import StrEnum


class Problem(StrEnum):
    """Why a finding breaks, or may break, a parallel run."""

    #: two tests (or a shared fixture's instances on two workers) use one resource of the
    #: machine at once, at least one of them writing it
    COLLISION = "collision"
    #: a test used state of its process that an earlier test left: under xdist the earlier
    #: test may run on another worker, or after it
    ORDER = "order"
    #: a test left state of its process behind (no later test was seen to use it)
    LEAK = "leak"
    #: threads of one test (the marker's thread backend, or the test's own) wrote one
    #: resource: the race pytest-run-parallel and free-threaded Python expose
    THREAD_RACE = "thread-race"


class ResourceKind(StrEnum):
    """What a resource is."""

    FILE = "file"
    SQLITE = "sqlite"
    PORT = "port"
    UNIX_SOCKET = "unix-socket"
    ENV = "env"
    CWD = "cwd"
    SYS_PATH = "sys.path"
    GLOBAL = "global"
    #: a command run with ``subprocess.Popen``: ``CWD$ ARGV`` (what it touches is unseen)
    COMMAND = "command"


class Access(StrEnum):
    """What a test did with a resource."""

    READ = "read"
    WRITE = "write"
    #: a socket bound to a fixed port or path
    BIND = "bind"
    #: a command started (two runs of one command in one place may collide on whatever
    #: it uses: a daemon, a lock, a port, its output files)
    RUN = "run"
    #: process state changed and not restored by the end of the test
    LEFT = "left"
    #: process state an earlier test left, used by this one
    USED = "used"


@dataclass(frozen=True)
class Touch:
    """One test's use of a resource: in which phase, from which fixture, at which line."""

    test: str
    phase: str
    access: Access
    #: ``file:line`` of the first frame outside the standard library, pytest and this
    #: plugin ("" when no such frame was on the stack)
    location: str = ""
    #: the fixture that was being set up or torn down, if any
    fixture: str | None = None
    fixture_scope: str | None = None


@dataclass(frozen=True)
class Finding:
    """One resource that breaks, or may break, a parallel run, and who touched it."""

    problem: Problem
    kind: ResourceKind
    resource: str
    #: the tests involved, in run order (for ``order``: the test that left the state first)
    tests: tuple[str, ...]
    touches: tuple[Touch, ...]
    #: the ``--dist`` mode or the ``xdist_group`` mark that avoids it; None when none does
    avoided_by: str | None
    #: one sentence: what to change so that it cannot happen
    fix: str
    #: ``--parallel-safety-confirm``: whether a test of the finding failed under ``-n N``
    #: (None: not confirmed by a run)
    confirmed: bool | None = None


@dataclass(frozen=True)
class ConfirmRun:
    """``--parallel-safety-confirm=N``: the finding's tests rerun under ``-n N``."""

    workers: int
    runs: int
    tests: int
    #: tests that passed serially and failed (or errored) in at least one run
    failed: tuple[str, ...] = ()
    #: why the confirmation could not run or was cut short ("" when it ran)
    problem: str = ""


@dataclass(frozen=True)
class SafetySection:
    """Every finding of ``--parallel-safety``, and the confirming run if one was asked for."""

    tests: int = 0
    findings: tuple[Finding, ...] = ()
    confirm: ConfirmRun | None = None
