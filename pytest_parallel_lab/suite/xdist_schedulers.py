"""The installed pytest-xdist's scheduler classes, as the simulation's factory.

The one module of the suite analysis that imports pytest-xdist: the simulation
(``suite/simulate.py``) is handed a :data:`~pytest_parallel_lab.suite.schedulers.SchedulerFactory`
and never imports xdist itself. :func:`xdist_scheduler_factory` maps each ``--dist``
mode to xdist's own class; given a pytest config, it first asks
``pytest_xdist_make_scheduler`` (a third-party scheduler, or xdist's own when the
run itself used ``-n``), as xdist's controller does.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler import (  # type: ignore[import-untyped]
    LoadFileScheduling,
    LoadGroupScheduling,
    LoadScheduling,
    LoadScopeScheduling,
    WorkStealingScheduling,
)

from pytest_parallel_lab.suite.schedulers import SchedulerFactory, Scheduling, SimConfig

#: xdist's class for each mode the prediction simulates.
XDIST_SCHEDULERS: dict[str, Any] = {
    "load": LoadScheduling,
    "loadscope": LoadScopeScheduling,
    "loadfile": LoadFileScheduling,
    "loadgroup": LoadGroupScheduling,
    "worksteal": WorkStealingScheduling,
}


class _QuietLog:
    """xdist's ``Producer`` log, silent: ``log.loadsched(...)`` and ``log(...)`` do nothing."""

    def __getattr__(self, name: str) -> _QuietLog:
        return self

    def __call__(self, *args: Any) -> None:
        return None


def xdist_scheduler_factory(pytest_config: Any = None) -> SchedulerFactory:
    """The factory of the simulation's schedulers: ``pytest_xdist_make_scheduler``
    first when *pytest_config* is given (its hook implementations see a
    :class:`SimConfig` that answers for the simulated session and asks the real config
    for anything else), else xdist's class for the mode."""

    def make(dist: str, config: SimConfig) -> Scheduling:
        # The hook exists while xdist's plugin is loaded (not under -p no:xdist).
        hook = getattr(getattr(pytest_config, "hook", None), "pytest_xdist_make_scheduler", None)
        if hook is not None:
            config.base, config.hook = pytest_config, pytest_config.hook
            made = hook(config=config, log=_QuietLog())
            if made is not None:
                return made  # type: ignore[no-any-return]
        scheduler: Scheduling = XDIST_SCHEDULERS[dist](config, _QuietLog())
        return scheduler

    return make
