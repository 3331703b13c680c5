"""Workloads measured both by hand and through the plugin by bench_marker_accuracy.py.

The same functions are the hand measurement's tasks and the marked tests' bodies. The
tests of the optional backends (subinterpreters on 3.14+, loky, dask) exist only where
the backend can run, so that every interpreter runs this file without errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import sys
import time

import pytest

TASKS = 8
SLEEP_S = 0.05
BUFFER = bytes(range(256)) * (8 * 1024 * 1024 // 256)


def cpu_work(_: object = None) -> int:
    total = 0
    for i in range(300_000):
        total += i * i % 7
    return total


def hash_work(_: object = None) -> str:
    return hashlib.sha256(BUFFER).hexdigest()


def sleep_work(_: object = None) -> None:
    time.sleep(SLEEP_S)


async def async_sleep_work(_: object = None) -> None:
    await asyncio.sleep(SLEEP_S)


@pytest.mark.parallel(backend="process", workers=2, tasks=TASKS, compare_results=False)
def test_cpu_process():
    cpu_work()


@pytest.mark.parallel(backend="thread", workers=2, tasks=TASKS, compare_results=False)
def test_hash_thread():
    hash_work()


@pytest.mark.parallel(backend="thread", workers=8, tasks=TASKS)
def test_sleep_thread():
    sleep_work()


@pytest.mark.parallel(backend="asyncio", workers=8, tasks=TASKS)
async def test_async_sleep_asyncio():
    await async_sleep_work()


def available(backend: str) -> bool:
    """Whether *backend* can run here: subinterpreters need 3.14+, loky and dask their
    package; the others always can."""
    if backend == "interpreter":
        return sys.version_info >= (3, 14) and bool(
            importlib.util.find_spec("concurrent.futures.interpreter")
        )
    if backend == "loky":
        return importlib.util.find_spec("loky") is not None
    if backend == "dask":
        return importlib.util.find_spec("distributed") is not None
    return True


if available("interpreter"):

    @pytest.mark.parallel(backend="interpreter", workers=2, tasks=TASKS, compare_results=False)
    def test_cpu_interpreter():
        cpu_work()


if available("loky"):

    @pytest.mark.parallel(backend="loky", workers=2, tasks=TASKS, compare_results=False)
    def test_cpu_loky():
        cpu_work()


if available("dask"):

    @pytest.mark.parallel(backend="dask", workers=2, tasks=TASKS, compare_results=False)
    def test_cpu_dask():
        cpu_work()
