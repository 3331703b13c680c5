"""The built-in runners on tiny workloads, and the backend registry."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_parallel_lab.backends import (
    BUILTIN_BACKENDS,
    Backend,
    BackendError,
    BackendRegistry,
    Runner,
    RunnerCache,
    TaskError,
    Work,
    WorkerCrashed,
    WorkloadTimeout,
)
from pytest_parallel_lab.backends.inprocess import THREAD_PREFIX, ThreadRunner
from pytest_parallel_lab.backends.processes import describe_exit, guard_exit_status

#: The backends every interpreter has, and those that need a newer one or an extra.
BUILTIN_NAMES = ["serial", "thread", "process", "multiprocessing", "asyncio"]
OPTIONAL_NAMES = ["interpreter", "dask", "loky"]
PROCESS_NAMES = ["process", "multiprocessing"]
#: Started by the acceptance tests only, which share one cluster (seconds to start).
CLUSTER_NAMES = ["dask"]


def square(x: int) -> int:
    return x * x


async def square_later(x: int) -> int:
    await asyncio.sleep(0)
    return x * x


def fail_on_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


def wait_for(event: threading.Event, x: int) -> int:
    event.wait(30)
    return x


def sleep_long(x: int) -> int:
    time.sleep(30)
    return x


async def sleep_long_async(x: int) -> int:
    await asyncio.sleep(30)
    return x


def die_with_exit_code_3(x: int) -> int:
    os._exit(3)


def backend(name: str) -> Backend:
    return next(b for b in BUILTIN_BACKENDS if b.name == name)


def lab_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


@pytest.fixture(params=BUILTIN_NAMES)
def runner(request: pytest.FixtureRequest) -> Iterator[Runner]:
    started = backend(request.param).start(2, None)
    yield started
    started.close()


def test_every_builtin_backend_implements_the_protocol_and_is_available() -> None:
    assert [b.name for b in BUILTIN_BACKENDS] == BUILTIN_NAMES + OPTIONAL_NAMES
    for b in BUILTIN_BACKENDS:
        assert isinstance(b, Backend)
        assert b.description
        if b.name in BUILTIN_NAMES:
            assert b.unavailable_reason() is None
        assert b.uses_processes is (b.name in [*PROCESS_NAMES, *CLUSTER_NAMES, "loky"])


def test_an_optional_backend_says_why_it_is_unavailable_or_runs_tasks() -> None:
    for name in OPTIONAL_NAMES:
        if name in CLUSTER_NAMES:
            continue
        reason = backend(name).unavailable_reason()
        if reason is not None:
            assert reason.strip()
            continue
        started = backend(name).start(2, None)
        try:
            result = started.run(Work(call=square, items=(3, 4)), timeout=60)
            assert [o.value for o in result.outcomes] == [9, 16]
        finally:
            started.close()


def test_a_runner_returns_every_outcome_in_task_order(runner: Runner) -> None:
    assert isinstance(runner, Runner)
    assert runner.startup_s >= 0
    result = runner.run(Work(call=square, items=(3, 1, 2, 5)), timeout=30)
    assert [o.index for o in result.outcomes] == [0, 1, 2, 3]
    assert [o.value for o in result.outcomes] == [9, 1, 4, 25]
    assert result.errors == []
    assert result.wall_s > 0


def test_a_runner_drives_coroutines(runner: Runner) -> None:
    result = runner.run(Work(call=square_later, items=(1, 2, 3), coroutine=True), timeout=30)
    assert [o.value for o in result.outcomes] == [1, 4, 9]


def test_a_runner_captures_task_errors_as_task_errors(runner: Runner) -> None:
    result = runner.run(Work(call=fail_on_odd, items=(0, 1, 2, 3)), timeout=30)
    assert [o.value for o in result.outcomes] == [0, None, 2, None]
    assert [e.index for e in result.errors] == [1, 3]
    for error in result.errors:
        assert isinstance(error, TaskError)
        assert error.type_name == "ValueError"
        assert error.message == f"odd {error.index}"
        assert error.signature == ("ValueError", error.message)
    assert "ValueError: odd 1" in result.errors[0].traceback


def test_a_runner_can_be_reused_for_several_runs(runner: Runner) -> None:
    for _ in range(3):
        result = runner.run(Work(call=square, items=(2,)), timeout=30)
        assert result.outcomes[0].value == 4


@pytest.mark.parametrize("name", ["serial", "thread"])
def test_an_in_process_runner_past_its_timeout_raises_and_can_be_abandoned(name: str) -> None:
    release = threading.Event()
    started = backend(name).start(2, None)
    try:
        with pytest.raises(WorkloadTimeout, match=r"timeout of 0\.2s"):
            started.run(Work(call=functools.partial(wait_for, release), items=(0, 1)), 0.2)
    finally:
        started.abandon()
        release.set()


def test_the_asyncio_runner_past_its_timeout_raises_and_can_be_abandoned() -> None:
    started = backend("asyncio").start(2, None)
    try:
        with pytest.raises(WorkloadTimeout, match="asyncio backend"):
            started.run(Work(call=sleep_long_async, items=(0,), coroutine=True), 0.2)
    finally:
        started.abandon()


@pytest.mark.parametrize("name", PROCESS_NAMES)
def test_a_process_runner_past_its_timeout_raises_and_abandoning_leaves_no_process(
    name: str,
) -> None:
    started = backend(name).start(1, None)
    try:
        with pytest.raises(WorkloadTimeout, match=r"timeout of 0\.3s"):
            started.run(Work(call=sleep_long, items=(0,)), 0.3)
    finally:
        started.abandon()
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("name", PROCESS_NAMES)
def test_a_process_runner_whose_worker_exits_raises_worker_crashed_with_the_exit_code(
    name: str,
) -> None:
    started = backend(name).start(1, None)
    try:
        with pytest.raises(WorkerCrashed, match="exit code 3"):
            started.run(Work(call=die_with_exit_code_3, items=(0,)), 30)
    finally:
        started.abandon()
    assert multiprocessing.active_children() == []


def test_a_process_pool_whose_worker_was_killed_between_runs_raises_worker_crashed() -> None:
    started = backend("process").start(1, None)
    try:
        assert started.run(Work(call=square, items=(2,)), 30).outcomes[0].value == 4
        (worker,) = multiprocessing.active_children()
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(10)
        deadline = time.monotonic() + 10
        while not getattr(started.executor, "_broken", False) and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(WorkerCrashed, match="SIGKILL"):
            started.run(Work(call=square, items=(2, 3)), 30)
    finally:
        started.abandon()


@pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="needs forkserver"
)
def test_a_forkserver_worker_killed_while_threads_wait_for_it_is_reported_killed() -> None:
    # Unguarded, a second reader of the status pipe stores 255 over -9 (CPython 3.15's
    # executor reads it when the pool breaks, as this plugin does): a race, so repeated.
    context = multiprocessing.get_context("forkserver")
    codes = set()
    for _ in range(10):
        worker = context.Process(target=time.sleep, args=(60,))
        worker.start()
        guard_exit_status(worker)
        os.kill(worker.pid, signal.SIGKILL)
        together = threading.Barrier(4)

        def join(worker: Any = worker, together: threading.Barrier = together) -> None:
            together.wait()
            worker.join(10)

        readers = [threading.Thread(target=join) for _ in range(4)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(20)
        codes.add(worker.exitcode)
    assert codes == {-signal.SIGKILL}


def test_closing_runners_leaves_no_process_and_no_lab_thread() -> None:
    cache = RunnerCache()
    for b in BUILTIN_BACKENDS:
        if b.unavailable_reason() is None and b.name not in CLUSTER_NAMES:
            cache.get(b, 2, None).runner.run(Work(call=square, items=(1, 2)), 30)
    cache.close_all()
    assert multiprocessing.active_children() == []
    deadline = time.monotonic() + 10
    while lab_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lab_threads() == []


def test_the_cache_reuses_a_runner_for_the_same_configuration_only() -> None:
    cache = RunnerCache()
    thread = backend("thread")
    try:
        first = cache.get(thread, 2, None)
        again = cache.get(thread, 2, "spawn")  # a start method means nothing to threads
        other = cache.get(thread, 1, None)
        assert again is first
        assert first.uses == 2
        assert other is not first
        cache.discard(first)
        assert cache.get(thread, 2, None) is not first
    finally:
        cache.close_all()


def test_thread_runner_workers_are_named_and_daemon() -> None:
    started = ThreadRunner(2)
    try:
        result = started.run(Work(call=square, items=(1, 2)), 30)
        for outcome in result.outcomes:
            assert THREAD_PREFIX in outcome.worker
        threads = [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]
        assert threads
        assert all(t.daemon for t in threads)
    finally:
        started.close()


@pytest.mark.parametrize(
    ("exitcode", "text"),
    [
        pytest.param(3, "exit code 3", id="exit-code"),
        pytest.param(-signal.SIGSEGV, "signal SIGSEGV", id="segfault"),
        pytest.param(-signal.SIGKILL, "signal SIGKILL", id="kill"),
        pytest.param(-200, "signal 200", id="unknown-signal"),
        pytest.param(None, "an unknown exit status", id="unknown"),
    ],
)
def test_a_process_exit_is_described_for_people(exitcode: int | None, text: str) -> None:
    assert describe_exit(exitcode) == text


@dataclass(frozen=True)
class NamedBackend:
    name: str
    description: str = "test"
    uses_processes: bool = False

    def unavailable_reason(self) -> str | None:
        return None

    def start(self, workers: int, start_method: str | None) -> Any:
        return ThreadRunner(workers)


def test_the_registry_keeps_registration_order_and_finds_by_name() -> None:
    registry = BackendRegistry()
    for b in BUILTIN_BACKENDS:
        registry.register(b)
    registry.register(NamedBackend("my-threads"))
    assert registry.names() == [*BUILTIN_NAMES, *OPTIONAL_NAMES, "my-threads"]
    assert set(registry.unavailable()) <= set(OPTIONAL_NAMES)
    assert registry.get("my-threads") == NamedBackend("my-threads")
    assert registry.get("nope") is None
    assert [b.name for b in registry] == registry.names()


def test_the_registry_rejects_a_second_backend_of_the_same_name() -> None:
    registry = BackendRegistry()
    registry.register(NamedBackend("thread"))
    with pytest.raises(ValueError, match="'thread' is already registered"):
        registry.register(NamedBackend("thread"))


def test_the_registry_rejects_an_object_that_is_not_a_backend() -> None:
    registry = BackendRegistry()
    with pytest.raises(TypeError, match="Backend protocol"):
        registry.register(object())  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "two words", "a/b", "x[1]"])
def test_the_registry_rejects_a_name_that_cannot_be_a_test_id(name: str) -> None:
    with pytest.raises(ValueError, match="must be letters, digits"):
        BackendRegistry().register(NamedBackend(name))


def test_the_registry_says_why_each_unavailable_backend_cannot_run() -> None:
    @dataclass(frozen=True)
    class Unavailable(NamedBackend):
        def unavailable_reason(self) -> str | None:
            return f"{self.name} is not here"

    registry = BackendRegistry()
    registry.register(NamedBackend("ok"))
    registry.register(Unavailable("gone"))
    registry.register(NamedBackend("fine"))
    registry.register(Unavailable("away"))
    assert registry.names() == ["ok", "gone", "fine", "away"]
    assert registry.unavailable() == {"gone": "gone is not here", "away": "away is not here"}
    assert list(registry.unavailable()) == ["gone", "away"]


def test_the_registry_asks_each_backend_once_until_another_is_registered() -> None:
    asked: list[str] = []

    @dataclass(frozen=True)
    class Counted(NamedBackend):
        def unavailable_reason(self) -> str | None:
            asked.append(self.name)
            return None

    registry = BackendRegistry()
    registry.register(Counted("a"))
    assert asked == []  # registering probes nothing
    registry.unavailable()
    registry.unavailable()
    assert asked == ["a"]
    registry.register(Counted("b"))
    assert registry.unavailable() == {}
    assert asked == ["a", "a", "b"]


def test_the_runner_errors_are_one_family_importable_from_every_old_place() -> None:
    from pytest_parallel_lab.backends import errors, protocol

    assert BackendError is errors.BackendError is protocol.BackendError
    assert WorkloadTimeout is errors.WorkloadTimeout is protocol.WorkloadTimeout
    assert WorkerCrashed is errors.WorkerCrashed is protocol.WorkerCrashed
    assert issubclass(WorkloadTimeout, BackendError)
    assert issubclass(WorkerCrashed, BackendError)
