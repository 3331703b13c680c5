"""The terminal report rendered from a run document."""

from __future__ import annotations

import pytest

from pytest_parallel_lab.document.run import Environment, ResultRecord, RunDocument, SpeedupRecord
from pytest_parallel_lab.output.text import (
    HEADERS,
    format_seconds,
    format_speedup,
    render_document,
    result_rows,
)

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
    speedup=SpeedupRecord(1.93, 1.85, 2.01),
    efficiency=0.965,
    startup_s=0.0005,
    notes=("pool reused",),
)
FAILED = ResultRecord(
    nodeid="tests/test_a.py::test_y[process]",
    test="tests/test_a.py::test_y",
    backend="process",
    outcome="failed",
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
    assert format_seconds(seconds) == text


def test_a_speedup_is_shown_with_its_interval_or_a_dash() -> None:
    assert format_speedup(PASSED) == "1.93x [1.85-2.01]"
    assert format_speedup(FAILED) == "-"


def test_a_row_has_one_cell_per_header() -> None:
    (row,) = result_rows((PASSED,))
    assert len(row) == len(HEADERS)
    assert row == [
        "test_x",
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
    record = ResultRecord("a.py::t[thread]", "a.py::t", "thread", kind="map", call_index=1)
    assert result_rows((record,))[0][0] == "t (map #2)"


def test_a_document_without_results_says_how_to_mark_a_test() -> None:
    text = render_document(RunDocument(environment=ENVIRONMENT))
    assert "CPython 3.11.7, GIL enabled, 2 usable CPUs, start method fork" in text
    assert "No marked tests ran" in text
    assert "@pytest.mark.parallel" in text


def test_the_table_has_every_column_and_a_footnote() -> None:
    text = render_document(RunDocument(environment=ENVIRONMENT, results=(PASSED,)))
    header = next(line for line in text.splitlines() if line.startswith("test "))
    for column in HEADERS:
        assert column in header
    assert "1.93x [1.85-2.01]" in text
    assert "95% bootstrap interval" in text
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
