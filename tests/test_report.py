"""The terminal report rendered from a run document."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_parallel_lab.document import (
    Environment,
    Gate,
    Recommendation,
    ResultRecord,
    RunDocument,
    SuiteSection,
    Sweep,
    SweepPoint,
)
from pytest_parallel_lab.document.records import Capacity
from pytest_parallel_lab.document.suite import TestTiming
from pytest_parallel_lab.output.cells import (
    MISSING,
    map_call,
    number_cell,
    seconds_cell,
    speedup_cell,
    workload_label,
)
from pytest_parallel_lab.output.text import (
    A_A,
    HEADERS,
    compact_rows,
    render_document,
    render_environment,
    render_results,
    result_rows,
    verdict,
)
from pytest_parallel_lab.stats import Interval
from pytest_parallel_lab.vocabulary import Classification, GateVerdict, Kind, Outcome, Verdict

ENVIRONMENT = Environment(
    python_version="3.11.7",
    implementation="CPython",
    usable_cpus=2,
    start_method="fork",
)
PASSED = ResultRecord(
    nodeid="tests/test_a.py::test_x[thread]",
    test="tests/test_a.py::test_x",
    backend="thread",
    workers=2,
    tasks=4,
    serial_s=0.2,
    backend_s=0.1,
    speedup=Interval(estimate=1.93, low=1.85, high=2.01),
    efficiency=0.965,
    startup_s=0.0005,
    verdict=Verdict.FASTER,
    notes=("pool reused",),
)
FAILED = ResultRecord(
    nodeid="tests/test_a.py::test_y[process]",
    test="tests/test_a.py::test_y",
    backend="process",
    outcome=Outcome.FAILED,
    workers=2,
    tasks=4,
    error="tests/test_a.py::test_y[process]: process backend: worker died\nmore detail",
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(None, "-", id="not-measured"),
        pytest.param(0.0, "0 µs", id="zero"),
        pytest.param(0.000812, "812 µs", id="microseconds"),
        pytest.param(0.0123, "12.3 ms", id="milliseconds"),
        pytest.param(0.999, "999.0 ms", id="just-under-a-second"),
        pytest.param(1.0, "1.00 s", id="one-second"),
        pytest.param(1.42, "1.42 s", id="seconds"),
        pytest.param(125.0, "125.00 s", id="minutes-stay-seconds"),
    ],
)
def test_seconds_are_shown_in_a_readable_unit(seconds: float | None, text: str) -> None:
    assert seconds_cell(seconds) == text


def test_a_speedup_is_shown_with_its_interval_or_a_dash() -> None:
    assert speedup_cell(PASSED.speedup) == "1.93x [1.85-2.01]"
    assert speedup_cell(FAILED.speedup) == "-"
    assert MISSING == "-"


@pytest.mark.parametrize(
    ("value", "spec", "text"),
    [
        pytest.param(1.23456, ".3f", "1.235", id="default-spec"),
        pytest.param(8.3, ".1f", "8.3", id="other-spec"),
        pytest.param(None, ".3f", "-", id="missing"),
        pytest.param(float("nan"), ".3f", "-", id="nan"),
        pytest.param(float("inf"), ".2f", "-", id="infinite"),
    ],
)
def test_a_number_cell_is_formatted_or_the_missing_mark(
    value: float | None, spec: str, text: str
) -> None:
    assert number_cell(value, spec) == text


def test_a_workload_label_counts_map_calls_from_one() -> None:
    assert workload_label("t") == "t"
    assert workload_label("t", 0) == "t (map #1)"
    assert workload_label("t", 1) == "t (map #2)"
    assert map_call(Kind.MAP, 1) == 1
    assert map_call(Kind.BODY, 1) is None


def test_a_row_has_one_cell_per_header() -> None:
    (row,) = result_rows((PASSED,))
    assert len(row) == len(HEADERS)
    assert row == [
        "tests/test_a.py::test_x",
        "thread",
        2,
        4,
        "200.0 ms",
        "100.0 ms",
        "1.93x [1.85-2.01]",
        "96%",
        "500 µs",
        "pool reused",
    ]


def test_a_map_row_names_the_call() -> None:
    record = ResultRecord("a.py::t[thread]", "a.py::t", "thread", kind=Kind.MAP, call_index=1)
    assert result_rows((record,))[0][0] == "a.py::t (map #2)"
    assert compact_rows((record,))[0][0] == "t (map #2)"
    body = ResultRecord("a.py::t[thread]", "a.py::t", "thread", call_index=1)
    assert compact_rows((body,))[0][0] == "t"


def test_a_row_without_measurements_shows_the_missing_mark_in_every_number_cell() -> None:
    record = ResultRecord("a.py::t[thread]", "a.py::t", "thread", outcome=Outcome.SKIPPED)
    (row,) = result_rows((record,))
    assert row == ["a.py::t", "thread", *[MISSING] * 7, "SKIPPED"]
    assert compact_rows((record,)) == [["t", "thread", MISSING, "SKIPPED"]]


def test_the_notes_put_the_outcome_first_and_the_gate_last_and_leave_the_class_to_the_test() -> (
    None
):
    record = ResultRecord(
        "a.py::t[process]",
        "a.py::t",
        "process",
        outcome=Outcome.FAILED,
        classification=Classification.CPU_BOUND,
        gate=Gate(min_speedup=1.5, verdict=GateVerdict.FAILED),
        notes=("noisy",),
    )
    # A row's class is about that backend only; the test's class is in the recommendations.
    assert result_rows((record,))[0][-1] == "FAILED, noisy, gate failed (min 1.5x)"


def test_a_document_without_results_says_how_to_mark_a_test() -> None:
    text = render_document(RunDocument(environment=ENVIRONMENT))
    assert "CPython 3.11.7, GIL enabled, 2 usable CPUs, start method fork" in text
    assert "No marked tests ran" in text
    assert "@pytest.mark.parallel" in text


def test_the_verbose_table_has_every_column_and_a_footnote() -> None:
    text = render_document(RunDocument(environment=ENVIRONMENT, results=(PASSED,)), verbose=1)
    header = next(line for line in text.splitlines() if line.startswith("test "))
    for column in HEADERS:
        assert column in header
    assert "1.93x [1.85-2.01]" in text
    assert "95% bootstrap interval" in " ".join(text.split())
    assert "Warning" not in text


def test_a_failed_row_is_marked_and_its_error_listed_once_below() -> None:
    text = render_document(RunDocument(environment=ENVIRONMENT, results=(PASSED, FAILED)))
    row = next(line for line in text.splitlines() if line.startswith("test_y"))
    assert "FAILED" in row
    assert (
        "FAILED tests/test_a.py::test_y[process]: process backend: worker died" in text.splitlines()
    )
    assert "more detail" not in text


def test_a_run_under_xdist_warns_that_the_cpus_were_shared() -> None:
    environment = Environment(usable_cpus=2, xdist_workers=2)
    text = render_document(RunDocument(environment=environment, results=(PASSED,)))
    assert "2 xdist workers" in text
    assert "Warning: measured inside 2 pytest-xdist workers that shared the same CPUs" in text


def test_the_label_is_shown_in_the_environment_line() -> None:
    environment = Environment(usable_cpus=2, label="nightly")
    assert "label nightly" in render_document(RunDocument(environment=environment))


def test_the_environment_line_names_a_free_threaded_build() -> None:
    environment = Environment(
        python_version="3.14.0",
        implementation="CPython",
        gil_enabled=False,
        usable_cpus=4,
        start_method="forkserver",
    )
    assert render_environment(RunDocument(environment=environment)) == (
        "CPython 3.14.0, GIL disabled (free-threaded), 4 usable CPUs, start method forkserver"
    )


def test_the_document_report_adds_each_typed_section_present_in_order() -> None:
    document = RunDocument(
        environment=ENVIRONMENT,
        results=(PASSED,),
        recommendations=(
            Recommendation(
                "tests/test_a.py::test_x", Classification.GIL_RELEASING, "thread", "thread 1.9x"
            ),
        ),
        scaling=(
            Sweep("tests/test_a.py::test_x", "thread", (SweepPoint(2, 1.9, 1.8, 2.0),), 0.05),
        ),
        suite=SuiteSection(
            tests=(TestTiming("t.py::a", "main", 0.0, 0.5, 0.0, Outcome.PASSED),), wall_s=0.6
        ),
    )
    text = render_document(document)
    recommendations = text.index("\nrecommendations (choosing the right tool)\n")
    table = text.index("1.93x [1.85-2.01]")
    scaling = text.index("\nscaling: test_x [thread]")
    suite = text.index("\nsuite analysis: 1 tests, session 0.600 s")
    assert recommendations < table < scaling < suite
    assert "thread 1.9x" in text


def test_a_document_without_typed_sections_has_only_the_table() -> None:
    text = render_document(RunDocument(environment=ENVIRONMENT, results=(PASSED,)))
    assert "recommendations" not in text
    assert "scaling:" not in text
    assert "suite analysis" not in text


def test_the_default_table_is_compact_test_backend_speedup_and_verdict() -> None:
    text = render_document(RunDocument(environment=ENVIRONMENT, results=(PASSED,)))
    header = next(line for line in text.splitlines() if line.startswith("test "))
    assert header.split() == ["test", "backend", "speedup", "[95%", "CI]", "verdict"]
    row = next(line for line in text.splitlines() if line.startswith("test_x"))
    assert row.split()[-1] == "faster"


@pytest.mark.parametrize(
    ("record", "words"),
    [
        pytest.param(
            dataclasses.replace(PASSED, backend="serial"), A_A, id="serial-is-the-noise-check"
        ),
        pytest.param(
            dataclasses.replace(PASSED, machine_busy=True, capacity=Capacity(2.0, 1.04, 0.9)),
            "machine busy: 1.0 of 2 CPUs",
            id="machine-busy-with-the-cpus-delivered",
        ),
        pytest.param(
            dataclasses.replace(PASSED, gate=Gate(1.5, GateVerdict.PASSED)),
            "faster, gate passed",
            id="gate",
        ),
        pytest.param(dataclasses.replace(PASSED, outcome=Outcome.FAILED), "FAILED", id="failed"),
    ],
)
def test_the_verdict_says_what_the_row_shows(record: ResultRecord, words: str) -> None:
    assert verdict(record) == words


LONG = ResultRecord(
    "tests/some/deep/folder/test_a_module_with_a_long_name.py::test_a_rather_long_test_name"
    "[with-a-parameter]",
    "tests/some/deep/folder/test_a_module_with_a_long_name.py::test_a_rather_long_test_name"
    "[with-a-parameter]",
    "multiprocessing",
    speedup=Interval(1.93, 1.85, 2.01),
    verdict=Verdict.FASTER,
)
LONG_RECOMMENDATION = Recommendation(
    LONG.test,
    Classification.CPU_BOUND,
    "process",
    "process 1.9x, multiprocessing 1.9x vs asyncio 1.0x, thread 1.0x: GIL-bound CPU work "
    "(CPU 100% of wall)",
    why="GIL-bound CPU work (CPU 100% of wall), which processes run in parallel and threads do not",
)


#: What a 3.11 interpreter without the extras says of the optional backends.
UNAVAILABLE_HERE = {
    "interpreter": "concurrent.futures.InterpreterPoolExecutor needs Python 3.14+ (this is 3.11)",
    "dask": "needs the distributed package: pip install 'pytest-parallel-lab[dask]'",
    "loky": "needs the loky package: pip install 'pytest-parallel-lab[loky]'",
}


def test_the_report_lists_each_model_unavailable_here_with_why_after_the_recommendations() -> None:
    environment = dataclasses.replace(ENVIRONMENT, unavailable_backends=UNAVAILABLE_HERE)
    document = RunDocument(
        environment=environment, results=(PASSED,), recommendations=(LONG_RECOMMENDATION,)
    )
    lines = render_document(document, 80).splitlines()
    start = lines.index("unavailable on this interpreter (not measured):")
    assert lines[start + 1 : start + 5] == [
        "  interpreter: concurrent.futures.InterpreterPoolExecutor needs Python 3.14+",
        "    (this is 3.11)",
        "  dask: needs the distributed package: pip install 'pytest-parallel-lab[dask]'",
        "  loky: needs the loky package: pip install 'pytest-parallel-lab[loky]'",
    ]
    assert lines.index("recommendations (choosing the right tool)") < start
    # Nothing marked ran: nothing was left unmeasured.
    assert "unavailable" not in render_document(RunDocument(environment=environment))


@pytest.mark.parametrize("width", [80, 100, 120])
def test_the_default_report_fits_the_terminal_width(width: int) -> None:
    document = RunDocument(
        environment=dataclasses.replace(ENVIRONMENT, unavailable_backends=UNAVAILABLE_HERE),
        results=(LONG, dataclasses.replace(LONG, backend="serial")),
        recommendations=(LONG_RECOMMENDATION,),
        suite=SuiteSection(
            tests=(TestTiming(LONG.nodeid, "main", 0.0, 0.5, 0.0, Outcome.PASSED),), wall_s=0.6
        ),
    )
    text = render_document(document, width)
    assert max(len(line) for line in text.splitlines()) <= width
    # However narrow, a row keeps the end of its test: the name and its parameters.
    assert "parameter]" in text


def test_a_narrow_table_keeps_the_end_of_a_long_test_name() -> None:
    text = render_results(RunDocument(environment=ENVIRONMENT, results=(LONG,)), 60)
    row = next(line for line in text.splitlines() if "multiprocessing" in line)
    test = row.split()[0]
    assert (test[:3], test[3], test[-8:]) == ("tes", "…", "rameter]")  # the start and the end
