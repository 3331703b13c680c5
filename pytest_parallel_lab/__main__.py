"""``python -m pytest_parallel_lab``: the same command line as ``pytest-parallel-lab``."""

from __future__ import annotations

import sys

from pytest_parallel_lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
