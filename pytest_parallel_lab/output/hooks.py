"""pytest glue for the report: the run document assembled once at the end of the
session, written to the files the options name, and printed in the terminal summary.

Registered by ``plugin.py`` on the controller (or in a plain run) when a report of
any kind was asked for. The features that measured something each add their part
to the document (:class:`Contributor`); other plugins add theirs through the
``pytest_parallel_lab_document_sections`` hook.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import pytest

from pytest_parallel_lab.document.run import TYPED_SECTIONS, RunDocument
from pytest_parallel_lab.options import LabOptions, write_output

SECTION_TITLE = "pytest-parallel-lab"
#: Top-level names a plugin's section cannot take: the document's own keys.
RESERVED_NAMES = frozenset(
    {"schema_version", "plugin", "created", "environment", "results", *TYPED_SECTIONS}
)


class Contributor(Protocol):
    """A feature's part of the run document."""

    def contribute(self, document: RunDocument) -> RunDocument:
        """*document* with this feature's part added."""
        ...


class ReportPlugin:
    """Builds the run document from its contributors, saves and prints it."""

    def __init__(self, options: LabOptions, contributors: Sequence[Contributor]) -> None:
        self.options = options
        self.contributors = list(contributors)
        self.document: RunDocument | None = None

    def build_document(self, config: pytest.Config) -> RunDocument:
        """Every contributor's part, and every other plugin's sections."""
        from pytest_parallel_lab.timing import utc_now_iso

        document = RunDocument(environment=self.options.environment, created=utc_now_iso())
        for contributor in self.contributors:
            document = contributor.contribute(document)
        sections: dict[str, Any] = {}
        for contribution in config.hook.pytest_parallel_lab_document_sections(config=config):
            for name, value in (contribution or {}).items():
                if name in RESERVED_NAMES:
                    warnings.warn(
                        pytest.PytestWarning(
                            f"pytest_parallel_lab_document_sections: a section named {name!r} "
                            "was left out: the name is pytest-parallel-lab's own. "
                            "Fix: give the section another name"
                        ),
                        stacklevel=1,
                    )
                    continue
                sections[name] = value
        if sections:
            from dataclasses import replace

            document = replace(document, sections=sections)
        return document

    # trylast: after xdist's controller has torn its workers down in its own (plain)
    # sessionfinish, so that a -n run's section has the whole session end.
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.document = document = self.build_document(session.config)
        options = self.options
        if options.report_json:
            from pytest_parallel_lab.document.run import save_document

            write_output(
                session,
                "parallel_report_json",
                options.report_json,
                lambda target: save_document(document, target),
            )
        if options.html:
            from pytest_parallel_lab.output.html import write_html

            title = options.label or SECTION_TITLE
            write_output(
                session,
                "parallel_html",
                options.html,
                lambda target: write_html([document], [title], target),
            )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.document is None or not self.options.report:
            return
        terminalreporter.write_sep("=", SECTION_TITLE)
        from pytest_parallel_lab.output.text import render_document  # tabulate: only to print

        config = terminalreporter.config
        width = config.get_terminal_writer().fullwidth
        text = render_document(self.document, width, verbose=max(0, config.getoption("verbose")))
        for line in text.splitlines():
            terminalreporter.write_line(line)

    # tryfirst: printed and saved by now; dropped before pytest's own unconfigure runs a
    # full garbage collection, which would otherwise walk every row of a large suite.
    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self) -> None:
        self.document = None
