"""The Measurer with fake runners: order of runs, result comparison, error grouping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pytest_parallel_lab.backends import BatchResult, TaskError, TaskOutcome, Work
from pytest_parallel_lab.backends.base import empty_task
from pytest_parallel_lab.marked.rounds import (
    DISPATCH_REPEATS,
    Measurer,
    ResultMismatch,
    TaskFailures,
    describe_task_errors,
    find_unpicklable,
    pickled_size,
    values_comparable,
)


def batch(
    values: Sequence[Any], wall_s: float = 1.0, errors: Sequence[TaskError] = ()
) -> BatchResult:
    by_index = {e.index: e for e in errors}
    outcomes = tuple(
        TaskOutcome(i, value=None if i in by_index else v, error=by_index.get(i))
        for i, v in enumerate(values)
    )
    return BatchResult(wall_s=wall_s, cpu_s=wall_s / 2, outcomes=outcomes)


class FakeRunner:
    """A Runner that returns canned batches and logs which side ran, in order."""

    def __init__(self, side: str, log: list[str], result: BatchResult) -> None:
        self.startup_s = 0.0
        self.side = side
        self.log = log
        self.result = result
        self.results: list[BatchResult] = []

    def run(self, work: Work, timeout: float) -> BatchResult:
        if work.call is empty_task:
            self.log.append(f"{self.side}:dispatch")
            return BatchResult(0.01, 0.0, tuple(TaskOutcome(i) for i in range(len(work.items))))
        self.log.append(self.side)
        return self.results.pop(0) if self.results else self.result

    def close(self) -> None:
        pass

    def abandon(self) -> None:
        pass


WORK = Work(call=abs, items=(0, 1))


def measurer(
    serial: BatchResult, candidate: BatchResult, *, compare_results: bool = True
) -> tuple[Measurer, list[str], FakeRunner, FakeRunner]:
    log: list[str] = []
    serial_runner = FakeRunner("serial", log, serial)
    candidate_runner = FakeRunner("thread", log, candidate)
    m = Measurer(
        serial=serial_runner,
        candidate=candidate_runner,
        backend="thread",
        work=WORK,
        timeout=5.0,
        compare_results=compare_results,
    )
    return m, log, serial_runner, candidate_runner


def test_the_warm_up_runs_the_backend_before_the_serial_side() -> None:
    m, log, _, _ = measurer(batch([1, 2]), batch([1, 2]))
    m.warm_up()
    assert log == ["thread", "serial"]
    assert m.measurement.values == [1, 2]
    assert m.measurement.serial_s == []  # the warm-up is not timed


def test_rounds_alternate_which_side_runs_first() -> None:
    m, log, _, _ = measurer(batch([1, 2], wall_s=2.0), batch([1, 2], wall_s=1.0))
    m.add_rounds(3)
    assert log == ["serial", "thread", "thread", "serial", "serial", "thread"]
    assert m.measurement.serial_s == [2.0, 2.0, 2.0]
    assert m.measurement.backend_s == [1.0, 1.0, 1.0]
    assert m.measurement.estimate().speedup.estimate == pytest.approx(2.0)


def test_a_round_the_machine_did_not_feed_is_taken_again_and_not_counted() -> None:
    m, log, _, candidate = measurer(batch([1, 2], wall_s=2.0), batch([1, 2], wall_s=1.0))
    m.fed = lambda serial, cand: cand.wall_s < 3.0  # the slow round was starved
    m.retakes = 2
    candidate.results = [batch([1, 2], wall_s=4.0)]
    m.add_rounds(2)
    assert m.measurement.backend_s == [1.0, 1.0]
    assert m.measurement.retaken == 1
    assert log.count("thread") == 3


def test_retakes_stop_at_their_budget_and_keep_the_starved_rounds() -> None:
    m, _, _, _ = measurer(batch([1, 2], wall_s=2.0), batch([1, 2], wall_s=4.0))
    m.fed = lambda serial, cand: False
    m.retakes = 2
    m.add_rounds(3)
    assert m.measurement.backend_s == [4.0, 4.0, 4.0]
    assert m.measurement.retaken == 2
    m.measurement.drop_rounds()  # a new attempt has its own budget
    assert m.measurement.retaken == 0


def test_adding_rounds_later_continues_the_alternation() -> None:
    m, log, _, _ = measurer(batch([1, 2]), batch([1, 2]))
    m.add_rounds(1)
    m.add_rounds(1)
    assert log == ["serial", "thread", "thread", "serial"]


def test_the_dispatch_cost_is_measured_on_the_backend_with_empty_tasks() -> None:
    m, log, _, _ = measurer(batch([1, 2]), batch([1, 2]))
    per_task = m.measure_dispatch()
    assert log == ["thread:dispatch"] * DISPATCH_REPEATS
    assert per_task == pytest.approx(0.01 / len(WORK.items))
    assert m.measurement.dispatch_s == per_task


def test_a_different_value_under_the_backend_is_a_mismatch_showing_both_values() -> None:
    m, _, _, _ = measurer(batch([1, 2]), batch([1, 3]))
    with pytest.raises(ResultMismatch) as excinfo:
        m.warm_up()
    message = str(excinfo.value)
    assert "task 1" in message
    assert "serial:  2" in message
    assert "thread: 3" in message
    assert "compare_results=False" in message


def test_a_mismatch_in_a_later_round_is_found_too() -> None:
    m, _, _, candidate = measurer(batch([1, 2]), batch([1, 2]))
    m.warm_up()
    candidate.results = [batch([1, 99])]
    with pytest.raises(ResultMismatch, match="99"):
        m.add_rounds(1)


def test_compare_results_false_accepts_different_values() -> None:
    m, _, _, _ = measurer(batch([1, 2]), batch([5, 6]), compare_results=False)
    m.warm_up()
    m.add_rounds(1)
    assert m.measurement.values == [5, 6]


def test_task_errors_stop_the_measurement_naming_the_side() -> None:
    error = TaskError(1, "ValueError", "boom", "Traceback...\nValueError: boom\n")
    m, _, _, _ = measurer(batch([1, 2]), batch([1, 2], errors=[error]))
    with pytest.raises(TaskFailures) as excinfo:
        m.warm_up()
    assert excinfo.value.side == "thread"
    assert excinfo.value.errors == [error]


class NoEquality:
    pass


class Brokenish:
    def __eq__(self, other: object) -> bool:
        raise TypeError("ambiguous")


@pytest.mark.parametrize(
    ("a", "b", "comparable"),
    [
        pytest.param(1, 2, True, id="ints"),
        pytest.param("a", "a", True, id="strings"),
        pytest.param([1], [1], True, id="lists"),
        pytest.param(1, "1", True, id="different-types-are-compared-and-differ"),
        pytest.param(None, None, False, id="two-nones-a-body-returning-nothing"),
        pytest.param(None, 1, False, id="none-and-a-value"),
        pytest.param(1, None, False, id="a-value-and-none"),
        pytest.param(NoEquality(), NoEquality(), False, id="identity-only-objects"),
        pytest.param(Brokenish(), Brokenish(), True, id="own-eq-even-if-it-raises"),
    ],
)
def test_values_are_compared_only_where_equality_means_something(
    a: Any, b: Any, comparable: bool
) -> None:
    assert values_comparable(a, b) is comparable


def test_values_whose_equality_raises_are_not_a_mismatch() -> None:
    serial, candidate = Brokenish(), Brokenish()
    m, log, _, _ = measurer(batch([serial]), batch([candidate]))
    m.warm_up()
    m.add_rounds(1)
    assert log == ["thread", "serial", "serial", "thread"]  # nothing stopped the rounds
    assert m.measurement.values == [candidate]


def test_a_batch_the_runner_ran_is_offered_to_the_trace_with_its_side() -> None:
    seen: list[tuple[str, int]] = []
    m = Measurer(
        serial=FakeRunner("serial", [], batch([1, 2])),
        candidate=FakeRunner("thread", [], batch([1, 2], wall_s=0.5)),
        backend="thread",
        work=WORK,
        timeout=5.0,
        on_batch=lambda side, result: seen.append((side, len(result.outcomes))),
    )
    m.warm_up()
    m.add_rounds(1)
    assert seen == [("thread", 2), ("serial", 2), ("serial", 2), ("thread", 2)]


def test_describing_task_errors_groups_them_by_type_and_message_with_task_indices() -> None:
    errors = [
        TaskError(0, "ValueError", "bad", "Traceback (most recent call last):\nValueError: bad\n"),
        TaskError(2, "ValueError", "bad", "tb 2"),
        TaskError(1, "KeyError", "'k'", "Traceback:\nKeyError: 'k'\n"),
        TaskError(3, "ValueError", "other", "tb 3"),
    ]
    text = describe_task_errors("process", errors)
    assert text.startswith("4 task(s) failed under the process backend (3 distinct error(s)):")
    assert "- ValueError: bad\n  tasks: 0, 2" in text
    assert "- KeyError: 'k'\n  tasks: 1" in text
    assert "- ValueError: other\n  tasks: 3" in text
    assert "first traceback (task 0):" in text
    assert "    ValueError: bad" in text


def test_the_first_unpicklable_object_is_named() -> None:
    found = find_unpicklable([("fine", 1), ("the lambda", lambda: None), ("later", object)])
    assert found is not None
    description, _obj, exc = found
    assert description == "the lambda"
    assert isinstance(exc, Exception)
    assert find_unpicklable([("fine", [1, 2])]) is None


def test_the_pickled_size_is_none_for_what_cannot_be_pickled() -> None:
    size = pickled_size((1, 2))
    assert size is not None
    assert size > 0
    assert pickled_size(lambda: None) is None
