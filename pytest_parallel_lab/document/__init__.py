"""The run document."""

from __future__ import annotations

from pytest_parallel_lab.document.run import *  # noqa: F403
