"""Plain-text rendering of the ``suite`` section (terminal report and CLI ``show``).

Pure module: input is the JSON-ready section, output is text with ``tabulate`` tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tabulate import tabulate

#: How many of the slowest tests and fixtures are listed.
TOP = 10


def _s(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"


def render_suite_section(section: Mapping[str, Any]) -> str:
    """The suite analysis as plain text."""
    parts = [
        f"suite analysis: {len(section.get('tests', []))} tests, "
        f"session {_s(section.get('wall_s'))} s"
    ]
    tests = sorted(
        section.get("tests", []),
        key=lambda t: -(t["setup_s"] + t["call_s"] + t["teardown_s"]),
    )[:TOP]
    if tests:
        rows = [
            [
                t["nodeid"],
                t["worker"],
                _s(t["setup_s"]),
                _s(t["call_s"]),
                _s(t["teardown_s"]),
                t["outcome"],
            ]
            for t in tests
        ]
        parts.append(
            "slowest tests\n"
            + tabulate(rows, ["test", "worker", "setup s", "call s", "teardown s", "outcome"])
        )
    fixtures = sorted(section.get("fixtures", []), key=lambda f: -(f["setup_s"] + f["teardown_s"]))[
        :TOP
    ]
    if fixtures:
        rows = [
            [
                f["name"] if f.get("param") is None else f"{f['name']}[{f['param']}]",
                f["scope"],
                f["baseid"] or "(root)",
                f["worker"],
                f["instances"],
                _s(f["setup_s"]),
                _s(f["teardown_s"]),
            ]
            for f in fixtures
        ]
        parts.append(
            "slowest fixtures (own time, all instances)\n"
            + tabulate(
                rows,
                ["fixture", "scope", "defined in", "worker", "instances", "setup s", "teardown s"],
            )
        )
    workers = section.get("workers", [])
    if workers:
        rows = [
            [
                w["id"],
                _s(w["startup_s"]),
                _s(w["collection_s"]),
                _s(w["busy_s"]),
                _s(w["idle_s"]),
                w["tests"],
            ]
            for w in workers
        ]
        parts.append(
            "workers\n"
            + tabulate(rows, ["worker", "start-up s", "collection s", "busy s", "idle s", "tests"])
        )
    balance = section.get("imbalance")
    if balance:
        parts.append(
            f"imbalance: slowest worker busy {balance['busy_max_over_mean']:.2f}x "
            f"the mean; last worker finished {balance['finish_gap_s']:.3f} s after "
            "the first"
        )
    duplicated = [d for d in section.get("duplication", []) if d["instances"] > 1][:TOP]
    if duplicated:
        rows = [
            [
                d["name"],
                d["scope"],
                d["workers"],
                d["instances"],
                _s(d["total_s"]),
                _s(d["serial_s"]),
            ]
            for d in duplicated
        ]
        parts.append(
            "fixture duplication across workers\n"
            + tabulate(rows, ["fixture", "scope", "workers", "instances", "total s", "serial s"])
        )
    chain = section.get("last_worker_chain")
    if chain and chain.get("tests"):
        slowest = sorted(chain["tests"], key=lambda t: -t["total_s"])[:5]
        names = ", ".join(f"{t['nodeid']} ({t['total_s']:.3f}s)" for t in slowest)
        parts.append(
            f"last worker to finish: {chain['worker']} ran {len(chain['tests'])} "
            f"tests; its slowest: {names}"
        )
    actual = section.get("actual")
    if section.get("prediction"):
        parts.append(
            render_prediction(
                section["prediction"],
                section.get("recommended"),
                section.get("serial_wall_s", section.get("wall_s")),
                actual,
            )
        )
    return "\n\n".join(parts) + "\n"


def render_prediction(
    rows: Sequence[Mapping[str, Any]],
    recommended: Mapping[str, Any] | None,
    serial_wall_s: float | None,
    actual: Mapping[str, Any] | None = None,
) -> str:
    """The prediction table (and the actual run when it was an xdist run)."""
    table = []
    for p in rows:
        line = [p["workers"], p["dist"], _s(p["wall_s"]), _s(p["lower_bound_s"])]
        if serial_wall_s:
            line.append(f"{serial_wall_s / p['wall_s']:.2f}x" if p["wall_s"] else "-")
        if actual:
            same = p["workers"] == actual["workers"] and p["dist"] == actual["dist"]
            line.append(_s(actual["wall_s"]) if same else "")
        table.append(line)
    headers = ["-n", "dist", "predicted s", "lower bound s"]
    if serial_wall_s:
        headers.append("vs serial")
    if actual:
        headers.append("actual s")
    text = "xdist prediction\n" + tabulate(table, headers)
    if recommended and recommended.get("message"):
        text += f"\nrecommendation: {recommended['message']}"
    return text
