"""The ``safety`` section from what a session recorded: collisions, order, leaks.

Pure: the glue hands over the recorder's events, the state tests left and its later
uses, where each test sits and the run order; out comes one
:class:`~pytest_parallel_lab.document.safety.SafetySection`, findings ordered by what
breaks a parallel run first (collisions, then order dependence, then leaks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from pytest_parallel_lab.document.safety import ConfirmRun, Finding, Problem, SafetySection
from pytest_parallel_lab.safety.access import Event, exclusions, machine_events
from pytest_parallel_lab.safety.collisions import (
    GlobalWrite,
    TestPlace,
    find_collisions,
    find_global_races,
    find_thread_races,
)
from pytest_parallel_lab.safety.order import LeftState, StateUse, find_order_dependence

#: The order findings are listed in.
PROBLEM_ORDER = (Problem.COLLISION, Problem.ORDER, Problem.THREAD_RACE, Problem.LEAK)
#: Problems a confirming run under -n N cannot test: they need no second process.
UNCONFIRMABLE = frozenset({Problem.LEAK, Problem.THREAD_RACE})


def build_safety_section(
    events: Sequence[Event],
    left: Sequence[LeftState],
    uses: Sequence[StateUse],
    places: Mapping[str, TestPlace],
    order: Mapping[str, int],
    temporary_bases: tuple[str, ...],
    global_writes: Sequence[GlobalWrite] = (),
) -> SafetySection:
    """Every finding of a session, in the order a reader should fix them."""
    counted = machine_events(list(events), exclusions(temporary_bases))
    findings = [
        *find_collisions(counted, places, order),
        *find_thread_races(counted),
        *find_global_races(global_writes),
        *find_order_dependence(left, uses, places, order),
    ]

    def rank(finding: Finding) -> tuple[int, int, str]:
        first = min((order.get(t, len(order)) for t in finding.tests), default=0)
        return PROBLEM_ORDER.index(finding.problem), first, finding.resource

    return SafetySection(tests=len(order), findings=tuple(sorted(findings, key=rank)))


def confirmable_tests(section: SafetySection, every_test: Sequence[str]) -> list[str]:
    """The tests a confirming run reruns, in run order: those of every collision and
    order finding (a leak has no second test, a thread race no second process), or
    *every_test* when a fixture that every worker sets up collides (its instances meet
    only when the tests that use it are spread over the workers, which the whole suite
    does)."""
    if any(f.problem is Problem.COLLISION and f.avoided_by is None for f in section.findings):
        return list(every_test)
    seen: dict[str, None] = {}
    for finding in section.findings:
        if finding.problem not in UNCONFIRMABLE:
            seen.update(dict.fromkeys(finding.tests))
    position = {t: i for i, t in enumerate(every_test)}
    return sorted(seen, key=lambda t: position.get(t, len(position)))


def with_confirmation(section: SafetySection, run: ConfirmRun) -> SafetySection:
    """*section* with *run*'s verdict on each finding it could test: confirmed when one
    of the finding's tests failed under ``-n N`` (None for leaks and thread races, and
    when it could not run)."""
    failed = set(run.failed)
    findings = tuple(
        finding
        if finding.problem in UNCONFIRMABLE or run.problem
        else replace(finding, confirmed=any(t in failed for t in finding.tests))
        for finding in section.findings
    )
    return replace(section, findings=findings, confirm=run)
