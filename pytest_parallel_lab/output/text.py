"""The terminal report of a run document (``--parallel-report`` and ``show``).

Pure: takes a :class:`RunDocument` and a width, returns text no wider than that (where
the content allows). First the machine, then the "choosing the right tool"
recommendations (test, class, use, why), then a compact table of speedups (test,
backend, speedup [interval], verdict); the full table with every measured column comes
with ``verbose`` (``pytest -v``, ``show -v``) and is in the JSON. Then the sweeps, the
suite analysis (``suite_text.py``) and the parallel-safety findings (``safety_text.py``),
each block only when the document has it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pytest_parallel_lab.capacity import CpuCapacity
from pytest_parallel_lab.document.records import Environment, Recommendation, ResultRecord, Sweep
from pytest_parallel_lab.document.run import RunDocument
from pytest_parallel_lab.output.cells import (
    MISSING,
    SPEEDUP_LEGEND,
    map_call,
    number_cell,
    percent_cell,
    seconds_cell,
    speedup_cell,
    workload_label,
)
from pytest_parallel_lab.output.fit import DEFAULT_WIDTH, fit_table, shorten, wrap
from pytest_parallel_lab.output.safety_text import render_safety_section
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
COMPACT_HEADERS = ("test", "backend", "speedup [95% CI]", "verdict")
#: What the serial backend's row is: the baseline against itself, a check of the noise.
A_A = "A/A noise check"


def short_test(test: str) -> str:
    """A test without its file: 'test_cube[4]', 'TestPool::test_cube' (the JSON and
    ``-v`` keep the whole node id)."""
    return test.split("::", 1)[-1]


def _test_label(record: ResultRecord, verbose: int = 0) -> str:
    test = record.test if verbose else short_test(record.test)
    return workload_label(test, map_call(record.kind, record.call_index))


def _notes(record: ResultRecord) -> str:
    notes = list(record.notes)
    if record.gate:
        notes.append(f"gate {record.gate.verdict} (min {record.gate.min_speedup}x)")
    if record.outcome is not Outcome.PASSED:
        notes.insert(0, record.outcome.upper())
    return ", ".join(notes)


def verdict(record: ResultRecord) -> str:
    """What a row's speedup says, in a few words."""
    if record.outcome is not Outcome.PASSED:
        return record.outcome.upper()
    if record.machine_busy and record.capacity is not None:
        c = record.capacity
        return f"machine busy: {c.delivered_cpus:.1f} of {c.expected_cpus:g} CPUs"
    if record.backend == "serial":
        return A_A
    words = str(record.verdict) if record.verdict else MISSING
    if record.gate is not None:
        words += f", gate {record.gate.verdict}"
    return words


def result_rows(results: Sequence[ResultRecord]) -> list[list[Any]]:
    """One full table row per result, in run order."""
    return [
        [
            _test_label(r, verbose=1),
            r.backend,
            r.workers if r.workers is not None else MISSING,
            r.tasks if r.tasks is not None else MISSING,
            seconds_cell(r.serial_s),
            seconds_cell(r.backend_s),
            speedup_cell(r.speedup),
            percent_cell(r.efficiency),
            seconds_cell(r.startup_s),
            _notes(r),
        ]
        for r in results
    ]


def compact_rows(results: Sequence[ResultRecord]) -> list[list[str]]:
    """One row per result: test, backend, speedup [interval], verdict."""
    return [[_test_label(r), r.backend, speedup_cell(r.speedup), verdict(r)] for r in results]


def cpu_line(env: Environment) -> str:
    """'1 usable CPU: cgroup quota 100000/100000 of 2 online' (older files: the count)."""
    if not env.cpu_capacity:
        return f"{env.usable_cpus} usable CPUs"
    return CpuCapacity(env.cpu_count, env.cpu_capacity, env.cpu_limit).describe()


def render_environment(document: RunDocument) -> str:
    """One line on what this run ran on."""
    env = document.environment
    gil = "GIL enabled" if env.gil_enabled else "GIL disabled (free-threaded)"
    if env.gil_enabled and env.free_threaded_build:
        gil = "GIL enabled on a free-threaded build"
    parts = [
        f"{env.implementation} {env.python_version}",
        gil,
        cpu_line(env),
        f"start method {env.start_method}",
    ]
    if env.xdist_workers:
        parts.append(f"{env.xdist_workers} xdist workers")
    if env.label:
        parts.append(f"label {env.label}")
    return ", ".join(parts)


def render_results(document: RunDocument, width: int = DEFAULT_WIDTH, verbose: int = 0) -> str:
    """The speedup table (compact, or every column with *verbose*), with the footnotes a
    reader needs to trust it."""
    if not document.results:
        return "No marked tests ran: mark a test with @pytest.mark.parallel(backend=...)."
    if verbose:  # the details: every column and whole node ids, however wide
        table = fit_table(result_rows(document.results), HEADERS, width=10**6)
    else:
        table = fit_table(compact_rows(document.results), COMPACT_HEADERS, width, shorten_column=0)
    lines = [table, wrap(SPEEDUP_LEGEND, width)]
    for record in document.results:
        if record.error:
            first_line = record.error.splitlines()[0].removeprefix(f"{record.nodeid}: ")
            if verbose:  # the details: whole node ids, whatever the width
                lines.append(f"{record.outcome.upper()} {record.nodeid}: {first_line}")
            else:
                nodeid = shorten(record.nodeid, width // 2)
                lines.append(wrap(f"{record.outcome.upper()} {nodeid}: {first_line}", width))
    if document.environment.xdist_workers > 1:
        lines.append(
            wrap(
                f"Warning: measured inside {document.environment.xdist_workers} pytest-xdist "
                "workers that shared the same CPUs; speedups are lower and noisier than in a "
                "serial run.",
                width,
            )
        )
    return "\n".join(lines)


def render_recommendations(
    recommendations: Sequence[Recommendation], width: int = DEFAULT_WIDTH, verbose: int = 0
) -> str:
    """The "choosing the right tool" block: test, class, backend to use, why. With
    *verbose*, the whole reason with the speedups it cites. Empty for none."""
    if not recommendations:
        return ""
    rows = [
        [
            workload_label(r.test if verbose else short_test(r.test), r.call_index),
            str(r.classification),
            r.backend if r.shown else f"{r.backend} (not shown)",
            r.reason if verbose or not r.why else r.why,
        ]
        for r in recommendations
    ]
    headers = ["test", "class", "use", "why"]
    table = fit_table(rows, headers, width, shorten_column=0, wrap_column=3)
    return f"recommendations (choosing the right tool)\n{table}"


def render_unavailable(environment: Environment, width: int = DEFAULT_WIDTH) -> str:
    """The models this interpreter could not measure, each with why (the Python it
    needs, the install command of an extra). Empty when every backend could run."""
    if not environment.unavailable_backends:
        return ""
    lines = ["unavailable on this interpreter (not measured):"]
    for name, reason in environment.unavailable_backends.items():
        lines.append(wrap(f"  {name}: {reason}", width, indent="    "))
    return "\n".join(lines)


def _fit_line(sweep: Sweep) -> str:
    if sweep.serial_fraction is None:
        return "Amdahl fit: not enough worker counts within the usable CPUs"
    ceiling = sweep.max_speedup
    ceiling_text = "unbounded" if ceiling is None or math.isinf(ceiling) else f"{ceiling:.1f}x"
    return (
        f"Amdahl fit: serial fraction {sweep.serial_fraction:.3f}, max speedup {ceiling_text}, "
        f"r² {number_cell(sweep.fit_r2)}"
    )


def render_scaling(sweeps: Sequence[Sweep], width: int = DEFAULT_WIDTH) -> str:
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
        label = workload_label(short_test(sweep.test), sweep.call_index)
        table = fit_table(rows, ["workers", "speedup", "95% CI", ""], width)
        lines = [
            wrap(f"scaling: {label} [{sweep.backend}]", width),
            table.rstrip(),
            wrap(_fit_line(sweep), width),
        ]
        if capped:
            where = f"the {cpus} usable CPUs" if cpus else "the usable CPUs"
            lines.append(
                wrap(
                    f"the sweep is capped by the hardware: worker counts above {where} cannot "
                    "speed up CPU work, so a flat tail there is not a plateau of the workload",
                    width,
                )
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_document(document: RunDocument, width: int = DEFAULT_WIDTH, verbose: int = 0) -> str:
    """The whole report, no wider than *width* where the content allows."""
    blocks = [
        wrap(render_environment(document), width),
        render_recommendations(document.recommendations, width, verbose),
        render_unavailable(document.environment, width) if document.results else "",
        render_results(document, width, verbose),
        render_scaling(document.scaling, width),
    ]
    if document.suite is not None:
        blocks.append(render_suite_section(document.suite, width))
    if document.safety is not None:
        blocks.append(render_safety_section(document.safety, width, verbose))
    return "\n\n".join(block for block in blocks if block)
