"""pytest glue for marked items: the body (or each ``parallel_map`` call) becomes the
measured workload, and its results travel with the test reports (xdist-safe).

Imported only once a marked test is collected (or on the xdist controller): a run
without marked tests never loads the measurement machinery.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Generator, Iterable
from dataclasses import replace
from typing import Any

import pytest

from pytest_parallel_lab import suite_plugin
from pytest_parallel_lab.backends.base import BatchResult
from pytest_parallel_lab.document.run import ResultRecord, result_from_json, result_to_json
from pytest_parallel_lab.marked.measure import (
    Outcome,
    body_work,
    is_coroutine_function,
    map_work,
    measure,
)
from pytest_parallel_lab.marked.rounds import OutcomeRequest, PicklingProblem
from pytest_parallel_lab.plugin import (
    BACKEND_ARG,
    REPORT_ATTRIBUTE,
    LabSession,
    lab_session,
    marked,
    spec_and_backend,
    test_id,
    validate_marker,
)

ITEM_RESULTS_KEY = pytest.StashKey[list[ResultRecord]]()


# --- running: the body as the workload ------------------------------------------------------


def _original_function(item: pytest.Function) -> Callable[..., Any]:
    """The test function, seen through an async plugin's synchronous wrapper."""
    function: Callable[..., Any] = item.obj
    if not is_coroutine_function(function):
        unwrapped: Callable[..., Any] = inspect.unwrap(function)
        if is_coroutine_function(unwrapped):
            return unwrapped
    return function


def task_tracer(item: pytest.Item) -> Callable[[str, BatchResult], None] | None:
    """With --parallel-trace: every task of every measured run, on a track per pool worker."""
    origin = suite_plugin.trace_origin(item.config)
    if origin is None:
        return None
    from pytest_parallel_lab.suite.trace import complete_event

    def record(side: str, batch: BatchResult) -> None:
        events = [
            complete_event(
                f"{item.name} task {o.index}",
                f"{side} {o.worker}",
                o.started - origin,
                o.ended - o.started,
                "task",
                {"test": item.nodeid, "side": side},
            )
            for o in batch.outcomes
            if o.worker
        ]
        suite_plugin.add_trace_events(item.config, events)

    return record


def _record(item: pytest.Item, outcome: Outcome) -> None:
    item.stash.setdefault(ITEM_RESULTS_KEY, []).append(outcome.record)


def _record_and_fail(item: pytest.Item, outcome: Outcome) -> None:
    """Keep the record, then turn the outcome into pytest's pass, skip, warning or failure."""
    implicit = item.get_closest_marker("parallel") is None
    if implicit and isinstance(outcome.failure, PicklingProblem):
        # --parallel-all: the test cannot run under this backend; that is no failure of
        # the user's code.
        outcome.record = replace(outcome.record, outcome="skipped")
        _record(item, outcome)
        pytest.skip(f"cannot run under the {outcome.record.backend} backend: {outcome.failure}")
    _record(item, outcome)
    gate = outcome.record.gate
    if gate and gate.get("verdict") == "inconclusive" and outcome.failure is None:
        detail = "; ".join(n for n in outcome.record.notes if "gate" in n)
        warnings.warn(
            pytest.PytestWarning(
                f"{item.nodeid}: min_speedup={gate['min_speedup']:g} inconclusive after "
                f"{outcome.record.rounds} rounds: {detail}"
            ),
            stacklevel=1,
        )
    failure = outcome.failure
    if isinstance(failure, OutcomeRequest):
        # pytest.skip()/fail()/xfail()/exit() inside a task: the item takes that outcome.
        if failure.kind == "Skipped":
            pytest.skip(str(failure))
        if failure.kind == "XFailed":
            pytest.xfail(str(failure))
        if failure.kind == "Exit":
            pytest.exit(str(failure))
    if failure is not None:
        pytest.fail(f"{item.nodeid}: {failure}", pytrace=False)


def measure_body(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """Around pytest's call of a marked test: the body becomes the measured workload."""
    spec = spec_and_backend(pyfuncitem)
    if spec is None or "parallel_map" in pyfuncitem._fixtureinfo.argnames:
        return (yield)
    lab = lab_session(pyfuncitem.config)
    settings = lab.settings_for(pyfuncitem, spec)
    function = _original_function(pyfuncitem)
    backend = lab.registry.get(settings.backend)
    serial = lab.registry.get("serial")
    assert backend is not None
    assert serial is not None

    def measured(**kwargs: Any) -> None:
        outcome = measure(
            settings,
            backend,
            serial,
            lab.runners,
            body_work(function, kwargs, settings.tasks),
            named_objects=[("the test function", function)]
            + [(f"the value of fixture {name!r}", value) for name, value in kwargs.items()],
            environment=lab.environment,
            on_batch=task_tracer(pyfuncitem),
        )
        _record_and_fail(pyfuncitem, outcome)

    original = pyfuncitem.obj
    pyfuncitem.obj = measured
    try:
        return (yield)
    finally:
        pyfuncitem.obj = original


class ParallelMap:
    """``parallel_map(fn, iterable)``: a measured ``map`` returning the results in order."""

    def __init__(self, item: pytest.Function) -> None:
        self._item = item
        self._calls = 0

    def __call__(self, function: Callable[[Any], Any], iterable: Iterable[Any]) -> list[Any]:
        items = list(iterable)
        spec = spec_and_backend(self._item)
        if spec is None:
            warnings.warn(
                pytest.PytestWarning(
                    f"{self._item.nodeid}: parallel_map was used in a test without "
                    "@pytest.mark.parallel; it ran serially and nothing was measured"
                ),
                stacklevel=2,
            )
            if is_coroutine_function(function):
                import asyncio

                return [asyncio.run(function(item)) for item in items]
            return [function(item) for item in items]
        lab = lab_session(self._item.config)
        settings = lab.settings_for(self._item, spec, kind="map", call_index=self._calls)
        self._calls += 1
        backend = lab.registry.get(settings.backend)
        serial = lab.registry.get("serial")
        assert backend is not None
        assert serial is not None
        sample = [("the mapped function", function)]
        if items:
            sample.append(("the first item of the iterable", items[0]))
        outcome = measure(
            settings,
            backend,
            serial,
            lab.runners,
            map_work(function, items),
            named_objects=sample,
            environment=lab.environment,
            on_batch=task_tracer(self._item),
        )
        _record_and_fail(self._item, outcome)
        return outcome.values


def attach_results(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    records = item.stash.get(ITEM_RESULTS_KEY, [])
    if call.when == "call" and records:
        outcome = report.outcome
        records = [r if r.outcome != "passed" else replace(r, outcome=outcome) for r in records]
        setattr(report, REPORT_ATTRIBUTE, [result_to_json(r) for r in records])
    elif call.when == "setup" and report.failed and marked(item) is not None:
        spec_error = str(call.excinfo.value) if call.excinfo else "setup failed"
        function = item if isinstance(item, pytest.Function) else None
        has_backend = (
            function is not None
            and hasattr(function, "callspec")
            and BACKEND_ARG in function.callspec.params
        )
        backend = str(function.callspec.params[BACKEND_ARG]) if function and has_backend else "-"
        record = ResultRecord(
            nodeid=item.nodeid,
            test=test_id(function) if function and has_backend else item.nodeid,
            backend=backend,
            outcome="error",
            error=spec_error,
            xdist_worker=lab_session(item.config).xdist_worker,
        )
        setattr(report, REPORT_ATTRIBUTE, [result_to_json(record)])
    return report


class MarkedItemHooks:
    """The hooks that run for every test, registered only when marked tests exist
    (or on the xdist controller): a run without marked tests pays nothing per test."""

    def __init__(self, lab: LabSession) -> None:
        self.lab = lab

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        validate_marker(item)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> Generator[None, object, object]:
        return (yield from measure_body(pyfuncitem))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        return (yield from attach_results(item, call))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect the results that travel on test reports (from xdist workers too)."""
        data = getattr(report, REPORT_ATTRIBUTE, None)
        if not data or self.lab.xdist_worker is not None:
            return  # workers only send; the controller (or a plain run) collects
        for entry in data:
            self.lab.results.append(result_from_json(entry, f"report of {report.nodeid}"))
