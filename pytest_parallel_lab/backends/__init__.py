"""Concurrency backends: the protocol, the built-ins and the registry."""

from __future__ import annotations

from .base import (
    Backend,
    BackendError,
    BatchResult,
    Runner,
    TaskError,
    TaskOutcome,
    Work,
    WorkerCrashed,
    WorkloadTimeout,
)
from .builtin import BUILTIN_BACKENDS
from .registry import BackendRegistry, RunnerCache, StartedRunner

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
