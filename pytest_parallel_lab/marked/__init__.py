"""Measuring marked tests: the marker, the paired rounds, the gates, the diagnosis.

``hooks.py`` and ``session.py`` are the pytest glue; ``marker`` parses the marker,
``measure`` turns a workload into a record (``rounds`` takes the paired rounds,
``gates`` judges ``min_speedup`` and ``expect``), ``diagnosis`` classifies,
``recommend`` names the model to use and ``scaling`` fits worker-count sweeps.
"""

from __future__ import annotations
