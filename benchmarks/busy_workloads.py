"""The four workloads of bench_busy_machine.py (run by pytest there), one per answer.

The right recommendation is in ``EXPECTED`` in the benchmark: processes for pure-Python
CPU work, threads for hashlib (it releases the GIL) and for blocking sleeps, asyncio for
``asyncio.sleep``. CPU work takes ``workers="auto"``: the CPUs the machine really gives.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

#: 8 MiB: hashlib releases the GIL for inputs over 2 KiB.
BUFFER = bytes(range(256)) * (8 * 1024 * 1024 // 256)
BACKENDS = ["thread", "process", "asyncio"]


@pytest.mark.parallel(backend=BACKENDS, tasks=8)
def test_pure_python_cpu():
    total = 0
    for i in range(250_000):
        total += i * i % 7


@pytest.mark.parallel(backend=BACKENDS, tasks=8)
def test_hashlib():
    hashlib.sha256(BUFFER).digest()


@pytest.mark.parallel(backend=BACKENDS, workers=8, tasks=8)
def test_sleep():
    time.sleep(0.03)


@pytest.mark.parallel(backend=BACKENDS, workers=8, tasks=8)
async def test_asyncio_sleep():
    await asyncio.sleep(0.03)
