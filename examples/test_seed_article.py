"""The three programs of "A Beginner's Guide to Running Python Code in Parallel", as marked tests.

Each keeps the article's function and its way of running it (``Pool.map``,
``executor.map``, ``asyncio.gather``); ``parallel_map`` runs the same map serially and
under the backend and reports the speedup. The article's lists are tiny on purpose:
the report shows that for five squares, starting processes costs far more than it
saves ("Starting processes has overhead, which can be costly for small tasks").
"""

from __future__ import annotations

import asyncio

import pytest

#: The article sleeps 1 s per URL; 0.2 s keeps the example quick and the ratio the same.
NETWORK_DELAY_S = 0.2


def square(x: int) -> int:
    return x * x


def cube(x: int) -> int:
    return x**3


async def fetch_data(url: str) -> str:
    await asyncio.sleep(NETWORK_DELAY_S)  # simulating network delay
    return f"Data from {url}"


@pytest.mark.parallel(backend="multiprocessing", workers=4)
def test_square_with_multiprocessing_pool(parallel_map):
    # with Pool(4) as p: results = p.map(square, [1, 2, 3, 4, 5])
    assert parallel_map(square, [1, 2, 3, 4, 5]) == [1, 4, 9, 16, 25]


@pytest.mark.parallel(backend="process", workers=4)
def test_cube_with_process_pool_executor(parallel_map):
    # with ProcessPoolExecutor(max_workers=4) as executor: list(executor.map(cube, [...]))
    assert parallel_map(cube, [1, 2, 3, 4, 5]) == [1, 8, 27, 64, 125]


@pytest.mark.parallel(backend="asyncio", workers=3, rounds=3)
def test_fetch_data_with_asyncio_gather(parallel_map):
    # results = await asyncio.gather(*(fetch_data(url) for url in urls))
    urls = ["http://example.com", "http://example.org", "http://example.net"]
    assert parallel_map(fetch_data, urls) == [f"Data from {url}" for url in urls]
