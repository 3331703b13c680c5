"""The xdist simulator on small suites worked out on paper."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import FREE

from pytest_parallel_lab.document.codec import DocumentError
from pytest_parallel_lab.document.run import RunDocument, document_from_json
from pytest_parallel_lab.document.suite import (
    CONTROLLER_REPORT_RATIO,
    DEFAULT_REPORT_ROUNDTRIP_S,
    DIST_MODES,
    WORKER_REPORT_RATIO,
    XDIST_SHUTDOWN_S,
    ActualRun,
    Calibration,
    FixtureTiming,
    Prediction,
    SuiteSection,
    TestTiming,
    WorkerTiming,
    XdistAdvice,
)
from pytest_parallel_lab.output.suite_text import render_prediction
from pytest_parallel_lab.suite import simulate as sim_simulate
from pytest_parallel_lab.suite.model import (
    STARTUP_RATIO,
    SimFixture,
    SimTest,
    SuiteModel,
    background_demand,
    calibrate,
    model_from_section,
    scope_units,
)
from pytest_parallel_lab.suite.schedulers import (
    PENDING_CHECK_EVERY,
    IndexedCollection,
    SchedulerOptions,
    SimConfig,
    SimNode,
    count_pending,
    index_collections,
    run_cost,
)
from pytest_parallel_lab.suite.simulate import (
    advise,
    contention,
    default_worker_counts,
    lower_bound,
    predict_all,
    predict_saved_run,
    predict_xdist_wall_time,
)
from pytest_parallel_lab.suite.xdist_schedulers import xdist_scheduler_factory
from pytest_parallel_lab.vocabulary import Outcome

SESSION = SimFixture("::sess@session", "::sess@session", "session", 1.0, 0.0)


def suite(
    costs: list[float],
    uses: tuple[str, ...] = (),
    module: str = "t.py",
    fixtures: tuple[SimFixture, ...] = (),
    calibration: Calibration = FREE,
) -> SuiteModel:
    tests = tuple(SimTest(f"{module}::t{i}", c, uses) for i, c in enumerate(costs))
    return SuiteModel(tests, {f.id: f for f in fixtures}, calibration)


@pytest.mark.parametrize(
    ("model", "workers", "dist", "wall"),
    [
        # a 1 s session fixture and four 1 s tests: each of 2 workers pays the fixture
        (suite([1, 1, 1, 1], (SESSION.id,), fixtures=(SESSION,)), 2, "load", 3.0),
        (suite([1, 1, 1, 1], (SESSION.id,), fixtures=(SESSION,)), 1, "load", 5.0),
        (suite([1, 1, 1, 1], (SESSION.id,), fixtures=(SESSION,)), 2, "worksteal", 3.0),
        # one module is one unit for loadscope: the second worker gets nothing
        (suite([1, 1, 1, 1], (SESSION.id,), fixtures=(SESSION,)), 2, "loadscope", 5.0),
        # 8 one-second tests on 4 workers but 2 CPUs: each worker runs at half speed
        (suite([1] * 8), 4, "load", 4.0),
        # a long first test: load and worksteal both end when it and its neighbour end
        (suite([8, 1, 1, 1, 1, 1, 1, 1]), 2, "load", 9.0),
        (suite([8, 1, 1, 1, 1, 1, 1, 1]), 2, "worksteal", 9.0),
    ],
)
def test_the_simulator_matches_suites_worked_out_on_paper(
    model: SuiteModel, workers: int, dist: str, wall: float
) -> None:
    assert predict_xdist_wall_time(model, workers, dist).wall_s == pytest.approx(wall)


def test_loadscope_gives_each_module_to_one_worker_with_its_own_module_fixture() -> None:
    fixture_a = SimFixture("a.py::m@module", "a.py::m@module", "module", 1.0, 0.0)
    fixture_b = SimFixture("b.py::m@module", "b.py::m@module", "module", 1.0, 0.0)
    tests = (
        SimTest("a.py::t0", 1.0, (fixture_a.id,)),
        SimTest("a.py::t1", 1.0, (fixture_a.id,)),
        SimTest("b.py::t0", 1.0, (fixture_b.id,)),
        SimTest("b.py::t1", 1.0, (fixture_b.id,)),
    )
    model = SuiteModel(tests, {fixture_a.id: fixture_a, fixture_b.id: fixture_b}, FREE)
    assert predict_xdist_wall_time(model, 2, "loadscope").wall_s == pytest.approx(3.0)
    assert predict_xdist_wall_time(model, 3, "loadscope").worker_finish_s == (3.0, 3.0)


def test_a_parametrized_module_fixture_is_torn_down_when_its_param_changes() -> None:
    one = SimFixture("t.py::m[1]@module", "t.py::m@module", "module", 1.0, 0.5)
    two = SimFixture("t.py::m[2]@module", "t.py::m@module", "module", 1.0, 0.5)
    tests = (SimTest("t.py::a[1]", 0.0, (one.id,)), SimTest("t.py::a[2]", 0.0, (two.id,)))
    model = SuiteModel(tests, {one.id: one, two.id: two}, FREE)
    # setup 1, teardown 1 when 2 arrives, setup 2, teardown 2 at the end
    assert predict_xdist_wall_time(model, 1, "load").wall_s == pytest.approx(3.0)


def test_the_controller_handles_every_report_before_the_scheduler_sends_more() -> None:
    cal = dataclasses.replace(FREE, controller_report_s=0.1)
    tiny = suite([0, 0, 0, 0], calibration=cal)
    # One worker: load sends tests 0 and 1; the worker runs 0 (it holds 1), the
    # controller takes 0.3 s over its three reports, then sends test 2, and so on: the
    # worker waits on the controller, 12 reports of 0.1 s.
    assert predict_xdist_wall_time(tiny, 1, "load").wall_s == pytest.approx(1.2)
    # Two workers get all four tests at once, but there is one controller: -n 2 is no
    # faster on tests this small, however many CPUs.
    assert predict_xdist_wall_time(tiny, 2, "load").wall_s == pytest.approx(1.2)
    assert predict_xdist_wall_time(tiny, 2, "load").lower_bound_s == pytest.approx(1.2)


def test_the_controller_and_the_workers_that_fill_the_cpus_slow_each_other() -> None:
    cal = dataclasses.replace(FREE, controller_report_s=0.05)
    # One worker, four 1 s tests: load keeps it one test ahead, so after each test it
    # waits 0.15 s for the controller to handle three reports and send the next:
    # 4 s of tests and 4 waits. It leaves a CPU to the controller.
    one = predict_xdist_wall_time(suite([1] * 4, calibration=cal), 1, "load").wall_s
    assert one == pytest.approx(4.6)
    # Two workers get two tests each at once: no waits, but the controller and the
    # workers share the two CPUs. First pass: the first tests' reports (0.3 s of CPU)
    # are handled while both workers run their second tests, three tasks on two CPUs:
    # 0.45 s; the last ones after the last test, alone: 0.3 s. The controller was busy
    # 0.75 s of a 2.3 s session; that share slows the workers in the second pass, and
    # its last reports still follow the last test.
    slow = (2 + 0.75 / 2.3) / 2
    two = predict_xdist_wall_time(suite([1] * 4, calibration=cal), 2, "load").wall_s
    assert two == pytest.approx(2 * slow + 0.3)


def test_a_waiting_suite_scales_past_the_cpus_and_a_cpu_bound_one_does_not() -> None:
    waiting = SuiteModel(tuple(SimTest(f"t.py::t{i}", 1.0, cpu_share=0.0) for i in range(8)))
    waiting = dataclasses.replace(waiting, calibration=FREE)
    busy = dataclasses.replace(
        waiting, tests=tuple(dataclasses.replace(t, cpu_share=1.0) for t in waiting.tests)
    )
    half = dataclasses.replace(
        waiting, tests=tuple(dataclasses.replace(t, cpu_share=0.75) for t in waiting.tests)
    )
    # 8 one-second tests on 4 workers and 2 CPUs: sleeping ones overlap fully, CPU
    # ones run at half speed, and at 75% CPU the demand is 3 CPUs: 0.25 + 0.75 * 1.5
    assert predict_xdist_wall_time(waiting, 4, "load").wall_s == pytest.approx(2.0)
    assert predict_xdist_wall_time(busy, 4, "load").wall_s == pytest.approx(4.0)
    assert predict_xdist_wall_time(half, 4, "load").wall_s == pytest.approx(2.75)
    # the bound knows it too: the CPU part of the work spread over 2 CPUs
    assert predict_xdist_wall_time(busy, 4, "load").lower_bound_s == pytest.approx(4.0)
    assert predict_xdist_wall_time(waiting, 4, "load").lower_bound_s == pytest.approx(2.0)


def test_a_long_test_speeds_up_once_the_short_ones_beside_it_are_done() -> None:
    # Three CPU-bound tests of 4 s, 1 s and 1 s, one on each of 3 workers, on 2 CPUs.
    # All three run 1.5 times slower until the short ones end at 1.5 s. By then a
    # quarter of the long one is done (1.5 s of 6); its 3 s left run alone, at full
    # speed: it ends at 4.5 s. A pace fixed at the test's start would say 6 s.
    model = suite([4, 1, 1])
    prediction = predict_xdist_wall_time(model, 3, "load")
    assert prediction.wall_s == pytest.approx(4.5)
    assert sorted(prediction.worker_finish_s) == pytest.approx([1.5, 1.5, 4.5])
    # The long one waits half of its time: the demand is 2.5 CPUs on 2, 1.25 times
    # slower for the CPU parts, until the short ones end at 1.25 s. At that pace the
    # long one takes 2 + 2 * 1.25 = 4.5 s, so 1.25/4.5 of it is done; the rest of its
    # 4 s runs unslowed.
    half = dataclasses.replace(
        model, tests=(dataclasses.replace(model.tests[0], cpu_share=0.5), *model.tests[1:])
    )
    assert predict_xdist_wall_time(half, 3, "load").wall_s == pytest.approx(
        1.25 + (1 - 1.25 / (2 + 2 * 1.25)) * 4
    )


def test_other_processes_demand_slows_the_workers_relative_to_the_measured_run() -> None:
    # 8 CPU-bound 1 s tests measured serially on 2 CPUs while another process kept one
    # CPU busy: 1 + 1 of demand on 2 CPUs, the measured times are unslowed. On 2 workers
    # the demand is 2 + 1 on 2 CPUs: each test takes 1.5 s, 4 tests a worker: 6 s.
    busy = SuiteModel(tuple(SimTest(f"t.py::t{i}", 1.0, cpu_share=1.0) for i in range(8)))
    quiet = dataclasses.replace(busy, calibration=FREE)
    loaded = dataclasses.replace(busy, calibration=dataclasses.replace(FREE, background_demand=1.0))
    assert predict_xdist_wall_time(quiet, 2, "load").wall_s == pytest.approx(4.0)
    assert predict_xdist_wall_time(loaded, 2, "load").wall_s == pytest.approx(6.0)
    # Two others on 2 CPUs: the measured run had 2/3 of a CPU (times slowed by 1.5);
    # on 2 workers 4 tasks share 2 CPUs (slowed by 2): 2 / 1.5 of the measured times.
    two = dataclasses.replace(busy, calibration=dataclasses.replace(FREE, background_demand=2.0))
    assert predict_xdist_wall_time(two, 2, "load").wall_s == pytest.approx(4 * 2 / 1.5)
    # waiting tests do not compete; the bound assumes the others are gone
    waiting = dataclasses.replace(
        loaded, tests=tuple(dataclasses.replace(t, cpu_share=0.0) for t in busy.tests)
    )
    assert predict_xdist_wall_time(waiting, 2, "load").wall_s == pytest.approx(4.0)
    assert predict_xdist_wall_time(loaded, 2, "load").lower_bound_s == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("other_cpu_s", "wall_s", "cpus", "demand"),
    [
        (0.0, 10.0, 2, 0.0),
        (5.0, 10.0, 2, 0.5),  # half a CPU: it had a CPU of its own, it used half
        (10.0, 10.0, 2, 1.0),  # exactly the other CPU
        # 4/3 of the CPUs: the run and two others shared 2 CPUs (2/3 each)
        (40.0 / 3.0, 10.0, 2, 2.0),
        (20.0, 10.0, 2, 8.0),  # everything: capped at 4 per CPU
        (3.0, 10.0, 1, 3.0 / 7.0),  # one CPU: L = K / (1 + K)
    ],
)
def test_the_background_demand_is_what_other_processes_used_shared_fairly(
    other_cpu_s: float, wall_s: float, cpus: int, demand: float
) -> None:
    assert background_demand(other_cpu_s, wall_s, cpus) == pytest.approx(demand)


def test_start_up_and_collection_are_paid_once_per_worker_in_parallel() -> None:
    cal = Calibration(
        startup_s=0.5,
        collection_s=0.25,
        cpus=2,
        shutdown_s=0.0,
        controller_report_s=0.0,
        worker_report_s=0.0,
    )
    prediction = predict_xdist_wall_time(suite([1, 1, 1, 1], calibration=cal), 2, "load")
    assert prediction.wall_s == pytest.approx(2.75)
    assert prediction.lower_bound_s == pytest.approx(2.75)


LOADED = dataclasses.replace(FREE, controller_report_s=0.01, startup_s=0.5, collection_s=0.1)


def two_unequal_modules() -> SuiteModel:
    # One long module and one short one, as in examples/: the long module runs alone
    # at the end of a scope mode, with a CPU to itself.
    big = suite([4, 4, 4, 4, 4], module="big.py", calibration=LOADED)
    small = suite([1, 1], module="small.py", calibration=LOADED)
    return SuiteModel(big.tests + small.tests, {}, LOADED)


@pytest.mark.parametrize("dist", ["load", "loadscope", "loadfile", "loadgroup", "worksteal"])
@pytest.mark.parametrize(
    "model",
    [
        suite([3, 1, 2, 1, 1, 5, 1, 1, 1], (SESSION.id,), fixtures=(SESSION,)),
        two_unequal_modules(),
    ],
    ids=["one-module-with-a-session-fixture", "two-unequal-modules-with-controller-load"],
)
def test_the_lower_bound_never_exceeds_the_prediction(model: SuiteModel, dist: str) -> None:
    for workers in (1, 2, 3, 4):
        p = predict_xdist_wall_time(model, workers, dist)
        assert p.lower_bound_s <= p.wall_s + 1e-9


def test_every_test_runs_exactly_once_whatever_the_mode() -> None:
    model = suite([0.1 * (i % 7) for i in range(101)])
    total = sum(t.base_s for t in model.tests)
    for dist in ("load", "worksteal", "loadscope"):
        p = predict_xdist_wall_time(model, 3, dist)
        # without fixtures and on 3 workers the work splits but never shrinks
        assert p.wall_s * 3 >= total - 1e-9


@pytest.mark.parametrize(
    ("nodeids", "dist", "units"),
    [
        (["a.py::x", "a.py::C::y", "a.py::C::z", "b.py::w"], "loadscope", [[0], [1, 2], [3]]),
        (["a.py::x", "a.py::C::y", "a.py::C::z", "b.py::w"], "loadfile", [[0, 1, 2], [3]]),
    ],
)
def test_scope_units_follow_xdist_rules(
    nodeids: list[str], dist: str, units: list[list[int]]
) -> None:
    assert scope_units(nodeids, dist) == units


def test_unknown_dist_mode_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="loadscope"):
        predict_xdist_wall_time(suite([1]), 2, "each")


def test_the_recommendation_says_plainly_when_n_makes_the_suite_slower() -> None:
    cal = Calibration(startup_s=2.0, cpus=2)
    model = suite([0.01] * 10, calibration=cal)
    predictions = [predict_xdist_wall_time(model, 2, "load")]
    advice = advise(predictions, serial_wall_s=0.2)
    assert isinstance(advice, XdistAdvice)
    assert advice.workers == 0
    assert advice.dist is None
    assert advice.wall_s == 0.2
    assert "slower" in advice.message
    assert "run without -n" in advice.message


def test_the_recommendation_picks_the_fastest_configuration() -> None:
    model = suite([1] * 8)
    predictions = [predict_xdist_wall_time(model, n, "load") for n in (2, 4)]
    advice = advise(predictions, serial_wall_s=8.0)
    assert (advice.workers, advice.dist) == (2, "load")
    assert advice.wall_s == pytest.approx(4.0)
    assert advice.message == "use -n 2 --dist load: predicted 4.00s (2.00x)"


def test_the_advice_without_a_serial_time_names_the_fastest_and_claims_no_gain() -> None:
    model = suite([1] * 8)
    predictions = [predict_xdist_wall_time(model, n, "load") for n in (2, 4)]
    advice = advise(predictions, serial_wall_s=None)
    assert (advice.workers, advice.dist) == (2, "load")
    assert advice.message == (
        "fastest predicted: -n 2 --dist load: predicted 4.00s; "
        "no serial time to compare with (the run used -n)"
    )


def test_a_saved_xdist_run_is_no_serial_baseline() -> None:
    # Its wall time is the -n N run's: once it was taken for the serial time.
    section = SuiteSection(
        tests=(TestTiming("t.py::test_a", "gw0", 0.0, 1.0, 0.0, Outcome.PASSED),),
        wall_s=2.0,
        actual=ActualRun(2, "load", 2.0),
    )
    assert model_from_section(section).serial_wall_s is None
    assert model_from_section(dataclasses.replace(section, actual=None)).serial_wall_s == 2.0
    assert model_from_section(dataclasses.replace(section, serial_wall_s=3.0)).serial_wall_s == 3.0


def test_the_advice_on_nothing_predicted_says_so() -> None:
    assert advise([], serial_wall_s=1.0) == XdistAdvice(0, None, 1.0, "nothing to predict")


@pytest.mark.parametrize(
    ("cpus", "extra", "counts"),
    [
        (1, [], [2]),
        (4, [], [2, 3, 4]),
        (2, [8, 2], [2, 8]),
        (64, [], [2, 3, 4, 5, 6, 7, 8, 16, 32, 64]),
    ],
)
def test_default_worker_counts_go_from_two_to_the_cpus_plus_requested(
    cpus: int, extra: list[int], counts: list[int]
) -> None:
    assert default_worker_counts(cpus, extra) == counts


SECTION = SuiteSection(
    tests=(
        TestTiming(
            nodeid="t.py::a",
            worker="main",
            setup_s=1.0,
            call_s=1.0,
            teardown_s=0.0,
            outcome=Outcome.PASSED,
            fixture_s=1.0,
            uses=("::s@session",),
            index=0,
        ),
        TestTiming(
            nodeid="t.py::b",
            worker="main",
            setup_s=0.0,
            call_s=1.0,
            teardown_s=0.0,
            outcome=Outcome.PASSED,
            fixture_s=0.0,
            uses=("::s@session",),
            index=1,
        ),
    ),
    fixtures=(
        FixtureTiming(
            id="::s@session",
            name="s",
            scope="session",
            baseid="",
            param=None,
            worker="main",
            setup_s=1.0,
            teardown_s=0.0,
            instances=1,
        ),
    ),
    workers=(),
    wall_s=3.0,
    calibration=FREE,
)


def test_a_saved_section_becomes_a_model_without_double_counting_fixtures() -> None:
    model = model_from_section(SECTION)
    assert [t.base_s for t in model.tests] == [1.0, 1.0]
    assert [t.serial_fixture_s for t in model.tests] == [1.0, 0.0]
    assert model.fixtures["::s@session"].key == "::s@session"
    assert model.calibration == FREE
    assert model.serial_wall_s == 3.0
    # each of the two workers sets up the session fixture: 1 + 1
    assert predict_xdist_wall_time(model, 2, "load").wall_s == pytest.approx(2.0)


def test_a_model_follows_the_collection_order_and_keeps_only_known_fixtures() -> None:
    section = dataclasses.replace(
        SECTION,
        tests=(
            dataclasses.replace(SECTION.tests[1], uses=("::s@session", "::gone@session")),
            SECTION.tests[0],
        ),
    )
    model = model_from_section(section)
    assert [t.nodeid for t in model.tests] == ["t.py::a", "t.py::b"]
    assert [t.uses for t in model.tests] == [("::s@session",), ("::s@session",)]


def test_a_fixture_measured_on_several_workers_costs_its_mean_per_instance() -> None:
    def on(worker: str, setup_s: float, teardown_s: float, instances: int) -> FixtureTiming:
        return FixtureTiming(
            "t.py::m[1]@module", "m", "module", "t.py", "1", worker, setup_s, teardown_s, instances
        )

    section = SuiteSection(fixtures=(on("gw0", 3.0, 1.0, 2), on("gw1", 1.0, 0.5, 2)))
    (fixture,) = model_from_section(section).fixtures.values()
    assert fixture == SimFixture("t.py::m[1]@module", "t.py::m@module", "module", 1.0, 0.375)


def test_a_section_without_calibration_takes_the_documented_defaults() -> None:
    model = model_from_section(dataclasses.replace(SECTION, calibration=None))
    assert model.calibration == Calibration()
    assert (
        model.calibration.startup_s,
        model.calibration.cpus,
        model.calibration.shutdown_s,
        model.calibration.controller_report_s,
        model.calibration.worker_report_s,
    ) == (
        0.5,
        1,
        XDIST_SHUTDOWN_S,
        DEFAULT_REPORT_ROUNDTRIP_S * CONTROLLER_REPORT_RATIO,
        DEFAULT_REPORT_ROUNDTRIP_S * WORKER_REPORT_RATIO,
    )
    assert (XDIST_SHUTDOWN_S, DEFAULT_REPORT_ROUNDTRIP_S) == (0.15, 0.00015)


def test_the_dist_modes_are_the_five_xdist_load_modes_in_report_order() -> None:
    assert DIST_MODES == ("load", "loadscope", "loadfile", "loadgroup", "worksteal")


def test_a_serial_run_is_calibrated_from_its_one_process() -> None:
    section = SuiteSection(
        workers=(WorkerTiming("main", 0.0, 0.5, 3.0, 0.5, 4, 4.0),),
        wall_s=4.0,
    )
    calibration = calibrate(
        section, xdist_workers=0, process_age_s=0.5, cpus=2, report_roundtrip_s=0.001
    )
    # start-up: STARTUP_RATIO times the 0.5 s the serial process took to start;
    # per test: (4.0 wall - 0.5 collection - 3.0 busy) / 4 tests; per report: the
    # timed round trip scaled by the fitted ratios
    assert calibration == Calibration(
        startup_s=pytest.approx(0.5 * STARTUP_RATIO),
        collection_s=0.5,
        per_test_overhead_s=0.125,
        cpus=2,
        shutdown_s=XDIST_SHUTDOWN_S,
        report_roundtrip_s=0.001,
        controller_report_s=pytest.approx(0.001 * CONTROLLER_REPORT_RATIO),
        worker_report_s=pytest.approx(0.001 * WORKER_REPORT_RATIO),
    )


def test_a_serial_run_of_unknown_age_and_no_slack_is_calibrated_with_defaults() -> None:
    section = SuiteSection(
        workers=(WorkerTiming("main", 0.0, 0.5, 3.0, 0.0, 2, 3.5),),
        wall_s=3.25,  # less than collection plus busy: no overhead, never negative
    )
    calibration = calibrate(section, xdist_workers=0, process_age_s=None, cpus=1)
    assert calibration.startup_s == pytest.approx(0.3 * STARTUP_RATIO)
    assert (calibration.collection_s, calibration.per_test_overhead_s) == (0.5, 0.0)
    assert calibration.cpus == 1


def test_a_serial_run_without_a_worker_row_puts_its_wall_time_into_overhead() -> None:
    calibration = calibrate(SuiteSection(wall_s=0.5), xdist_workers=0, process_age_s=1.0, cpus=4)
    assert (calibration.startup_s, calibration.collection_s) == (STARTUP_RATIO, 0.0)
    assert calibration.per_test_overhead_s == 0.5  # one test at least, so no division by 0


def test_an_xdist_run_is_calibrated_from_its_workers_means() -> None:
    section = SuiteSection(
        workers=(
            WorkerTiming("gw0", 1.0, 0.5, 3.0, 0.25, 3, 5.0),
            WorkerTiming("gw1", 1.5, 0.25, 2.0, 0.75, 1, 4.5),
        ),
        wall_s=5.5,
    )
    calibration = calibrate(
        section, xdist_workers=2, process_age_s=9.0, cpus=4, controller_cpu_s=0.6
    )
    # start-up and collection: means over the workers (the process age is not used);
    # per test: (0.25 + 0.75) idle / 4 tests. The workers' cost of sending reports is
    # in their idle time; the controller's is its CPU time over the reports it got
    # (none are listed here, so the fitted default stands).
    assert calibration == Calibration(
        startup_s=1.25,
        collection_s=0.375,
        per_test_overhead_s=0.25,
        cpus=4,
        shutdown_s=XDIST_SHUTDOWN_S,
        worker_report_s=0.0,
    )


def test_the_prediction_from_a_saved_run_covers_the_requested_workers() -> None:
    saved = predict_saved_run(RunDocument(suite=SECTION), [2, 3], ["load"])
    assert [(p.workers, p.dist) for p in saved.predictions] == [(2, "load"), (3, "load")]
    assert [p.wall_s for p in saved.predictions] == [pytest.approx(2.0), pytest.approx(2.0)]
    assert saved.serial_wall_s == 3.0
    assert saved.advice == XdistAdvice(
        2, "load", pytest.approx(2.0), "use -n 2 --dist load: predicted 2.00s (1.50x)"
    )
    text = render_prediction(saved.predictions, saved.advice, saved.serial_wall_s)
    assert "xdist prediction" in text
    assert "loadscope" not in text
    assert "recommendation: use -n 2 --dist load" in text
    assert "1.50x" in text


def test_the_prediction_from_a_saved_run_defaults_to_every_mode_up_to_its_cpus() -> None:
    saved = predict_saved_run(RunDocument(suite=SECTION))
    # no usable CPU count in the environment: the calibration's 2 CPUs
    # (loadgroup only for a suite with xdist_group marks)
    modes = [d for d in DIST_MODES if d != "loadgroup"]
    assert [(p.workers, p.dist) for p in saved.predictions] == [(2, d) for d in modes]


def test_a_saved_run_read_back_from_json_predicts_the_same() -> None:
    document = RunDocument(suite=SECTION)
    loaded = document_from_json(json.loads(json.dumps(document.to_json_dict())))
    assert loaded.suite == SECTION
    assert predict_saved_run(loaded, [2, 3]) == predict_saved_run(document, [2, 3])


def test_the_prediction_from_a_saved_run_needs_a_suite_section() -> None:
    with pytest.raises(DocumentError, match="no 'suite' section"):
        predict_saved_run(RunDocument())
    with pytest.raises(DocumentError, match="no 'suite' section"):
        predict_saved_run(RunDocument(suite=SuiteSection()))


def test_the_prediction_from_a_saved_run_refuses_an_unknown_dist_mode() -> None:
    with pytest.raises(DocumentError, match="unknown dist mode 'each'"):
        predict_saved_run(RunDocument(suite=SECTION), [2], ["each"])


@pytest.mark.parametrize(
    ("demand", "cpus", "slowdown"),
    [(2, 2, 1.0), (1, 2, 1.0), (4, 2, 2.0), (2.5, 2, 1.25), (1.5, 2, 1.0), (3, 0, 3.0)],
)
def test_contention_slows_cpu_work_only_when_the_demand_outnumbers_the_cpus(
    demand: float, cpus: int, slowdown: float
) -> None:
    assert contention(demand, cpus) == pytest.approx(slowdown)


def test_the_lower_bound_is_the_even_share_of_the_work_counting_each_instance_once() -> None:
    model = suite([1, 1, 1, 1], (SESSION.id,), fixtures=(SESSION,))
    # 4 tests and one session instance: 5 s of work, 2.5 s each on two workers,
    # more than the biggest test with its fixture (2 s)
    assert model.total_work_s == pytest.approx(5.0)
    assert model.biggest_test_s == pytest.approx(2.0)
    assert lower_bound(model, 2, "load") == pytest.approx(2.5)
    # one module is one unit: it cannot be split
    assert lower_bound(model, 2, "loadscope") == pytest.approx(5.0)


def test_a_worker_pays_a_fixture_setup_once_while_its_scope_lasts() -> None:
    model = suite([1, 1], (SESSION.id,), fixtures=(SESSION,))
    worker = SimNode(0, 2, lambda node, indices: None)
    assert run_cost(model, worker, 0) == pytest.approx(2.0)
    assert run_cost(model, worker, 1) == pytest.approx(1.0)
    assert run_cost(model, SimNode(1, 2, lambda node, indices: None), 1) == pytest.approx(2.0)


def test_predict_all_goes_through_every_count_then_every_mode() -> None:
    model = suite([3, 1, 2, 1], (SESSION.id,), fixtures=(SESSION,))
    predictions = predict_all(model, [2, 3], ["load", "loadscope", "loadfile"])
    assert all(isinstance(p, Prediction) for p in predictions)
    assert [(p.workers, p.dist) for p in predictions] == [
        (2, "load"),
        (2, "loadscope"),
        (2, "loadfile"),
        (3, "load"),
        (3, "loadscope"),
        (3, "loadfile"),
    ]
    # without classes, a module is a file: both scope modes predict the same
    for scope, file in ((predictions[1], predictions[2]), (predictions[4], predictions[5])):
        assert (file.wall_s, file.lower_bound_s) == (scope.wall_s, scope.lower_bound_s)
    assert predictions == [predict_xdist_wall_time(model, p.workers, p.dist) for p in predictions]


def test_loadgroup_keeps_a_group_on_one_worker_and_spreads_the_rest() -> None:
    tests = (
        SimTest("t.py::t0", 1.0, group="a"),
        SimTest("t.py::t1", 1.0, group="a"),
        SimTest("t.py::t2", 1.0),
        SimTest("t.py::t3", 1.0),
    )
    model = SuiteModel(tests, {}, FREE)
    # Units: the group (2 tests), t2, t3. The group goes to gw0, t2 to gw1; gw0 has
    # only 2 pending, so xdist hands it t3 too: 3 s, where load takes 2 s.
    assert predict_xdist_wall_time(model, 2, "loadgroup").wall_s == pytest.approx(3.0)
    assert predict_xdist_wall_time(model, 2, "load").wall_s == pytest.approx(2.0)
    assert model.collection("loadgroup")[:3] == ["t.py::t0@a", "t.py::t1@a", "t.py::t2"]
    assert [p.dist for p in predict_all(model, [2])] == list(DIST_MODES)


def test_no_loadscope_reorder_hands_out_scopes_in_collection_order() -> None:
    tests = tuple(
        SimTest(f"{module}::t{i}", 1.0)
        for module, count in (("a.py", 1), ("b.py", 1), ("c.py", 3))
        for i in range(count)
    )
    model = SuiteModel(tests, {}, FREE)
    # Largest scope first: c (3 tests) to gw0, a then b to gw1: 3 s. In collection
    # order: a to gw0, b to gw1, and gw0 (1 pending) takes c: 4 s.
    assert predict_xdist_wall_time(model, 2, "loadscope").wall_s == pytest.approx(3.0)
    unordered = SchedulerOptions(loadscope_reorder=False)
    assert predict_xdist_wall_time(model, 2, "loadscope", options=unordered).wall_s == (
        pytest.approx(4.0)
    )


class AllOnTheFirstNode:
    """A third-party scheduler: every test to the first worker that collected."""

    def __init__(self, config: SimConfig) -> None:
        self.numnodes = config.getvalue("numprocesses")
        self.nodes: list[SimNode] = []
        self.pending = 0
        self.collection: list[str] = []

    @property
    def collection_is_completed(self) -> bool:
        return len(self.nodes) == self.numnodes and bool(self.collection)

    @property
    def tests_finished(self) -> bool:
        return self.pending == 0

    def add_node(self, node: SimNode) -> None:
        self.nodes.append(node)

    def add_node_collection(self, node: SimNode, collection: list[str]) -> None:
        self.collection = list(collection)

    def schedule(self) -> None:
        self.pending = len(self.collection)
        self.nodes[0].send_runtest_some(range(len(self.collection)))
        for node in self.nodes:
            node.shutdown()

    def mark_test_complete(self, node: SimNode, item_index: int, duration: float = 0) -> None:
        self.pending -= 1

    def remove_pending_tests_from_node(self, node: SimNode, indices: list[int]) -> None:
        raise AssertionError("never steals")

    def remove_node(self, node: SimNode) -> str | None:
        return None


def test_the_prediction_follows_whatever_scheduler_the_factory_makes() -> None:
    model = suite([1, 1, 1, 1])

    def factory(dist: str, config: SimConfig) -> AllOnTheFirstNode:
        return AllOnTheFirstNode(config)

    assert predict_xdist_wall_time(model, 2, "load", factory).wall_s == pytest.approx(4.0)
    assert predict_xdist_wall_time(model, 2, "load").wall_s == pytest.approx(2.0)


def test_the_xdist_factory_asks_the_make_scheduler_hook_first() -> None:
    asked: list[str] = []

    class Hook:
        def pytest_xdist_make_scheduler(self, config: SimConfig, log: object) -> object:
            asked.append(config.getvalue("dist"))
            return AllOnTheFirstNode(config) if config.getvalue("dist") == "load" else None

    class Config:
        hook = Hook()

    factory = xdist_scheduler_factory(Config())
    model = suite([1, 1, 1, 1])
    assert predict_xdist_wall_time(model, 2, "load", factory).wall_s == pytest.approx(4.0)
    # None from the hook: xdist's own class for the mode
    assert predict_xdist_wall_time(model, 2, "worksteal", factory).wall_s == pytest.approx(2.0)
    assert asked == ["load", "worksteal"]
    # Without xdist's hook (-p no:xdist), xdist's classes are used directly.
    assert predict_xdist_wall_time(model, 2, "load", xdist_scheduler_factory(object())).wall_s == (
        pytest.approx(2.0)
    )


def test_a_refused_steal_is_answered_when_the_worker_next_ends_a_test() -> None:
    # worksteal on uneven tests asks for tests a worker may already hold; the
    # simulation must still end, with every test run once.
    model = suite([5, 0.1, 0.1, 0.1, 3, 0.1, 0.1, 2, 0.1, 0.1, 0.1, 0.1])
    for workers in (2, 3, 4):
        prediction = predict_xdist_wall_time(model, workers, "worksteal")
        assert prediction.wall_s >= prediction.lower_bound_s
        assert prediction.wall_s < sum(t.base_s for t in model.tests)


def test_the_advice_on_a_suite_of_zero_times_names_no_ratio() -> None:
    advice = advise([Prediction(2, "load", 0.0, 0.0)], serial_wall_s=1.0)
    assert (advice.workers, advice.dist) == (0, None)
    assert "0 s" in advice.message


def test_an_indexed_collection_answers_index_as_a_list_does_even_after_a_change() -> None:
    ids = ["a", "b", "a", "c"]
    indexed = IndexedCollection(ids)
    assert indexed == ids
    assert [indexed.index(x) for x in "abc"] == [0, 1, 3]
    assert indexed.index("a", 1) == 2
    with pytest.raises(ValueError):
        indexed.index("z")
    indexed.insert(0, "c")  # the table is stale now: list.index answers
    assert [indexed.index(x) for x in "abc"] == [1, 2, 0]


def test_the_scope_schedulers_get_indexed_collections_and_schedule_the_same() -> None:
    factory = xdist_scheduler_factory()
    scheduler = factory("loadscope", SimConfig(2, "loadscope", SchedulerOptions()))
    node = SimNode(0, 2, lambda node, indices: None)
    scheduler.add_node(node)
    scheduler.add_node_collection(node, ["m.py::a", "m.py::b"])
    index_collections(scheduler, node)
    assert isinstance(scheduler.registered_collections[node], IndexedCollection)
    # Two modules, one per worker: a.py's 1 + 2 s beside b.py's 3 + 4 s.
    tests = tuple(
        SimTest(f"{m}.py::t{i}", c, ())
        for i, (m, c) in enumerate([("a", 1.0), ("a", 2.0), ("b", 3.0), ("b", 4.0)])
    )
    model = SuiteModel(tests, {}, FREE)
    for dist in ("loadscope", "loadfile"):
        prediction = predict_xdist_wall_time(model, 2, dist)
        assert prediction.wall_s == pytest.approx(7.0)
        assert sorted(prediction.worker_finish_s) == pytest.approx([3.0, 7.0])


def test_the_scope_schedulers_counted_pending_tests_change_no_prediction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Three files of unequal sizes, on 2 and 3 workers: the same schedule either way.
    sizes = {"a": 7, "b": 3, "c": 5}
    tests = tuple(
        SimTest(f"{name}.py::t{i}", 0.1 * (i % 3 + 1), ())
        for name, count in sizes.items()
        for i in range(count)
    )
    model = SuiteModel(tests, {}, FREE)
    runs = [(n, dist) for n in (2, 3) for dist in ("loadscope", "loadfile")]
    counted = [predict_xdist_wall_time(model, n, dist) for n, dist in runs]
    monkeypatch.setattr(sim_simulate, "count_pending", lambda scheduler: None)
    theirs = [predict_xdist_wall_time(model, n, dist) for n, dist in runs]
    assert [(p.wall_s, p.worker_finish_s) for p in counted] == [
        (p.wall_s, p.worker_finish_s) for p in theirs
    ]


def test_a_counted_pending_that_disagrees_with_the_scheduler_gives_way_to_its_own() -> None:
    class Books:
        """A scheduler keeping its books otherwise: five pending, whatever was sent."""

        def __init__(self, node: SimNode) -> None:
            self.assigned_work = {node: {"scope": {}}}

        def _pending_of(self, workload: object) -> int:
            return 5

    node = SimNode(0, 4, lambda node, indices: None)
    node.send_runtest_some([0, 1])
    scheduler = Books(node)
    count_pending(scheduler)
    workload = scheduler.assigned_work[node]
    answers = [scheduler._pending_of(workload) for _ in range(PENDING_CHECK_EVERY + 2)]
    assert answers[: PENDING_CHECK_EVERY - 1] == [2] * (PENDING_CHECK_EVERY - 1)
    assert answers[PENDING_CHECK_EVERY - 1 :] == [5, 5, 5]  # its own, from the check on
    assert "_pending_of" not in vars(scheduler)
