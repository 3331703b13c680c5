"""The words of every record and report, each defined once.

Each vocabulary is a string enum: a member compares equal to its text and is written
to JSON as that text, so the run document keeps its documented strings while the
code cannot misspell one.
"""

from __future__ import annotations

import enum
import sys

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, enum.Enum):
        """``enum.StrEnum`` before Python 3.11: members print and format as their value."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return format(str(self.value), spec)


class Outcome(StrEnum):
    """How a test (or a measured workload) ended."""

    PASSED = "passed"
    FAILED = "failed"
    #: its setup failed (for a marked test: the marker did not parse)
    ERROR = "error"
    SKIPPED = "skipped"
    #: marked ``xfail`` and failed as expected, or passed although expected to fail
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    #: stopped by Ctrl-C (or SIGINT) while it ran: what it measured is incomplete
    INTERRUPTED = "interrupted"
    #: its process died while it ran (an xdist worker that crashed or was killed)
    CRASHED = "crashed"


class Kind(StrEnum):
    """What was measured: a marked test's body, or one ``parallel_map`` call in it."""

    BODY = "body"
    MAP = "map"


class Verdict(StrEnum):
    """What a speedup interval says on its own: a 1.05x inside the noise is no win."""

    FASTER = "faster"
    SLOWER = "slower"
    NO_CLEAR_DIFFERENCE = "no clear difference"


class GateVerdict(StrEnum):
    """A ``min_speedup`` gate: the whole interval above, wholly below, or straddling."""

    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


class Classification(StrEnum):
    """Why a workload scales or not: the article's "choosing the right tool" table."""

    CPU_BOUND = "cpu-bound"
    GIL_RELEASING = "gil-releasing"
    IO_BOUND = "io-bound"
    OVERHEAD_BOUND = "overhead-bound"
    BLOCKING_IN_LOOP = "blocking-in-loop"
    INCONCLUSIVE = "inconclusive"


class Role(StrEnum):
    """This process's part in a pytest-xdist run."""

    #: no xdist: this process collects and runs every test
    PLAIN = "plain"
    #: the xdist controller: runs no tests, merges what the workers report
    CONTROLLER = "controller"
    #: an xdist worker: runs tests, sends its measurements with its reports
    WORKER = "worker"
