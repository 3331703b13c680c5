"""The marked tests' state in one session, and each marked item's plan, worked out once.

A marker is parsed once per ``Mark`` object (the definition's, shared by its items);
each item's :class:`ItemPlan` (its settings, or the marker's error) is made at its
first use and kept on the item's stash, so that a ``parallel_map`` call or a report
hook never parses or resolves anything again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_parallel_lab.backends.registry import (
    MIN_SPARE_WORKERS,
    BackendRegistry,
    RunnerCache,
)
from pytest_parallel_lab.environment import GilWatch
from pytest_parallel_lab.marked.marker import (
    MarkerError,
    ParallelSpec,
    auto_workers,
    parse_marker,
)
from pytest_parallel_lab.options import LabOptions

if TYPE_CHECKING:
    # Loaded with the first marked item: a run without one never imports the measurement.
    from pytest_parallel_lab.document.records import ResultRecord
    from pytest_parallel_lab.document.run import RunDocument
    from pytest_parallel_lab.marked.measure import Settings
    from pytest_parallel_lab.output.trace import TraceLog

#: The parameters this plugin adds to a marked test (its id parts ``[thread]``, ``[w4]``).
BACKEND_ARG = "_parallel_lab_backend"
WORKERS_ARG = "_parallel_lab_workers"
#: The attribute of a test report that carries its results (from xdist workers too).
REPORT_ATTRIBUTE = "parallel_lab_results"
#: What --parallel-all puts on unmarked tests (backends come from the defaults).
IMPLICIT_MARK = pytest.mark.parallel.mark


@dataclass(frozen=True)
class ItemPlan:
    """What one marked item measures (its settings), and whether the user marked it."""

    settings: Settings
    #: the item carries a marker the user wrote (not one --parallel-all implied)
    explicit: bool


@dataclass
class MarkedSession:
    """Per-session state of the marked tests: backends, started pools, results."""

    config: pytest.Config
    options: LabOptions
    registry: BackendRegistry
    #: with --parallel-trace: where pool workers' tasks go
    trace: TraceLog | None = None
    runners: RunnerCache = field(default_factory=RunnerCache)
    results: list[ResultRecord] = field(default_factory=list)
    #: Whether collection met a marked test (only then are the per-test hooks added).
    marked_collected: bool = False
    #: On a free-threaded build: the GIL as the session started, and the modules that
    #: CPython said turned it on since (its "GIL has been enabled to load" warning)
    gil_watch: GilWatch | None = None
    gil_modules: list[str] = field(default_factory=list)
    #: After a Ctrl-C: the SIGINT handler that a second Ctrl-C's "exit at once" replaced
    sigint_before: tuple[Any] | None = None
    #: parsed markers by ``id(mark)``, the mark kept alive beside its spec or error
    _specs: dict[int, tuple[pytest.Mark, ParallelSpec | MarkerError]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The bounded footprint: spare workers beyond the largest request, at least the
        # usable CPUs (every backend of an "all" marker at workers="auto" stays warm).
        self.runners.spare = max(MIN_SPARE_WORKERS, self.options.cpus)

    @property
    def unavailable(self) -> dict[str, str]:
        """Why each backend that cannot run here cannot: asked once, when a marker or the
        report first needs it (a session without marked tests never probes)."""
        return self.registry.unavailable()

    def contribute(self, document: RunDocument) -> RunDocument:
        """The results, and the recommendations and sweeps made from them."""
        results = tuple(self.results)
        if not results:
            return document
        from pytest_parallel_lab.marked.recommend import recommendations
        from pytest_parallel_lab.marked.scaling import sweeps

        # The models this interpreter could not measure: the recommendations and the
        # report name them (a cheaper one missing here may be the better choice elsewhere).
        environment = replace(document.environment, unavailable_backends=dict(self.unavailable))
        return replace(
            document,
            environment=environment,
            results=results,
            recommendations=tuple(recommendations(results, environment)),
            scaling=tuple(sweeps(results, environment)),
        )

    def marker_of(self, node: Any) -> pytest.Mark | None:
        """The node's parallel marker; with --parallel-all, an implicit one for every test."""
        marker: pytest.Mark | None = node.get_closest_marker("parallel")
        if marker is None and self.options.parallel_all:
            marker = IMPLICIT_MARK
        return marker

    def spec_for(self, marker: pytest.Mark) -> ParallelSpec:
        """The marker's spec, parsed once; raises its :class:`MarkerError` every time."""
        cached = self._specs.get(id(marker))
        if cached is None:
            try:
                parsed: ParallelSpec | MarkerError = parse_marker(
                    marker.args,
                    marker.kwargs,
                    defaults=self.options.defaults,
                    registered=self.registry.names(),
                    unavailable=self.unavailable,
                    not_in_all=self.registry.not_in_all(),
                )
            except MarkerError as exc:
                parsed = exc
            cached = self._specs[id(marker)] = (marker, parsed)
        if isinstance(cached[1], MarkerError):
            raise cached[1]
        return cached[1]

    def plan_for(self, item: pytest.Item) -> ItemPlan | None:
        """The plan of a marked item that this plugin parametrized, else None.

        Raises the marker's :class:`MarkerError` for an item whose marker is wrong.
        """
        plans = item.stash.get(_PLAN_KEY, None)
        if plans is None:
            plans = item.stash[_PLAN_KEY] = [self._make_plan(item)]
        return plans[0]

    def _make_plan(self, item: pytest.Item) -> ItemPlan | None:
        if not isinstance(item, pytest.Function):
            return None
        marker = self.marker_of(item)
        params = item.callspec.params if hasattr(item, "callspec") else {}
        if marker is None or BACKEND_ARG not in params:
            if marker is not None:
                self.spec_for(marker)  # a marker that did not parse: its error
            return None
        from pytest_parallel_lab.marked.measure import Settings

        spec = self.spec_for(marker)
        options = self.options
        if WORKERS_ARG in params:
            workers = int(str(params[WORKERS_ARG]))
        elif spec.workers is not None:
            workers = spec.workers
        else:
            workers = auto_workers(options.cpus, options.xdist.workers)
        settings = Settings(
            spec=spec,
            nodeid=item.nodeid,
            test=user_nodeid(item),
            backend=str(params[BACKEND_ARG]),
            workers=workers,
            usable_cpus=options.cpus,
            machine_cpus=options.capacity.cpus,
            xdist_workers=options.xdist.workers,
            xdist_worker=options.xdist.worker_id,
        )
        return ItemPlan(settings, explicit=marker is not IMPLICIT_MARK)


_PLAN_KEY = pytest.StashKey[list[ItemPlan | None]]()
MARKED_KEY = pytest.StashKey[MarkedSession]()


def marked_session(config: pytest.Config) -> MarkedSession:
    """The session state that ``plugin.py`` stored at configure time."""
    return config.stash[MARKED_KEY]


def user_nodeid(item: pytest.Function) -> str:
    """The node id without this plugin's parts of the parameter id (backend, workers)."""
    base = item.nodeid.split("[", 1)[0]
    params = item.callspec.params
    own = [str(params[BACKEND_ARG])]
    if WORKERS_ARG in params:
        own.append(f"w{params[WORKERS_ARG]}")
    suffix = "-".join(own)
    ids = item.callspec.id
    if ids == suffix:
        return base
    for rest in (ids.removesuffix(f"-{suffix}"), ids.removeprefix(f"{suffix}-")):
        if rest != ids:
            return f"{base}[{rest}]"
    return f"{base}[{ids}]"
