"""The comparison matrix: significance, regressions, names and formats, as tables of cases."""

from __future__ import annotations

import csv
import io

import pytest

from pytest_parallel_lab.document import Environment, ResultRecord, RunDocument
from pytest_parallel_lab.output.cells import MISSING
from pytest_parallel_lab.output.compare import (
    FASTER_MARK,
    LEGEND,
    SLOWER_MARK,
    CompareError,
    RowKey,
    Run,
    build_matrix,
    compare_cell,
    find_regressions,
    format_cell,
    output_formats,
    render_matrix,
    row_key,
    run_name,
    select_baseline,
    unique_names,
)
from pytest_parallel_lab.stats import Interval
from pytest_parallel_lab.vocabulary import Kind, Outcome

TEST = "tests/test_a.py::test_x"
FASTER, SLOWER = FASTER_MARK, SLOWER_MARK


def speedup(estimate: float, low: float, high: float) -> Interval:
    return Interval(estimate=estimate, low=low, high=high)


def result(
    backend: str = "process",
    value: Interval | None = None,
    *,
    test: str = TEST,
    outcome: Outcome = Outcome.PASSED,
    kind: Kind = Kind.BODY,
    call_index: int = 0,
) -> ResultRecord:
    return ResultRecord(
        nodeid=f"{test}[{backend}]",
        test=test,
        backend=backend,
        outcome=outcome,
        kind=kind,
        call_index=call_index,
        speedup=value,
    )


def run(name: str, *results: ResultRecord) -> Run:
    return Run(name, RunDocument(results=results))


@pytest.mark.parametrize(
    ("candidate", "baseline", "change", "direction"),
    [
        # overlapping intervals: a change, but not a significant one
        (speedup(1.8, 1.7, 1.9), speedup(1.93, 1.85, 2.01), -6.7, 0),
        # candidate entirely below the baseline: significantly slower
        (speedup(1.4, 1.33, 1.47), speedup(1.93, 1.85, 2.01), -27.5, -1),
        # candidate entirely above: significantly faster
        (speedup(3.0, 2.9, 3.1), speedup(2.0, 1.9, 2.1), 50.0, 1),
        # touching bounds count as overlapping
        (speedup(1.5, 1.4, 1.85), speedup(1.93, 1.85, 2.01), -22.3, 0),
        (speedup(2.0, 1.9, 2.1), speedup(2.0, 1.9, 2.1), 0.0, 0),
    ],
)
def test_compare_cell_marks_a_change_significant_only_when_intervals_do_not_overlap(
    candidate: Interval, baseline: Interval, change: float, direction: int
) -> None:
    cell = compare_cell(candidate, baseline)
    assert cell.change_pct == pytest.approx(change, abs=0.05)
    assert cell.direction == direction


@pytest.mark.parametrize(
    ("candidate", "baseline"),
    [(None, speedup(2, 1.9, 2.1)), (speedup(2, 1.9, 2.1), None), (None, None)],
)
def test_compare_cell_has_no_change_when_either_side_is_missing(
    candidate: Interval | None, baseline: Interval | None
) -> None:
    cell = compare_cell(candidate, baseline)
    assert (cell.change_pct, cell.direction) == (None, 0)


@pytest.mark.parametrize(
    ("threshold", "expected_runs"),
    [
        (10.0, ["regressed"]),  # 27% significant drop found; 7% noisy drop ignored
        (5.0, ["regressed"]),  # the noisy drop exceeds 5% but is not significant
        (30.0, []),  # the significant drop is smaller than the threshold
        (0.0, ["regressed"]),
    ],
)
def test_find_regressions_needs_a_drop_beyond_the_threshold_that_is_also_significant(
    threshold: float, expected_runs: list[str]
) -> None:
    matrix = build_matrix(
        [
            run("base", result(value=speedup(1.93, 1.85, 2.01))),
            run("regressed", result(value=speedup(1.4, 1.33, 1.47))),
            run("noise", result(value=speedup(1.8, 1.7, 1.9))),
            run("faster", result(value=speedup(3.0, 2.9, 3.1))),
        ]
    )
    assert [r.run for r in find_regressions(matrix, threshold)] == expected_runs


def test_find_regressions_compares_against_the_chosen_baseline() -> None:
    runs = [
        run("old", result(value=speedup(1.4, 1.33, 1.47))),
        run("new", result(value=speedup(1.93, 1.85, 2.01))),
    ]
    assert find_regressions(build_matrix(runs, baseline=0), 10) == []
    [regression] = find_regressions(build_matrix(runs, baseline=1), 10)
    assert (regression.run, regression.baseline, regression.speedup) == ("old", 1.93, 1.4)


def test_build_matrix_has_one_row_per_test_backend_and_map_call_in_first_seen_order() -> None:
    matrix = build_matrix(
        [
            run(
                "a",
                result("thread", speedup(1, 0.9, 1.1)),
                result("process", speedup(2, 1.9, 2.1), kind=Kind.MAP, call_index=1),
            ),
            run("b", result("asyncio", speedup(3, 2.9, 3.1)), result("thread", None)),
        ]
    )
    assert [(r.label, r.backend) for r in matrix.rows] == [
        (TEST, "thread"),
        (f"{TEST} (map #2)", "process"),
        (TEST, "asyncio"),
    ]
    assert [[c.speedup is not None for c in row] for row in matrix.cells] == [
        [True, False],
        [True, False],
        [False, True],
    ]


@pytest.mark.parametrize(
    ("kind", "call_index", "label"),
    [
        (Kind.BODY, 0, TEST),
        (Kind.BODY, 3, TEST),  # a body row's call index is not a map call
        (Kind.MAP, 0, f"{TEST} (map #1)"),
        (Kind.MAP, 1, f"{TEST} (map #2)"),
    ],
)
def test_a_row_label_names_the_map_call_counting_from_one_as_show_does(
    kind: Kind, call_index: int, label: str
) -> None:
    key = row_key(result(kind=kind, call_index=call_index))
    assert key == RowKey(TEST, "process", kind, call_index)
    assert key.kind is kind
    assert key.label == label


def test_a_body_and_its_first_map_call_are_different_rows() -> None:
    matrix = build_matrix(
        [
            run(
                "a",
                result(value=speedup(1, 0.9, 1.1)),
                result(value=speedup(2, 1.9, 2.1), kind=Kind.MAP, call_index=0),
            )
        ]
    )
    assert [r.label for r in matrix.rows] == [TEST, f"{TEST} (map #1)"]


def test_a_repeated_row_keeps_its_first_measured_speedup() -> None:
    matrix = build_matrix(
        [
            run(
                "a",
                result(value=None),
                result(value=speedup(2, 1.9, 2.1)),
                result(value=speedup(3, 2.9, 3.1)),
            )
        ]
    )
    assert len(matrix.rows) == 1
    assert matrix.cells[0][0].speedup == speedup(2, 1.9, 2.1)


def test_a_failed_result_counts_as_not_measured() -> None:
    matrix = build_matrix(
        [
            run("a", result(value=speedup(2, 1.9, 2.1))),
            run("b", result(value=speedup(1, 0.9, 1.1), outcome=Outcome.FAILED)),
        ]
    )
    assert matrix.cells[0][1].speedup is None
    assert find_regressions(matrix, 0) == []


@pytest.mark.parametrize(
    ("label", "tox_env", "path", "expected"),
    [
        ("nightly", "py311", "runs/x.json", "nightly"),
        (None, "py314t-serial-fork", "runs/x.json", "py314t-serial-fork"),
        (None, None, "runs/py313.json", "py313"),
        ("", "", "runs/y.json", "y"),
    ],
)
def test_run_name_prefers_label_then_tox_env_then_file_stem(
    label: str | None, tox_env: str | None, path: str, expected: str
) -> None:
    document = RunDocument(environment=Environment(label=label, tox_env=tox_env))
    assert run_name(document, path) == expected


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["a", "b"], ("a", "b")),
        (["a", "a", "b", "a"], ("a", "a #2", "b", "a #3")),
        ([], ()),
    ],
)
def test_unique_names_numbers_repeated_run_names(names: list[str], expected: tuple[str]) -> None:
    assert unique_names(names) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [(None, 0), ("", 0), ("b", 1), ("2", 2), ("0", 0), ("10", 3)],
)
def test_select_baseline_accepts_a_name_or_an_index(spec: str | None, expected: int) -> None:
    # A run literally named "10" wins over the index 10.
    assert select_baseline(["a", "b", "c", "10"], spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [("zzz", "no run named 'zzz'; runs are: a, b"), ("5", "out of range"), ("-1", "out of range")],
)
def test_select_baseline_rejects_unknown_names_and_indexes(spec: str, message: str) -> None:
    with pytest.raises(CompareError, match=message):
        select_baseline(["a", "b"], spec)


@pytest.mark.parametrize(
    ("candidate", "baseline", "expected"),
    [
        (speedup(1.93, 1.85, 2.01), None, "1.93x [1.85-2.01]"),
        (
            speedup(1.4, 1.33, 1.47),
            speedup(1.93, 1.85, 2.01),
            f"1.40x [1.33-1.47] {SLOWER}-27%",
        ),
        (speedup(3.0, 2.9, 3.1), speedup(2.0, 1.9, 2.1), f"3.00x [2.90-3.10] {FASTER}+50%"),
        (speedup(1.8, 1.7, 1.9), speedup(1.93, 1.85, 2.01), "1.80x [1.70-1.90]"),
        (None, speedup(1.93, 1.85, 2.01), MISSING),
    ],
)
def test_format_cell_shows_the_interval_and_marks_only_significant_changes(
    candidate: Interval | None, baseline: Interval | None, expected: str
) -> None:
    assert format_cell(compare_cell(candidate, baseline)) == expected


@pytest.mark.parametrize("fmt", ["simple", "github", "grid", "markdown", "pipe", "rst"])
def test_render_matrix_names_the_baseline_column_and_ends_with_the_legend(fmt: str) -> None:
    matrix = build_matrix(
        [run("old", result(value=speedup(2, 1.9, 2.1))), run("new", result(value=None))]
    )
    text = render_matrix(matrix, fmt)
    assert "old (baseline)" in text
    assert TEST in text
    assert text.rstrip().endswith(LEGEND)


def test_render_matrix_as_csv_is_plain_rows_without_legend() -> None:
    matrix = build_matrix(
        [
            run("old", result(value=speedup(2, 1.9, 2.1))),
            run("new, improved", result(value=speedup(3, 2.9, 3.1))),
        ]
    )
    rows = list(csv.reader(io.StringIO(render_matrix(matrix, "csv"))))
    assert rows == [
        ["test", "backend", "old (baseline)", "new, improved"],
        [TEST, "process", "2.00x [1.90-2.10]", f"3.00x [2.90-3.10] {FASTER_MARK}+50%"],
    ]


def test_the_legend_explains_the_marks_and_the_missing_cell() -> None:
    assert f"{FASTER} / {SLOWER}: significantly faster / slower" in LEGEND
    assert f"{MISSING}: not measured in that run" in LEGEND
    assert MISSING == "-"


def test_output_formats_include_tabulate_formats_csv_and_markdown() -> None:
    assert {"csv", "markdown", "github", "simple", "grid"} <= set(output_formats())


@pytest.mark.parametrize(
    ("runs", "baseline", "message"),
    [([], 0, "no runs"), ([run("a")], 3, "out of range")],
)
def test_build_matrix_rejects_empty_input_and_bad_baseline(
    runs: list[Run], baseline: int, message: str
) -> None:
    with pytest.raises(CompareError, match=message):
        build_matrix(runs, baseline)
