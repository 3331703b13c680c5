"""Hooks that other plugins implement to extend pytest-parallel-lab.

They are added in ``pytest_addhooks``; implement them in a ``conftest.py`` or a plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_parallel_lab.backends import BackendRegistry


@pytest.hookspec
def pytest_parallel_lab_register_backends(registry: BackendRegistry, config: pytest.Config) -> None:
    """Register concurrency backends with ``registry.register(backend)``.

    Called once in ``pytest_configure``. A backend implements the
    :class:`pytest_parallel_lab.backends.Backend` protocol: ``name``, ``description``,
    ``uses_processes``, ``unavailable_reason()`` and ``start(workers, start_method)``
    returning a :class:`pytest_parallel_lab.backends.Runner`. The built-in backends
    are registered by a ``trylast`` implementation of this hook.

    :param registry: the session's backend registry.
    :param config: the pytest config (its options are read; an implementation may leave
        this parameter out).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       The ``config`` parameter.
    """


@pytest.hookspec
def pytest_parallel_lab_document_sections(config: pytest.Config) -> dict[str, Any] | None:
    """Return top-level sections to add to the run document (JSON and report).

    Called on the controller (never in an xdist worker) at the end of the session.
    Values must be plain JSON types. Every implementation's dict is merged.

    :param config: the pytest config.

    .. versionadded:: 0.1
    """
