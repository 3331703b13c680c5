"""A single self-contained HTML page of one or more runs, readable offline.

Every run's speedups are tables first; charts are drawn on top with plotly.js when
the optional ``plotly`` package is installed (``pip install pytest-parallel-lab[html]``),
inlined once per page so the file opens without a network. The chart specifications
are plain JSON built here (plotly's Python API is not needed, only its bundled JS).
All text from the documents is escaped; cells are made as in every other output
(:mod:`pytest_parallel_lab.output.cells`).
"""

from __future__ import annotations

import html
import importlib
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from pytest_parallel_lab.document.files import write_atomically
from pytest_parallel_lab.document.run import RunDocument
from pytest_parallel_lab.output.cells import MISSING, number_cell, workload_label
from pytest_parallel_lab.output.compare import (
    LEGEND,
    Matrix,
    Run,
    build_matrix,
    format_cell,
    unique_names,
)
from pytest_parallel_lab.stats import amdahl_speedup
from pytest_parallel_lab.vocabulary import Outcome

#: What the page says when plotly is not installed.
NO_CHARTS_NOTICE = "Charts need plotly: pip install pytest-parallel-lab[html]"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
code { font-size: 0.95em; }
.chart { width: 100%; max-width: 960px; height: 380px; }
.notice { background: #fff6d5; border: 1px solid #e0c060; padding: 0.5em 1em; }
.legend { color: #555; font-size: 0.9em; }
"""


def load_plotly_js() -> str | None:
    """plotly.js bundled with the ``plotly`` package, or ``None`` when it is not installed."""
    try:
        offline = importlib.import_module("plotly.offline")
    except ImportError:
        return None
    script: str = offline.get_plotlyjs()
    return script


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Page:
    """Collects HTML parts and chart specifications, then joins them into one page."""

    def __init__(self, charts_enabled: bool) -> None:
        self.charts_enabled = charts_enabled
        self.parts: list[str] = []
        self.charts: list[tuple[str, dict[str, Any]]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def chart(self, data: list[dict[str, Any]], layout: dict[str, Any]) -> None:
        if not self.charts_enabled or not data:
            return
        chart_id = f"chart-{len(self.charts)}"
        self.charts.append((chart_id, {"data": data, "layout": layout}))
        self.add(f'<div class="chart" id="{chart_id}"></div>')

    def chart_script(self) -> str:
        calls = []
        for chart_id, spec in self.charts:
            # Escape <, > and & so no document text can close the script element.
            payload = (
                json.dumps(finite_or_null(spec), allow_nan=False)
                .replace("<", "\\u003c")
                .replace(">", "\\u003e")
                .replace("&", "\\u0026")
            )
            calls.append(
                f'(function(s){{Plotly.newPlot("{chart_id}", s.data, s.layout, '
                f"{{responsive: true, displaylogo: false}});}})({payload});"
            )
        return "\n".join(calls)


def finite_or_null(value: Any) -> Any:
    """A chart specification with every infinite number (a sum of times near 1e308, an
    error bar between -1e308 and 1e308) as null, a gap plotly leaves out (issue 14)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite_or_null(item) for item in value]
    return value


def _environment_section(page: _Page, runs: Sequence[Run]) -> None:
    rows = []
    for run in runs:
        env = run.document.environment
        build = "free-threaded" if env.free_threaded_build else "default"
        rows.append(
            [
                run.name,
                f"{env.implementation} {env.python_version}".strip() or MISSING,
                f"{build}, GIL {'on' if env.gil_enabled else 'off'}",
                env.start_method or MISSING,
                env.xdist_workers,
                f"{env.usable_cpus}/{env.cpu_count}",
                env.platform or MISSING,
                ", ".join(env.unavailable_backends) or MISSING,
                run.document.created or MISSING,
            ]
        )
    headers = [
        "run",
        "Python",
        "build",
        "start method",
        "xdist -n",
        "CPUs",
        "platform",
        "unavailable backends",
        "created",
    ]
    page.add("<h2>Runs</h2>" + _table(headers, rows))


def _speedup_section(page: _Page, matrix: Matrix, runs: Sequence[Run]) -> None:
    page.add("<h2>Speedup per test</h2>")
    if not matrix.rows:
        page.add("<p>No measured workloads.</p>")
        return
    if len(runs) > 1:
        baseline = matrix.columns[matrix.baseline]
        page.add(f'<p class="legend">Baseline: {_e(baseline)}. {_e(LEGEND)}</p>')
    tests = list(dict.fromkeys(row.label for row in matrix.rows))
    for test in tests:
        indices = [i for i, row in enumerate(matrix.rows) if row.label == test]
        page.add(f"<h3><code>{_e(test)}</code></h3>")
        data = []
        for column, name in enumerate(matrix.columns):
            xs, ys, plus, minus = [], [], [], []
            for i in indices:
                speedup = matrix.cells[i][column].speedup
                if speedup is None:
                    continue
                xs.append(matrix.rows[i].backend)
                ys.append(speedup.estimate)
                plus.append(max(speedup.high - speedup.estimate, 0.0))
                minus.append(max(speedup.estimate - speedup.low, 0.0))
            if xs:
                error = {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus}
                data.append({"type": "bar", "name": name, "x": xs, "y": ys, "error_y": error})
        layout = {
            "barmode": "group",
            "yaxis": {"title": {"text": "speedup (serial / backend)"}, "rangemode": "tozero"},
            "xaxis": {"title": {"text": "backend"}},
            "shapes": [_horizontal_line(1.0)],
            "margin": {"t": 30},
            "showlegend": len(runs) > 1,
        }
        page.chart(data, layout)
        rows = [
            [matrix.rows[i].backend, *(format_cell(cell) for cell in matrix.cells[i])]
            for i in indices
        ]
        page.add(_table(["backend", *matrix.columns], rows))


def _horizontal_line(y: float) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "y0": y,
        "y1": y,
        "line": {"dash": "dot", "color": "#888"},
    }


def _failures_section(page: _Page, runs: Sequence[Run]) -> None:
    rows = [
        [run.name, result.nodeid, result.outcome, result.error or ""]
        for run in runs
        for result in run.document.results
        if result.outcome is not Outcome.PASSED
    ]
    if rows:
        page.add("<h2>Not measured</h2>" + _table(["run", "test", "outcome", "error"], rows))


def _scaling_section(page: _Page, runs: Sequence[Run]) -> None:
    sweeps = [(run, sweep) for run in runs for sweep in run.document.scaling]
    if not sweeps:
        return
    page.add("<h2>Scaling sweeps</h2>")
    for run, sweep in sweeps:
        points = sweep.points
        page.add(
            f"<h3><code>{_e(workload_label(sweep.test, sweep.call_index))}</code> "
            f"[{_e(sweep.backend)}] — {_e(run.name)}</h3>"
        )
        workers = [float(p.workers) for p in points]
        speedups = [p.speedup for p in points]
        error = {
            "type": "data",
            "symmetric": False,
            "array": [max(p.ci_high - p.speedup, 0.0) for p in points],
            "arrayminus": [max(p.speedup - p.ci_low, 0.0) for p in points],
        }
        data: list[dict[str, Any]] = []
        if points:
            top = max(workers)
            data.append(
                {"type": "scatter", "mode": "lines", "name": "ideal (speedup = workers)",
                 "x": [1, top], "y": [1, top], "line": {"dash": "dash", "color": "#999"}}
            )  # fmt: skip
            fraction = sweep.serial_fraction
            if fraction is not None and 0.0 <= fraction <= 1.0:
                xs = sorted({1.0, *workers})
                data.append(
                    {"type": "scatter", "mode": "lines", "name": "Amdahl fit",
                     "x": xs, "y": [amdahl_speedup(n, fraction) for n in xs],
                     "line": {"dash": "dot"}}
                )  # fmt: skip
            data.append(
                {"type": "scatter", "mode": "lines+markers", "name": "measured",
                 "x": workers, "y": speedups, "error_y": error}
            )  # fmt: skip
        layout = {
            "xaxis": {"title": {"text": "workers"}},
            "yaxis": {"title": {"text": "speedup"}, "rangemode": "tozero"},
            "margin": {"t": 30},
        }
        page.chart(data, layout)
        rows = [
            [p.workers, f"{p.speedup:.2f}", f"{p.ci_low:.2f}", f"{p.ci_high:.2f}"] for p in points
        ]
        page.add(_table(["workers", "speedup", "low", "high"], rows))
        summary = (
            f"serial fraction {number_cell(sweep.serial_fraction)}, "
            f"max speedup {number_cell(sweep.max_speedup, '.2f')}, "
            f"fit R² {number_cell(sweep.fit_r2)}"
        )
        page.add(f"<p>{_e(summary)}</p>")


def _suite_section(page: _Page, runs: Sequence[Run]) -> None:
    suites = [(run, run.document.suite) for run in runs if run.document.suite is not None]
    if not suites:
        return
    page.add("<h2>Suite timeline</h2>")
    for run, suite in suites:
        assert suite is not None
        page.add(f"<h3>{_e(run.name)} — wall time {_e(number_cell(suite.wall_s, '.2f'))} s</h3>")
        # Tests are laid back to back on their worker in recorded order, which is the
        # order each worker ran them.
        ends: dict[str, float] = {}
        bars: dict[str, dict[str, list[Any]]] = {}
        for test in suite.tests:
            worker = test.worker or "controller"
            trace = bars.setdefault(
                str(test.outcome), {"x": [], "y": [], "base": [], "hovertext": []}
            )
            start = ends.get(worker, 0.0)
            ends[worker] = start + test.total_s
            trace["x"].append(test.total_s)
            trace["y"].append(worker)
            trace["base"].append(start)
            trace["hovertext"].append(test.nodeid)
        # Node ids go to the hover text only: as bar labels they clutter a long suite.
        data = [
            {"type": "bar", "orientation": "h", "name": outcome,
             "marker": {"line": {"color": "white", "width": 1}},
             "hovertemplate": "%{hovertext}<br>%{base:.3f}s + %{x:.3f}s<extra></extra>", **trace}
            for outcome, trace in bars.items()
        ]  # fmt: skip
        layout = {
            "barmode": "overlay",
            "xaxis": {"title": {"text": "seconds since the worker's first test"}},
            "yaxis": {"title": {"text": "worker"}, "type": "category", "autorange": "reversed"},
            "margin": {"t": 30},
        }
        page.chart(data, layout)
        rows = [
            [w.id, number_cell(w.startup_s), number_cell(w.busy_s), number_cell(w.idle_s), w.tests]
            for w in suite.workers
        ]
        if rows:
            page.add(_table(["worker", "startup s", "busy s", "idle s", "tests"], rows))
        if suite.shards:
            page.add("<h4>CI matrix prediction (split by duration, as pytest-split does)</h4>")
            shards = [
                [
                    p.shards,
                    p.workers,
                    p.dist,
                    number_cell(p.wall_s),
                    " ".join(number_cell(w) for w in p.shard_wall_s),
                    " ".join(str(n) for n in p.shard_tests),
                ]
                for p in suite.shards
            ]
            headers = ["shards", "-n", "dist", "slowest s", "each shard s", "tests per shard"]
            page.add(_table(headers, shards))


def _safety_section(page: _Page, runs: Sequence[Run]) -> None:
    """``--parallel-safety``'s findings of each run: one row per finding, then who
    touched each resource where (every cell escaped: paths and node ids are the
    suite's)."""
    checked = [(run, run.document.safety) for run in runs if run.document.safety is not None]
    if not checked:
        return
    from pytest_parallel_lab.output.safety_text import NOTHING_AVOIDS, summary_line

    page.add("<h2>Parallel safety</h2>")
    for run, safety in checked:
        assert safety is not None
        page.add(f"<h3>{_e(run.name)}</h3><p>{_e(summary_line(safety))}</p>")
        if not safety.findings:
            continue
        rows = [
            [
                number,
                f.problem,
                f.kind,
                f.resource,
                ", ".join(f.tests),
                f.avoided_by or NOTHING_AVOIDS,
                "" if f.confirmed is None else ("failed" if f.confirmed else "passed"),
                f.fix,
            ]
            for number, f in enumerate(safety.findings, 1)
        ]
        headers = ["#", "problem", "kind", "resource", "tests", "avoided by", "confirmed", "fix"]
        page.add(_table(headers, rows))
        touches = [
            [number, t.test, t.phase, t.access, t.location or "-", t.fixture or ""]
            for number, f in enumerate(safety.findings, 1)
            for t in f.touches
        ]
        page.add(_table(["#", "test", "phase", "access", "where", "fixture"], touches))
        if safety.confirm is not None:
            c = safety.confirm
            text = (
                f"Confirmed under -n {c.workers}: {c.runs} runs of {c.tests} tests; "
                f"failed: {', '.join(c.failed) or 'none'}"
            )
            page.add(f"<p>{_e(text + (f' ({c.problem})' if c.problem else ''))}</p>")


def render_html(documents: Sequence[RunDocument], titles: Sequence[str]) -> str:
    """The HTML page of *documents* (one column per run, named by *titles*), self-contained."""
    if len(documents) != len(titles):
        raise ValueError("render_html needs one title per document")
    runs = [Run(name, doc) for name, doc in zip(unique_names(titles), documents, strict=True)]
    plotly_js = load_plotly_js()
    page = _Page(charts_enabled=plotly_js is not None)
    heading = "pytest-parallel-lab: " + (", ".join(titles) if titles else "no runs")
    page.add(f"<h1>{_e(heading)}</h1>")
    if plotly_js is None:
        page.add(f'<p class="notice">{_e(NO_CHARTS_NOTICE)}</p>')
    if runs:
        _environment_section(page, runs)
        _speedup_section(page, build_matrix(runs), runs)
        _failures_section(page, runs)
        _scaling_section(page, runs)
        _suite_section(page, runs)
        _safety_section(page, runs)
    scripts = ""
    if plotly_js is not None and page.charts:
        # plotly.js is inlined once; "</script" cannot occur inside it un-escaped in practice,
        # but guard anyway so the page structure cannot break.
        safe_js = plotly_js.replace("</script", "<\\/script")
        scripts = f"<script>{safe_js}</script>\n<script>\n{page.chart_script()}\n</script>"
    body = "\n".join(page.parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(heading)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n{scripts}\n</body>\n</html>\n"
    )


def write_html(
    documents: Sequence[RunDocument], titles: Sequence[str], path: str | os.PathLike[str]
) -> None:
    """Write :func:`render_html`'s page to *path* atomically."""
    write_atomically(path, render_html(documents, titles))
