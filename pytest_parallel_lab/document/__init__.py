"""The run document: what one pytest run measured, as typed records and their JSON.

``records`` (marked tests' results and their analyses), ``suite`` (the suite section),
``run`` (the document, saved and loaded), ``codec`` (JSON for every record type),
``strict_json`` (the JSON text a run can hold) and ``files`` (atomic writes, bounded
reads of regular files only). The names most callers need are importable from here.
"""

from __future__ import annotations

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
