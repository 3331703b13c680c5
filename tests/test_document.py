"""The run document: round trip, tolerant loading, strict typing, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_parallel_lab.document.run import (
    SCHEMA_VERSION,
    DocumentError,
    Environment,
    ResultRecord,
    RunDocument,
    SpeedupRecord,
    document_from_json,
    load_document,
    result_from_json,
    result_to_json,
    save_document,
    write_atomically,
)

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
    speedup=SpeedupRecord(2.0, 1.8, 2.2),
    efficiency=1.0,
    notes=("noisy",),
)
FAILED = ResultRecord(
    nodeid="tests/test_a.py::test_y[process]",
    test="tests/test_a.py::test_y",
    backend="process",
    outcome="failed",
    error="process backend: boom",
)
DOCUMENT = RunDocument(
    environment=Environment(python_version="3.11.7", usable_cpus=2, xdist_workers=0),
    results=(RECORD, FAILED),
    created="2026-01-01T00:00:00+00:00",
    sections={"recommendations": [{"test": "t", "classification": "io-bound"}]},
)


def minimal(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"schema_version": 1, "results": []}
    data.update(changes)
    return data


def test_a_saved_document_loads_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    save_document(DOCUMENT, path)
    assert load_document(path) == DOCUMENT


def test_the_json_has_the_documented_top_level_keys(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    save_document(DOCUMENT, path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["plugin"] == "pytest-parallel-lab"
    assert set(data) >= {"created", "environment", "results", "recommendations"}
    assert data["results"][0]["speedup"] == {
        "estimate": 2.0,
        "ci_low": 1.8,
        "ci_high": 2.2,
        "confidence": 0.95,
    }
    assert data["results"][1]["speedup"] is None


def test_a_result_survives_the_trip_as_plain_builtins() -> None:
    data = result_to_json(RECORD)
    assert json.loads(json.dumps(data)) == data
    assert result_from_json(data) == RECORD


def test_loading_ignores_unknown_keys_everywhere() -> None:
    data = DOCUMENT.to_json_dict()
    data["from_the_future"] = {"x": 1}
    data["environment"]["new_env_key"] = 3
    data["results"][0]["new_result_key"] = "y"
    document = document_from_json(data)
    assert document.results == DOCUMENT.results
    assert document.environment == DOCUMENT.environment
    assert document.sections["from_the_future"] == {"x": 1}


def test_loading_gives_missing_optional_keys_their_defaults() -> None:
    data = minimal(results=[{"nodeid": "a::t[thread]", "test": "a::t", "backend": "thread"}])
    document = document_from_json(data)
    record = document.results[0]
    assert record.outcome == "passed"
    assert record.speedup is None
    assert record.notes == ()
    assert document.environment == Environment()
    assert document.created == ""


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        pytest.param([], ["top level is not an object"], id="top-level-list"),
        pytest.param({"results": []}, ["no 'schema_version'"], id="no-schema-version"),
        pytest.param({"schema_version": 1}, ["'results'"], id="no-results"),
        pytest.param(
            minimal(schema_version="1"), ["schema_version must be an integer"], id="v-str"
        ),
        pytest.param(minimal(schema_version=0), ["older than this tool reads"], id="too-old"),
        pytest.param(minimal(results={}), ["'results' must be a list"], id="results-object"),
        pytest.param(minimal(created=5), ["'created' must be a string"], id="created-number"),
        pytest.param(
            minimal(results=[{"nodeid": "a", "test": "a"}]),
            ["results[0]", "missing key 'backend'"],
            id="missing-required-key",
        ),
        pytest.param(
            minimal(results=[{"nodeid": "a", "test": "a", "backend": "t", "workers": "2"}]),
            ["results[0].workers", "expected an integer"],
            id="workers-a-string",
        ),
        pytest.param(
            minimal(results=[{"nodeid": "a", "test": "a", "backend": "t", "workers": True}]),
            ["results[0].workers", "expected an integer"],
            id="workers-a-bool",
        ),
        pytest.param(
            minimal(results=[{"nodeid": "a", "test": "a", "backend": "t", "serial_s": "1"}]),
            ["results[0].serial_s", "expected a number"],
            id="time-a-string",
        ),
        pytest.param(
            minimal(results=[{"nodeid": "a", "test": "a", "backend": "t", "speedup": [1]}]),
            ["results[0].speedup", "expected an object"],
            id="speedup-a-list",
        ),
        pytest.param(
            minimal(
                results=[{"nodeid": "a", "test": "a", "backend": "t", "speedup": {"estimate": 1}}]
            ),
            ["results[0].speedup", "missing key 'ci_low'"],
            id="speedup-incomplete",
        ),
        pytest.param(
            minimal(results=[{"nodeid": "a", "test": "a", "backend": "t", "notes": [1]}]),
            ["results[0].notes", "list of strings"],
            id="notes-numbers",
        ),
        pytest.param(
            minimal(results=[{"nodeid": None, "test": "a", "backend": "t"}]),
            ["results[0].nodeid", "must not be null"],
            id="nodeid-null",
        ),
        pytest.param(
            minimal(environment={"gil_enabled": "yes"}),
            ["environment.gil_enabled", "true or false"],
            id="environment-bool-a-string",
        ),
        pytest.param(minimal(results=["x"]), ["results[0]", "expected an object"], id="row-str"),
    ],
)
def test_loading_is_strict_with_wrong_shapes_naming_the_source_and_key(
    data: Any, fragments: list[str]
) -> None:
    with pytest.raises(DocumentError) as excinfo:
        document_from_json(data, "run.json")
    message = str(excinfo.value)
    assert message.startswith("run.json")
    for fragment in fragments:
        assert fragment in message


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
