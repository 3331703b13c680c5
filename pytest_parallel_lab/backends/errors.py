"""What a runner raises when it cannot run the work: the message says why and what to do."""

from __future__ import annotations


class BackendError(Exception):
    """A backend could not run the work; the message says why and what to do."""


class WorkloadTimeout(BackendError):
    """One run of the work exceeded the timeout; the runner must be abandoned."""


class WorkerCrashed(BackendError):
    """A worker process died (os._exit, a signal); the runner must be abandoned."""
