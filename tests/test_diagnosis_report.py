"""Rendering of the ``recommendations`` and ``scaling`` sections."""

from __future__ import annotations

from typing import Any

from pytest_parallel_lab.output.sections import render_recommendations, render_scaling

RECOMMENDATIONS: list[dict[str, Any]] = [
    {
        "test": "tests/test_cpu.py::test_loop",
        "classification": "cpu-bound",
        "backend": "process",
        "reason": "process 1.9x vs thread 1.0x: GIL-bound CPU work (CPU 99% of wall)",
    },
    {
        "test": "tests/test_map.py::test_squares",
        "classification": "overhead-bound",
        "backend": "serial",
        "reason": "no backend beats serial: batch tasks into chunks of 4000 for thread",
        "call_index": 1,
    },
]


def sweep(*, capped: bool, fraction: float | None = 0.1, ceiling: float | None = 10.0) -> Any:
    return {
        "test": "tests/test_cpu.py::test_loop",
        "backend": "process",
        "points": [
            {"workers": 1, "speedup": 1.0, "ci_low": 0.98, "ci_high": 1.02},
            {"workers": 2, "speedup": 1.82, "ci_low": 1.75, "ci_high": 1.9},
            {"workers": 8, "speedup": 2.0, "ci_low": 1.9, "ci_high": 2.1},
        ],
        "serial_fraction": fraction,
        "max_speedup": ceiling,
        "fit_r2": None if fraction is None else 0.987,
        "capped_by_cpus": capped,
        "usable_cpus": 2,
    }


def test_recommendations_render_as_a_titled_table_of_test_class_use_reason() -> None:
    text = render_recommendations(RECOMMENDATIONS)
    lines = text.splitlines()
    assert lines[0] == "recommendations"
    assert lines[1].split() == ["test", "class", "use", "reason"]
    assert "tests/test_cpu.py::test_loop" in text
    assert "process 1.9x vs thread 1.0x: GIL-bound CPU work (CPU 99% of wall)" in text
    assert "tests/test_map.py::test_squares (map #2)" in text


def test_no_recommendations_render_as_nothing() -> None:
    assert render_recommendations([]) == ""


def test_a_sweep_renders_its_points_with_intervals_and_the_fit() -> None:
    text = render_scaling([sweep(capped=False)])
    assert text.splitlines()[0] == "scaling: tests/test_cpu.py::test_loop [process]"
    assert "1.82x" in text
    assert "[1.75-1.90]" in text
    assert "Amdahl fit: serial fraction 0.100, max speedup 10.0x, r² 0.987" in text
    assert "capped" not in text


def test_a_capped_sweep_says_the_hardware_is_the_ceiling() -> None:
    text = render_scaling([sweep(capped=True)])
    assert "capped by the hardware" in text
    assert "the 2 usable CPUs" in text
    assert "not a plateau" in text
    eight = next(line for line in text.splitlines() if line.lstrip().startswith("8 "))
    assert "not fitted" in eight


def test_an_unbounded_or_missing_fit_is_said_in_words() -> None:
    assert "max speedup unbounded" in render_scaling([sweep(capped=False, ceiling=None)])
    assert "not enough worker counts" in render_scaling([sweep(capped=True, fraction=None)])


def test_several_sweeps_are_separated_by_a_blank_line() -> None:
    text = render_scaling([sweep(capped=False), sweep(capped=False)])
    assert text.count("scaling: ") == 2
    assert "\n\n" in text
    assert render_scaling([]) == ""


def test_damaged_sections_are_shown_as_far_as_they_make_sense() -> None:
    damaged: Any = [
        "not an entry",
        {"test": "t.py::test_x", "points": [{"workers": "four", "speedup": "fast"}, 7],
         "serial_fraction": "small", "max_speedup": "big", "capped_by_cpus": "yes",
         "usable_cpus": None},
    ]  # fmt: skip
    text = render_scaling(damaged)
    assert "scaling: t.py::test_x" in text
    assert "-x" in text
    assert "not enough worker counts" in text
    assert "capped" not in text
    garbage: Any = ["garbage", 3]
    assert render_recommendations(garbage) == ""
    assert render_recommendations(damaged).startswith("recommendations")
