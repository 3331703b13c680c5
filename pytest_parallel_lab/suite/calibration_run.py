"""Calibrate a serial run's prediction with a saved ``-n N`` run of the same suite.

Pure. A serial run cannot see the work that xdist workers repeat: a test that builds a
cache or imports a module warms it for every test after it, in any module, and under
``-n N`` the tests after it run on other workers too, each of which pays it again.
``suite/first_use.py`` finds such a cost only in the first test of a module or of a
parametrized function; a cache that one file's tests warm for another's (a lexer's
compiled rules, a locale's data) is invisible to it. A run saved with
``pytest -n N --parallel-report-json=PATH`` (``--parallel-calibrate-from=PATH``) shows
it: such a test's CPU time there is longer than in the serial run.

:func:`calibration_from_run` matches the tests by node id. A test's *excess* is its CPU
time under ``-n N`` minus its serial CPU time and minus its own report sends (inside its
CPU time there; a test with subtests sends many); its module's typical excess is taken
off (what every test there pays alike: CPUs shared with the other workers, a host busy
with other machines), as the median excess and as the median share of the tests' CPU
time, whichever leaves less; what is left counts as repeated work when it is at least
:data:`REPEAT_MIN_S` and :data:`REPEAT_MIN_RATIO` of the test's serial CPU time. On a
worker of the saved run a test misses the warming test with a chance of ``1 - 1/N``
(the warming test ran on one of the ``N`` workers), so the test's cost of one full miss
is its repeated work over ``1 - 1/N``; the simulation of ``-n M`` charges ``1 - 1/M`` of
it (``suite/simulate.py``).
The first test of a first-use unit on its worker is left out: the first-use estimate
charges that already. The saved run's start-up, its controller's cost per report and its
session end (when this run measured none) replace this run's estimates.

The saved run must be of the whole suite on this machine: a run of some of the files
misses the tests that warmed the caches in the serial run, and would count the work
they did as repeated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from pytest_parallel_lab.document.codec import DocumentError
from pytest_parallel_lab.document.suite import Calibration, SuiteSection, TestTiming
from pytest_parallel_lab.stats import median
from pytest_parallel_lab.suite.first_use import estimate_first_use, function_unit, module_unit

#: A test's excess beyond its module's median that counts as repeated work (a cache
#: built, a module imported), not the noise of a CPU clock beside another worker.
REPEAT_MIN_S = 0.001
#: ...and at least this share of the test's serial CPU time: a long test that runs 20%
#: slower beside another worker (a shared cache, a memory bus) repeats nothing, a cheap
#: test that compiles what another worker's test compiled takes several times as long.
REPEAT_MIN_RATIO = 0.5


@dataclass(frozen=True)
class RunCalibration:
    """What a saved ``-n N`` run measured, matched to this run's tests."""

    #: the saved run's workers
    workers: int
    #: tests in both runs with a CPU time in each
    matched: int
    startup_s: float
    controller_report_s: float
    #: the saved run's measured worker session end (None: it did not measure one)
    shutdown_s: float | None
    #: per node id, the CPU seconds the test repeats on a worker that did not run the
    #: test that warmed it in the serial run (one full miss)
    repeated: Mapping[str, float] = field(default_factory=dict)


def check_xdist_run(section: SuiteSection | None) -> SuiteSection:
    """The saved section when it can calibrate: a run with suite timing under ``-n N``
    on local workers; else a :class:`DocumentError` saying why."""
    if section is None or not section.tests:
        raise DocumentError(
            "the document has no 'suite' section with tests: save the -n run with "
            "pytest -n 2 --parallel-report-json=PATH"
        )
    actual = section.actual
    if actual is None:
        raise DocumentError(
            "the run was not an xdist run (no -n): a serial run measures nothing a "
            "serial run does not; save one with pytest -n 2 --parallel-report-json=PATH"
        )
    if actual.remote:
        raise DocumentError(
            f"the run had {actual.remote} remote gateway(s): their CPU times are of "
            "other machines; save a run of local workers only with pytest -n 2"
        )
    if actual.workers < 2:
        raise DocumentError(
            f"the run had {actual.workers} worker: calibrating needs at least two "
            "that ran at once; save one with pytest -n 2"
        )
    if section.calibration is None:
        raise DocumentError("the document's suite section has no calibration")
    return section


def _cpu_by_test(rows: Iterable[TestTiming]) -> dict[str, float]:
    """Each test's CPU seconds (its subtests' reports summed), where known."""
    cpu: dict[str, float] = {}
    unknown: set[str] = set()
    for row in rows:
        if row.cpu_s is None:
            unknown.add(row.nodeid)
        else:
            cpu[row.nodeid] = cpu.get(row.nodeid, 0.0) + row.cpu_s
    for nodeid in unknown:
        cpu.pop(nodeid, None)
    return cpu


def _first_of_units(rows: Sequence[TestTiming], units: Iterable[str]) -> set[str]:
    """The node ids that ran first on their worker among the tests of each of *units*
    (modules, parametrized functions): where a worker paid a first-use cost."""
    wanted = set(units)
    seen: set[tuple[str, str]] = set()
    firsts: set[str] = set()
    for row in sorted(rows, key=lambda r: r.start_s):
        for unit in (module_unit(row.nodeid), function_unit(row.nodeid)):
            if unit in wanted and (row.worker, unit) not in seen:
                seen.add((row.worker, unit))
                firsts.add(row.nodeid)
    return firsts


def _reports_by_test(rows: Iterable[TestTiming]) -> dict[str, int]:
    reports: dict[str, int] = {}
    for row in rows:
        reports[row.nodeid] = reports.get(row.nodeid, 0) + row.reports
    return reports


def repeated_work(
    saved: Sequence[TestTiming],
    serial: Sequence[TestTiming],
    workers: int,
    send_s: float = 0.0,
) -> tuple[dict[str, float], int]:
    """Per node id, the CPU seconds of one full miss of what warmed the test in the
    *serial* run, as the *saved* run of *workers* workers shows it; and how many tests
    both runs timed. *send_s* is a worker's CPU cost of sending one report."""
    theirs = _cpu_by_test(saved)
    ours = _cpu_by_test(serial)
    reports = _reports_by_test(saved)
    # a test's own sends (one per phase and per subtest) come off before its module's
    # typical excess is: a test of 1,800 subtests sends 600 times what its siblings do
    excess = {n: theirs[n] - cpu - send_s * reports[n] for n, cpu in ours.items() if n in theirs}
    if workers < 2 or not excess:
        return {}, len(excess)
    # A module's typical growth, as a constant per test and as a share of its CPU time:
    # a busy host slows every test's CPU work in proportion (one run's tests took 2.2
    # times their serial CPU time, every one of them), which a constant leaves in the
    # long tests.
    by_module: dict[str, list[float]] = {}
    growth: dict[str, list[float]] = {}
    for nodeid, value in excess.items():
        by_module.setdefault(module_unit(nodeid), []).append(value)
        if ours[nodeid] > 0.0:
            growth.setdefault(module_unit(nodeid), []).append(value / ours[nodeid])
    typical = {module: median(values) for module, values in by_module.items()}
    share = {module: max(0.0, median(values)) for module, values in growth.items()}
    charged = _first_of_units(saved, estimate_first_use(serial).costs)
    miss = 1.0 - 1.0 / workers
    repeated = {}
    for nodeid, value in excess.items():
        module = module_unit(nodeid)
        # what the typical growth leaves, taken either way: whichever leaves less
        left = min(value - typical[module], value - ours[nodeid] * share.get(module, 0.0))
        if (
            left >= REPEAT_MIN_S
            and left >= REPEAT_MIN_RATIO * ours[nodeid]
            and nodeid not in charged
        ):
            repeated[nodeid] = left / miss
    return repeated, len(excess)


def calibration_from_run(
    saved: SuiteSection, serial: SuiteSection, send_s: float = 0.0
) -> RunCalibration:
    """Match *serial*'s tests (this run's) with *saved*'s (checked by
    :func:`check_xdist_run`) and read what the saved run measured; *send_s* is a
    worker's CPU cost of sending one report (this run's calibration). A
    :class:`DocumentError` when no test is in both: the saved run is of another suite."""
    saved = check_xdist_run(saved)
    actual, cal = saved.actual, saved.calibration
    assert actual is not None  # both checked
    assert cal is not None
    if not {r.nodeid for r in serial.tests} & {r.nodeid for r in saved.tests}:
        raise DocumentError(
            "none of this run's tests is in the saved run: it is of another suite (or "
            "its node ids differ: run both from the same directory)"
        )
    repeated, matched = repeated_work(saved.tests, serial.tests, actual.workers, send_s)
    return RunCalibration(
        workers=actual.workers,
        matched=matched,
        startup_s=cal.startup_s,
        controller_report_s=cal.controller_report_s,
        shutdown_s=cal.shutdown_s if cal.shutdown_measured else None,
        repeated=repeated,
    )


def calibrated(section: SuiteSection, run: RunCalibration) -> SuiteSection:
    """*section* (this run's) with what the saved run measured in its calibration: each
    test's repeated work, and the start-up and the controller's cost per report in place
    of this run's estimates; but a session end this run measured stays (the probe times
    a worker interpreter's whole exit, the controller of an xdist run only hears the
    workers finish)."""
    calibration = section.calibration or Calibration()
    end = calibration.shutdown_s
    if run.shutdown_s is not None and not calibration.shutdown_measured:
        end = run.shutdown_s
    return replace(
        section,
        calibration=replace(
            calibration,
            startup_s=run.startup_s,
            controller_report_s=run.controller_report_s,
            calibration_workers=run.workers,
            calibration_tests=run.matched,
            repeated=run.repeated,
            shutdown_s=end,
            shutdown_measured=calibration.shutdown_measured or run.shutdown_s is not None,
        ),
    )


def calibrate_with_run(section: SuiteSection, saved: SuiteSection) -> SuiteSection:
    """*section* (this run's) calibrated by the *saved* ``-n N`` run, a worker's cost of
    sending a report taken from this run's calibration; a :class:`DocumentError` when
    the saved run cannot calibrate it (see :func:`calibration_from_run`)."""
    cal = section.calibration
    send_s = cal.worker_report_s if cal is not None else 0.0
    return calibrated(section, calibration_from_run(saved, section, send_s))
