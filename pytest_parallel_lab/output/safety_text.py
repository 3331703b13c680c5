"""Plain-text rendering of the ``safety`` section (terminal report and CLI ``show``).

Pure: a :class:`~pytest_parallel_lab.document.safety.SafetySection` in, text out, no
wider than the terminal where the content allows: one table row per finding (its
tests shortened to the first and a count), the fix of each below it; with
``verbose`` every test and every touch (phase, access, ``file:line``, fixture).
"""

from __future__ import annotations

from pytest_parallel_lab.document.safety import Finding, Problem, SafetySection, Touch
from pytest_parallel_lab.output.fit import DEFAULT_WIDTH, MIN_COLUMN, fit_table, shorten, wrap

#: How a finding's ``avoided_by`` reads when no ``--dist`` avoids it.
NOTHING_AVOIDS = "no --dist"
#: The terminal's shorter words for ``avoided_by`` (the JSON keeps the whole text).
AVOIDED_CELLS = {"xdist_group mark + --dist loadgroup": "xdist_group mark"}
#: The words for each problem in the summary line, singular and plural.
PROBLEM_WORDS = {
    Problem.COLLISION: ("collision", "collisions"),
    Problem.ORDER: ("order dependence", "order dependences"),
    Problem.THREAD_RACE: ("thread race", "thread races"),
    Problem.LEAK: ("leak", "leaks"),
}


def summary_line(section: SafetySection) -> str:
    """'parallel safety: 12 tests, 3 findings (2 collisions, 1 leak)'."""
    counts = [(problem, sum(f.problem is problem for f in section.findings)) for problem in Problem]
    parts = [
        f"{n} {PROBLEM_WORDS[p][0] if n == 1 else PROBLEM_WORDS[p][1]}" for p, n in counts if n
    ]
    found = len(section.findings)
    if not found:
        return f"parallel safety: {section.tests} tests run serially, no finding"
    noun = "finding" if found == 1 else "findings"
    return (
        f"parallel safety: {section.tests} tests run serially, {found} {noun} ({', '.join(parts)})"
    )


def _tests_cell(finding: Finding, verbose: int) -> str:
    if verbose:
        return "\n".join(finding.tests)
    first = finding.tests[0].split("::", 1)[-1]  # without its file, as the speedup table
    if len(finding.tests) == 1:
        return first
    joiner = " -> " if finding.problem is Problem.ORDER else " "
    return f"{first}{joiner}+{len(finding.tests) - 1}"


def _confirmed_cell(finding: Finding) -> str:
    if finding.confirmed is None:
        return ""
    return "failed" if finding.confirmed else "passed"


def _avoided_cell(avoided_by: str | None, verbose: int) -> str:
    if avoided_by is None:
        return NOTHING_AVOIDS if verbose else "none"
    if verbose:
        return avoided_by
    return AVOIDED_CELLS.get(avoided_by, avoided_by.removeprefix("--dist "))


def _touch_row(touch: Touch) -> list[str]:
    fixture = "" if touch.fixture is None else f"{touch.fixture} ({touch.fixture_scope})"
    return [touch.test, touch.phase, str(touch.access), touch.location or "-", fixture]


def render_safety_section(
    section: SafetySection, width: int = DEFAULT_WIDTH, verbose: int = 0
) -> str:
    """The findings as plain text, no wider than *width* where it can be."""
    lines = [wrap(summary_line(section), width)]
    if not section.findings:
        return lines[0] + "\n"
    confirm = section.confirm
    headers = ["#", "problem", "kind", "resource", "tests", "avoided by"]
    if not verbose:
        headers[5] = "--dist"
    if confirm is not None and not confirm.problem:
        headers.append(f"-n {confirm.workers}")
    rows = []
    for number, finding in enumerate(section.findings, 1):
        row = [
            str(number),
            str(finding.problem),
            str(finding.kind),
            finding.resource,
            _tests_cell(finding, verbose),
            _avoided_cell(finding.avoided_by, verbose),
        ]
        if len(headers) > 6:
            row.append(_confirmed_cell(finding))
        rows.append(row)
    if verbose:
        lines.append(fit_table(rows, headers, width=10**6))
    else:
        # The tests are cut to a quarter of the line; then the resource gives way (a
        # path keeps its end) and "avoided by" wraps.
        for row in rows:
            row[4] = shorten(row[4], max(MIN_COLUMN, width // 4))
        lines.append(fit_table(rows, headers, width, shorten_column=3, wrap_column=5))
    if confirm is not None:
        lines.append(wrap(_confirm_line(section), width))
    for number, finding in enumerate(section.findings, 1):
        lines.append(wrap(f"#{number} fix: {finding.fix}", width, indent="    "))
        if verbose:
            touches = [_touch_row(t) for t in finding.touches]
            table = fit_table(touches, ["test", "phase", "access", "where", "fixture"], 10**6)
            lines.extend("    " + line for line in table.splitlines())
    if any(f.avoided_by is None and f.problem is Problem.COLLISION for f in section.findings):
        lines.append(
            wrap(
                f"{NOTHING_AVOIDS if verbose else '--dist none'}: every xdist worker sets up "
                "its own instance of the fixture, whatever --dist",
                width,
            )
        )
    return "\n".join(lines) + "\n"


def _confirm_line(section: SafetySection) -> str:
    confirm = section.confirm
    assert confirm is not None
    runs = f"{confirm.runs} run{'s' if confirm.runs != 1 else ''} of {confirm.tests} tests"
    if confirm.problem:
        return f"not confirmed under -n {confirm.workers} ({runs}): {confirm.problem}"
    checked = [(i, f) for i, f in enumerate(section.findings, 1) if f.confirmed is not None]
    failed = [f"#{i}" for i, f in checked if f.confirmed]
    if not failed:
        return (
            f"confirmed under -n {confirm.workers} ({runs}): no finding failed; a collision "
            "needs its tests to meet, so this does not clear them"
        )
    return (
        f"confirmed under -n {confirm.workers} ({runs}): {len(failed)} of {len(checked)} "
        f"findings failed for real ({', '.join(failed)})"
    )
