"""Text that fits a terminal: tables whose long columns give way, prose wrapped.

The terminal report is read at 80 columns as often as at 200: a table first shortens
the column of prose (a reason) wraps, then the column that can lose characters gives
way (a node id keeps its start and its end, where tests differ), and a sentence wraps.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

#: The width when none is known (pytest's own default for a terminal it cannot measure).
DEFAULT_WIDTH = 80
#: The fewest characters a shortened or wrapped column keeps.
MIN_COLUMN = 12
#: A column of prose keeps this many characters before other columns give way.
PROSE_COLUMN = 32
ELLIPSIS = "…"


def shorten(text: str, width: int) -> str:
    """*text* cut to *width* characters in its first third, where node ids are alike
    (folders, ``test_``) and their ends differ: 'test_cpu…pure_python[4]'."""
    if len(text) <= width:
        return text
    head = max(0, (width - 1) // 3)
    return text[:head] + ELLIPSIS + text[len(text) - (width - 1 - head) :]


def wrap(text: str, width: int, indent: str = "  ") -> str:
    """Each line of *text* wrapped at *width*, continuation lines indented."""
    return "\n".join(
        textwrap.fill(
            line,
            width,
            subsequent_indent=indent,
            break_on_hyphens=False,
            break_long_words=False,  # a node id stays whole: shorten it to fit instead
        )
        or line
        for line in text.splitlines()
    )


def widest(text: str) -> int:
    """The longest line of *text*."""
    return max((len(line) for line in text.splitlines()), default=0)


def fit_table(
    rows: Sequence[Sequence[Any]],
    headers: Sequence[str],
    width: int,
    *,
    shorten_column: int | None = None,
    wrap_column: int | None = None,
) -> str:
    """A ``tabulate`` table no wider than *width* where it can be: the column of prose
    *wrap_column* wraps first, then *shorten_column* loses characters from its left."""
    cells = [[str(cell) for cell in row] for row in rows]
    wrap_width: int | None = None
    text = _render(cells, headers, wrap_width, wrap_column)
    # Prose wraps to a readable column first, then the shortened column gives way, then
    # the prose wraps further.
    for step, floor in (("wrap", PROSE_COLUMN), ("shorten", MIN_COLUMN), ("wrap", MIN_COLUMN)):
        column = wrap_column if step == "wrap" else shorten_column
        for _ in range(3):  # each pass measures what is left to take
            excess = widest(text) - width
            if excess <= 0 or column is None or not cells:
                break
            current = (
                wrap_width
                if step == "wrap" and wrap_width is not None
                else _column_width(cells, headers, column)
            )
            target = max(floor, current - excess)
            if target >= current:
                break
            if step == "wrap":
                wrap_width = target
            else:
                cells = [
                    [shorten(c, target) if i == column else c for i, c in enumerate(row)]
                    for row in cells
                ]
            text = _render(cells, headers, wrap_width, wrap_column)
    return text


def _column_width(cells: Sequence[Sequence[str]], headers: Sequence[str], column: int) -> int:
    longest = max((len(line) for row in cells for line in row[column].splitlines()), default=0)
    return max(longest, len(headers[column]))


def _render(
    cells: Sequence[Sequence[str]],
    headers: Sequence[str],
    wrap_width: int | None,
    wrap_column: int | None,
) -> str:
    widths: list[int | None] | None = None
    if wrap_width is not None and wrap_column is not None and cells:
        widths = [None] * len(headers)
        widths[wrap_column] = wrap_width
    # Numbers keep the digits they were given (tabulate's number parsing would drop
    # trailing zeros) and stand right-aligned.
    align = [
        "right" if cells and all(_numeric(row[i]) for row in cells) else "left"
        for i in range(len(headers))
    ]
    return tabulate(
        cells,
        headers=list(headers),
        disable_numparse=True,
        maxcolwidths=widths,
        colalign=align,
    )


def _numeric(cell: str) -> bool:
    text = cell.removesuffix("x").removesuffix("%").strip()
    if text in ("", "-"):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True
