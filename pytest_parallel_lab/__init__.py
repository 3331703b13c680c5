"""pytest-parallel-lab: measure how a test's workload scales under concurrency models.

The public, pytest-free pieces are importable from the submodules:
:mod:`pytest_parallel_lab.marked.rounds`, :mod:`pytest_parallel_lab.stats`,
:mod:`pytest_parallel_lab.backends` and :mod:`pytest_parallel_lab.document.run`.
"""

from __future__ import annotations

__version__ = "0.1.0"
