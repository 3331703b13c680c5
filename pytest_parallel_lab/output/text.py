"""Render a run document as the terminal report (``--parallel-report`` and ``show``).

Pure: takes a :class:`RunDocument`, returns text. The optional sections other
features add are rendered by their own modules, imported here lazily so that a
missing or broken section never hides the main table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from tabulate import tabulate

from pytest_parallel_lab.document.run import ResultRecord, RunDocument

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

#: Optional sections: (document key, module, function rendering that section's JSON).
SECTION_RENDERERS = (
    ("recommendations", "pytest_parallel_lab.output.sections", "render_recommendations"),
    ("scaling", "pytest_parallel_lab.output.sections", "render_scaling"),
    ("suite", "pytest_parallel_lab.output.suite_text", "render_suite_section"),
)


def format_seconds(value: float | None) -> str:
    """Seconds in a readable unit: '812 µs', '12.3 ms', '1.42 s'."""
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def format_speedup(record: ResultRecord) -> str:
    """'1.93x [1.85-2.01]', or '-' when nothing was measured."""
    if record.speedup is None:
        return "-"
    s = record.speedup
    return f"{s.estimate:.2f}x [{s.ci_low:.2f}-{s.ci_high:.2f}]"


def _test_label(record: ResultRecord) -> str:
    label = record.test.split("::", 1)[-1] if "::" in record.test else record.test
    if record.kind == "map":
        label += f" (map #{record.call_index + 1})"
    return label


def _notes(record: ResultRecord) -> str:
    notes = list(record.notes)
    if record.classification:
        notes.insert(0, record.classification)
    if record.gate:
        notes.append(f"gate {record.gate.get('verdict')} (min {record.gate.get('min_speedup')}x)")
    if record.outcome != "passed":
        notes.insert(0, record.outcome.upper())
    return ", ".join(notes)


def result_rows(results: tuple[ResultRecord, ...]) -> list[list[Any]]:
    """One table row per result, in run order."""
    return [
        [
            _test_label(r),
            r.backend,
            r.workers if r.workers is not None else "-",
            r.tasks if r.tasks is not None else "-",
            format_seconds(r.serial_s),
            format_seconds(r.backend_s),
            format_speedup(r),
            f"{r.efficiency:.0%}" if r.efficiency is not None else "-",
            format_seconds(r.startup_s),
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
    lines.append(
        "speedup = serial / backend, median of paired rounds with a 95% bootstrap interval; "
        "efficiency = speedup / effective parallelism; 'noisy' = interval wider than 20% or "
        "a side's spread over 10%."
    )
    failed = [r for r in document.results if r.error]
    for record in failed:
        first_line = record.error.splitlines()[0] if record.error else ""
        first_line = first_line.removeprefix(f"{record.nodeid}: ")
        lines.append(f"{record.outcome.upper()} {record.nodeid}: {first_line}")
    if document.environment.xdist_workers > 1:
        lines.append(
            f"Warning: measured inside {document.environment.xdist_workers} pytest-xdist workers "
            "that shared the same CPUs; speedups are lower and noisier than in a serial run."
        )
    return "\n".join(lines)


def _section_renderer(module: str, function: str) -> Callable[[Any], str] | None:
    try:
        renderer: Callable[[Any], str] = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError):
        return None
    return renderer


def render_document(document: RunDocument) -> str:
    """The whole report: the results table, then each optional section present."""
    blocks = [render_results(document)]
    for key, module, function in SECTION_RENDERERS:
        section = document.sections.get(key)
        if not section:
            continue
        renderer = _section_renderer(module, function)
        if renderer is not None:
            blocks.append(renderer(section))
    return "\n\n".join(block for block in blocks if block)
