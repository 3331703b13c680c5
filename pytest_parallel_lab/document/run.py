"""The run document: what one pytest run measured, as JSON-ready frozen dataclasses.

The same document feeds the terminal report, ``--parallel-report-json``, the
command-line tool (``show``, ``compare``, ``html``) and xdist transport, so there is
one schema (documented in ``docs/json-schema.md``). Saving is atomic; loading is
tolerant of older and newer versions (unknown keys are ignored, missing optional
keys take defaults) and strict with garbage (a wrong type raises
:class:`DocumentError` naming the file and the key). Nothing is ever unpickled or
evaluated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Version of the JSON layout; bumped on incompatible changes only.
SCHEMA_VERSION = 1
#: Oldest layout this version can still read.
OLDEST_READABLE_SCHEMA = 1


class DocumentError(ValueError):
    """A saved run cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class SpeedupRecord:
    """Speedup = serial / backend, median of per-round ratios, with its interval."""

    estimate: float
    ci_low: float
    ci_high: float
    confidence: float = 0.95


@dataclass(frozen=True)
class ResultRecord:
    """One measured workload: a marked test under one backend (or one parallel_map call)."""

    nodeid: str
    test: str
    backend: str
    outcome: str = "passed"
    kind: str = "body"
    call_index: int = 0
    coroutine: bool = False
    workers: int | None = None
    tasks: int | None = None
    rounds: int | None = None
    start_method: str | None = None
    serial_s: float | None = None
    backend_s: float | None = None
    serial_rounds_s: tuple[float, ...] = ()
    backend_rounds_s: tuple[float, ...] = ()
    speedup: SpeedupRecord | None = None
    efficiency: float | None = None
    parallelism: int | None = None
    startup_s: float | None = None
    pool_reused: bool = False
    noisy: bool = False
    verdict: str | None = None
    serial_cpu_s: float | None = None
    cpu_s: float | None = None
    pickled_bytes: int | None = None
    dispatch_s: float | None = None
    task_s: float | None = None
    classification: str | None = None
    gate: dict[str, Any] | None = None
    error: str | None = None
    xdist_worker: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Environment:
    """What distinguishes one run from another in a matrix."""

    python_version: str = ""
    implementation: str = ""
    gil_enabled: bool = True
    free_threaded_build: bool = False
    cpu_count: int = 0
    usable_cpus: int = 0
    platform: str = ""
    machine: str = ""
    pytest_version: str = ""
    plugin_version: str = ""
    xdist_workers: int = 0
    start_method: str | None = None
    tox_env: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class RunDocument:
    """Everything one run reports. ``sections`` holds the optional top-level blocks
    other features add (``recommendations``, ``scaling``, ``suite``) as plain JSON."""

    environment: Environment = field(default_factory=Environment)
    results: tuple[ResultRecord, ...] = ()
    created: str = ""
    sections: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_json_dict(self) -> dict[str, Any]:
        """The document as plain JSON types, in the documented layout."""
        data: dict[str, Any] = {
            "schema_version": self.schema_version,
            "plugin": "pytest-parallel-lab",
            "created": self.created,
            "environment": dataclasses.asdict(self.environment),
            "results": [result_to_json(r) for r in self.results],
        }
        for key, value in self.sections.items():
            data[key] = value
        return data


#: Top-level keys with a fixed meaning; every other key is an optional section.
_CORE_KEYS = frozenset({"schema_version", "plugin", "created", "environment", "results"})


def result_to_json(record: ResultRecord) -> dict[str, Any]:
    """A result as plain builtins (also what travels from xdist workers)."""
    data = dataclasses.asdict(record)
    data["serial_rounds_s"] = list(record.serial_rounds_s)
    data["backend_rounds_s"] = list(record.backend_rounds_s)
    data["notes"] = list(record.notes)
    return data


def _check_type(value: Any, expected: Any, where: str) -> Any:
    """Return *value* if it matches the annotated type *expected*, else raise."""
    text = str(expected)
    optional = "None" in text
    if value is None:
        if optional:
            return None
        raise DocumentError(f"{where}: must not be null")
    if "tuple[float" in text:
        if not isinstance(value, list) or not all(_is_number(v) for v in value):
            raise DocumentError(f"{where}: expected a list of numbers")
        return tuple(float(v) for v in value)
    if "tuple[str" in text:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DocumentError(f"{where}: expected a list of strings")
        return tuple(value)
    if "SpeedupRecord" in text:
        return _load_dataclass(SpeedupRecord, value, where)
    if "dict" in text:
        if not isinstance(value, dict):
            raise DocumentError(f"{where}: expected an object")
        return value
    if text.startswith("bool"):
        if not isinstance(value, bool):
            raise DocumentError(f"{where}: expected true or false")
        return value
    if text.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise DocumentError(f"{where}: expected an integer")
        return value
    if text.startswith("float"):
        if not _is_number(value):
            raise DocumentError(f"{where}: expected a number")
        return float(value)
    if text.startswith("str"):
        if not isinstance(value, str):
            raise DocumentError(f"{where}: expected a string")
        return value
    raise AssertionError(f"unhandled field type {text}")  # pragma: no cover


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _load_dataclass(cls: Any, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise DocumentError(f"{where}: expected an object, got {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required:
                raise DocumentError(f"{where}: missing key '{f.name}'")
            continue
        kwargs[f.name] = _check_type(data[f.name], f.type, f"{where}.{f.name}")
    return cls(**kwargs)


def result_from_json(data: Any, where: str = "result") -> ResultRecord:
    """Rebuild a result from plain builtins; raises :class:`DocumentError` on garbage."""
    record: ResultRecord = _load_dataclass(ResultRecord, data, where)
    return record


def document_from_json(data: Any, source: str = "<data>") -> RunDocument:
    """Rebuild a document, tolerant of other versions, strict with wrong shapes."""
    if not isinstance(data, dict):
        raise DocumentError(f"{source}: not a pytest-parallel-lab run (top level is not an object)")
    if "results" not in data or "schema_version" not in data:
        raise DocumentError(
            f"{source}: not a pytest-parallel-lab run (no 'schema_version' or 'results' key)"
        )
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise DocumentError(f"{source}: schema_version must be an integer")
    if version < OLDEST_READABLE_SCHEMA:
        raise DocumentError(f"{source}: schema_version {version} is older than this tool reads")
    results_data = data["results"]
    if not isinstance(results_data, list):
        raise DocumentError(f"{source}: 'results' must be a list")
    environment = _load_dataclass(
        Environment, data.get("environment", {}), f"{source}: environment"
    )
    created = data.get("created", "")
    if not isinstance(created, str):
        raise DocumentError(f"{source}: 'created' must be a string")
    results = tuple(
        result_from_json(item, f"{source}: results[{index}]")
        for index, item in enumerate(results_data)
    )
    sections = {k: v for k, v in data.items() if k not in _CORE_KEYS}
    return RunDocument(
        environment=environment,
        results=results,
        created=created,
        sections=sections,
        schema_version=version,
    )


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write *text* to *path* whole or not at all: a temporary file, then a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes the file private (0600); a report is an ordinary file.
        os.chmod(temporary, 0o666 & ~_current_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def output_path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a report cannot be written to *path*, or None when it can.

    Checked before the tests run, so that a typo in an output option does not cost a
    whole run's measurements at the end.
    """
    target = Path(path)
    if target.is_dir():
        return "is a directory"
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"the directory {ancestor} is not writable"
    return None


def _current_umask() -> int:
    # os.umask() can only read the mask by setting it, which for a moment changes it for
    # every thread of the process (pool threads may be creating files); Linux shows it.
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_document(document: RunDocument, path: str | os.PathLike[str]) -> None:
    """Save *document* as compact JSON, atomically.

    Compact, because ``indent`` makes :mod:`json` fall back from its C encoder to the
    pure-Python one (several times slower on a large suite section); read it with
    ``pytest-parallel-lab show`` or ``python -m json.tool``.
    """
    text = json.dumps(document.to_json_dict(), separators=(",", ":"), allow_nan=False)
    write_atomically(path, text + "\n")


def load_document(path: str | os.PathLike[str]) -> RunDocument:
    """Load a saved run; every failure is one :class:`DocumentError` naming the file."""
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise DocumentError(f"{source}: is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{source}: cannot be read ({exc})") from None
    if not text.strip():
        raise DocumentError(f"{source}: empty file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(
            f"{source}: not valid JSON (truncated or corrupt?) at line {exc.lineno} "
            f"column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise DocumentError(f"{source}: JSON nested too deeply") from None
    return document_from_json(data, source)
