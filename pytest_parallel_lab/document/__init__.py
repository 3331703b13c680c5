"""The run document: what one pytest run measured, as typed records and their JSON.

``records`` (marked tests' results and their analyses), ``suite`` (the suite section),
``run`` (the document, saved and loaded), ``codec`` (JSON for every record type),
``strict_json`` (the JSON text a run can hold) and ``files`` (atomic writes, bounded
reads of regular files only). The names most callers need are importable from here,
each module imported when one of its names is first asked for: an xdist worker that
only needs the suite records does not build every record class as it starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_parallel_lab.document.codec import DocumentError
    from pytest_parallel_lab.document.files import output_path_problem, write_atomically
    from pytest_parallel_lab.document.records import (
        Environment,
        Gate,
        Recommendation,
        ResultRecord,
        Sweep,
        SweepPoint,
    )
    from pytest_parallel_lab.document.run import (
        SCHEMA_VERSION,
        RunDocument,
        document_from_json,
        load_document,
        result_from_json,
        result_to_json,
        save_document,
    )
    from pytest_parallel_lab.document.suite import SuiteSection

#: The module of each name importable from here.
_MODULES = {
    "DocumentError": "codec",
    "output_path_problem": "files",
    "write_atomically": "files",
    "Environment": "records",
    "Gate": "records",
    "Recommendation": "records",
    "ResultRecord": "records",
    "Sweep": "records",
    "SweepPoint": "records",
    "SCHEMA_VERSION": "run",
    "RunDocument": "run",
    "document_from_json": "run",
    "load_document": "run",
    "result_from_json": "run",
    "result_to_json": "run",
    "save_document": "run",
    "SuiteSection": "suite",
}

__all__ = [
    "SCHEMA_VERSION",
    "DocumentError",
    "Environment",
    "Gate",
    "Recommendation",
    "ResultRecord",
    "RunDocument",
    "SuiteSection",
    "Sweep",
    "SweepPoint",
    "document_from_json",
    "load_document",
    "output_path_problem",
    "result_from_json",
    "result_to_json",
    "save_document",
    "write_atomically",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # asked for once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})
