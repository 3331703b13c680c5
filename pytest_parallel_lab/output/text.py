"""The terminal report of a run document (``--parallel-report`` and ``show``).

Pure: takes a :class:`RunDocument`, returns text. The main table of marked tests,
then the recommendations, the worker-count sweeps and the suite analysis
(``suite_text.py``), each block only when the document has it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from pytest_parallel_lab.document.records import Recommendation, ResultRecord, Sweep
from pytest_parallel_lab.document.run import RunDocument
from pytest_parallel_lab.output.cells import (
    MISSING,
    SPEEDUP_LEGEND,
    map_call,
    number_cell,
    seconds_cell,
    speedup_cell,
    workload_label,
)
from pytest_parallel_lab.output.suite_text import render_suite_section
from pytest_parallel_lab.vocabulary import Outcome

HEADERS = (
    "test",
    "backend",
    "workers",
    "tasks",
    "serial",
    "backend time",
    "speedup [95% CI]",
    "efficiency",
    "start-up",
    "notes",
)

_TABLE_FORMAT = "simple"


def _test_label(record: ResultRecord) -> str:
    test = record.test.split("::", 1)[-1] if "::" in record.test else record.test
    return workload_label(test, map_call(record.kind, record.call_index))


def _notes(record: ResultRecord) -> str:
    notes = list(record.notes)
    if record.classification:
        notes.insert(0, str(record.classification))
    if record.gate:
        notes.append(f"gate {record.gate.verdict} (min {record.gate.min_speedup}x)")
    if record.outcome is not Outcome.PASSED:
        notes.insert(0, record.outcome.upper())
    return ", ".join(notes)


def result_rows(results: Sequence[ResultRecord]) -> list[list[Any]]:
    """One table row per result, in run order."""
    return [
        [
            _test_label(r),
            r.backend,
            r.workers if r.workers is not None else MISSING,
            r.tasks if r.tasks is not None else MISSING,
            seconds_cell(r.serial_s),
            seconds_cell(r.backend_s),
            speedup_cell(r.speedup),
            f"{r.efficiency:.0%}" if r.efficiency is not None else MISSING,
            seconds_cell(r.startup_s),
            _notes(r),
        ]
        for r in results
    ]


def render_environment(document: RunDocument) -> str:
    """One line on what this run ran on."""
    env = document.environment
    gil = "GIL enabled" if env.gil_enabled else "GIL disabled (free-threaded)"
    parts = [
        f"{env.implementation} {env.python_version}",
        gil,
        f"{env.usable_cpus} usable CPUs",
        f"start method {env.start_method}",
    ]
    if env.xdist_workers:
        parts.append(f"{env.xdist_workers} xdist workers")
    if env.label:
        parts.append(f"label {env.label}")
    return ", ".join(parts)


def render_results(document: RunDocument) -> str:
    """The main table, with the footnotes a reader needs to trust it."""
    lines = [render_environment(document)]
    if not document.results:
        lines.append("No marked tests ran: mark a test with @pytest.mark.parallel(backend=...).")
        return "\n".join(lines)
    lines.append(tabulate(result_rows(document.results), headers=HEADERS, disable_numparse=True))
    lines.append(SPEEDUP_LEGEND)
    for record in document.results:
        if record.error:
            first_line = record.error.splitlines()[0].removeprefix(f"{record.nodeid}: ")
            lines.append(f"{record.outcome.upper()} {record.nodeid}: {first_line}")
    if document.environment.xdist_workers > 1:
        lines.append(
            f"Warning: measured inside {document.environment.xdist_workers} pytest-xdist workers "
            "that shared the same CPUs; speedups are lower and noisier than in a serial run."
        )
    return "\n".join(lines)


def render_recommendations(recommendations: Sequence[Recommendation]) -> str:
    """A "recommendations" block: test, class, backend to use, reason. Empty for none."""
    if not recommendations:
        return ""
    rows = [
        [workload_label(r.test, r.call_index), str(r.classification), r.backend, r.reason]
        for r in recommendations
    ]
    table = tabulate(rows, headers=["test", "class", "use", "reason"], tablefmt=_TABLE_FORMAT)
    return f"recommendations\n{table}"


def _fit_line(sweep: Sweep) -> str:
    if sweep.serial_fraction is None:
        return "Amdahl fit: not enough worker counts within the usable CPUs"
    ceiling = sweep.max_speedup
    ceiling_text = "unbounded" if ceiling is None or math.isinf(ceiling) else f"{ceiling:.1f}x"
    return (
        f"Amdahl fit: serial fraction {sweep.serial_fraction:.3f}, max speedup {ceiling_text}, "
        f"r² {number_cell(sweep.fit_r2)}"
    )


def render_scaling(sweeps: Sequence[Sweep]) -> str:
    """Per sweep: workers and speedup [95% CI], the fit line, the hardware-cap remark."""
    blocks = []
    for sweep in sweeps:
        cpus = sweep.usable_cpus
        capped = sweep.capped_by_cpus
        rows = [
            [
                p.workers,
                f"{p.speedup:.2f}x",
                f"[{p.ci_low:.2f}-{p.ci_high:.2f}]",
                "above usable CPUs, not fitted" if capped and 0 < cpus < p.workers else "",
            ]
            for p in sweep.points
        ]
        label = workload_label(sweep.test, sweep.call_index)
        table = tabulate(rows, headers=["workers", "speedup", "95% CI", ""], tablefmt=_TABLE_FORMAT)
        lines = [f"scaling: {label} [{sweep.backend}]", table.rstrip(), _fit_line(sweep)]
        if capped:
            where = f"the {cpus} usable CPUs" if cpus else "the usable CPUs"
            lines.append(
                f"the sweep is capped by the hardware: worker counts above {where} cannot "
                "speed up CPU work, so a flat tail there is not a plateau of the workload"
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_document(document: RunDocument) -> str:
    """The whole report: the results table, then each optional section present."""
    blocks = [
        render_results(document),
        render_recommendations(document.recommendations),
        render_scaling(document.scaling),
    ]
    if document.suite is not None:
        blocks.append(render_suite_section(document.suite))
    return "\n\n".join(block for block in blocks if block)
