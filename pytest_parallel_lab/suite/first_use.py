"""Work that xdist workers repeat inside tests, estimated from first-use costs.

Pure. A lazily built cache or an import done inside a test is paid by the first test
that needs it; under ``-n N`` each worker pays it again on its own first test of that
code. Issue 11 measured total worker CPU at 1.3-2.1x the serial run's on suites like
that, invisible as fixtures. The cheap estimate here reads what the serial run shows:
per *unit* (a module, and a parametrized function below it) the first test's call
time beyond the median call time of its siblings, when clearly larger, is the unit's
first-use cost, but never more than its CPU time beyond theirs: the work repeated is
CPU work, and a first test that is long because it waits repeats nothing. Each test
is the candidate of one unit only (the module's first test speaks for the module, a
parametrized function's first case for the function when it is not the module's first
test), so nothing is counted twice. The simulation charges a unit's cost to each
worker's first test of the unit, and takes it off the test that paid it in the
measured run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_parallel_lab.document.suite import TestTiming
from pytest_parallel_lab.stats import median
from pytest_parallel_lab.vocabulary import Outcome

#: The first test's call must take at least this many times its siblings' median...
FIRST_USE_RATIO = 2.0
#: ...and this many seconds more, to count as a first-use cost (not a longer test).
FIRST_USE_MIN_S = 0.001
#: Siblings a unit needs besides its first test for a median worth the name.
FIRST_USE_MIN_SIBLINGS = 2
#: Outcomes whose call ran: a skipped sibling's 0 s call says nothing of the code.
_RAN = (Outcome.PASSED, Outcome.FAILED)


def module_unit(nodeid: str) -> str:
    """The module (file) of a test: ``a.py`` of ``a.py::C::t[1]``."""
    return nodeid.split("::", 1)[0]


def function_unit(nodeid: str) -> str:
    """The parametrized function of a test (``a.py::C::t`` of ``a.py::C::t[1]``), or ""."""
    base, bracket, _ = nodeid.partition("[")
    return base if bracket and "::" in base else ""


@dataclass(frozen=True)
class FirstUse:
    """The first-use estimate of a run: what each unit costs a worker once, and per
    test (in the order given) the units with a cost it belongs to and what it paid."""

    #: unit (module or parametrized function) -> seconds a worker pays on its first test of it
    costs: dict[str, float] = field(default_factory=dict)
    units: tuple[tuple[str, ...], ...] = ()
    paid_s: tuple[float, ...] = ()

    @property
    def total_s(self) -> float:
        """Every unit's cost once: what the measured run paid."""
        return sum(self.costs.values())


def estimate_first_use(rows: Sequence[TestTiming]) -> FirstUse:
    """The first-use costs that *rows* show, per worker in the order the tests started
    (a serial run has one worker; in an xdist run each worker paid its own)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i in sorted(range(len(rows)), key=lambda i: rows[i].start_s):
        row = rows[i]
        groups.setdefault((row.worker, module_unit(row.nodeid)), []).append(i)
        function = function_unit(row.nodeid)
        if function:
            groups.setdefault((row.worker, function), []).append(i)
    module_firsts = {members[0] for (_, unit), members in groups.items() if "::" not in unit}
    excesses: dict[str, list[float]] = {}
    paid = [0.0] * len(rows)
    for (_, unit), members in groups.items():
        first = members[0]
        if "::" in unit and first in module_firsts:
            continue  # the module's first test speaks for the module
        ran = [rows[i].call_s for i in members[1:] if rows[i].outcome in _RAN]
        if len(ran) < FIRST_USE_MIN_SIBLINGS or rows[first].outcome not in _RAN:
            continue
        typical = median(ran)
        call = rows[first].call_s
        excess = call - typical
        if call < FIRST_USE_RATIO * typical:
            continue
        excess = min(excess, _cpu_excess(rows, first, members[1:]))
        if excess >= FIRST_USE_MIN_S:
            excesses.setdefault(unit, []).append(excess)
            paid[first] += excess
    if not excesses:
        return FirstUse()
    costs = {unit: sum(found) / len(found) for unit, found in excesses.items()}
    units = tuple(
        tuple(
            unit for unit in (module_unit(row.nodeid), function_unit(row.nodeid)) if unit in costs
        )
        for row in rows
    )
    return FirstUse(costs, units, tuple(paid))


def _cpu_excess(rows: Sequence[TestTiming], first: int, siblings: Sequence[int]) -> float:
    """The first test's CPU time beyond its siblings' median (that ran), or infinity when
    a CPU time is missing (a document saved before CPU times were recorded).

    Imports and lazily built caches are CPU work; a first test that is longer because
    it waits (a sleep, a timeout it tests) has nothing a worker would repeat."""
    cpus = [rows[i].cpu_s for i in siblings if rows[i].outcome in _RAN]
    own = rows[first].cpu_s
    if own is None or not cpus or any(c is None for c in cpus):
        return float("inf")
    return own - median([c for c in cpus if c is not None])
