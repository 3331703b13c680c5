"""pytest-parallel-lab: measure how a test's workload scales under concurrency models,
and how a suite behaves under pytest-xdist.

The layout is the architecture: ``plugin.py`` and ``options.py`` are the pytest glue
that registers each feature; each feature is a package with its glue in ``hooks.py``
(``marked/`` measures marked tests, ``suite/`` times the suite and predicts ``-n N``,
``output/`` reports); ``backends/`` are the concurrency models; ``document/`` is the
run document every part reads and writes; ``stats``, ``timing`` and ``vocabulary``
are below them all. Pure modules import nothing from pytest.
"""

from __future__ import annotations

__version__ = "0.1.0"
