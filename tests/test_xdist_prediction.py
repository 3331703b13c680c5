"""The xdist simulator on small suites worked out on paper."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_parallel_lab.document.run import DocumentError, RunDocument
from pytest_parallel_lab.suite.simulate import (
    Calibration,
    SimFixture,
    SimTest,
    SuiteModel,
    default_worker_counts,
    model_from_section,
    predict_document_text,
    predict_xdist_wall_time,
    recommend,
    scope_units,
)

#: No start-up, no overhead, two CPUs: only tests and fixtures cost time.
FREE = Calibration(
    startup_s=0.0,
    collection_s=0.0,
    per_test_overhead_s=0.0,
    cpus=2,
    xdist_per_test_s=0.0,
    controller_load=0.0,
    shutdown_s=0.0,
)
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


def test_the_controller_share_of_a_cpu_slows_workers_that_fill_the_cpus() -> None:
    cal = dataclasses.replace(FREE, controller_load=0.5)
    # (2 workers + half a CPU) on 2 CPUs: 1.25x on two 1 s tests each
    assert predict_xdist_wall_time(suite([1] * 4, calibration=cal), 2, "load").wall_s == (
        pytest.approx(2.5)
    )
    # one worker leaves a CPU free for the controller
    assert predict_xdist_wall_time(suite([1] * 4, calibration=cal), 1, "load").wall_s == (
        pytest.approx(4.0)
    )


def test_start_up_and_collection_are_paid_once_per_worker_in_parallel() -> None:
    cal = Calibration(
        startup_s=0.5,
        collection_s=0.25,
        cpus=2,
        xdist_per_test_s=0.0,
        controller_load=0.0,
        shutdown_s=0.0,
    )
    prediction = predict_xdist_wall_time(suite([1, 1, 1, 1], calibration=cal), 2, "load")
    assert prediction.wall_s == pytest.approx(2.75)
    assert prediction.lower_bound_s == pytest.approx(2.75)


LOADED = dataclasses.replace(FREE, controller_load=0.4, startup_s=0.5, collection_s=0.1)


def two_unequal_modules() -> SuiteModel:
    # One long module and one short one, as in examples/: the long module runs alone
    # at the end of a scope mode, with a CPU to itself.
    big = suite([4, 4, 4, 4, 4], module="big.py", calibration=LOADED)
    small = suite([1, 1], module="small.py", calibration=LOADED)
    return SuiteModel(big.tests + small.tests, {}, LOADED)


@pytest.mark.parametrize("dist", ["load", "loadscope", "loadfile", "worksteal"])
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
    advice = recommend(predictions, serial_wall_s=0.2)
    assert advice["workers"] == 0
    assert "slower" in advice["message"]


def test_the_recommendation_picks_the_fastest_configuration() -> None:
    model = suite([1] * 8)
    predictions = [predict_xdist_wall_time(model, n, "load") for n in (2, 4)]
    assert recommend(predictions, serial_wall_s=8.0)["workers"] == 2


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


SECTION = {
    "tests": [
        {
            "nodeid": "t.py::a",
            "worker": "main",
            "setup_s": 1.0,
            "call_s": 1.0,
            "teardown_s": 0.0,
            "outcome": "passed",
            "fixture_s": 1.0,
            "uses": ["::s@session"],
            "index": 0,
        },
        {
            "nodeid": "t.py::b",
            "worker": "main",
            "setup_s": 0.0,
            "call_s": 1.0,
            "teardown_s": 0.0,
            "outcome": "passed",
            "fixture_s": 0.0,
            "uses": ["::s@session"],
            "index": 1,
        },
    ],
    "fixtures": [
        {
            "id": "::s@session",
            "name": "s",
            "scope": "session",
            "baseid": "",
            "param": None,
            "worker": "main",
            "setup_s": 1.0,
            "teardown_s": 0.0,
            "instances": 1,
        }
    ],
    "workers": [],
    "wall_s": 3.0,
    "calibration": {
        "startup_s": 0.0,
        "collection_s": 0.0,
        "per_test_overhead_s": 0.0,
        "cpus": 2,
        "xdist_per_test_s": 0.0,
        "controller_load": 0.0,
        "shutdown_s": 0.0,
    },
}


def test_a_saved_section_becomes_a_model_without_double_counting_fixtures() -> None:
    model = model_from_section(SECTION)
    assert [t.base_s for t in model.tests] == [1.0, 1.0]
    # each of the two workers sets up the session fixture: 1 + 1
    assert predict_xdist_wall_time(model, 2, "load").wall_s == pytest.approx(2.0)


def test_predict_document_text_renders_a_table_for_the_requested_workers() -> None:
    text = predict_document_text(RunDocument(sections={"suite": SECTION}), [2, 3], ["load"])
    assert "xdist prediction" in text
    assert "loadscope" not in text
    assert "recommendation" in text


def test_predict_document_text_needs_a_suite_section() -> None:
    with pytest.raises(DocumentError, match="no 'suite' section"):
        predict_document_text(RunDocument())
