"""Suite analysis: every test and fixture timed, and the ``pytest -n N`` prediction.

``hooks.py`` is the pytest glue; ``recorder`` turns what was timed into the
``suite`` section, ``model`` makes the simulation's model and calibration from it,
``schedulers`` hands tests to simulated workers as pytest-xdist does, ``simulate``
runs them and advises.
"""

from __future__ import annotations
