"""Concurrency backends: the protocol, the built-ins and the registry.

The unit of work and its results (``Work``, ``BatchResult``, ``TaskOutcome``,
``TaskError``) are imported on first use: registering backends, which every pytest
run does, does not load them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_parallel_lab.backends.builtin import BUILTIN_BACKENDS
from pytest_parallel_lab.backends.errors import BackendError, WorkerCrashed, WorkloadTimeout
from pytest_parallel_lab.backends.protocol import Backend, Runner
from pytest_parallel_lab.backends.registry import BackendRegistry, RunnerCache, StartedRunner

if TYPE_CHECKING:
    from pytest_parallel_lab.backends.base import BatchResult, TaskError, TaskOutcome, Work

_FROM_BASE = frozenset({"BatchResult", "TaskError", "TaskOutcome", "Work"})

__all__ = [
    "BUILTIN_BACKENDS",
    "Backend",
    "BackendError",
    "BackendRegistry",
    "BatchResult",
    "Runner",
    "RunnerCache",
    "StartedRunner",
    "TaskError",
    "TaskOutcome",
    "Work",
    "WorkerCrashed",
    "WorkloadTimeout",
]


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        from pytest_parallel_lab.backends import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
