"""The environment block, on builds this machine does not have (simulated).

Only CPython 3.11 with the GIL runs here; free-threaded builds (3.13t, 3.14t, 3.15t)
and 3.14's new default start method are simulated by patching what the module reads.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import sys
import sysconfig
from typing import Any

import pytest

from pytest_parallel_lab import environment
from pytest_parallel_lab.capacity import CpuCapacity
from pytest_parallel_lab.environment import (
    XdistRun,
    default_start_method,
    describe_environment,
    platform_default_start_method,
    usable_cpus,
)
from pytest_parallel_lab.vocabulary import Role


def simulate_build(
    monkeypatch: pytest.MonkeyPatch, *, free_threaded: bool, gil_on: bool | None
) -> None:
    """Make this interpreter look like another build (``gil_on=None``: before 3.13,
    when ``sys._is_gil_enabled`` did not exist)."""
    original = sysconfig.get_config_var

    def config_var(name: str) -> Any:
        return int(free_threaded) if name == "Py_GIL_DISABLED" else original(name)

    monkeypatch.setattr(sysconfig, "get_config_var", config_var)
    if gil_on is None:
        monkeypatch.delattr(sys, "_is_gil_enabled", raising=False)
    else:
        monkeypatch.setattr(sys, "_is_gil_enabled", lambda: gil_on, raising=False)


@pytest.mark.parametrize(
    ("free_threaded", "gil_on", "expected"),
    [
        pytest.param(False, None, (True, False), id="3.10-3.12-no-check-means-gil"),
        pytest.param(False, True, (True, False), id="3.13-default-build"),
        pytest.param(True, False, (False, True), id="free-threaded-build"),
        pytest.param(True, True, (True, True), id="free-threaded-build-with-PYTHON_GIL=1"),
    ],
)
def test_the_gil_state_and_the_build_are_described_separately(
    monkeypatch: pytest.MonkeyPatch,
    free_threaded: bool,
    gil_on: bool | None,
    expected: tuple[bool, bool],
) -> None:
    simulate_build(monkeypatch, free_threaded=free_threaded, gil_on=gil_on)
    described = describe_environment(pytest_version=pytest.__version__, capacity=FOUR)
    assert (described.gil_enabled, described.free_threaded_build) == expected


FOUR = CpuCapacity(online=4, cpus=4.0)


def test_the_default_start_method_is_the_platforms_first(monkeypatch: pytest.MonkeyPatch) -> None:
    # Python 3.14 made forkserver the default on Linux: it comes first in the list.
    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: None)
    monkeypatch.setattr(
        multiprocessing, "get_all_start_methods", lambda: ["forkserver", "spawn", "fork"]
    )
    assert describe_environment(pytest_version="9", capacity=FOUR).start_method == "forkserver"


def test_without_multiprocessing_imported_the_default_is_the_one_multiprocessing_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Nothing imported multiprocessing, so nothing chose a method: the platform default,
    # worked out without the import, is the first method multiprocessing itself lists.
    expected = multiprocessing.get_all_start_methods()[0]
    monkeypatch.delitem(sys.modules, "multiprocessing")
    assert default_start_method() == expected
    assert "multiprocessing" not in sys.modules


def test_a_start_method_chosen_in_the_process_is_the_one_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(multiprocessing, "get_start_method", lambda allow_none=False: "spawn")
    assert describe_environment(pytest_version="9", capacity=FOUR).start_method == "spawn"


@pytest.mark.parametrize(
    ("platform_id", "version", "expected"),
    [
        ("linux", (3, 10), "fork"),
        ("linux", (3, 13), "fork"),
        ("linux", (3, 14), "forkserver"),
        ("freebsd14", (3, 15), "forkserver"),
        ("darwin", (3, 14), "spawn"),
        ("win32", (3, 12), "spawn"),
    ],
)
def test_the_platform_default_start_method_follows_cpython(
    platform_id: str, version: tuple[int, int], expected: str
) -> None:
    assert platform_default_start_method(platform_id, version) == expected


def test_an_explicit_start_method_and_label_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOX_ENV_NAME", "py314t-serial-spawn")
    described = describe_environment(
        pytest_version="9", capacity=FOUR, start_method="spawn", label="nightly"
    )
    assert (described.start_method, described.label, described.tox_env) == (
        "spawn",
        "nightly",
        "py314t-serial-spawn",
    )


def test_a_run_on_a_free_threaded_build_says_so_in_the_report_and_the_json(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulate_build(monkeypatch, free_threaded=True, gil_on=False)
    assert not environment.gil_enabled()
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="thread", tasks=2, rounds=2)
        def test_x():
            sum(range(1000))
        """
    )
    result = lab.runpytest("--parallel-report", "--parallel-report-json=run.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*GIL disabled (free-threaded)*"])
    described = json.loads((lab.path / "run.json").read_text())["environment"]
    assert (described["gil_enabled"], described["free_threaded_build"]) == (False, True)


def test_the_cpus_reported_are_the_capacity_given_not_the_machine_count() -> None:
    quota = CpuCapacity(online=8, cpus=2.5, limit="cgroup quota 250000/100000")
    described = describe_environment(pytest_version="9", capacity=quota, xdist_workers=2)
    assert (described.usable_cpus, described.xdist_workers) == (3, 2)
    assert (described.cpu_count, described.cpu_capacity) == (8, 2.5)
    assert described.cpu_limit == "cgroup quota 250000/100000"
    assert described.pytest_version == "9"
    assert described.python_version == platform.python_version()


def test_describing_the_environment_needs_the_capacity() -> None:
    with pytest.raises(TypeError, match="capacity"):
        describe_environment(pytest_version="9")  # type: ignore[call-arg]


def test_usable_cpus_is_a_positive_count_no_larger_than_the_machine() -> None:
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("workerinput", "numprocesses", "dist", "tx", "expected"),
    [
        pytest.param(None, None, "no", (), XdistRun(Role.PLAIN, 0, None, "no"), id="plain-run"),
        pytest.param(None, None, None, (), XdistRun(), id="plain-run-without-xdist-options"),
        pytest.param(
            None, 2, "load", (), XdistRun(Role.CONTROLLER, 2, None, "load"), id="controller-n-2"
        ),
        pytest.param(
            None,
            4,
            "loadscope",
            (),
            XdistRun(Role.CONTROLLER, 4, None, "loadscope"),
            id="controller-keeps-the-dist-mode",
        ),
        pytest.param(
            {"workerid": "gw1", "workercount": 2},
            2,
            "load",
            (),
            XdistRun(Role.WORKER, 2, "gw1", "load"),
            id="worker-from-workerinput",
        ),
        pytest.param(
            {"workerid": "gw0"},
            None,
            None,
            (),
            XdistRun(Role.WORKER, 1, "gw0", "load"),
            id="worker-without-count-or-dist",
        ),
        pytest.param(None, 0, "no", (), XdistRun(), id="n-0-is-a-plain-run"),
        pytest.param(None, 0, "load", (), XdistRun(), id="n-0-with-a-dist-mode-is-a-plain-run"),
        pytest.param(
            None,
            None,
            "load",
            ("3*popen",),
            XdistRun(Role.CONTROLLER, 3, None, "load"),
            id="tx-with-a-count",
        ),
        pytest.param(
            None,
            None,
            "load",
            ("ssh=host", "2*popen"),
            XdistRun(Role.CONTROLLER, 3, None, "load"),
            id="tx-specs-add-up",
        ),
    ],
)
def test_the_xdist_role_is_worked_out_from_xdists_settings(
    workerinput: dict[str, Any] | None,
    numprocesses: Any,
    dist: Any,
    tx: tuple[str, ...],
    expected: XdistRun,
) -> None:
    assert XdistRun.from_settings(workerinput, numprocesses, dist, tx) == expected


def test_the_default_xdist_run_is_a_plain_run() -> None:
    assert XdistRun() == XdistRun(role=Role.PLAIN, workers=0, worker_id=None, dist="no")
    assert XdistRun.from_settings(None, None, "no").role is Role.PLAIN


def test_the_platform_name_is_what_the_platform_module_says() -> None:
    assert environment.platform_name() == platform.platform()


def test_without_glibc_the_platform_name_comes_from_the_platform_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_glibc(name: str) -> str:
        raise ValueError(name)

    monkeypatch.setattr(os, "confstr", no_glibc, raising=False)
    monkeypatch.setattr(platform, "platform", lambda: "Linux-musl")
    assert environment.platform_name() == "Linux-musl"
