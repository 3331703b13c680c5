"""Plain-text rendering of the ``suite`` section (terminal report and CLI ``show``).

Pure: a :class:`~pytest_parallel_lab.document.suite.SuiteSection` in, text with
``tabulate`` tables out; one small function per block.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_parallel_lab.document.suite import (
    ActualRun,
    Calibration,
    Prediction,
    ShardPrediction,
    SuiteSection,
    XdistAdvice,
)
from pytest_parallel_lab.output.cells import number_cell, ratio_cell
from pytest_parallel_lab.output.fit import DEFAULT_WIDTH, fit_table, shorten, wrap

#: How many of the slowest tests and fixtures are listed.
TOP = 10


def render_suite_section(section: SuiteSection, width: int = DEFAULT_WIDTH) -> str:
    """The suite analysis as plain text, no wider than *width* where it can be."""
    if not section.tests:
        # --co, or every test deselected: nothing to time, nothing to predict from.
        return f"suite analysis: no test ran (session {number_cell(section.wall_s)} s)\n"
    parts = [
        f"suite analysis: {len(section.tests)} tests, session {number_cell(section.wall_s)} s",
        wrap(_cpu_share(section), width),
        _slowest_tests(section, width),
        _slowest_fixtures(section, width),
        _workers(section, width),
        wrap(_imbalance(section), width),
        _duplication(section, width),
        wrap(_last_worker(section, width), width),
    ]
    if section.shards:
        parts.append(render_shards(section.shards, width))
    if section.prediction:
        parts.append(wrap(_prediction_basis(section), width))
        parts.append(
            render_prediction(
                section.prediction,
                section.recommended,
                section.serial_wall_s,
                section.actual,
                width,
            )
        )
    return "\n\n".join(part for part in parts if part) + "\n"


def suite_cpu_share(section: SuiteSection) -> float | None:
    """The share of the tests' time that was CPU (None when no test's CPU is known)."""
    known = [t for t in section.tests if t.cpu_s is not None]
    total = sum(t.total_s for t in known)
    if not known or total <= 0.0:
        return None
    return min(1.0, sum(t.cpu_s or 0.0 for t in known) / total)


def _cpu_share(section: SuiteSection) -> str:
    share = suite_cpu_share(section)
    if share is None:
        return ""
    return (
        f"CPU: {share:.0%} of the tests' time; the rest waits (sleep, I/O, other "
        "processes). Under -n only the CPU part contends for the CPUs."
    )


def _prediction_basis(section: SuiteSection) -> str:
    """What the prediction rests on besides the tests' own times."""
    cal = section.calibration
    if cal is None:
        return ""
    reports = sum(t.reports for t in section.tests)
    controller = cal.controller_report_s * reports
    return (
        f"prediction basis: a worker starts in {number_cell(cal.startup_s)} s and collects "
        f"in {number_cell(cal.collection_s)} s; the controller spends "
        f"{cal.controller_report_s * 1e6:.0f} us on each of {reports} reports "
        f"({number_cell(controller)} s on one CPU); a worker's session end takes "
        f"{number_cell(cal.shutdown_s)} s "
        f"({'measured' if cal.shutdown_measured else 'not measured: the default'}); "
        f"{cal.cpus} CPU{'' if cal.cpus == 1 else 's'};"
        f"{_background_basis(cal)}{_remote_basis(section)} "
        f"{_first_use_basis(section)}.{_calibration_basis(section)}"
    )


def _calibration_basis(section: SuiteSection) -> str:
    """What a saved -n N run (``--parallel-calibrate-from``) measured, when one did, and
    how much of the shown prediction rests on the work it found repeated."""
    cal = section.calibration
    if cal is None or not cal.calibration_workers:
        return ""
    if cal.repeated:
        repeated_s = sum(cal.repeated.values())
        found = (
            f"{len(cal.repeated)} of the {cal.calibration_tests} tests in both runs "
            f"repeat {number_cell(repeated_s)} s of CPU work on a worker that did not "
            "run what warmed it"
        )
        chosen = _shown_prediction(section)
        if chosen is not None and chosen.wall_s > 0.0 and chosen.workers > 1:
            per_worker = (1.0 - 1.0 / chosen.workers) * repeated_s / chosen.workers
            found += (
                f" (-n {chosen.workers} --dist {chosen.dist}: about "
                f"{number_cell(per_worker)} s, {per_worker / chosen.wall_s:.0%}, of its "
                f"predicted {number_cell(chosen.wall_s)} s)"
            )
    else:
        found = f"none of the {cal.calibration_tests} tests in both runs repeats work"
    return (
        f" Calibrated by a saved -n {cal.calibration_workers} run: {found}; the start-up "
        "and the controller's cost per report are that run's."
    )


def _background_basis(cal: Calibration) -> str:
    """Other processes' demand during the measured run, when there was some."""
    if cal.background_demand < 0.05:
        return ""
    return (
        f" other processes kept {cal.background_demand:.1f} CPUs' worth of work running"
        " during this run (the workers are predicted to compete with it);"
    )


def _remote_basis(section: SuiteSection) -> str:
    """The start-up of remote gateways, when some were predicted."""
    cal = section.calibration
    if cal is None or not any(p.remote for p in section.prediction):
        return ""
    if cal.remote_startup_s is None:
        return (
            " a remote gateway starts like a local worker (not given: "
            "--parallel-predict-tx-startup) and computes on CPUs of its own;"
        )
    return (
        f" a remote gateway starts in {number_cell(cal.remote_startup_s)} s (given) and "
        "computes on CPUs of its own;"
    )


def _first_use_basis(section: SuiteSection) -> str:
    """How much of the prediction rests on the first-use estimate (issue 11): of the
    recommended configuration, else the run's own, else the first predicted."""
    cal = section.calibration
    if cal is None or not cal.first_use_units:
        return "no first-use cost found in tests (imports, caches) that workers would repeat"
    found = (
        f"first use in tests (imports, caches) in {cal.first_use_units} "
        f"{'unit' if cal.first_use_units == 1 else 'units'}, {number_cell(cal.first_use_s)} s "
        "once, estimated from each unit's first test"
    )
    chosen = _shown_prediction(section)
    if chosen is None or chosen.wall_s <= 0.0:
        return found
    per_worker = chosen.repeated_s / max(1, chosen.workers)
    return (
        f"{found}: -n {chosen.workers} --dist {chosen.dist} repeats "
        f"{number_cell(chosen.repeated_s)} s of it over its workers, about "
        f"{number_cell(per_worker)} s ({per_worker / chosen.wall_s:.0%}) of its predicted "
        f"{number_cell(chosen.wall_s)} s"
    )


def _shown_prediction(section: SuiteSection) -> Prediction | None:
    wanted = section.recommended
    key = (wanted.workers, wanted.dist, 0) if wanted is not None and wanted.workers else None
    if key is None and section.actual is not None:
        key = (section.actual.workers, section.actual.dist, section.actual.remote)
    for p in section.prediction:
        if key is None or (p.workers, p.dist, p.remote) == key:
            return p
    return section.prediction[0] if section.prediction else None


def _slowest_tests(section: SuiteSection, width: int) -> str:
    tests = sorted(section.tests, key=lambda t: -t.total_s)[:TOP]
    if not tests:
        return ""
    rows = [
        [t.nodeid, t.worker, *map(number_cell, (t.setup_s, t.call_s, t.teardown_s)), t.outcome]
        for t in tests
    ]
    headers = ["test", "worker", "setup", "call", "teardown", "outcome"]
    return "slowest tests (seconds)\n" + _table(section, rows, headers, width, 0, 1)


def _slowest_fixtures(section: SuiteSection, width: int) -> str:
    fixtures = sorted(section.fixtures, key=lambda f: -(f.setup_s + f.teardown_s))[:TOP]
    if not fixtures:
        return ""
    rows = [
        [
            f.name if f.param is None else f"{f.name}[{f.param}]",
            f.scope,
            f.baseid or "(root)",
            f.worker,
            f.instances,
            number_cell(f.setup_s),
            number_cell(f.teardown_s),
        ]
        for f in fixtures
    ]
    headers = ["fixture", "scope", "where", "worker", "count", "setup", "teardown"]
    table = _table(section, rows, headers, width, 2, 3)
    return "slowest fixtures (own time in seconds, all instances)\n" + table


def _table(
    section: SuiteSection,
    rows: Sequence[Sequence[object]],
    headers: Sequence[str],
    width: int,
    shorten_column: int,
    worker_column: int,
) -> str:
    """A table of the section: without its worker column when one process ran the tests."""
    if len(section.workers) <= 1:
        rows = [[c for i, c in enumerate(row) if i != worker_column] for row in rows]
        headers = [h for i, h in enumerate(headers) if i != worker_column]
        shorten_column -= shorten_column > worker_column
    return fit_table(rows, headers, width, shorten_column=shorten_column)


def _workers(section: SuiteSection, width: int) -> str:
    if not section.workers:
        return ""
    rows = [
        [
            w.id,
            number_cell(w.startup_s),
            number_cell(w.collection_s),
            number_cell(w.busy_s),
            number_cell(w.idle_s),
            w.tests,
        ]
        for w in section.workers
    ]
    headers = ["worker", "start-up", "collection", "busy", "idle", "tests"]
    return "workers (seconds)\n" + fit_table(rows, headers, width)


def _imbalance(section: SuiteSection) -> str:
    balance = section.imbalance
    if balance is None:
        return ""
    return (
        f"imbalance: slowest worker busy {balance.busy_max_over_mean:.2f}x the mean; "
        f"last worker finished {balance.finish_gap_s:.3f} s after the first"
    )


def _duplication(section: SuiteSection, width: int) -> str:
    duplicated = [d for d in section.duplication if d.instances > 1][:TOP]
    if not duplicated:
        return ""
    rows = [
        [d.name, d.scope, d.workers, d.instances, number_cell(d.total_s), number_cell(d.serial_s)]
        for d in duplicated
    ]
    headers = ["fixture", "scope", "workers", "instances", "total s", "serial s"]
    return "fixture duplication across workers\n" + fit_table(
        rows, headers, width, shorten_column=0
    )


def _last_worker(section: SuiteSection, width: int) -> str:
    chain = section.last_worker_chain
    if chain is None or not chain.tests:
        return ""
    slowest = sorted(chain.tests, key=lambda t: -t.total_s)[:5]
    names = ", ".join(f"{shorten(t.nodeid, width // 2)} ({t.total_s:.3f}s)" for t in slowest)
    return (
        f"last worker to finish: {chain.worker} ran {len(chain.tests)} tests; its slowest: {names}"
    )


def render_prediction(
    predictions: Sequence[Prediction],
    advice: XdistAdvice | None,
    serial_wall_s: float | None,
    actual: ActualRun | None = None,
    width: int = DEFAULT_WIDTH,
) -> str:
    """The prediction table (and the actual run when it was an xdist run)."""
    table = []
    for p in predictions:
        line: list[object] = [
            f"{p.workers} ({p.remote} remote)" if p.remote else p.workers,
            p.dist,
            number_cell(p.wall_s),
            number_cell(p.lower_bound_s),
        ]
        if serial_wall_s:
            line.append(ratio_cell(serial_wall_s, p.wall_s))
        if actual:
            same = (p.workers, p.dist, p.remote) == (actual.workers, actual.dist, actual.remote)
            line.append(number_cell(actual.wall_s) if same else "")
        table.append(line)
    headers = ["-n", "dist", "predicted s", "lower bound s"]
    if serial_wall_s:
        headers.append("vs serial")
    if actual:
        headers.append("actual s")
    text = "xdist prediction\n" + fit_table(table, headers, width)
    if advice is not None and advice.message:
        text += "\n" + wrap(f"recommendation: {advice.message}", width)
    return text


def render_shards(predictions: Sequence[ShardPrediction], width: int = DEFAULT_WIDTH) -> str:
    """K machines each running -n N: the slowest shard, and each shard's time."""
    rows = [
        [
            p.shards,
            p.workers,
            p.dist,
            number_cell(p.wall_s),
            " ".join(number_cell(w) for w in p.shard_wall_s),
        ]
        for p in predictions
    ]
    headers = ["shards", "-n", "dist", "slowest s", "each shard s"]
    table = fit_table(rows, headers, width, shorten_column=4)
    return "CI matrix prediction (split by duration, as pytest-split does)\n" + table
