"""Free-threaded CPython by simulation: no 3.13t/3.14t/3.15t build is installed here, so
``sys._is_gil_enabled``, sysconfig's ``Py_GIL_DISABLED`` and ``PYTHON_GIL`` are patched,
and a module that warns as CPython does and turns the (simulated) GIL on stands for a C
extension without free-threading support."""

from __future__ import annotations

import json
import sys

import pytest
from test_diagnosis import FREE_THREADED, FREE_THREADED_LOOP, GIL, measured

from pytest_parallel_lab.environment import GilWatch, gil_forced, gil_reenabling_module
from pytest_parallel_lab.marked.recommend import recommend

#: What CPython 3.13+ says when an extension turns the GIL on at import.
CPYTHON_WARNING = (
    "The global interpreter lock (GIL) has been enabled to load module '_fast', which has "
    "not declared that it can run safely without the GIL. To override this behavior and "
    "keep the GIL disabled (at your own risk), run with PYTHON_GIL=0 or -Xgil=0."
)


def test_the_module_that_turned_the_gil_on_is_read_from_cpythons_warning() -> None:
    assert gil_reenabling_module(CPYTHON_WARNING) == "_fast"
    assert gil_reenabling_module("some other RuntimeWarning") is None


def test_how_the_user_set_the_gil_is_read_from_the_x_option_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PYTHON_GIL", raising=False)
    monkeypatch.setattr(sys, "_xoptions", {})
    assert gil_forced() is None
    monkeypatch.setenv("PYTHON_GIL", "1")
    assert gil_forced() == "PYTHON_GIL=1"
    monkeypatch.setattr(sys, "_xoptions", {"gil": "0"})
    assert gil_forced() == "-X gil=0"


@pytest.mark.parametrize(
    ("watch", "enabled_now", "expected"),
    [
        pytest.param(GilWatch(False, True), True, None, id="default-build-says-nothing"),
        pytest.param(GilWatch(True, False), False, None, id="free-threaded-gil-off-throughout"),
        pytest.param(
            GilWatch(True, True, "PYTHON_GIL=1"),
            True,
            "the GIL is enabled by PYTHON_GIL=1 on this free-threaded build",
            id="python-gil-1",
        ),
        pytest.param(
            GilWatch(True, False),
            True,
            "the GIL was re-enabled at runtime to load '_fast'",
            id="an-extension-turned-it-on",
        ),
    ],
)
def test_a_free_threaded_run_is_told_when_its_gil_is_on(
    watch: GilWatch, enabled_now: bool, expected: str | None
) -> None:
    words = watch.describe(enabled_now, ["_fast"])
    if expected is None:
        assert words is None
    else:
        assert words is not None
        assert words.startswith(expected)
    assert watch.reenabled(enabled_now) is (expected is not None and "re-enabled" in expected)


def test_with_the_gil_off_threads_that_scale_like_processes_are_recommended_as_cheaper() -> None:
    rows = [*FREE_THREADED_LOOP, measured("interpreter", (3.6, 3.4, 3.8), backend_cpu=3.8)]
    recommendation = recommend(rows, FREE_THREADED)
    assert recommendation.classification == "cpu-bound"
    assert recommendation.backend == "thread"
    assert "GIL disabled" in recommendation.reason


def test_with_the_gil_on_the_same_cpu_work_goes_to_the_cheapest_isolated_model() -> None:
    rows = [
        measured("thread", (1.0, 0.9, 1.1), backend_cpu=1.0),
        measured("process", (3.6, 3.4, 3.8), backend_cpu=3.8, dispatch_s=3e-4),
        measured("interpreter", (3.6, 3.4, 3.8), backend_cpu=3.8),
    ]
    recommendation = recommend(rows, GIL)
    assert recommendation.classification == "cpu-bound"
    assert recommendation.backend == "interpreter"


#: The inner run's interpreter made to look free-threaded, with its GIL off until
#: ``fast_ext`` is imported (as a C extension without Py_mod_gil would turn it on).
SIMULATED_BUILD = """
import os
import sys
import sysconfig

_original = sysconfig.get_config_var
sysconfig.get_config_var = lambda name: 1 if name == "Py_GIL_DISABLED" else _original(name)
GIL = {"on": os.environ.get("PYTHON_GIL") == "1"}
sys._is_gil_enabled = lambda: GIL["on"]
sys.simulated_gil = GIL
"""

FAST_EXT = """
import sys
import warnings

if not sys.simulated_gil["on"]:
    sys.simulated_gil["on"] = True
    warnings.warn(RuntimeWarning(
        "The global interpreter lock (GIL) has been enabled to load module 'fast_ext', which "
        "has not declared that it can run safely without the GIL. To override this behavior "
        "and keep the GIL disabled (at your own risk), run with PYTHON_GIL=0 or -Xgil=0."
    ))
"""

WORKLOADS = """
import pytest

@pytest.mark.parallel(backend="thread", workers=2, tasks=2, rounds=2)
def test_before():
    return sum(range(1000))

@pytest.mark.parallel(backend="thread", workers=2, tasks=2, rounds=2)
def test_imports_the_extension():
    import fast_ext
    return sum(range(1000))
"""


def test_an_extension_that_turns_the_gil_on_at_import_is_reported_with_its_module(
    lab: pytest.Pytester,
) -> None:
    lab.makeconftest(SIMULATED_BUILD)
    lab.makepyfile(fast_ext=FAST_EXT, test_workloads=WORKLOADS)
    result = lab.runpytest_subprocess("--parallel-report-json=run.json", "-W", "default")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= GIL re-enabled =*",
            "the GIL was re-enabled at runtime to load 'fast_ext': an extension module*",
        ]
    )
    rows = json.loads((lab.path / "run.json").read_text())["results"]
    notes = {r["test"].split("::")[-1]: r["notes"] for r in rows}
    assert not any("GIL" in note for note in notes["test_before"])
    assert (
        "GIL re-enabled during this test (an import): threads ran under it from then on"
        in (notes["test_imports_the_extension"])
    )


def test_python_gil_1_on_a_free_threaded_build_is_reported(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_GIL", "1")
    lab.makeconftest(SIMULATED_BUILD)
    lab.makepyfile(
        test_workloads=WORKLOADS.split("@pytest.mark.parallel")[0] + "def test_x():\n    pass\n"
    )
    result = lab.runpytest_subprocess("--parallel-report")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*= GIL enabled =*", "the GIL is enabled by PYTHON_GIL=1 on this free-threaded build*"]
    )
    result.stdout.fnmatch_lines(["*GIL enabled on a free-threaded build*"])
