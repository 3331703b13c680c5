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

    Optional attributes of a **backend**, read with ``getattr`` and a default, so a
    backend without them works as the protocol alone says:

    ``pickles_tasks`` (bool; default ``uses_processes``)
        The task's callable, its arguments and its result are pickled on their way to
        and from the workers, in other processes or not (subinterpreters). When true,
        every object a task sends is checked before the first run (the item fails
        naming the fixture or object that cannot be pickled, and the fix) and the
        pickled size of one task is recorded.
    ``pickler`` (``"pickle"`` or ``"cloudpickle"``; default ``"pickle"``)
        What that check pickles with: ``"cloudpickle"`` accepts lambdas and closures
        (Dask, loky), and the failure's advice then does not ask for a module-level
        function.
    ``in_all`` (bool; default True)
        Whether ``backend="all"`` (the marker's default) makes an item for this backend
        where it is available. Every built-in is in "all"; set it False for a backend
        that must be named to run (one that rents machines, say).

    Optional attributes of a **runner**:

    ``broken`` (bool, usually a property)
        The runner cannot run anything more (a worker died between items, a client lost
        its scheduler): the runner cache abandons it and starts a fresh one before the
        next item, rather than fail an innocent item.
    ``fork_unsafe`` (bool; default False)
        A process forked while this runner lives may crash (CPython 3.14's
        subinterpreters): the cache closes it before it hands out any other runner,
        unless that runner is held by the same measurement.
    ``note`` (str)
        One note about the runner for the result row's notes (the Dask backend: the
        cluster's kind, workers and threads).
    ``start_method`` (str)
        For a backend with ``uses_processes``: how its workers were started, recorded in
        the row's ``start_method`` (``"loky"`` for loky's own method); without it the
        row has none.

    :param registry: the session's backend registry.
    :param config: the pytest config (its options are read; an implementation may leave
        this parameter out).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       The ``config`` parameter; the optional ``pickles_tasks``, ``pickler`` and
       ``in_all`` attributes of a backend and ``fork_unsafe`` and ``note`` of a runner.
    """


@pytest.hookspec
def pytest_parallel_lab_document_sections(config: pytest.Config) -> dict[str, Any] | None:
    """Return top-level sections to add to the run document (JSON and report).

    Called on the controller (never in an xdist worker) at the end of the session.
    Values must be plain JSON types. Every implementation's dict is merged.

    :param config: the pytest config.

    .. versionadded:: 0.1
    """
