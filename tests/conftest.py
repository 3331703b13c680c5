"""Shared fixtures for the pytest-parallel-lab tests."""

from __future__ import annotations

import pytest

#: An ini that silences pytest-asyncio's deprecation warning in every inner run.
LAB_INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
"""


@pytest.fixture
def lab(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester whose inner runs have a quiet ini (more ini lines can be appended)."""
    pytester.makeini(LAB_INI)
    return pytester
