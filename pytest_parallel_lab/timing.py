"""The one place where pytest-parallel-lab reads clocks.

Every measurement goes through these names, read at call time (``timing.perf_counter()``),
so that tests can patch time and exercise timing rules without sleeping, the way
pytest's own ``_pytest.timing`` is used: the tests' ``fake_clock`` fixture replaces
both (``tests/conftest.py``).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

#: Monotonic wall clock for intervals (seconds, arbitrary origin; on Linux it is
#: CLOCK_MONOTONIC, so values taken in different processes are comparable).
perf_counter = time.perf_counter

#: CPU time of the calling thread only (seconds).
thread_time = time.thread_time


def utc_now_iso() -> str:
    """The current UTC time as an ISO 8601 string with second precision."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
