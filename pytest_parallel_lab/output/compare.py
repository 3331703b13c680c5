"""Compare saved runs: one row per workload, one column per run, changes against a baseline.

Pure logic for ``pytest-parallel-lab compare``: nothing here imports pytest or reads
files, so the rules (what counts as a significant change, what counts as a
regression) are tested with tables of cases. A change is *significant* when the
run's speedup interval and the baseline's do not overlap; a *regression* is a
significant drop larger than a threshold in percent of the baseline's speedup.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tabulate

from pytest_parallel_lab.document.records import ResultRecord
from pytest_parallel_lab.document.run import RunDocument
from pytest_parallel_lab.output.cells import MISSING, map_call, speedup_cell, workload_label
from pytest_parallel_lab.stats import Interval
from pytest_parallel_lab.vocabulary import Kind, Outcome

#: Marker of a significant improvement (interval entirely above the baseline's).
FASTER_MARK = "▲"
#: Marker of a significant drop (interval entirely below the baseline's).
SLOWER_MARK = "▼"
#: Output formats besides tabulate's own; ``markdown`` is tabulate's ``github``.
EXTRA_FORMATS = ("csv", "markdown")

LEGEND = (
    f"Cells: speedup [interval]. {FASTER_MARK} / {SLOWER_MARK}: significantly faster / slower "
    "than the baseline (the intervals do not overlap), with the change in percent; "
    f"{MISSING}: not measured in that run (missing, failed or skipped)."
)


class CompareError(ValueError):
    """The comparison was asked for something that does not exist (e.g. an unknown baseline)."""


@dataclass(frozen=True)
class Run:
    """A loaded document and the column name it gets in the matrix."""

    name: str
    document: RunDocument


@dataclass(frozen=True)
class RowKey:
    """What identifies a workload across runs: the test, the backend and which map call."""

    test: str
    backend: str
    kind: Kind = Kind.BODY
    call_index: int = 0

    @property
    def label(self) -> str:
        """The row's name in the table (which ``parallel_map`` call, for map rows)."""
        return workload_label(self.test, map_call(self.kind, self.call_index))


@dataclass(frozen=True)
class Cell:
    """One run's speedup for one row, and how it relates to the baseline's."""

    speedup: Interval | None
    change_pct: float | None = None
    direction: int = 0  # +1 significantly faster, -1 significantly slower, 0 otherwise


@dataclass(frozen=True)
class Regression:
    """A significant drop of more than the threshold against the baseline."""

    row: RowKey
    run: str
    baseline: float
    speedup: float
    change_pct: float


@dataclass(frozen=True)
class Matrix:
    """The comparison: ``cells[row][column]`` lines up with ``rows`` and ``columns``."""

    columns: tuple[str, ...]
    baseline: int
    rows: tuple[RowKey, ...]
    cells: tuple[tuple[Cell, ...], ...]


def run_name(document: RunDocument, path: str | Path) -> str:
    """A run's column name: its ``--parallel-label``, else its tox env, else the file stem."""
    environment = document.environment
    return environment.label or environment.tox_env or Path(path).stem


def unique_names(names: Sequence[str]) -> tuple[str, ...]:
    """*names* with repeats made distinct (``a``, ``a #2``), so columns never collide."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return tuple(result)


def select_baseline(names: Sequence[str], spec: str | None) -> int:
    """The index of the baseline run: *spec* is a column name or a 0-based index."""
    if spec is None or spec == "":
        return 0
    if spec in names:
        return list(names).index(spec)
    if spec.lstrip("-").isdigit():
        index = int(spec)
        if 0 <= index < len(names):
            return index
        raise CompareError(f"baseline index {index} is out of range (0 to {len(names) - 1})")
    raise CompareError(f"no run named {spec!r}; runs are: {', '.join(names)}")


def row_key(result: ResultRecord) -> RowKey:
    """The row a result belongs to."""
    return RowKey(result.test, result.backend, result.kind, result.call_index)


def measured_speedups(document: RunDocument) -> dict[RowKey, Interval | None]:
    """Every row of *document* and its speedup (``None`` when not measured)."""
    speedups: dict[RowKey, Interval | None] = {}
    for result in document.results:
        measured = result.speedup if result.outcome is Outcome.PASSED else None
        # A repeated row keeps its first measurement, unless only a later one has a speedup.
        if speedups.get(row_key(result)) is None:
            speedups[row_key(result)] = measured
    return speedups


def compare_cell(candidate: Interval | None, baseline: Interval | None) -> Cell:
    """How *candidate* relates to *baseline*: change in percent and significant direction."""
    if candidate is None:
        return Cell(None)
    if baseline is None or baseline.estimate <= 0:
        return Cell(candidate)
    change = (candidate.estimate - baseline.estimate) / baseline.estimate * 100.0
    direction = 0
    if candidate.low > baseline.high:
        direction = 1
    elif candidate.high < baseline.low:
        direction = -1
    # A baseline near 1e-308 overflows the division: the change has no percent (issue 14).
    return Cell(candidate, change if math.isfinite(change) else None, direction)


def build_matrix(runs: Sequence[Run], baseline: int = 0) -> Matrix:
    """The comparison of *runs* against ``runs[baseline]``; rows in first-seen order."""
    if not runs:
        raise CompareError("nothing to compare: no runs given")
    if not 0 <= baseline < len(runs):
        raise CompareError(f"baseline index {baseline} is out of range")
    per_run = [measured_speedups(run.document) for run in runs]
    rows: dict[RowKey, None] = {}
    for speedups in per_run:
        rows.update(dict.fromkeys(speedups))
    cells = tuple(
        tuple(
            compare_cell(speedups.get(row), per_run[baseline].get(row))
            if index != baseline
            else Cell(speedups.get(row))
            for index, speedups in enumerate(per_run)
        )
        for row in rows
    )
    return Matrix(tuple(run.name for run in runs), baseline, tuple(rows), cells)


def find_regressions(matrix: Matrix, threshold_pct: float) -> list[Regression]:
    """Cells whose speedup dropped significantly by more than *threshold_pct* percent."""
    found = []
    for row, cells in zip(matrix.rows, matrix.cells, strict=True):
        base = cells[matrix.baseline].speedup
        for column, cell in zip(matrix.columns, cells, strict=True):
            dropped = cell.change_pct is not None and -cell.change_pct > threshold_pct
            if cell.direction < 0 and dropped and cell.speedup and base and cell.change_pct:
                found.append(
                    Regression(row, column, base.estimate, cell.speedup.estimate, cell.change_pct)
                )
    return found


def format_cell(cell: Cell) -> str:
    """A cell's text: the speedup, and the marker and change when significant."""
    text = speedup_cell(cell.speedup)
    if cell.direction:
        text += f" {FASTER_MARK if cell.direction > 0 else SLOWER_MARK}"
        if cell.change_pct is not None:
            text += f"{cell.change_pct:+.0f}%"
    return text


def table_rows(matrix: Matrix) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the matrix as text (the baseline's column is marked)."""
    headers = ["test", "backend"] + [
        f"{name} (baseline)" if index == matrix.baseline else name
        for index, name in enumerate(matrix.columns)
    ]
    rows = [
        [row.label, row.backend, *(format_cell(cell) for cell in cells)]
        for row, cells in zip(matrix.rows, matrix.cells, strict=True)
    ]
    return headers, rows


def output_formats() -> tuple[str, ...]:
    """Every accepted ``--format``: tabulate's formats plus ``csv`` and ``markdown``."""
    return tuple(sorted({*tabulate.tabulate_formats, *EXTRA_FORMATS}))


def render_matrix(matrix: Matrix, fmt: str = "simple") -> str:
    """The matrix as text in *fmt*; every format but ``csv`` ends with the legend."""
    headers, rows = table_rows(matrix)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        return buffer.getvalue()
    if fmt not in output_formats():
        raise CompareError(f"unknown format {fmt!r}")
    table = tabulate.tabulate(rows, headers, tablefmt="github" if fmt == "markdown" else fmt)
    return f"{table}\n\n{LEGEND}\n"


def format_regression(regression: Regression) -> str:
    """One line describing a regression."""
    return (
        f"{regression.row.label} [{regression.row.backend}] in {regression.run}: "
        f"{regression.baseline:.2f}x -> {regression.speedup:.2f}x ({regression.change_pct:+.1f}%)"
    )
