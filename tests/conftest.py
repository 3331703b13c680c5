"""Shared fixtures for the pytest-parallel-lab tests."""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from _pytest import timing as pytest_timing

from pytest_parallel_lab import timing
from pytest_parallel_lab.document.suite import Calibration

#: An ini for the inner runs: pytest-asyncio's loop scope set where it is installed, so
#: that its deprecation warning does not add to the warnings an inner run counts.
LAB_INI = "[pytest]\n" + (
    "asyncio_default_fixture_loop_scope = function\n"
    if importlib.util.find_spec("pytest_asyncio") is not None
    else ""
)


@pytest.fixture
def lab(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester whose inner runs have a quiet ini (more ini lines can be appended)."""
    pytester.makeini(LAB_INI)
    return pytester


@pytest.fixture
def lab_ini(lab: pytest.Pytester) -> Callable[[str], None]:
    """Write the inner runs' ini: the quiet lines and *lines* (``name = value`` each)."""

    def write(lines: str) -> None:
        lab.makeini(LAB_INI + textwrap.dedent(lines))

    return write


@dataclass
class FakeClock:
    """Time that moves only when told: :meth:`sleep` waits, :meth:`burn` computes.

    Replaces this plugin's clocks (``pytest_parallel_lab.timing``) and pytest's own
    (``_pytest.timing``, which times test phases), so a timing rule runs instantly and
    its durations are exact.
    """

    now: float = 1000.0
    cpu: float = 0.0

    def perf_counter(self) -> float:
        return self.now

    def thread_time(self) -> float:
        return self.cpu

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Wait: wall time passes, no CPU time."""
        self.now += seconds

    def burn(self, seconds: float) -> None:
        """Compute: wall time and CPU time pass alike."""
        self.now += seconds
        self.cpu += seconds

    def children_cpu_time(self) -> float:
        """No child process computes on a fake clock: the real clock's children (one
        another test in this process left to be reaped late) would land in a test's CPU."""
        return 0.0


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A :class:`FakeClock` behind both the plugin's and pytest's clocks. A test that
    pytester runs in this process waits with ``_pytest.timing.sleep(s)`` and computes
    with ``_pytest.timing.burn(s)``."""
    clock = FakeClock()
    monkeypatch.setattr(timing, "perf_counter", clock.perf_counter)
    monkeypatch.setattr(timing, "thread_time", clock.thread_time)
    monkeypatch.setattr(timing, "process_time", clock.thread_time)
    monkeypatch.setattr(timing, "children_cpu_time", clock.children_cpu_time)
    monkeypatch.setattr(pytest_timing, "burn", clock.burn, raising=False)
    monkeypatch.setattr(pytest_timing, "perf_counter", clock.perf_counter)
    monkeypatch.setattr(pytest_timing, "time", clock.time)
    monkeypatch.setattr(pytest_timing, "sleep", clock.sleep)
    return clock


#: No start-up, no overhead, two CPUs: only tests and fixtures cost time (the
#: simulator's paper tests).
FREE = Calibration(
    startup_s=0.0,
    collection_s=0.0,
    per_test_overhead_s=0.0,
    cpus=2,
    shutdown_s=0.0,
    controller_report_s=0.0,
    worker_report_s=0.0,
)
