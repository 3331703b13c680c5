"""Rendering of the ``recommendations`` and ``scaling`` sections, and their strict loading."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from pytest_parallel_lab.document import (
    DocumentError,
    Recommendation,
    RunDocument,
    Sweep,
    SweepPoint,
    document_from_json,
    load_document,
)
from pytest_parallel_lab.output.text import render_recommendations, render_scaling
from pytest_parallel_lab.vocabulary import Classification

RECOMMENDATIONS = (
    Recommendation(
        test="tests/test_cpu.py::test_loop",
        classification=Classification.CPU_BOUND,
        backend="process",
        reason="process 1.9x vs thread 1.0x: GIL-bound CPU work (CPU 99% of wall)",
    ),
    Recommendation(
        test="tests/test_map.py::test_squares",
        classification=Classification.OVERHEAD_BOUND,
        backend="serial",
        reason="no backend beats serial: batch tasks into chunks of 4000 for thread",
        call_index=1,
    ),
)


def sweep(*, capped: bool, fraction: float | None = 0.1, ceiling: float | None = 10.0) -> Sweep:
    return Sweep(
        test="tests/test_cpu.py::test_loop",
        backend="process",
        points=(
            SweepPoint(workers=1, speedup=1.0, ci_low=0.98, ci_high=1.02),
            SweepPoint(workers=2, speedup=1.82, ci_low=1.75, ci_high=1.9),
            SweepPoint(workers=8, speedup=2.0, ci_low=1.9, ci_high=2.1),
        ),
        serial_fraction=fraction,
        max_speedup=ceiling,
        fit_r2=None if fraction is None else 0.987,
        capped_by_cpus=capped,
        usable_cpus=2,
    )


def test_recommendations_render_as_a_titled_table_of_test_class_use_reason() -> None:
    text = render_recommendations(RECOMMENDATIONS)
    lines = text.splitlines()
    assert lines[0] == "recommendations (choosing the right tool)"
    assert lines[1].split() == ["test", "class", "use", "why"]
    row = next(line for line in lines if line.startswith("test_loop "))
    assert row.split()[1:3] == ["cpu-bound", "process"]
    assert "process 1.9x vs thread 1.0x: GIL-bound CPU work" in " ".join(text.split())
    mapped = next(line for line in lines if "test_squares" in line)
    assert mapped.startswith("test_squares (map #2) ")
    assert "overhead-bound" in mapped


def test_verbose_recommendations_name_the_whole_test_and_reason() -> None:
    text = render_recommendations(RECOMMENDATIONS, width=200, verbose=1)
    assert any(line.startswith("tests/test_cpu.py::test_loop ") for line in text.splitlines())


def test_no_recommendations_render_as_nothing() -> None:
    assert render_recommendations(()) == ""


def test_a_sweep_renders_its_points_with_intervals_and_the_fit() -> None:
    text = render_scaling([sweep(capped=False)])
    assert text.splitlines()[0] == "scaling: test_loop [process]"
    two = next(line for line in text.splitlines() if line.lstrip().startswith("2 "))
    assert two.split() == ["2", "1.82x", "[1.75-1.90]"]
    assert "Amdahl fit: serial fraction 0.100, max speedup 10.0x, r² 0.987" in text
    assert "capped" not in text
    assert "not fitted" not in text


def test_a_sweep_of_a_map_call_names_the_call() -> None:
    mapped = Sweep("t.py::test_m", "thread", (SweepPoint(2, 1.5, 1.4, 1.6),), call_index=0)
    assert render_scaling([mapped]).splitlines()[0] == "scaling: test_m (map #1) [thread]"


def test_a_capped_sweep_says_the_hardware_is_the_ceiling() -> None:
    text = render_scaling([sweep(capped=True)])
    assert "capped by the hardware" in text
    assert "the 2 usable CPUs" in text
    assert "not a plateau" in text
    eight = next(line for line in text.splitlines() if line.lstrip().startswith("8 "))
    assert "not fitted" in eight
    two = next(line for line in text.splitlines() if line.lstrip().startswith("2 "))
    assert "not fitted" not in two


@pytest.mark.parametrize("ceiling", [None, math.inf], ids=["none", "infinite"])
def test_an_unbounded_fit_is_said_in_words(ceiling: float | None) -> None:
    assert "max speedup unbounded" in render_scaling([sweep(capped=False, ceiling=ceiling)])


def test_a_missing_fit_is_said_in_words() -> None:
    text = render_scaling([sweep(capped=True, fraction=None)])
    assert "Amdahl fit: not enough worker counts within the usable CPUs" in text
    assert "serial fraction" not in text


def test_several_sweeps_are_separated_by_a_blank_line() -> None:
    text = render_scaling([sweep(capped=False), sweep(capped=False)])
    assert text.count("scaling: ") == 2
    assert "\n\nscaling: " in text
    assert render_scaling([]) == ""


def test_the_sections_rendered_from_a_loaded_document_match_the_records() -> None:
    document = RunDocument(recommendations=RECOMMENDATIONS, scaling=(sweep(capped=True),))
    loaded = document_from_json(json.loads(json.dumps(document.to_json_dict())))
    assert render_recommendations(loaded.recommendations) == render_recommendations(RECOMMENDATIONS)
    assert render_scaling(loaded.scaling) == render_scaling([sweep(capped=True)])


GOOD_RECOMMENDATION: dict[str, Any] = {
    "test": "t.py::test_x",
    "classification": "cpu-bound",
    "backend": "process",
    "reason": "r",
}
GOOD_POINT: dict[str, Any] = {"workers": 2, "speedup": 1.5, "ci_low": 1.4, "ci_high": 1.6}
GOOD_SWEEP: dict[str, Any] = {"test": "t.py::test_x", "backend": "process", "points": [GOOD_POINT]}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        pytest.param(
            {"recommendations": ["not an entry"]},
            "recommendations[0]: expected an object, got a string",
            id="recommendation-a-string",
        ),
        pytest.param(
            {"recommendations": [GOOD_RECOMMENDATION, 3]},
            "recommendations[1]: expected an object, got a number",
            id="recommendation-a-number",
        ),
        pytest.param(
            {"recommendations": [{**GOOD_RECOMMENDATION, "classification": "speedy"}]},
            "recommendations[0].classification: expected one of 'cpu-bound', 'gil-releasing', "
            "'io-bound', 'overhead-bound', 'blocking-in-loop', 'inconclusive', got 'speedy'",
            id="recommendation-unknown-class",
        ),
        pytest.param(
            {"recommendations": [{**GOOD_RECOMMENDATION, "call_index": "1"}]},
            "recommendations[0].call_index: expected an integer, got a string",
            id="recommendation-call-a-string",
        ),
        pytest.param(
            {"scaling": [{"test": "t.py::test_x", "points": []}]},
            "scaling[0]: missing key 'backend'",
            id="sweep-without-backend",
        ),
        pytest.param(
            {"scaling": [{**GOOD_SWEEP, "points": [{"workers": "four", "speedup": "fast"}, 7]}]},
            "scaling[0].points[0].workers: expected an integer, got a string",
            id="point-workers-a-string",
        ),
        pytest.param(
            {"scaling": [{**GOOD_SWEEP, "points": [GOOD_POINT, 7]}]},
            "scaling[0].points[1]: expected an object, got a number",
            id="point-a-number",
        ),
        pytest.param(
            {"scaling": [{**GOOD_SWEEP, "points": [{**GOOD_POINT, "speedup": "fast"}]}]},
            "scaling[0].points[0].speedup: expected a number, got a string",
            id="point-speedup-a-string",
        ),
        pytest.param(
            {"scaling": [{**GOOD_SWEEP, "points": [{"workers": 2, "speedup": 1.5}]}]},
            "scaling[0].points[0]: missing key 'ci_low'",
            id="point-without-interval",
        ),
        pytest.param(
            {"scaling": [{**GOOD_SWEEP, "serial_fraction": "small"}]},
            "scaling[0].serial_fraction: expected a number, got a string",
            id="fraction-a-string",
        ),
        pytest.param(
            {"scaling": [{**GOOD_SWEEP, "max_speedup": "big"}]},
            "scaling[0].max_speedup: expected a number, got a string",
            id="ceiling-a-string",
        ),
        pytest.param(
            {"scaling": [{**GOOD_SWEEP, "capped_by_cpus": "yes"}]},
            "scaling[0].capped_by_cpus: expected true or false, got a string",
            id="capped-a-string",
        ),
        pytest.param(
            {"scaling": [{**GOOD_SWEEP, "usable_cpus": None}]},
            "scaling[0].usable_cpus: must not be null",
            id="cpus-null",
        ),
        pytest.param(
            {"scaling": ["garbage", 3]},
            "scaling[0]: expected an object, got a string",
            id="sweep-a-string",
        ),
    ],
)
def test_a_damaged_section_is_rejected_by_the_loader_naming_the_file_and_key(
    tmp_path: Path, section: dict[str, Any], message: str
) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"schema_version": 1, "results": [], **section}))
    with pytest.raises(DocumentError) as excinfo:
        load_document(path)
    assert str(excinfo.value) == f"{path}: {message}"


def test_an_undamaged_section_beside_the_damaged_examples_loads() -> None:
    data = {
        "schema_version": 1,
        "results": [],
        "recommendations": [GOOD_RECOMMENDATION],
        "scaling": [GOOD_SWEEP],
    }
    document = document_from_json(data, "run.json")
    assert document.recommendations[0].classification is Classification.CPU_BOUND
    assert document.scaling[0].points == (SweepPoint(2, 1.5, 1.4, 1.6),)
