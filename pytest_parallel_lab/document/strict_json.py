"""A document's JSON text parsed strictly: what a run can hold, or an error saying where.

Python's :mod:`json` reads ``NaN``, ``Infinity`` and ``-Infinity`` (and ``1e999`` as
infinity), which no run holds (saving refuses them) and which every report would
print as ``nan`` or ``inf``; and it reads ``"\\ud800"`` as a lone surrogate, which
no terminal or file can be written. Both are refused here with their place in the
document (``run.json: results[3].speedup.estimate: ...``), plain or plugin part
alike (issue 14). Finding the place costs a walk only when such a value was seen.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from typing import Any

from pytest_parallel_lab.document.codec import DocumentError

#: An escaped UTF-16 surrogate (a pair is text, a lone half is not): worth a look.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
#: A key written as ``.key`` in a place; any other is written ``["key"]``.
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

Place = tuple[str | int, ...]


class _NonFinite:
    """What a non-finite number parses to, so that its place can be found."""

    __slots__ = ("word",)

    def __init__(self, word: str) -> None:
        self.word = word


def parse_strict_json(text: str, source: str) -> Any:
    """*text* as plain JSON types; a :class:`DocumentError` naming *source* otherwise."""
    seen: list[_NonFinite] = []

    def non_finite(word: str) -> _NonFinite:
        found = _NonFinite(word)
        seen.append(found)
        return found

    def number(word: str) -> float | _NonFinite:
        value = float(word)
        return value if math.isfinite(value) else non_finite(word)

    try:
        data = json.loads(text, parse_constant=non_finite, parse_float=number)
    except json.JSONDecodeError as exc:
        raise DocumentError(
            f"{source}: not valid JSON (truncated or corrupt?) at line {exc.lineno} "
            f"column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise DocumentError(f"{source}: JSON nested too deeply") from None
    except ValueError:
        # The one other ValueError json raises: an integer longer than Python converts.
        limit = getattr(sys, "get_int_max_str_digits", lambda: 4300)()
        raise DocumentError(f"{source}: an integer has more than {limit} digits") from None
    if seen:
        place, value = _first(data, lambda v: isinstance(v, _NonFinite))
        raise DocumentError(
            f"{source}: {format_place(place)}: expected a finite number, got {value.word}"
        )
    if _SURROGATE_ESCAPE.search(text):
        found = _find(data, _not_text)
        if found is not None:
            raise DocumentError(
                f"{source}: {format_place(found[0])}: not text (holds a lone UTF-16 surrogate)"
            )
    return data


def format_place(place: Place) -> str:
    """``("results", 3, "speedup")`` -> ``results[3].speedup``; an odd key is quoted."""
    text = ""
    for step in place:
        if isinstance(step, int):
            text += f"[{step}]"
        elif _PLAIN_KEY.fullmatch(step):
            text += f".{step}" if text else step
        else:
            text += f"[{json.dumps(step)}]"
    return text or "(top level)"


def _not_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first(data: Any, bad: Callable[[Any], bool]) -> tuple[Place, Any]:
    found = _find(data, bad)
    if found is None:  # pragma: no cover - only called once such a value was parsed
        raise AssertionError("the value that was parsed is not in the data")
    return found


def _find(data: Any, bad: Callable[[Any], bool]) -> tuple[Place, Any] | None:
    """The first key or value in *data* (in document order) that is *bad*, and its place.

    A loop, not recursion: the document may be nested as deeply as json can read.
    """
    stack: list[tuple[Place, Any]] = [((), data)]
    while stack:
        place, value = stack.pop()
        if bad(value):
            return place, value
        if isinstance(value, dict):
            children = []
            for key, item in value.items():
                if bad(key):
                    return (*place, key), key
                children.append(((*place, key), item))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(reversed([((*place, i), item) for i, item in enumerate(value)]))
    return None
