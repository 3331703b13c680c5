"""The HTML report: self-contained, escaped, readable without plotly, drawn in a real browser."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_parallel_lab.document import (
    DocumentError,
    RunDocument,
    SuiteSection,
    Sweep,
    SweepPoint,
    document_from_json,
    load_document,
)
from pytest_parallel_lab.document.suite import WorkerTiming
from pytest_parallel_lab.output import html as html_report
from pytest_parallel_lab.output.cells import MISSING
from pytest_parallel_lab.output.html import NO_CHARTS_NOTICE, render_html, write_html

DATA = Path(__file__).parent / "data"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = "</script><script>alert(1)</script>&<b>"


def document(name: str) -> RunDocument:
    return load_document(DATA / name)


def without_plotly_js(page: str) -> str:
    """The page minus the inlined plotly.js (the first script), i.e. what this plugin wrote."""
    return re.sub(r"<script>.*?</script>", "<script></script>", page, count=1, flags=re.S)


def chart_count(page: str) -> int:
    return page.count('<div class="chart" id="chart-')


@pytest.fixture
def without_plotly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_report, "load_plotly_js", lambda: None)


def test_a_page_with_plotly_inlines_plotly_js_once_and_draws_every_chart() -> None:
    pytest.importorskip("plotly")
    page = render_html([document("sweep_and_suite.json")], ["nightly"])
    # 3 tests with a speedup, 1 sweep, 1 suite timeline; the failed test has a table only.
    assert chart_count(page) == 5
    assert page.count("Plotly.newPlot(") == 5
    assert page.count("<script>") == 2  # plotly.js, then the charts
    # Nothing is loaded from elsewhere: no external scripts, styles, images or frames.
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=", page, re.I)
    assert NO_CHARTS_NOTICE not in page
    # plotly.js is about 4.8 MB; keep an eye on the page staying one download.
    assert len(page.encode()) < 6_000_000


def test_without_plotly_the_page_has_tables_and_says_how_to_get_charts(
    without_plotly: None,
) -> None:
    page = render_html([document("sweep_and_suite.json")], ["nightly"])
    assert NO_CHARTS_NOTICE in page
    assert "pip install pytest-parallel-lab[html]" in page
    assert "<script" not in page
    assert chart_count(page) == 0
    for expected in (
        "1.93x [1.85-2.01]",  # speedup table
        "<td>4</td><td>1.80</td><td>1.65</td><td>1.95</td>",  # sweep table
        "<td>gw1</td><td>0.300</td><td>0.330</td><td>0.380</td><td>1</td>",  # workers table
    ):
        assert expected in page


def test_load_plotly_js_returns_none_when_plotly_is_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "plotly.offline", None)
    assert html_report.load_plotly_js() is None


@pytest.mark.parametrize("charts", [True, False], ids=["plotly", "no-plotly"])
def test_every_text_from_the_documents_is_escaped(
    monkeypatch: pytest.MonkeyPatch, charts: bool
) -> None:
    if charts:
        pytest.importorskip("plotly")
    else:
        monkeypatch.setattr(html_report, "load_plotly_js", lambda: None)
    data = json.loads((DATA / "sweep_and_suite.json").read_text())
    data["results"][0]["test"] = HOSTILE
    data["results"][0]["backend"] = HOSTILE
    data["results"][-1]["error"] = HOSTILE
    data["scaling"][0]["test"] = HOSTILE
    data["suite"]["tests"][0]["nodeid"] = HOSTILE
    data["suite"]["tests"][0]["worker"] = HOSTILE
    data["environment"]["platform"] = HOSTILE
    page = without_plotly_js(render_html([document_from_json(data)], [HOSTILE]))
    assert "alert(1)" in page
    assert "<script>alert" not in page
    assert "</script><script>alert" not in page
    assert "<b>" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;&lt;b&gt;" in page


def test_several_runs_are_drawn_side_by_side_with_one_trace_per_run() -> None:
    pytest.importorskip("plotly")
    runs = [document("baseline.json"), document("regressed.json"), document("within_noise.json")]
    page = render_html(runs, ["3.11", "3.14t", "3.13 spawn"])
    first_chart = re.search(r"\(function\(s\)\{.*?\}\)\((\{.*?\})\);\n", page)
    assert first_chart is not None
    spec = json.loads(first_chart.group(1))
    assert [trace["name"] for trace in spec["data"]] == ["3.11", "3.14t", "3.13 spawn"]
    assert spec["data"][1]["y"] == [1.01, 1.4]
    assert spec["data"][1]["error_y"]["arrayminus"] == pytest.approx([0.04, 0.07])
    assert "Baseline: 3.11." in page
    assert "1.40x [1.33-1.47] \u25bc-27%" in page


def test_repeated_titles_get_distinct_columns(without_plotly: None) -> None:
    page = render_html([document("baseline.json")] * 2, ["run", "run"])
    assert "<th>run #2</th>" in page


def test_the_runs_table_names_the_backends_each_run_could_not_measure(
    without_plotly: None,
) -> None:
    old = document("baseline.json")
    on_311 = RunDocument(
        environment=dataclasses.replace(
            old.environment, unavailable_backends={"interpreter": "needs 3.14+", "dask": "pip"}
        ),
        results=old.results,
    )
    page = render_html([on_311, old], ["py311", "older"])
    assert "<th>unavailable backends</th>" in page
    assert "<td>interpreter, dask</td>" in page
    assert f"<td>{MISSING}</td>" in page  # a file from before the field: nothing known


GARBAGE_SECTIONS = [
    pytest.param(
        {"scaling": "not a list", "suite": ["not", "an", "object"]},
        "scaling: expected a list, got a string",
        id="scaling-a-string",
    ),
    pytest.param(
        {"scaling": [1, None, {"points": "x"}, {"points": [{"workers": "2", "speedup": None}]}]},
        "scaling[0]: expected an object, got a number",
        id="sweeps-not-objects",
    ),
    pytest.param(
        {"scaling": [{"test": "t", "points": [{"workers": 2, "speedup": 1.5}]}]},
        "scaling[0]: missing key 'backend'",
        id="sweep-incomplete",
    ),
    pytest.param(
        {"suite": {"tests": [None, 3, {"worker": 3, "call_s": "x"}], "workers": "?"}},
        "suite.tests[0]: must not be null",
        id="suite-tests-garbage",
    ),
    pytest.param(
        {"suite": {"tests": [], "workers": "?"}},
        "suite.workers: expected a list, got a string",
        id="suite-workers-a-string",
    ),
    pytest.param(
        # (A NaN here is refused first, at its place: tests/test_cli_hostile_input.py.)
        {"suite": {"tests": [{"nodeid": "a", "call_s": 0.5}], "wall_s": True}},
        "suite.tests[0]: missing key 'worker'",
        id="suite-test-incomplete",
    ),
    pytest.param({"suite": {"wall_s": True}}, "suite.wall_s: expected a number, got a boolean",
                 id="suite-wall-a-bool"),
]  # fmt: skip


@pytest.mark.parametrize(("sections", "message"), GARBAGE_SECTIONS)
def test_malformed_optional_sections_are_rejected_when_loading_naming_the_file_and_key(
    tmp_path: Path, sections: dict[str, Any], message: str
) -> None:
    data = json.loads((DATA / "baseline.json").read_text())
    data.update(sections)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DocumentError) as excinfo:
        load_document(path)
    assert str(excinfo.value) == f"{path}: {message}"


def test_another_plugins_section_is_kept_but_not_drawn(without_plotly: None) -> None:
    base = load_document(DATA / "baseline.json")
    sections = {"other_plugin": {"scaling": "not ours", "marker": "PLUGIN-SECTION"}}
    page = render_html([RunDocument(base.environment, base.results, sections=sections)], ["x"])
    assert page.endswith("</html>\n")
    assert "PLUGIN-SECTION" not in page
    assert "Scaling sweeps" not in page
    assert "Suite timeline" not in page


def test_missing_fit_values_and_wall_time_are_shown_as_the_missing_mark(
    without_plotly: None,
) -> None:
    sweep = Sweep("t.py::test_x", "process", (SweepPoint(2, 1.5, 1.4, 1.6),), call_index=1)
    suite = SuiteSection(
        wall_s=float("nan"), workers=(WorkerTiming("main", 0.1, 0.0, 0.5, 0.0, 2),)
    )
    page = render_html([RunDocument(scaling=(sweep,), suite=suite)], ["x"])
    assert "<code>t.py::test_x (map #2)</code> [process]" in page
    assert f"<p>serial fraction {MISSING}, max speedup {MISSING}, fit R² {MISSING}</p>" in page
    assert f"wall time {MISSING} s</h3>" in page
    assert "<td>main</td><td>0.100</td><td>0.500</td><td>0.000</td><td>2</td>" in page
    assert "NaN" not in page
    assert "nan" not in page


def test_an_empty_run_still_renders(without_plotly: None) -> None:
    page = render_html([RunDocument()], ["empty"])
    assert "No measured workloads." in page


def test_render_html_needs_one_title_per_document() -> None:
    with pytest.raises(ValueError, match="one title per document"):
        render_html([RunDocument()], [])


def test_write_html_writes_the_page_atomically(tmp_path: Path, without_plotly: None) -> None:
    target = tmp_path / "deep" / "report.html"
    write_html([document("baseline.json")], ["base"], target)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


def dump_dom(page: Path, profile: Path) -> str:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install -y chromium")
def test_the_page_draws_its_charts_offline_in_headless_chromium(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    target = tmp_path / "report.html"
    documents = [document("sweep_and_suite.json"), document("regressed.json")]
    write_html(documents, ["sweep", "3.14t"], target)
    expected = chart_count(target.read_text(encoding="utf-8"))
    assert expected == 5  # 3 tests with a speedup in either run, 1 sweep, 1 timeline
    dom = dump_dom(target, tmp_path / "profile")
    # plotly marks every drawn chart div with js-plotly-plot and fills it with SVG layers.
    drawn = re.findall(r'<div class="chart js-plotly-plot" id="(chart-\d+)"', dom)
    assert sorted(drawn) == sorted(f"chart-{i}" for i in range(expected))
    assert dom.count('class="main-svg"') >= 2 * expected
    assert dom.count('class="point"') >= 8  # bars with data, not empty axes
    assert "errorbar" in dom


def test_the_ci_matrix_prediction_is_a_table_of_the_suite_escaped(without_plotly: None) -> None:
    from pytest_parallel_lab.document.suite import ShardPrediction

    shards = (
        ShardPrediction(1, 2, "load", 4.0, (4.0,), (6,)),
        ShardPrediction(2, 2, HOSTILE, 2.5, (2.5, 1.75), (3, 3)),
    )
    page = render_html([RunDocument(suite=SuiteSection(shards=shards))], ["ci"])
    assert "<h4>CI matrix prediction (split by duration, as pytest-split does)</h4>" in page
    table = page[page.index("<h4>CI matrix") :]
    assert "<td>2.500</td><td>2.500 1.750</td><td>3 3</td>" in table
    assert "<script>alert" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;&lt;b&gt;" in table
    # without shards, no such table
    assert "CI matrix" not in render_html([RunDocument(suite=SuiteSection())], ["plain"])
