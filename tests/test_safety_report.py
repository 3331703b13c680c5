"""The safety section in the terminal, the HTML page and the document."""

from __future__ import annotations

import json

import pytest

from pytest_parallel_lab.document.codec import DocumentError
from pytest_parallel_lab.document.run import RunDocument, document_from_json
from pytest_parallel_lab.document.safety import (
    Access,
    ConfirmRun,
    Finding,
    Problem,
    ResourceKind,
    SafetySection,
    Touch,
)
from pytest_parallel_lab.output.html import render_html
from pytest_parallel_lab.output.safety_text import render_safety_section
from pytest_parallel_lab.output.text import render_document

LONG = "tests/integration/test_a_very_long_module_name.py::TestSomething::test_with_a_long_name"
SECTION = SafetySection(
    40,
    (
        Finding(
            Problem.COLLISION,
            ResourceKind.FILE,
            "/home/someone/projects/app/var/run/a-rather-long-file-name.sqlite3-journal",
            (LONG, "tests/test_b.py::test_b"),
            (
                Touch(LONG, "call", Access.WRITE, "tests/integration/test_a.py:12"),
                Touch(
                    "tests/test_b.py::test_b",
                    "setup",
                    Access.READ,
                    "conftest.py:3",
                    "db",
                    "session",
                ),
            ),
            "xdist_group mark + --dist loadgroup",
            "give each test its own path",
            True,
        ),
        Finding(
            Problem.LEAK,
            ResourceKind.ENV,
            "<script>alert(1)</script>",
            ("tests/test_c.py::test_c",),
            (Touch("tests/test_c.py::test_c", "teardown", Access.LEFT, "tests/test_c.py:4"),),
            None,
            "set it with monkeypatch.setenv",
        ),
    ),
    ConfirmRun(2, 3, 2, (LONG,)),
)


@pytest.mark.parametrize("width", [80, 100, 160])
def test_the_terminal_section_fits_the_width(width: int) -> None:
    text = render_safety_section(SECTION, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "2 findings (1 collision, 1 leak)" in text.replace("\n  ", " ")
    assert "1 of 1 findings failed for real (#1)" in text.replace("\n  ", " ")


def test_verbose_shows_every_test_and_touch_whole() -> None:
    text = render_safety_section(SECTION, 80, verbose=1)
    assert LONG in text
    assert "conftest.py:3" in text
    assert "db (session)" in text


def test_a_run_without_findings_says_so() -> None:
    assert (
        render_safety_section(SafetySection(5), 80)
        == "parallel safety: 5 tests run serially, no finding\n"
    )


def test_the_document_report_includes_the_section() -> None:
    assert "parallel safety: 40 tests" in render_document(RunDocument(safety=SECTION), 80)


def test_the_html_page_escapes_what_the_suite_named() -> None:
    page = render_html([RunDocument(safety=SECTION)], ["run"])
    assert "<h2>Parallel safety</h2>" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_section_survives_the_json_round_trip() -> None:
    document = RunDocument(safety=SECTION)
    data = json.loads(json.dumps(document.to_json_dict()))
    assert data["safety"]["findings"][0]["avoided_by"] == "xdist_group mark + --dist loadgroup"
    assert document_from_json(data).safety == SECTION


def test_an_older_document_without_the_section_loads() -> None:
    data = RunDocument().to_json_dict()
    assert "safety" not in data
    assert document_from_json(data).safety is None


def test_a_garbage_section_is_refused_naming_the_key() -> None:
    data = RunDocument(safety=SECTION).to_json_dict()
    data["safety"]["findings"][0]["problem"] = "meltdown"
    with pytest.raises(DocumentError, match=r"safety\.findings\[0\]\.problem"):
        document_from_json(data, "run.json")
