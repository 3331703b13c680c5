"""Classification and recommendation from measured-like results, as tables of cases."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from pytest_parallel_lab.document.codec import from_json, to_json
from pytest_parallel_lab.document.records import Capacity, Environment, Recommendation, ResultRecord
from pytest_parallel_lab.marked.diagnosis import (
    Evidence,
    best_rows,
    chunk_size,
    classify_result,
    classify_test,
    most_shown,
    row_diagnosis,
)
from pytest_parallel_lab.marked.recommend import SERIAL, UNDECIDED, recommend, recommendations
from pytest_parallel_lab.stats import Interval
from pytest_parallel_lab.vocabulary import Classification, Kind, Outcome

BLOCKING_IN_LOOP = Classification.BLOCKING_IN_LOOP
CPU_BOUND = Classification.CPU_BOUND
GIL_RELEASING = Classification.GIL_RELEASING
INCONCLUSIVE = Classification.INCONCLUSIVE
IO_BOUND = Classification.IO_BOUND
OVERHEAD_BOUND = Classification.OVERHEAD_BOUND

GIL = Environment(gil_enabled=True, free_threaded_build=False, usable_cpus=8)
FREE_THREADED = Environment(gil_enabled=False, free_threaded_build=True, usable_cpus=8)
# A free-threaded build run with PYTHON_GIL=1: the GIL is back on.
FREE_THREADED_BUILD_GIL_ON = Environment(gil_enabled=True, free_threaded_build=True, usable_cpus=8)


def measured(
    backend: str,
    speedup: tuple[float, float, float],
    *,
    serial_cpu: float | None = 0.99,
    backend_cpu: float | None = None,
    task_s: float = 0.05,
    dispatch_s: float | None = 5e-5,
    coroutine: bool = False,
    noisy: bool = False,
    test: str = "tests/test_w.py::test_w",
    workers: int = 4,
    outcome: Outcome = Outcome.PASSED,
    kind: Kind = Kind.BODY,
    call_index: int = 0,
) -> ResultRecord:
    """A result as the plugin would record it, from the ratios that matter.

    *serial_cpu* and *backend_cpu* are CPU-to-wall ratios; times are derived from a
    1-second serial measurement.
    """
    estimate, low, high = speedup
    serial_s = 1.0
    backend_s = serial_s / estimate
    if backend_cpu is None:
        backend_cpu = serial_cpu
    return ResultRecord(
        nodeid=f"{test}[{backend}]",
        test=test,
        backend=backend,
        outcome=outcome,
        kind=kind,
        call_index=call_index,
        coroutine=coroutine,
        workers=workers,
        tasks=8,
        parallelism=4,
        serial_s=serial_s,
        backend_s=backend_s,
        speedup=Interval(estimate=estimate, low=low, high=high),
        noisy=noisy,
        serial_cpu_s=None if serial_cpu is None else serial_cpu * serial_s,
        cpu_s=None if backend_cpu is None else backend_cpu * backend_s,
        dispatch_s=dispatch_s,
        task_s=task_s,
    )


# Pure-Python CPU loop under the GIL: threads flat, processes scale.
CPU_LOOP = [
    measured("thread", (1.0, 0.97, 1.03), backend_cpu=0.99),
    measured("process", (1.9, 1.8, 2.0), backend_cpu=3.8, dispatch_s=3e-4),
]
# hashlib.sha256 over 32 MB buffers: threads scale with several CPUs busy.
HASHLIB = [
    measured("thread", (3.6, 3.4, 3.8), backend_cpu=3.7),
    measured("process", (2.1, 2.0, 2.2), backend_cpu=3.0, dispatch_s=3e-4),
]
# time.sleep in a sync test: threads scale, processes less, sync code on a loop not at all.
SLEEP_SYNC = [
    measured("thread", (7.8, 7.5, 8.0), serial_cpu=0.02),
    measured("process", (3.1, 2.9, 3.3), serial_cpu=0.02, dispatch_s=3e-4),
    measured("asyncio", (1.0, 0.98, 1.02), serial_cpu=0.02),
]
# await asyncio.sleep in an async def test: the loop overlaps the waits.
ASYNC_SLEEP = [
    measured("asyncio", (7.9, 7.6, 8.1), serial_cpu=0.02, coroutine=True),
    measured("thread", (7.8, 7.5, 8.0), serial_cpu=0.02, coroutine=True),
    measured("process", (3.1, 2.9, 3.3), serial_cpu=0.02, coroutine=True, dispatch_s=3e-4),
]
# time.sleep inside async def: the loop does not overlap, threads do.
SLEEP_IN_ASYNC_DEF = [
    measured("asyncio", (1.0, 0.98, 1.02), serial_cpu=0.01, coroutine=True),
    measured("thread", (7.8, 7.5, 8.0), serial_cpu=0.01, coroutine=True),
]
# x * x: each task is a tenth of a microsecond, dispatch costs tens of microseconds.
TINY = [
    measured("thread", (0.3, 0.25, 0.35), task_s=1e-7, dispatch_s=2e-5),
    measured("process", (0.05, 0.04, 0.06), task_s=1e-7, dispatch_s=3e-4),
]
# Wide noisy intervals that cannot tell whether threads help.
NOISY = [
    measured("thread", (1.3, 0.8, 2.1), noisy=True),
    measured("process", (1.9, 1.8, 2.0), backend_cpu=3.8, dispatch_s=3e-4),
]
# Pure-Python CPU loop on a free-threaded build: threads scale like processes.
FREE_THREADED_LOOP = [
    measured("thread", (3.7, 3.5, 3.9), backend_cpu=3.8),
    measured("process", (3.6, 3.4, 3.8), backend_cpu=3.8, dispatch_s=3e-4),
]


@pytest.mark.parametrize(
    ("record", "environment", "expected"),
    [
        pytest.param(CPU_LOOP[0], GIL, CPU_BOUND, id="threads-flat-on-cpu-work"),
        pytest.param(CPU_LOOP[1], GIL, CPU_BOUND, id="processes-scale-on-cpu-work"),
        pytest.param(HASHLIB[0], GIL, GIL_RELEASING, id="threads-busy-several-cpus"),
        pytest.param(HASHLIB[1], GIL, CPU_BOUND, id="process-row-cannot-see-the-gil"),
        pytest.param(SLEEP_SYNC[0], GIL, IO_BOUND, id="threads-overlap-waits"),
        pytest.param(SLEEP_SYNC[1], GIL, IO_BOUND, id="processes-overlap-waits"),
        pytest.param(SLEEP_SYNC[2], GIL, BLOCKING_IN_LOOP, id="sync-body-under-asyncio"),
        pytest.param(ASYNC_SLEEP[0], GIL, IO_BOUND, id="loop-overlaps-awaits"),
        pytest.param(SLEEP_IN_ASYNC_DEF[0], GIL, BLOCKING_IN_LOOP, id="time-sleep-in-async-def"),
        pytest.param(TINY[0], GIL, OVERHEAD_BOUND, id="tiny-tasks-under-threads"),
        pytest.param(TINY[1], GIL, OVERHEAD_BOUND, id="tiny-tasks-under-processes"),
        pytest.param(NOISY[0], GIL, INCONCLUSIVE, id="noisy-straddling-interval"),
        pytest.param(FREE_THREADED_LOOP[0], FREE_THREADED, CPU_BOUND, id="free-threaded-loop"),
        pytest.param(
            FREE_THREADED_LOOP[0],
            FREE_THREADED_BUILD_GIL_ON,
            GIL_RELEASING,
            id="free-threaded-build-with-gil-on",
        ),
        pytest.param(
            measured("thread", (1.0, 0.9, 1.1), serial_cpu=None),
            GIL,
            INCONCLUSIVE,
            id="no-cpu-time",
        ),
        pytest.param(
            dataclasses.replace(measured("thread", (3.6, 3.4, 3.8)), cpu_s=None),
            GIL,
            GIL_RELEASING,
            id="threads-scale-on-cpu-work-without-backend-cpu-time",
        ),
        pytest.param(
            dataclasses.replace(
                measured("thread", (1.0, 0.9, 1.1), outcome=Outcome.FAILED), speedup=None
            ),
            GIL,
            INCONCLUSIVE,
            id="item-failed-before-measuring",
        ),
    ],
)
def test_each_result_is_classified_from_its_measurements(
    record: ResultRecord, environment: Environment, expected: Classification
) -> None:
    diagnosis = classify_result(record, environment)
    assert diagnosis.classification == expected, diagnosis.reason
    assert diagnosis.reason


def test_a_noisy_result_whose_interval_is_decisive_is_still_classified() -> None:
    record = measured("process", (1.9, 1.5, 2.4), backend_cpu=3.8, noisy=True)
    assert classify_result(record, GIL).classification == CPU_BOUND


@pytest.mark.parametrize(
    ("speedup", "expected"),
    [
        ((1.53, 1.19, 1.77), CPU_BOUND),  # wholly above 1, a useful estimate: it scales
        ((1.69, 0.91, 1.80), INCONCLUSIVE),  # reaches below 1: might not beat serial
        ((1.15, 1.05, 1.60), INCONCLUSIVE),  # beats serial, but is it worth it?
    ],
)
def test_a_noisy_interval_is_inconclusive_only_when_it_leaves_scaling_open(
    speedup: tuple[float, float, float], expected: object
) -> None:
    record = measured("process", speedup, backend_cpu=1.8, noisy=True)
    assert classify_result(record, GIL).classification == expected


def test_a_noisy_winner_wholly_above_its_rivals_and_serial_is_recommended() -> None:
    records = [
        measured("thread", (1.0, 0.92, 1.05)),
        measured("process", (1.53, 1.19, 1.77), backend_cpu=1.8, noisy=True),
        measured("asyncio", (1.0, 0.98, 1.02)),
    ]
    recommendation = recommend(records, GIL)
    assert (recommendation.backend, recommendation.classification) == ("process", CPU_BOUND)
    assert recommendation.reason.startswith("process 1.5x vs ")


def test_a_diagnosis_keeps_the_numbers_that_decided_it() -> None:
    diagnosis = classify_result(HASHLIB[0], GIL)
    assert "thread 3.6x" in diagnosis.reason
    assert diagnosis.evidence.serial_cpu_ratio == pytest.approx(0.99)
    assert diagnosis.evidence.backend_cpu_ratio == pytest.approx(3.7)
    assert diagnosis.evidence.task_to_dispatch == pytest.approx(1000)
    # 20 dispatches of 50 us over a 50 ms task: rounded up to the smallest chunk.
    assert diagnosis.evidence.chunk_size == 2


def test_an_overhead_bound_result_says_what_chunk_size_would_help() -> None:
    many = dataclasses.replace(TINY[0], tasks=100_000)
    diagnosis = classify_result(many, GIL)
    assert diagnosis.evidence.chunk_size == 5000
    assert "batch tasks into chunks of 5000" in diagnosis.reason


def test_a_chunk_never_holds_more_tasks_than_there_are() -> None:
    diagnosis = classify_result(TINY[0], GIL)  # 8 tasks
    assert diagnosis.evidence.chunk_size == 8
    assert "even all 8 tasks together are too small: run them serially" in diagnosis.reason


def test_a_result_without_dispatch_time_has_no_dispatch_evidence() -> None:
    diagnosis = classify_result(measured("process", (1.9, 1.8, 2.0), dispatch_s=None), GIL)
    assert diagnosis.evidence.task_to_dispatch is None
    assert diagnosis.evidence.chunk_size is None
    assert diagnosis.classification == CPU_BOUND


def test_a_result_that_was_not_measured_has_no_evidence_and_says_why() -> None:
    record = dataclasses.replace(
        measured("thread", (1.0, 0.9, 1.1), outcome=Outcome.FAILED),
        speedup=None,
        error="boom",
    )
    diagnosis = classify_result(record, GIL)
    assert diagnosis.classification == INCONCLUSIVE
    assert diagnosis.evidence == Evidence()
    assert diagnosis.reason == "thread: not measured (boom)"


def test_a_backend_that_scales_is_not_overhead_bound_whatever_its_dispatch_cost() -> None:
    record = measured("process", (2.5, 2.3, 2.7), task_s=5e-4, dispatch_s=3e-4, backend_cpu=3.0)
    assert classify_result(record, GIL).classification == CPU_BOUND


@pytest.mark.parametrize(
    ("task_s", "dispatch_s", "expected"),
    [
        (1e-7, 2e-5, 5000),  # 4000 needed
        (1e-3, 1e-4, 2),
        (1e-4, 1e-4, 20),
        (5.1e-6, 1e-4, 500),  # 392 needed
        (1.98e-6, 1e-4, 2000),  # 1009 needed
    ],
)
def test_chunk_size_makes_each_chunk_cost_twenty_dispatches_in_steady_steps(
    task_s: float, dispatch_s: float, expected: int
) -> None:
    assert chunk_size(task_s, dispatch_s) == expected


def test_chunk_size_is_capped_by_the_tasks_there_are() -> None:
    assert chunk_size(1e-7, 2e-5, tasks=5) == 5
    assert chunk_size(1e-3, 1e-4, tasks=5) == 2


def test_chunk_size_rejects_a_task_without_time() -> None:
    with pytest.raises(ValueError, match="positive"):
        chunk_size(0.0, 1e-4)


@pytest.mark.parametrize(
    ("records", "environment", "expected"),
    [
        pytest.param(CPU_LOOP, GIL, CPU_BOUND, id="cpu-loop"),
        pytest.param(HASHLIB, GIL, GIL_RELEASING, id="hashlib"),
        pytest.param(SLEEP_SYNC, GIL, IO_BOUND, id="sync-sleep-asyncio-row-ignored"),
        pytest.param(ASYNC_SLEEP, GIL, IO_BOUND, id="asyncio-sleep"),
        pytest.param(SLEEP_IN_ASYNC_DEF, GIL, BLOCKING_IN_LOOP, id="time-sleep-in-async-def"),
        pytest.param(TINY, GIL, OVERHEAD_BOUND, id="tiny-tasks"),
        pytest.param(NOISY, GIL, INCONCLUSIVE, id="noisy-thread-row"),
        pytest.param(FREE_THREADED_LOOP, FREE_THREADED, CPU_BOUND, id="free-threaded-loop"),
        pytest.param([SLEEP_SYNC[2]], GIL, BLOCKING_IN_LOOP, id="only-a-sync-asyncio-row"),
        pytest.param([], GIL, INCONCLUSIVE, id="nothing-measured"),
        pytest.param(
            [measured("thread", (1.0, 0.9, 1.1), outcome=Outcome.FAILED), CPU_LOOP[1]],
            GIL,
            CPU_BOUND,
            id="failed-rows-are-skipped",
        ),
    ],
)
def test_a_test_is_classified_across_its_backends(
    records: list[ResultRecord], environment: Environment, expected: Classification
) -> None:
    assert classify_test(records, environment).classification == expected


def test_a_coroutine_test_whose_threads_do_not_overlap_either_is_not_blamed_on_the_loop() -> None:
    records = [
        measured("asyncio", (1.0, 0.98, 1.02), serial_cpu=0.01, coroutine=True),
        measured("thread", (1.0, 0.98, 1.02), serial_cpu=0.01, coroutine=True),
    ]
    assert classify_test(records, GIL).classification == IO_BOUND


def test_a_sweep_is_judged_by_the_best_row_of_each_backend() -> None:
    records = [
        measured("process", (1.0, 0.97, 1.03), backend_cpu=1.0, workers=1, dispatch_s=3e-4),
        measured("process", (3.8, 3.6, 4.0), backend_cpu=3.8, workers=4, dispatch_s=3e-4),
    ]
    best = best_rows(records)
    assert list(best) == ["process"]
    assert best["process"] is records[1]
    diagnosis = classify_test(records, GIL)
    assert list(diagnosis.rows) == ["process"]
    assert diagnosis.rows["process"].classification == CPU_BOUND
    assert "process 3.8x" in diagnosis.rows["process"].reason
    assert diagnosis.rows["process"].evidence.backend_cpu_ratio == pytest.approx(3.8)


def test_best_rows_skips_unmeasured_and_serial_rows() -> None:
    failed = dataclasses.replace(
        measured("thread", (5.0, 4.0, 6.0), outcome=Outcome.FAILED), speedup=None
    )
    serial = measured("serial", (1.0, 1.0, 1.0))
    process = measured("process", (1.9, 1.8, 2.0))
    assert best_rows([failed, serial, process]) == {"process": process}


def test_a_test_diagnosis_keeps_the_diagnosis_of_each_backend() -> None:
    diagnosis = classify_test(SLEEP_SYNC, GIL)
    assert {b: d.classification for b, d in diagnosis.rows.items()} == {
        "thread": IO_BOUND,
        "process": IO_BOUND,
        "asyncio": BLOCKING_IN_LOOP,
    }
    assert diagnosis.reason == diagnosis.rows["thread"].reason


def test_a_row_keeps_the_classification_the_measurement_stored() -> None:
    stored = dataclasses.replace(
        CPU_LOOP[1], classification=IO_BOUND, classification_reason="stored reason"
    )
    diagnosis = row_diagnosis(stored, GIL)
    assert (diagnosis.classification, diagnosis.reason) == (IO_BOUND, "stored reason")
    assert diagnosis.evidence.backend_cpu_ratio == pytest.approx(3.8)


@pytest.mark.parametrize(
    ("classification", "reason"),
    [
        pytest.param(IO_BOUND, None, id="classification-without-reason"),
        pytest.param(None, "stored reason", id="reason-without-classification"),
    ],
)
def test_a_row_with_half_a_stored_classification_is_classified_again(
    classification: Classification | None, reason: str | None
) -> None:
    stored = dataclasses.replace(
        CPU_LOOP[1], classification=classification, classification_reason=reason
    )
    assert row_diagnosis(stored, GIL) == classify_result(CPU_LOOP[1], GIL)
    assert row_diagnosis(stored, GIL).classification == CPU_BOUND


@pytest.mark.parametrize(
    ("records", "environment", "classification", "backend", "reason_parts"),
    [
        pytest.param(
            CPU_LOOP,
            GIL,
            CPU_BOUND,
            "process",
            ["process 1.9x vs thread 1.0x", "GIL-bound CPU work", "CPU 99% of wall"],
            id="pure-python-cpu-loop",
        ),
        pytest.param(
            HASHLIB,
            GIL,
            GIL_RELEASING,
            "thread",
            ["thread 3.6x vs process 2.1x", "releases the GIL", "3.7 CPUs busy"],
            id="hashlib-sha256",
        ),
        pytest.param(
            SLEEP_SYNC,
            GIL,
            IO_BOUND,
            "thread",
            ["thread 7.8x vs process 3.1x, asyncio 1.0x", "mostly waiting (CPU 2% of wall)"],
            id="time-sleep-sync",
        ),
        pytest.param(
            ASYNC_SLEEP,
            GIL,
            IO_BOUND,
            "asyncio",
            ["asyncio 7.9x, thread 7.8x vs process 3.1x", "mostly waiting (CPU 2% of wall)"],
            id="asyncio-sleep",
        ),
        pytest.param(
            SLEEP_IN_ASYNC_DEF,
            GIL,
            BLOCKING_IN_LOOP,
            "thread",
            ["thread 7.8x vs asyncio 1.0x", "(CPU 1% of wall)", "await asyncio.sleep"],
            id="time-sleep-in-async-def",
        ),
        pytest.param(
            TINY,
            GIL,
            OVERHEAD_BOUND,
            SERIAL,
            [
                "no backend beats serial",
                "process 0.05x",
                "thread 0.30x [0.25-0.35]",
                "even all 8 tasks together cost less than dispatching them; run them serially",
            ],
            id="tiny-tasks",
        ),
        pytest.param(
            NOISY,
            GIL,
            INCONCLUSIVE,
            UNDECIDED,
            ["too noisy", "add rounds"],
            id="noisy",
        ),
        pytest.param(
            FREE_THREADED_LOOP,
            FREE_THREADED,
            CPU_BOUND,
            "thread",
            ["thread 3.7x, process 3.6x", "in parallel with the GIL disabled (CPU 99% of wall)"],
            id="free-threaded-threads-match-processes",
        ),
        pytest.param(
            [
                measured("thread", (2.0, 1.9, 2.1), backend_cpu=2.0),
                measured("process", (3.6, 3.4, 3.8), backend_cpu=3.8, dispatch_s=3e-4),
            ],
            FREE_THREADED,
            CPU_BOUND,
            "process",
            ["process 3.6x vs thread 2.0x"],
            id="free-threaded-processes-clearly-ahead",
        ),
        pytest.param(
            [
                measured("thread", (1.0, 0.97, 1.03), serial_cpu=0.02),
                measured("process", (0.9, 0.85, 0.95), serial_cpu=0.02, dispatch_s=3e-4),
            ],
            GIL,
            IO_BOUND,
            SERIAL,
            ["no backend beats serial", "thread 1.00x [0.97-1.03]", "mostly waiting"],
            id="waiting-that-does-not-overlap",
        ),
    ],
)
def test_the_recommendation_names_the_backend_and_why(
    records: list[ResultRecord],
    environment: Environment,
    classification: Classification,
    backend: str,
    reason_parts: list[str],
) -> None:
    recommendation = recommend(records, environment)
    assert recommendation.classification == classification
    assert recommendation.backend == backend
    for part in reason_parts:
        assert part in recommendation.reason
    if records:
        assert recommendation.test == records[0].test


def test_a_cheaper_model_unavailable_here_is_named_beside_the_process_choice() -> None:
    no_interpreters = dataclasses.replace(
        GIL,
        unavailable_backends={
            "interpreter": "concurrent.futures.InterpreterPoolExecutor needs Python 3.14+",
            "dask": "needs the distributed package",
        },
    )
    chosen = recommend(CPU_LOOP, no_interpreters)
    assert chosen.backend == "process"
    # Subinterpreters are cheaper than processes; a cluster is not, so it is not named.
    assert chosen.why.endswith("; interpreter not measured (unavailable on this interpreter)")
    assert chosen.why in chosen.reason
    assert "dask" not in chosen.reason
    assert "not measured" not in recommend(CPU_LOOP, GIL).reason
    # Threads win I/O: nothing unavailable here is cheaper than them.
    assert "not measured" not in recommend(SLEEP_SYNC, no_interpreters).reason


def test_a_small_speedup_inside_the_noise_does_not_win() -> None:
    records = [measured("thread", (1.05, 0.99, 1.1), backend_cpu=1.0)]
    assert recommend(records, GIL).backend == SERIAL


def test_the_recommendations_have_one_entry_per_test_in_first_seen_order() -> None:
    records = [
        *(dataclasses.replace(r, test="t.py::test_b") for r in CPU_LOOP),
        *SLEEP_SYNC,
    ]
    listed = recommendations(records, GIL)
    assert [entry.test for entry in listed] == ["t.py::test_b", "tests/test_w.py::test_w"]
    assert all(isinstance(entry, Recommendation) for entry in listed)
    assert [entry.call_index for entry in listed] == [None, None]
    assert listed[0] == recommend(records[:2], GIL)
    assert (listed[0].classification, listed[0].backend) == (CPU_BOUND, "process")
    assert listed[1].classification == IO_BOUND
    assert listed[1].backend == "thread"
    assert all(entry.classification in list(Classification) for entry in listed)


def test_each_parallel_map_call_gets_its_own_recommendation() -> None:
    records = [
        measured("thread", (3.6, 3.4, 3.8), backend_cpu=3.7, kind=Kind.MAP, call_index=0),
        measured("thread", (0.3, 0.25, 0.35), task_s=1e-7, dispatch_s=2e-5, kind=Kind.MAP,
                 call_index=1),
    ]  # fmt: skip
    listed = recommendations(records, GIL)
    assert [(e.call_index, e.classification, e.backend) for e in listed] == [
        (0, GIL_RELEASING, "thread"),
        (1, OVERHEAD_BOUND, SERIAL),
    ]


# Recorded by the plugin on a 2-CPU Linux machine (CPython 3.11, GIL on), 4 workers,
# 5 rounds: (test, backend, coroutine, speedup, noisy, serial CPU/wall, backend
# CPU/wall, task_s, dispatch_s). Real numbers, including noisy rows, pin the rules
# to what measurements look like rather than to round invented ones.
RECORDED_ON_TWO_CPUS = [
    ("cpu_loop", "thread", False, (0.977, 0.955, 1.01), False, 1, 0.999, 0.00762, 1.61e-05),
    ("cpu_loop", "process", False, (1.87, 1.58, 1.91), False, 1, 1.9, 0.00852, 6.24e-05),
    ("hashlib", "thread", False, (1.69, 1.36, 1.81), True, 1, 1.71, 0.0155, 1.13e-05),
    ("hashlib", "process", False, (1.41, 1.3, 1.65), True, 0.952, 1.27, 0.017, 9.77e-05),
    ("sleep", "thread", False, (3.97, 3.75, 4.01), False, 0.00239, 0.00367, 0.0202, 1.07e-05),
    ("sleep", "process", False, (3.9, 3.83, 3.95), False, 0.00167, 0.00199, 0.0202, 7.89e-05),
    ("sleep", "asyncio", False, (0.996, 0.994, 1.01), False, 0.00234, 0.00473, 0.0202, 7.62e-06),
    ("await", "thread", True, (3.96, 3.55, 3.98), False, 0.00337, 0.0146, 0.0203, 1.79e-05),
    ("await", "asyncio", True, (3.99, 3.96, 4.05), False, 0.00314, 0.00687, 0.0202, 5.45e-06),
    ("in_async", "thread", True, (3.96, 3.62, 3.98), False, 0.00207, 0.00867, 0.0201, 1.31e-05),
    ("in_async", "asyncio", True, (0.999, 0.991, 1.02), False, 0.00135, 0.00265, 0.0201, 5.34e-06),
    ("tiny", "thread", False, (0.282, 0.224, 0.294), True, 1, 0.0977, 2.66e-06, 8.29e-06),
    ("tiny", "process", False, (0.04, 0.00793, 0.0429), True, 1.01, 0.0145, 2.64e-06, 5.73e-05),
]  # fmt: skip


def _recorded(test: str) -> list[ResultRecord]:
    return [
        measured(backend, speedup, coroutine=coroutine, noisy=noisy, serial_cpu=serial_cpu,
                 backend_cpu=backend_cpu, task_s=task_s, dispatch_s=dispatch_s,
                 test=f"test_workloads.py::test_{name}")
        for (name, backend, coroutine, speedup, noisy, serial_cpu, backend_cpu, task_s,
             dispatch_s) in RECORDED_ON_TWO_CPUS
        if name == test
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("test", "classification", "backend"),
    [
        ("cpu_loop", CPU_BOUND, "process"),
        ("hashlib", GIL_RELEASING, "thread"),
        ("sleep", IO_BOUND, "thread"),
        ("await", IO_BOUND, "asyncio"),
        ("in_async", BLOCKING_IN_LOOP, "thread"),
        ("tiny", OVERHEAD_BOUND, SERIAL),
    ],
)
def test_recorded_measurements_get_the_right_class_and_backend(
    test: str, classification: Classification, backend: str
) -> None:
    recommendation = recommend(_recorded(test), GIL)
    assert (recommendation.classification, recommendation.backend) == (classification, backend)


def test_a_sleeping_task_shows_its_cpu_share_as_under_one_percent() -> None:
    assert "(CPU <1% of wall)" in recommend(_recorded("sleep"), GIL).reason


def test_the_recommendations_are_strict_json() -> None:
    listed = recommendations(_recorded("tiny") + _recorded("hashlib"), GIL)
    section = to_json(listed)
    assert json.loads(json.dumps(section, allow_nan=False)) == section
    assert [(e["test"], e["classification"], e["backend"]) for e in section] == [
        ("test_workloads.py::test_tiny", "overhead-bound", "serial"),
        ("test_workloads.py::test_hashlib", "gil-releasing", "thread"),
    ]
    assert all(e["call_index"] is None for e in section)
    assert [from_json(Recommendation, e, "recommendations") for e in section] == listed


# --- issue 10: a noisy loser does not block the verdict; a starved row draws no conclusion


def test_a_noisy_loser_wholly_below_the_winner_does_not_block_the_verdict() -> None:
    records = [
        measured("thread", (0.9, 0.92, 1.23), noisy=True),
        measured("process", (1.83, 1.76, 1.85), backend_cpu=3.7, dispatch_s=3e-4),
    ]
    assert classify_test(records, GIL).classification == CPU_BOUND
    recommendation = recommend(records, GIL)
    assert recommendation.backend == "process"
    assert recommendation.reason.startswith("process 1.8x vs thread 0.9x")


def test_a_noisy_cheaper_model_that_could_match_the_winner_leaves_it_undecided() -> None:
    records = [
        measured("thread", (1.5, 1.0, 1.9), noisy=True),
        measured("process", (1.8, 1.7, 1.9), backend_cpu=3.6, dispatch_s=3e-4),
    ]
    assert recommend(records, GIL).backend == UNDECIDED


def test_a_noisy_dearer_model_that_cannot_beat_the_winner_does_not_block() -> None:
    records = [
        measured("thread", (3.6, 3.4, 3.8), backend_cpu=3.7),
        measured("process", (2.0, 1.2, 3.5), backend_cpu=3.0, noisy=True, dispatch_s=3e-4),
    ]
    assert classify_test(records, GIL).classification == GIL_RELEASING
    assert recommend(records, GIL).backend == "thread"


def test_a_noisy_row_that_could_beat_the_winner_leaves_it_undecided() -> None:
    records = [
        measured("thread", (1.6, 1.5, 1.7), backend_cpu=1.7),
        measured("process", (1.5, 0.9, 3.9), backend_cpu=3.0, noisy=True, dispatch_s=3e-4),
    ]
    assert recommend(records, GIL).backend == UNDECIDED


def starved(record: ResultRecord, delivered: float, expected: float) -> ResultRecord:
    return dataclasses.replace(
        record, machine_busy=True, capacity=Capacity(expected, delivered, 1.0)
    )


def test_a_starved_row_says_what_the_machine_delivered_and_decides_nothing() -> None:
    record = starved(measured("process", (1.02, 0.99, 1.04), backend_cpu=1.04), 1.04, 2.0)
    diagnosis = classify_result(record, GIL)
    assert diagnosis.classification == INCONCLUSIVE
    assert diagnosis.reason == (
        "process 1.0x: the machine delivered 1.0 of 2 CPUs; rerun on an idle runner"
    )


def test_a_starved_winner_candidate_makes_the_recommendation_undecided_not_serial() -> None:
    records = [
        measured("thread", (1.0, 0.97, 1.03), backend_cpu=0.99),
        starved(measured("process", (1.02, 0.99, 1.04), backend_cpu=1.04), 1.04, 2.0),
    ]
    recommendation = recommend(records, GIL)
    assert recommendation.backend == UNDECIDED
    assert "the machine delivered 1.0 of 2 CPUs" in recommendation.reason


QUOTA = Environment(
    gil_enabled=True,
    cpu_count=2,
    usable_cpus=1,
    cpu_capacity=1.0,
    cpu_limit="cgroup quota 100000/100000",
)


def limited(record: ResultRecord) -> ResultRecord:
    return dataclasses.replace(record, capacity=Capacity(1.0, 0.99, 0.0))


def test_cpu_work_under_a_one_cpu_quota_is_cpu_bound_and_processes_are_named() -> None:
    records = [
        limited(measured("thread", (1.0, 0.98, 1.02), backend_cpu=0.99)),
        limited(measured("process", (0.98, 0.95, 1.0), backend_cpu=0.99, dispatch_s=3e-4)),
    ]
    recommendation = recommend(records, QUOTA)
    assert recommendation.classification == CPU_BOUND
    assert (recommendation.backend, recommendation.shown) == ("process", False)
    assert (
        "this machine cannot show the speedup (1 usable CPU: cgroup quota 100000/100000 of 2 "
        in (recommendation.reason)
    )


def test_a_noisy_thread_row_of_cpu_work_under_a_one_cpu_quota_does_not_block_the_verdict() -> None:
    # Threads cannot run CPU work faster than serially on one CPU, whatever the noise.
    records = [
        limited(measured("thread", (0.93, 0.70, 1.39), backend_cpu=0.99, noisy=True)),
        limited(measured("process", (0.98, 0.95, 1.0), backend_cpu=0.99, dispatch_s=3e-4)),
    ]
    recommendation = recommend(records, QUOTA)
    assert recommendation.classification == CPU_BOUND
    assert (recommendation.backend, recommendation.shown) == ("process", False)


def test_noisy_rows_of_cpu_work_on_one_cpu_are_cpu_bound_not_inconclusive() -> None:
    records = [
        limited(measured("thread", (0.99, 0.76, 1.04), backend_cpu=0.99, noisy=True)),
        limited(measured("process", (0.96, 0.90, 1.12), backend_cpu=0.99, noisy=True)),
    ]
    recommendation = recommend(records, QUOTA)
    assert recommendation.classification == CPU_BOUND
    assert (recommendation.backend, recommendation.shown) == ("process", False)


def test_the_same_noisy_thread_row_on_two_cpus_keeps_the_verdict_open() -> None:
    records = [
        measured("thread", (0.93, 0.70, 1.39), backend_cpu=0.99, noisy=True),
        measured("process", (0.98, 0.95, 1.0), backend_cpu=0.99, dispatch_s=3e-4),
    ]
    assert recommend(records, GIL).backend == UNDECIDED


@pytest.mark.parametrize(
    ("expected_cpus", "delivered", "busy", "serial_cpu", "most"),
    [
        pytest.param(1.0, 0.99, False, 0.99, 1.0, id="one-usable-cpu"),
        pytest.param(2.0, 0.99, False, 1.0, 0.99, id="threads-holding-the-gil"),
        pytest.param(2.0, 1.9, False, 1.0, 1.9, id="threads-releasing-the-gil"),
        pytest.param(2.0, 1.0, True, 1.0, 2.0, id="starved-judged-by-what-it-could-use"),
        pytest.param(2.0, 0.05, False, 0.02, math.inf, id="waiting-work"),
    ],
)
def test_most_shown_is_the_busy_cpus_over_the_serial_cpu_share_for_cpu_work(
    expected_cpus: float, delivered: float, busy: bool, serial_cpu: float, most: float
) -> None:
    record = dataclasses.replace(
        measured("thread", (1.0, 0.9, 1.1), serial_cpu=serial_cpu),
        capacity=Capacity(expected_cpus, delivered, 0.0),
        machine_busy=busy,
    )
    assert most_shown(record) == pytest.approx(most)


def gil_threads(delivered: float) -> list[ResultRecord]:
    """A noisy thread row that kept *delivered* CPUs busy, beside a clear process row."""
    thread = measured("thread", (1.0, 0.71, 1.53), backend_cpu=delivered, noisy=True)
    process = measured("process", (1.74, 1.51, 2.12), backend_cpu=1.71, dispatch_s=3e-4)
    return [
        dataclasses.replace(thread, capacity=Capacity(2.0, delivered, 0.0)),
        dataclasses.replace(process, capacity=Capacity(2.0, 1.71, 0.0), start_method="fork"),
    ]


def test_a_noisy_thread_row_that_kept_one_cpu_busy_does_not_block_a_clear_process_win() -> None:
    recommendation = recommend(gil_threads(0.99), GIL)
    assert (recommendation.classification, recommendation.backend) == (CPU_BOUND, "process")
    assert recommendation.reason.startswith("process 1.7x vs thread 1.0x")


def test_a_noisy_thread_row_that_kept_two_cpus_busy_keeps_the_verdict_open() -> None:
    assert recommend(gil_threads(1.9), GIL).backend == UNDECIDED


def test_waiting_work_under_a_one_cpu_quota_is_recommended_as_measured() -> None:
    records = [
        limited(measured("thread", (7.8, 7.5, 8.0), serial_cpu=0.02)),
        limited(measured("process", (3.1, 2.9, 3.3), serial_cpu=0.02, dispatch_s=3e-4)),
    ]
    recommendation = recommend(records, QUOTA)
    assert (recommendation.backend, recommendation.shown) == ("thread", True)


def test_cpu_work_whose_process_row_the_machine_starved_still_names_processes() -> None:
    process = dataclasses.replace(
        measured("process", (1.17, 1.15, 1.2), backend_cpu=1.9, dispatch_s=3e-4),
        machine_busy=True,
        capacity=Capacity(2.0, 1.16, 0.02, task_slowdown=1.64),
        start_method="fork",  # a process row, as the measurement records it
    )
    records = [measured("thread", (0.98, 0.96, 1.0), backend_cpu=0.99), process]
    recommendation = recommend(records, GIL)
    assert recommendation.classification == CPU_BOUND
    assert (recommendation.backend, recommendation.shown) == ("process", False)
    assert (
        "the machine delivered 1.2 of 2 CPUs (they ran its tasks 1.6x slower than serially)"
        in recommendation.reason
    )
