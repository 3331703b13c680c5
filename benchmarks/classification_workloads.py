"""One workload of each class, for bench_classification.py (run by pytest there).

Each test is measured under thread, process and asyncio; the expected class is in
the test's name.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

BUFFER = bytes(range(256)) * (16 * 1024 * 1024 // 256)
BACKENDS = ["thread", "process", "asyncio"]


@pytest.mark.parallel(backend=BACKENDS, workers=2, tasks=8)
def test_cpu_bound():
    total = 0
    for i in range(250_000):
        total += i * i % 7


@pytest.mark.parallel(backend=BACKENDS, workers=2, tasks=8)
def test_gil_releasing():
    hashlib.sha256(BUFFER).digest()


@pytest.mark.parallel(backend=BACKENDS, workers=8, tasks=8)
def test_io_bound():
    time.sleep(0.03)


@pytest.mark.parallel(backend=BACKENDS, workers=8, tasks=8)
async def test_io_bound_async():
    await asyncio.sleep(0.03)


@pytest.mark.parallel(backend=BACKENDS, workers=2, tasks=64)
def test_overhead_bound():
    return 3 * 3


@pytest.mark.parallel(backend=["asyncio"], workers=8, tasks=8)
async def test_blocking_in_loop():
    time.sleep(0.03)  # a blocking call inside async code
