"""The run document: round trip, tolerant loading, strict typing, atomic writes."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_parallel_lab.document import (
    SCHEMA_VERSION,
    DocumentError,
    Environment,
    Recommendation,
    ResultRecord,
    RunDocument,
    SuiteSection,
    Sweep,
    SweepPoint,
    document_from_json,
    load_document,
    result_from_json,
    result_to_json,
    save_document,
    write_atomically,
)
from pytest_parallel_lab.document.codec import from_json, to_json
from pytest_parallel_lab.document.files import describe_size, read_regular_file
from pytest_parallel_lab.document.strict_json import format_place, parse_strict_json
from pytest_parallel_lab.document.suite import (
    ActualRun,
    Calibration,
    ChainLink,
    FixtureTiming,
    Prediction,
    TestTiming,
    WorkerChain,
    WorkerTiming,
    XdistAdvice,
)
from pytest_parallel_lab.stats import Interval
from pytest_parallel_lab.vocabulary import Classification, Kind, Outcome

RECORD = ResultRecord(
    nodeid="tests/test_a.py::test_x[thread]",
    test="tests/test_a.py::test_x",
    backend="thread",
    workers=2,
    tasks=2,
    rounds=3,
    serial_s=0.2,
    backend_s=0.1,
    serial_rounds_s=(0.2, 0.21, 0.19),
    backend_rounds_s=(0.1, 0.11, 0.09),
    speedup=Interval(estimate=2.0, low=1.8, high=2.2),
    efficiency=1.0,
    classification=Classification.GIL_RELEASING,
    notes=("noisy",),
)
FAILED = ResultRecord(
    nodeid="tests/test_a.py::test_y[process]",
    test="tests/test_a.py::test_y",
    backend="process",
    outcome=Outcome.FAILED,
    error="process backend: boom",
)
RECOMMENDATION = Recommendation(
    test="tests/test_a.py::test_x",
    classification=Classification.IO_BOUND,
    backend="thread",
    reason="thread 2.0x",
    call_index=1,
)
SWEEP = Sweep(
    test="tests/test_a.py::test_x",
    backend="process",
    points=(SweepPoint(1, 1.0, 0.95, 1.05), SweepPoint(2, 1.8, 1.7, 1.9)),
    serial_fraction=0.1,
    max_speedup=10.0,
    fit_r2=0.99,
    usable_cpus=2,
)
SUITE = SuiteSection(
    tests=(
        TestTiming("t.py::a", "main", 0.01, 0.5, 0.02, Outcome.PASSED, uses=("db",), index=0),
        TestTiming("t.py::b", "main", 0.0, 0.25, 0.0, Outcome.FAILED, start_s=0.6, index=1),
    ),
    fixtures=(FixtureTiming("db", "db", "session", "", None, "main", 0.3, 0.1, 1),),
    workers=(WorkerTiming("main", 0.4, 0.05, 0.78, 0.01, 2, finish_s=1.2),),
    wall_s=1.2,
    last_worker_chain=WorkerChain("main", (ChainLink("t.py::a", 0.53),)),
    prediction=(Prediction(2, "load", 0.9, 0.8, (0.9, 0.7)),),
    actual=ActualRun(2, "load", 1.0),
    calibration=Calibration(startup_s=0.4, cpus=2),
    serial_wall_s=1.2,
    recommended=XdistAdvice(2, "load", 0.9, "use -n 2"),
)
DOCUMENT = RunDocument(
    environment=Environment(
        python_version="3.11.7",
        usable_cpus=2,
        xdist_workers=0,
        unavailable_backends={"interpreter": "needs Python 3.14+ (this is 3.11)"},
    ),
    results=(RECORD, FAILED),
    created="2026-01-01T00:00:00+00:00",
    recommendations=(RECOMMENDATION,),
    scaling=(SWEEP,),
    suite=SUITE,
    sections={"other_plugin": {"rows": [1, 2]}},
)


def minimal(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"schema_version": 1, "results": []}
    data.update(changes)
    return data


def row(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"nodeid": "a", "test": "a", "backend": "t"}
    data.update(changes)
    return data


def test_every_name_the_package_offers_is_importable_from_it() -> None:
    import pytest_parallel_lab.document as package

    # each module is imported when one of its names is first asked for
    assert set(package.__all__) == set(package._MODULES)
    for name in package.__all__:
        assert getattr(package, name) is getattr(
            __import__(f"{package.__name__}.{package._MODULES[name]}", fromlist=[name]), name
        )
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        package.nothing  # noqa: B018


def test_a_saved_document_loads_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    save_document(DOCUMENT, path)
    assert load_document(path) == DOCUMENT


def test_a_loaded_document_has_typed_records_and_vocabulary_members(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    save_document(DOCUMENT, path)
    document = load_document(path)
    record, failed = document.results
    assert isinstance(record.speedup, Interval)
    assert (record.speedup.low, record.speedup.high) == (1.8, 2.2)
    assert record.classification is Classification.GIL_RELEASING
    assert record.kind is Kind.BODY
    assert failed.outcome is Outcome.FAILED
    assert failed.outcome == "failed"
    assert document.recommendations[0].classification is Classification.IO_BOUND
    assert isinstance(document.scaling[0].points[1], SweepPoint)
    assert document.suite is not None
    assert document.suite.tests[1].outcome is Outcome.FAILED
    assert document.suite.fixtures[0].param is None
    assert document.sections == {"other_plugin": {"rows": [1, 2]}}


def test_the_json_has_the_documented_top_level_keys(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    save_document(DOCUMENT, path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["plugin"] == "pytest-parallel-lab"
    assert set(data) == {
        "schema_version",
        "plugin",
        "created",
        "environment",
        "results",
        "recommendations",
        "scaling",
        "suite",
        "other_plugin",
    }
    assert data["results"][0]["speedup"] == {
        "estimate": 2.0,
        "ci_low": 1.8,
        "ci_high": 2.2,
        "confidence": 0.95,
    }
    assert data["results"][0]["classification"] == "gil-releasing"
    assert data["results"][1]["speedup"] is None
    assert data["results"][1]["outcome"] == "failed"
    assert data["recommendations"] == [
        {
            "test": "tests/test_a.py::test_x",
            "classification": "io-bound",
            "backend": "thread",
            "reason": "thread 2.0x",
            "call_index": 1,
            "shown": True,
            "why": "",
        }
    ]
    assert data["scaling"][0]["points"][1] == {
        "workers": 2,
        "speedup": 1.8,
        "ci_low": 1.7,
        "ci_high": 1.9,
    }
    assert data["suite"]["tests"][1]["outcome"] == "failed"
    assert data["suite"]["actual"] == {"workers": 2, "dist": "load", "wall_s": 1.0, "remote": 0}


def test_a_document_without_optional_sections_writes_none_of_their_keys() -> None:
    data = RunDocument(results=(RECORD,)).to_json_dict()
    assert set(data) == {"schema_version", "plugin", "created", "environment", "results"}


def test_a_result_survives_the_trip_as_plain_builtins() -> None:
    data = result_to_json(RECORD)
    assert json.loads(json.dumps(data)) == data
    assert data["speedup"]["ci_low"] == 1.8
    assert result_from_json(data) == RECORD


def test_loading_ignores_unknown_keys_everywhere() -> None:
    data = DOCUMENT.to_json_dict()
    data["from_the_future"] = {"x": 1}
    data["environment"]["new_env_key"] = 3
    data["results"][0]["new_result_key"] = "y"
    data["results"][0]["speedup"]["new_interval_key"] = 0
    data["recommendations"][0]["new_key"] = "z"
    data["scaling"][0]["points"][0]["new_key"] = []
    data["suite"]["tests"][0]["new_key"] = {}
    data["suite"]["new_key"] = None
    document = document_from_json(data)
    assert document.results == DOCUMENT.results
    assert document.environment == DOCUMENT.environment
    assert document.recommendations == DOCUMENT.recommendations
    assert document.scaling == DOCUMENT.scaling
    assert document.suite == DOCUMENT.suite
    assert document.sections["from_the_future"] == {"x": 1}


def test_loading_gives_missing_optional_keys_their_defaults() -> None:
    data = minimal(results=[{"nodeid": "a::t[thread]", "test": "a::t", "backend": "thread"}])
    document = document_from_json(data)
    record = document.results[0]
    assert record.outcome is Outcome.PASSED
    assert record.outcome == "passed"
    assert record.kind is Kind.BODY
    assert record.speedup is None
    assert record.notes == ()
    assert document.environment == Environment()
    assert document.created == ""
    assert document.recommendations == ()
    assert document.scaling == ()
    assert document.suite is None
    assert document.sections == {}


def test_a_null_typed_section_is_read_as_not_made() -> None:
    document = document_from_json(minimal(recommendations=None, scaling=None, suite=None))
    assert (document.recommendations, document.scaling, document.suite) == ((), (), None)
    assert document.sections == {}


def test_a_speedup_may_be_written_without_its_confidence() -> None:
    data = minimal(results=[row(speedup={"estimate": 2, "ci_low": 1.5, "ci_high": 2.5})])
    (record,) = document_from_json(data).results
    assert record.speedup == Interval(estimate=2.0, low=1.5, high=2.5, confidence=0.95)
    assert isinstance(record.speedup.estimate, float)


CLASSES = (
    "'cpu-bound', 'gil-releasing', 'io-bound', 'overhead-bound', 'blocking-in-loop', 'inconclusive'"
)
POINT = {"workers": 1, "speedup": 1.0, "ci_low": 0.9, "ci_high": 1.1}
TIMING = {
    "nodeid": "t.py::a",
    "worker": "main",
    "setup_s": 0.0,
    "call_s": 0.1,
    "teardown_s": 0.0,
    "outcome": "passed",
}


def sweep_json(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"test": "t", "backend": "process", "points": [POINT]}
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            [], "not a pytest-parallel-lab run (top level is not an object)", id="top-level-list"
        ),
        pytest.param(
            {"results": []},
            "not a pytest-parallel-lab run (no 'schema_version' or 'results' key)",
            id="no-schema-version",
        ),
        pytest.param(
            {"schema_version": 1},
            "not a pytest-parallel-lab run (no 'schema_version' or 'results' key)",
            id="no-results",
        ),
        pytest.param(minimal(schema_version="1"), "schema_version must be an integer", id="v-str"),
        pytest.param(
            minimal(schema_version=True), "schema_version must be an integer", id="v-bool"
        ),
        pytest.param(
            minimal(schema_version=0), "schema_version 0 is older than this tool reads", id="old"
        ),
        pytest.param(minimal(results={}), "'results' must be a list", id="results-object"),
        pytest.param(minimal(created=5), "'created' must be a string", id="created-number"),
        pytest.param(
            minimal(results=[{"nodeid": "a", "test": "a"}]),
            "results[0]: missing key 'backend'",
            id="missing-required-key",
        ),
        pytest.param(
            minimal(results=[row(workers="2")]),
            "results[0].workers: expected an integer, got a string",
            id="workers-a-string",
        ),
        pytest.param(
            minimal(results=[row(workers=True)]),
            "results[0].workers: expected an integer, got a boolean",
            id="workers-a-bool",
        ),
        pytest.param(
            minimal(results=[row(serial_s="1")]),
            "results[0].serial_s: expected a number, got a string",
            id="time-a-string",
        ),
        pytest.param(
            minimal(results=[row(speedup=[1])]),
            "results[0].speedup: expected an object, got a list",
            id="speedup-a-list",
        ),
        pytest.param(
            minimal(results=[row(speedup={"estimate": 1})]),
            "results[0].speedup: missing key 'ci_low'",
            id="speedup-incomplete",
        ),
        pytest.param(
            minimal(results=[row(speedup={"estimate": 1, "ci_low": "0.9", "ci_high": 1.1})]),
            "results[0].speedup.ci_low: expected a number, got a string",
            id="speedup-bound-a-string",
        ),
        pytest.param(
            minimal(results=[row(notes=[1])]),
            "results[0].notes[0]: expected a string, got a number",
            id="notes-numbers",
        ),
        pytest.param(
            minimal(results=[row(notes="noisy")]),
            "results[0].notes: expected a list, got a string",
            id="notes-a-string",
        ),
        pytest.param(
            minimal(results=[row(nodeid=None)]),
            "results[0].nodeid: must not be null",
            id="nodeid-null",
        ),
        pytest.param(
            minimal(results=[row(outcome="weird")]),
            "results[0].outcome: expected one of 'passed', 'failed', 'error', 'skipped', "
            "'xfailed', 'xpassed', 'interrupted', 'crashed', got 'weird'",
            id="outcome-unknown",
        ),
        pytest.param(
            minimal(results=[row(kind="loop")]),
            "results[0].kind: expected one of 'body', 'map', got 'loop'",
            id="kind-unknown",
        ),
        pytest.param(
            minimal(results=[row(gate={"min_speedup": 1.5, "verdict": "maybe"})]),
            "results[0].gate.verdict: expected one of 'passed', 'failed', 'inconclusive', "
            "got 'maybe'",
            id="gate-verdict-unknown",
        ),
        pytest.param(
            minimal(environment={"gil_enabled": "yes"}),
            "environment.gil_enabled: expected true or false, got a string",
            id="environment-bool-a-string",
        ),
        pytest.param(
            minimal(environment=[]),
            "environment: expected an object, got a list",
            id="environment-a-list",
        ),
        pytest.param(
            minimal(results=["x"]), "results[0]: expected an object, got a string", id="row-str"
        ),
        pytest.param(
            minimal(recommendations={}),
            "recommendations: expected a list, got an object",
            id="recommendations-an-object",
        ),
        pytest.param(
            minimal(recommendations=[{"test": "t", "classification": "io-bound", "backend": "x"}]),
            "recommendations[0]: missing key 'reason'",
            id="recommendation-incomplete",
        ),
        pytest.param(
            minimal(
                recommendations=[
                    {"test": "t", "classification": "fast", "backend": "x", "reason": "r"}
                ]
            ),
            f"recommendations[0].classification: expected one of {CLASSES}, got 'fast'",
            id="recommendation-class-unknown",
        ),
        pytest.param(
            minimal(scaling="not a list"),
            "scaling: expected a list, got a string",
            id="scaling-a-string",
        ),
        pytest.param(
            minimal(scaling=[sweep_json(points="x")]),
            "scaling[0].points: expected a list, got a string",
            id="sweep-points-a-string",
        ),
        pytest.param(
            minimal(scaling=[sweep_json(points=[POINT, {**POINT, "workers": "four"}])]),
            "scaling[0].points[1].workers: expected an integer, got a string",
            id="sweep-point-workers-a-string",
        ),
        pytest.param(
            minimal(scaling=[sweep_json(capped_by_cpus="yes")]),
            "scaling[0].capped_by_cpus: expected true or false, got a string",
            id="sweep-capped-a-string",
        ),
        pytest.param(
            minimal(suite=["not", "an", "object"]),
            "suite: expected an object, got a list",
            id="suite-a-list",
        ),
        pytest.param(
            minimal(suite={"tests": [None]}),
            "suite.tests[0]: must not be null",
            id="suite-test-null",
        ),
        pytest.param(
            minimal(suite={"tests": [{**TIMING, "call_s": "x"}]}),
            "suite.tests[0].call_s: expected a number, got a string",
            id="suite-test-time-a-string",
        ),
        pytest.param(
            minimal(suite={"tests": [{**TIMING, "outcome": "exploded"}]}),
            "suite.tests[0].outcome: expected one of 'passed', 'failed', 'error', 'skipped', "
            "'xfailed', 'xpassed', 'interrupted', 'crashed', got 'exploded'",
            id="suite-test-outcome-unknown",
        ),
        pytest.param(
            minimal(suite={"workers": "?"}),
            "suite.workers: expected a list, got a string",
            id="suite-workers-a-string",
        ),
        pytest.param(
            minimal(suite={"wall_s": True}),
            "suite.wall_s: expected a number, got a boolean",
            id="suite-wall-a-bool",
        ),
        pytest.param(
            minimal(suite={"actual": {"workers": 2}}),
            "suite.actual: missing key 'dist'",
            id="suite-actual-incomplete",
        ),
    ],
)
def test_loading_is_strict_with_wrong_shapes_naming_the_source_and_key(
    data: Any, message: str
) -> None:
    with pytest.raises(DocumentError) as excinfo:
        document_from_json(data, "run.json")
    assert str(excinfo.value) == f"run.json: {message}"


def test_a_result_from_a_worker_names_its_place_when_wrong() -> None:
    with pytest.raises(DocumentError) as excinfo:
        result_from_json(row(speedup={"estimate": 1, "ci_low": 1, "ci_high": None}))
    assert str(excinfo.value) == "result.speedup.ci_high: must not be null"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param("", "empty file", id="empty"),
        pytest.param("  \n", "empty file", id="whitespace"),
        pytest.param('{"schema_version": 1, "results": [', "not valid JSON", id="truncated"),
        pytest.param("hello", "not valid JSON", id="not-json"),
        pytest.param("[1, 2]", "not a pytest-parallel-lab run", id="json-but-not-ours"),
    ],
)
def test_a_broken_file_is_one_document_error_naming_the_file(
    tmp_path: Path, content: str, fragment: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(DocumentError) as excinfo:
        load_document(path)
    assert str(excinfo.value).startswith(str(path))
    assert fragment in str(excinfo.value)


def test_a_wrong_shape_deep_in_a_file_names_the_file_and_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    speedup = {"estimate": 2.0, "ci_low": "1.8", "ci_high": 2.2}
    path.write_text(json.dumps(minimal(results=[row(), row(speedup=speedup)])))
    with pytest.raises(DocumentError) as excinfo:
        load_document(path)
    assert str(excinfo.value) == (
        f"{path}: results[1].speedup.ci_low: expected a number, got a string"
    )


def test_a_wrong_shape_in_a_typed_section_of_a_file_names_the_file_and_the_key(
    tmp_path: Path,
) -> None:
    data = DOCUMENT.to_json_dict()
    data["suite"]["workers"][0]["tests"] = "two"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DocumentError) as excinfo:
        load_document(path)
    assert (
        str(excinfo.value) == f"{path}: suite.workers[0].tests: expected an integer, got a string"
    )


def test_a_missing_file_is_a_document_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(DocumentError, match="no such file") as excinfo:
        load_document(path)
    assert str(path) in str(excinfo.value)


def test_a_directory_is_a_document_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="is a directory"):
        load_document(tmp_path)


def test_a_binary_file_is_a_document_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DocumentError, match="cannot be read"):
        load_document(path)


def test_saving_leaves_no_temporary_file_and_replaces_an_old_file(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text("old")
    save_document(DOCUMENT, path)
    assert os.listdir(tmp_path) == ["run.json"]
    assert load_document(path) == DOCUMENT


def test_saving_creates_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "run.json"
    save_document(RunDocument(), path)
    assert load_document(path).results == ()


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.json"
    path.write_text("old")

    def refuse(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, "new")
    assert os.listdir(tmp_path) == ["run.json"]
    assert path.read_text() == "old"


def test_a_document_with_nan_cannot_be_saved_as_invalid_json(tmp_path: Path) -> None:
    document = RunDocument(results=(ResultRecord("n", "t", "thread", serial_s=float("nan")),))
    with pytest.raises(ValueError):
        save_document(document, tmp_path / "nan.json")
    assert not (tmp_path / "nan.json").exists()


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_a_saved_file_gets_the_permissions_the_umask_allows(tmp_path: Path, mask: int) -> None:
    previous = os.umask(mask)
    try:
        write_atomically(tmp_path / "out.json", "{}\n")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("word", ["NaN", "Infinity", "-Infinity"])
def test_a_file_with_a_non_finite_number_is_rejected_naming_the_key(
    tmp_path: Path, word: str
) -> None:
    # json reads these words; a saved run never holds them, and the HTML charts cannot.
    path = tmp_path / "run.json"
    path.write_text(
        '{"schema_version": 1, "results": [{"nodeid": "n", "test": "t", "backend": "thread", '
        f'"serial_s": {word}}}]}}'
    )
    with pytest.raises(
        DocumentError, match=r"run\.json: results\[0\]\.serial_s: expected a finite"
    ):
        load_document(path)


def test_reading_stops_one_byte_past_the_cap_when_the_file_says_it_is_smaller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 14: a file that grows after its size was read (or a /proc file, size 0) must
    # not be read whole: memory stays bounded by the cap.
    path = tmp_path / "growing.json"
    path.write_bytes(b" " * 10_000)
    real_fstat, real_read = os.fstat, os.read
    read: list[int] = []

    def size_zero(fd: int) -> os.stat_result:
        info = real_fstat(fd)
        return os.stat_result((*info[:6], 0, *info[7:]))

    def counted(fd: int, n: int) -> bytes:
        chunk = real_read(fd, n)
        read.append(len(chunk))
        return chunk

    monkeypatch.setattr(os, "fstat", size_zero)
    monkeypatch.setattr(os, "read", counted)
    with pytest.raises(DocumentError) as excinfo:
        read_regular_file(path, 100)
    assert str(excinfo.value) == (
        f"{path}: grew beyond the 100 bytes a run document may have while it was read"
    )
    assert sum(read) == 101


def test_a_file_within_the_cap_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_bytes(b"x" * 100)
    assert read_regular_file(path, 100) == b"x" * 100


@pytest.mark.parametrize(
    ("size", "text"),
    [(100, "100 bytes"), (1536, "1.5 KiB"), (256 << 20, "256 MiB"), (1 << 30, "1 GiB")],
)
def test_sizes_are_described_in_the_largest_unit_that_keeps_them_at_least_1(
    size: int, text: str
) -> None:
    assert describe_size(size) == text


@pytest.mark.parametrize(
    ("place", "text"),
    [
        (("results", 3, "speedup", "estimate"), "results[3].speedup.estimate"),
        (("energy", "joules per run", 0), 'energy["joules per run"][0]'),
        (("x\n\u001b[31m",), '["x\\n\\u001b[31m"]'),
        ((0,), "[0]"),
        ((), "(top level)"),
    ],
)
def test_a_place_in_a_document_is_written_as_its_path_with_odd_keys_quoted(
    place: tuple[str | int, ...], text: str
) -> None:
    assert format_place(place) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("NaN", "(top level): expected a finite number, got NaN"),
        ('{"a": [1, {"b": -Infinity}]}', "a[1].b: expected a finite number, got -Infinity"),
        ('{"a": 1e400}', "a: expected a finite number, got 1e400"),
        ('{"a\\udc00": 1}', '["a\\udc00"]: not text (holds a lone UTF-16 surrogate)'),
        ("[" * 100_000, "JSON nested too deeply"),
    ],
)
def test_strict_json_names_the_place_of_what_no_run_holds(text: str, message: str) -> None:
    with pytest.raises(DocumentError) as excinfo:
        parse_strict_json(text, "run.json")
    assert str(excinfo.value) == f"run.json: {message}"


def test_strict_json_reads_a_surrogate_pair_and_finite_numbers_as_json_does() -> None:
    text = '{"t": "\\ud83d\\ude00", "n": [1, 2.5, -0.0, 1e300]}'
    assert parse_strict_json(text, "run.json") == json.loads(text)


@dataclasses.dataclass(frozen=True)
class _Inner:
    name: str


@dataclasses.dataclass(frozen=True)
class _EveryKind:
    text: str
    number: float
    maybe: float | None
    names: tuple[str, ...]
    kind: Kind
    inner: _Inner
    inners: tuple[_Inner, ...]
    table: dict[str, int]
    renamed: int = dataclasses.field(default=0, metadata={"json": "other"})


def test_a_record_is_encoded_field_by_field_as_each_field_type_says() -> None:
    # Plain fields are taken as they are; the others become plain JSON types.
    record = _EveryKind(
        "t", 1.5, None, ("x", "y"), Kind.MAP, _Inner("i"), (_Inner("j"),), {"k": 1}, 7
    )
    encoded = to_json(record)
    assert encoded == {
        "text": "t",
        "number": 1.5,
        "maybe": None,
        "names": ["x", "y"],
        "kind": Kind.MAP.value,
        "inner": {"name": "i"},
        "inners": [{"name": "j"}],
        "table": {"k": 1},
        "other": 7,
    }
    assert list(encoded) == [f.metadata.get("json", f.name) for f in dataclasses.fields(record)]
    assert json.loads(json.dumps(encoded)) == encoded  # nothing but JSON types
    assert from_json(_EveryKind, encoded, "record") == record
