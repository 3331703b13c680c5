"""The worker plugin the dask backend installs on every worker of its cluster.

A module of its own because it subclasses ``distributed.WorkerPlugin`` (Dask refuses
duck-typed plugins) and so imports ``distributed``: it loads with the first dask runner,
never at pytest's start. Workers unpickle it by reference, so it must stay importable.
"""

from __future__ import annotations

import sys
from typing import Any

from distributed import WorkerPlugin


class SysPathPlugin(WorkerPlugin):  # type: ignore[misc]
    """Gives every worker (and any that replaces a dead one) the client's ``sys.path``,
    so that it imports the test's modules as pytest does: pytest puts the rootdir there,
    and task functions are pickled by reference. (On other hosts the paths may not
    exist; the project must then be installed there.)"""

    name = "pytest-parallel-lab-sys-path"

    def __init__(self, paths: list[str]) -> None:
        self.paths = list(paths)

    def setup(self, worker: Any) -> None:
        for path in reversed(self.paths):
            if path not in sys.path:
                sys.path.insert(0, path)
