"""``async def`` tests under every backend, with and without the async test plugins."""

from __future__ import annotations

import json
from typing import Any

import pytest

#: A body that records, per executing thread, how many copies of it were in flight at once.
CONCURRENCY_PROBE = """
import asyncio
import os
import threading

import pytest

IN_FLIGHT = {}
MOST = {}
LOCK = threading.Lock()


async def probe():
    name = threading.current_thread().name
    with LOCK:
        IN_FLIGHT[name] = IN_FLIGHT.get(name, 0) + 1
        MOST[name] = max(MOST.get(name, 0), IN_FLIGHT[name])
    await asyncio.sleep(0.01)
    with LOCK:
        IN_FLIGHT[name] -= 1
    asyncio.get_running_loop()  # a coroutine always has a running loop
    return 1
"""


def rows_of(pytester: pytest.Pytester, name: str = "out.json") -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads((pytester.path / name).read_text())
    return list(data["results"])


def test_asyncio_gathers_the_coroutines_and_serial_awaits_them_one_by_one(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        CONCURRENCY_PROBE
        + """

@pytest.mark.parallel(backend="asyncio", workers=2, tasks=2, rounds=2)
async def test_x():
    return await probe()


def test_check():
    assert MOST == {"pytest-parallel-lab-serial": 1, "pytest-parallel-lab-asyncio": 2}
"""
    )
    lab.runpytest("--parallel-report-json=out.json").assert_outcomes(passed=2)
    (row,) = rows_of(lab)
    assert row["coroutine"] is True
    assert "sync body blocks the event loop" not in row["notes"]


def test_the_thread_backend_runs_each_coroutine_in_a_worker_event_loop(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        CONCURRENCY_PROBE
        + """

@pytest.mark.parallel(backend="thread", workers=2, tasks=2, rounds=2)
async def test_x():
    return await probe()


def test_check():
    pooled = {n: m for n, m in MOST.items() if n.startswith("pytest-parallel-lab-thread")}
    # each worker thread drives its own loop, one coroutine at a time
    assert pooled
    assert set(pooled.values()) == {1}
"""
    )
    lab.runpytest().assert_outcomes(passed=2)


@pytest.mark.parametrize("backend", ["process", "multiprocessing", "serial"])
def test_other_backends_drive_coroutines_too(lab: pytest.Pytester, backend: str) -> None:
    lab.makepyfile(
        f"""
        import asyncio

        import pytest

        @pytest.mark.parallel(backend={backend!r}, tasks=2, rounds=2)
        async def test_x():
            await asyncio.sleep(0)
            asyncio.get_running_loop()
            return "done"
        """
    )
    lab.runpytest("--parallel-report-json=out.json").assert_outcomes(passed=1)
    (row,) = rows_of(lab)
    assert row["coroutine"] is True
    assert row["outcome"] == "passed"


@pytest.mark.parametrize(
    "backend",
    [
        "serial",
        "thread",
        "asyncio",
        pytest.param("process"),
        pytest.param("multiprocessing"),
    ],
)
def test_a_failing_coroutine_fails_the_item_listing_its_error(
    lab: pytest.Pytester, backend: str
) -> None:
    lab.makepyfile(
        f"""
        import asyncio

        import pytest

        @pytest.mark.parallel(backend={backend!r}, tasks=2, rounds=2)
        async def test_failing():
            await asyncio.sleep(0)
            raise RuntimeError("async boom")

        def test_next():
            pass
        """
    )
    result = lab.runpytest("--parallel-report-json=out.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*test_failing[[]{backend}[]]: 2 task(s) failed under the {backend} backend*",
            "*- RuntimeError: async boom*",
            "*tasks: 0, 1*",
        ]
    )
    (row,) = rows_of(lab)
    assert row["outcome"] == "failed"
    assert "async boom" in row["error"]


def test_a_sync_body_under_asyncio_is_noted_as_blocking_the_event_loop(
    lab: pytest.Pytester,
) -> None:
    lab.makepyfile(
        """
        import pytest

        @pytest.mark.parallel(backend="asyncio", tasks=2, rounds=2)
        def test_sync():
            return 1
        """
    )
    result = lab.runpytest("-v", "--parallel-report", "--parallel-report-json=out.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*::test_sync*asyncio*sync body blocks the event loop*"])
    (row,) = rows_of(lab)
    assert "sync body blocks the event loop" in row["notes"]
    assert row["coroutine"] is False


@pytest.mark.parametrize(
    ("mode", "marker"),
    [
        pytest.param("auto", "", id="auto"),
        pytest.param("strict", "@pytest.mark.asyncio", id="strict"),
    ],
)
def test_marked_async_tests_work_with_pytest_asyncio(
    lab: pytest.Pytester, mode: str, marker: str
) -> None:
    lab.makepyfile(
        f"""
        import asyncio

        import pytest

        CALLS = []

        @pytest.fixture
        def value():
            return 5

        {marker}
        @pytest.mark.parallel(backend=["serial", "thread", "asyncio", "process"], tasks=2, rounds=2)
        async def test_x(value):
            await asyncio.sleep(0)
            CALLS.append(value)
            return value * 2

        {marker}
        async def test_plain_async_still_works():
            await asyncio.sleep(0)
        """
    )
    result = lab.runpytest(
        "-p", "asyncio", f"--asyncio-mode={mode}", "--parallel-report-json=out.json"
    )
    result.assert_outcomes(passed=5)
    rows = rows_of(lab)
    assert [r["backend"] for r in rows] == ["serial", "thread", "asyncio", "process"]
    assert all(r["coroutine"] for r in rows)
    assert all(r["outcome"] == "passed" for r in rows)


def test_marked_async_tests_work_with_the_anyio_plugin(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import anyio
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.mark.anyio
        @pytest.mark.parallel(backend=["thread", "asyncio"], tasks=2, rounds=2)
        async def test_x():
            await anyio.sleep(0)
            return 3

        @pytest.mark.anyio
        async def test_plain_anyio_still_works():
            await anyio.sleep(0)
        """
    )
    result = lab.runpytest("--parallel-report-json=out.json")
    result.assert_outcomes(passed=3)
    rows = rows_of(lab)
    assert [r["backend"] for r in rows] == ["thread", "asyncio"]
    assert all(r["coroutine"] for r in rows)


def test_parallel_map_drives_an_async_function(lab: pytest.Pytester) -> None:
    lab.makepyfile(
        """
        import asyncio

        import pytest

        async def double(x):
            await asyncio.sleep(0)
            return 2 * x

        @pytest.mark.parallel(backend=["asyncio", "thread"], rounds=2)
        def test_map(parallel_map):
            assert parallel_map(double, [1, 2, 3]) == [2, 4, 6]

        def test_unmarked(parallel_map):
            assert parallel_map(double, [1, 2]) == [2, 4]
        """
    )
    result = lab.runpytest("--parallel-report-json=out.json", "-W", "ignore::pytest.PytestWarning")
    result.assert_outcomes(passed=3)
    assert [(r["kind"], r["coroutine"]) for r in rows_of(lab)] == [("map", True), ("map", True)]
