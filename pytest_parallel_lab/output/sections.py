"""Text rendering of the ``recommendations`` and ``scaling`` sections.

Takes the plain JSON sections (as built by :mod:`pytest_parallel_lab.marked.diagnosis` and
:mod:`pytest_parallel_lab.marked.scaling`, or loaded from a saved run) and returns text;
it never measures or decides anything. A saved section may come from another
version or be damaged: entries that are not objects are skipped and values of the
wrong type are shown as ``-``, so a bad section never hides the rest of the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tabulate import tabulate

_TABLE_FORMAT = "simple"


def _entries(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def render_recommendations(section: Sequence[Mapping[str, Any]]) -> str:
    """A "recommendations" block: test, class, backend to use, reason. Empty for no entries."""
    rows = []
    for entry in _entries(section):
        test = str(entry.get("test", ""))
        if entry.get("call_index") is not None:
            test += f" (map #{entry['call_index'] + 1})"
        rows.append(
            [
                test,
                entry.get("classification", ""),
                entry.get("backend", ""),
                entry.get("reason", ""),
            ]
        )
    if not rows:
        return ""
    table = tabulate(rows, headers=["test", "class", "use", "reason"], tablefmt=_TABLE_FORMAT)
    return f"recommendations\n{table}"


def _float(value: Any) -> float | None:
    """*value* as a float, or None when it is not a JSON number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _number(value: Any, spec: str) -> str:
    number = _float(value)
    return "-" if number is None else format(number, spec)


def _interval(point: Mapping[str, Any]) -> str:
    low, high = _number(point.get("ci_low"), ".2f"), _number(point.get("ci_high"), ".2f")
    return f"[{low}-{high}]"


def _fit_line(entry: Mapping[str, Any]) -> str:
    fraction = _float(entry.get("serial_fraction"))
    if fraction is None:
        return "Amdahl fit: not enough worker counts within the usable CPUs"
    ceiling = _float(entry.get("max_speedup"))
    ceiling_text = "unbounded" if ceiling is None or math.isinf(ceiling) else f"{ceiling:.1f}x"
    return (
        f"Amdahl fit: serial fraction {fraction:.3f}, max speedup {ceiling_text}, "
        f"r² {_number(entry.get('fit_r2'), '.3f')}"
    )


def render_scaling(section: Sequence[Mapping[str, Any]]) -> str:
    """Per sweep: a table of workers and speedup [95% CI], the fit line, the hardware-cap remark."""
    blocks = []
    for entry in _entries(section):
        cpus = _float(entry.get("usable_cpus")) or 0.0
        capped = entry.get("capped_by_cpus") is True
        rows = []
        for point in _entries(entry.get("points")):
            workers = point.get("workers")
            count = _float(workers)
            over = capped and cpus > 0 and count is not None and count > cpus
            rows.append(
                [
                    workers,
                    f"{_number(point.get('speedup'), '.2f')}x",
                    _interval(point),
                    "above usable CPUs, not fitted" if over else "",
                ]
            )
        title = f"scaling: {entry.get('test', '')} [{entry.get('backend', '')}]"
        table = tabulate(rows, headers=["workers", "speedup", "95% CI", ""], tablefmt=_TABLE_FORMAT)
        lines = [title, table.rstrip(), _fit_line(entry)]
        if capped:
            where = f"the {cpus:.0f} usable CPUs" if cpus else "the usable CPUs"
            lines.append(
                f"the sweep is capped by the hardware: worker counts above {where} cannot "
                "speed up CPU work, so a flat tail there is not a plateau of the workload"
            )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
