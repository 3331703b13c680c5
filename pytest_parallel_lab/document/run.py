"""The run document: what one pytest run measured, saved and loaded as JSON.

The same document feeds the terminal report, ``--parallel-report-json``, the
command-line tool (``show``, ``compare``, ``predict``, ``html``), so there is one
schema (``docs/json-schema.md``). Its parts are typed records (``records.py``,
``suite.py``); JSON happens here and in what xdist workers send, nowhere else.
Saving is atomic; loading is tolerant of older and newer versions and strict with
garbage (:mod:`pytest_parallel_lab.document.codec`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_parallel_lab.document.codec import DocumentError, from_json, to_json
from pytest_parallel_lab.document.files import read_regular_file, write_atomically
from pytest_parallel_lab.document.records import (
    Environment,
    Recommendation,
    ResultRecord,
    Sweep,
)
from pytest_parallel_lab.document.safety import SafetySection
from pytest_parallel_lab.document.strict_json import parse_strict_json
from pytest_parallel_lab.document.suite import SuiteSection

#: Version of the JSON layout; bumped on incompatible changes only.
SCHEMA_VERSION = 1
#: Oldest layout this version can still read.
OLDEST_READABLE_SCHEMA = 1
#: The largest file read as a run document (issue 14): a suite of 100 000 tests saves
#: about 25 MB, so this is about a million tests, which take some 1.6 GB and 20 s to load.
MAX_DOCUMENT_BYTES = 256 << 20
#: The name every saved run carries under ``plugin``.
PLUGIN_NAME = "pytest-parallel-lab"

#: Top-level keys with a fixed meaning; every other key is a plugin's section.
_CORE_KEYS = frozenset({"schema_version", "plugin", "created", "environment", "results"})
#: The optional sections this package defines (typed); a plugin's cannot take these names.
TYPED_SECTIONS = ("recommendations", "scaling", "suite", "safety")


@dataclass(frozen=True)
class RunDocument:
    """Everything one run reports.

    ``recommendations`` and ``scaling`` come from the marked tests' results,
    ``suite`` from suite timing, ``safety`` from ``--parallel-safety``; ``sections``
    holds what other plugins add through ``pytest_parallel_lab_document_sections``, as
    the plain JSON they gave.
    """

    environment: Environment = field(default_factory=Environment)
    results: tuple[ResultRecord, ...] = ()
    created: str = ""
    recommendations: tuple[Recommendation, ...] = ()
    scaling: tuple[Sweep, ...] = ()
    suite: SuiteSection | None = None
    safety: SafetySection | None = None
    sections: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_json_dict(self) -> dict[str, Any]:
        """The document as plain JSON types, in the documented layout."""
        data: dict[str, Any] = {
            "schema_version": self.schema_version,
            "plugin": PLUGIN_NAME,
            "created": self.created,
            "environment": to_json(self.environment),
            "results": to_json(self.results),
        }
        if self.recommendations:
            data["recommendations"] = to_json(self.recommendations)
        if self.scaling:
            data["scaling"] = to_json(self.scaling)
        if self.suite is not None:
            data["suite"] = to_json(self.suite)
        if self.safety is not None:
            data["safety"] = to_json(self.safety)
        for key, value in self.sections.items():
            data.setdefault(key, value)
        return data


def result_to_json(record: ResultRecord) -> dict[str, Any]:
    """A result as plain builtins (also what travels from xdist workers)."""
    data: dict[str, Any] = to_json(record)
    return data


def result_from_json(data: Any, where: str = "result") -> ResultRecord:
    """Rebuild a result from plain builtins; raises :class:`DocumentError` on garbage."""
    return from_json(ResultRecord, data, where)


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
    results = data["results"]
    if not isinstance(results, list):
        raise DocumentError(f"{source}: 'results' must be a list")
    created = data.get("created", "")
    if not isinstance(created, str):
        raise DocumentError(f"{source}: 'created' must be a string")
    typed = {
        key: data[key] for key in TYPED_SECTIONS if data.get(key) is not None
    }  # null: the section was not made
    whole = from_json(
        _Parts,
        {"environment": data.get("environment", {}), "results": results, **typed},
        source + ":",
    )
    return RunDocument(
        environment=whole.environment,
        results=whole.results,
        created=created,
        recommendations=whole.recommendations,
        scaling=whole.scaling,
        suite=whole.suite,
        safety=whole.safety,
        sections={k: v for k, v in data.items() if k not in _CORE_KEYS and k not in TYPED_SECTIONS},
        schema_version=version,
    )


@dataclass(frozen=True)
class _Parts:
    """The typed parts of a document, decoded in one pass (``run.json: results[3]...``)."""

    environment: Environment
    results: tuple[ResultRecord, ...]
    recommendations: tuple[Recommendation, ...] = ()
    scaling: tuple[Sweep, ...] = ()
    suite: SuiteSection | None = None
    safety: SafetySection | None = None


def save_document(document: RunDocument, path: str | os.PathLike[str]) -> None:
    """Save *document* as compact JSON, atomically.

    Compact, because ``indent`` makes :mod:`json` fall back from its C encoder to the
    pure-Python one (several times slower on a large suite section); read it with
    ``pytest-parallel-lab show`` or ``python -m json.tool``.
    """
    text = json.dumps(document.to_json_dict(), separators=(",", ":"), allow_nan=False)
    write_atomically(path, text + "\n")


def load_document(path: str | os.PathLike[str]) -> RunDocument:
    """Load a saved run; every failure is one :class:`DocumentError` naming the file.

    The one loader of every command and of ``--parallel-predict-from``: only a regular
    file of at most :data:`MAX_DOCUMENT_BYTES` is read (a FIFO or a device is refused
    without waiting on it), and only JSON a run can hold is accepted
    (:func:`~pytest_parallel_lab.document.strict_json.parse_strict_json`).
    """
    source = os.fspath(path)
    data = read_regular_file(path, MAX_DOCUMENT_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"{source}: cannot be read (not UTF-8 text: {exc.reason} at byte {exc.start})"
        ) from None
    if not text.strip():
        raise DocumentError(f"{source}: empty file")
    return document_from_json(parse_strict_json(text, source), source)
