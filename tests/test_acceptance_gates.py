"""Gates and expectations as a user meets them, on a fake clock: exact, instant, never flaky.

The serial side is the real serial backend timing the test body, whose sleeps move
the fake clock (tests/conftest.py); the other side is a backend from the conftest
whose runner answers from a script of wall times. So the speedups are known exactly.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import FakeClock

SCRIPTED_CONFTEST = """
import itertools
import os

from pytest_parallel_lab.backends import BatchResult, TaskOutcome
from pytest_parallel_lab.backends.base import empty_task


class ScriptedRunner:
    startup_s = 0.0

    def __init__(self):
        self.walls = itertools.cycle(float(w) for w in os.environ["SCRIPT"].split(","))

    def run(self, work, timeout):
        outcomes = tuple(TaskOutcome(i) for i in range(len(work.items)))
        if work.call is empty_task:
            return BatchResult(1e-6, 0.0, outcomes)
        return BatchResult(next(self.walls), 0.0, outcomes)

    def close(self):
        pass

    def abandon(self):
        pass


class Scripted:
    name = "scripted"
    description = "wall times from the SCRIPT environment variable"
    uses_processes = False

    def unavailable_reason(self):
        return None

    def start(self, workers, start_method):
        return ScriptedRunner()


def pytest_parallel_lab_register_backends(registry):
    registry.register(Scripted())
"""


def body(marker: str) -> str:
    # Four tasks of 0.25 s each on the fake clock: every serial run takes exactly 1 s.
    return f"""
import pytest
from _pytest import timing

@pytest.mark.parallel(backend="scripted", tasks=4, rounds=5, {marker})
def test_gated():
    timing.sleep(0.25)
"""


def run(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, marker: str, script: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    monkeypatch.setenv("SCRIPT", script)
    lab.makeconftest(SCRIPTED_CONFTEST)
    lab.makepyfile(body(marker))
    result = lab.runpytest("--parallel-report-json=run.json", "-W", "always::pytest.PytestWarning")
    (row,) = json.loads((lab.path / "run.json").read_text())["results"]
    return result, row


def test_a_gate_whose_interval_clears_the_threshold_passes_after_the_first_rounds(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    result, row = run(lab, monkeypatch, "min_speedup=2.0", "0.25")
    result.assert_outcomes(passed=1)
    assert row["speedup"]["estimate"] == 4.0
    assert row["gate"] == {"min_speedup": 2.0, "verdict": "passed"}
    assert row["rounds"] == 3  # steady: sequential stopping ends at the fewest rounds


def test_a_gate_whose_interval_lies_below_fails_naming_the_measured_interval(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    result, row = run(lab, monkeypatch, "min_speedup=2.0", "1.0")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*below min_speedup=2: 1.00x [[]1.00-1.00[]] (95% interval) over 3 rounds*"]
    )
    assert row["gate"] == {"min_speedup": 2.0, "verdict": "failed"}


def test_a_straddling_gate_grows_its_rounds_then_warns_that_it_is_inconclusive(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    # Speedups alternate 2.5x and 1.6x: the interval straddles 2.0 however many rounds.
    result, row = run(lab, monkeypatch, "min_speedup=2.0", "0.4,0.625")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*test_gated?scripted?: min_speedup=2 is inconclusive: "
            "2.05x [[]1.60-2.50[]] (95% interval) over 30 rounds straddles 2x; rerun on a quieter "
            "machine "
            "or raise --parallel-max-rounds*"
        ]
    )
    assert row["gate"] == {"min_speedup": 2.0, "verdict": "inconclusive"}
    assert row["rounds"] == 30


def test_an_expectation_that_cannot_be_checked_is_noted_and_passes(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    # Speedups alternate 0.8x and 1.33x: too noisy to tell whether it scales.
    result, row = run(lab, monkeypatch, 'expect="io-bound"', "1.25,0.75")
    result.assert_outcomes(passed=1)
    assert row["classification"] == "inconclusive"
    assert (
        "expected io-bound, but the measurements were inconclusive: not checked" in (row["notes"])
    )


def test_a_contradicted_expectation_fails_with_the_measured_class(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake_clock: FakeClock
) -> None:
    # The body only waits (no CPU time passes on the fake clock): io-bound, not cpu-bound.
    result, row = run(lab, monkeypatch, 'expect="cpu-bound"', "0.25")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected cpu-bound, measured io-bound*mostly waiting*"])
    assert row["classification"] == "io-bound"
