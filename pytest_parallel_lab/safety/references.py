"""Which module globals a test's code names: the uses of a global an earlier test left.

Pure, and static: reading a global raises no audit event and costs nothing to watch,
so a test is taken to use ``module.NAME`` when its function or one of its fixtures
names it (``NAME`` in that module, or ``alias.NAME`` with ``alias`` bound to the
module), following the functions of the test's own module that it calls (a helper
that fills a cache) a few calls deep. Code of other modules is not followed: a
library's internal cache is transparent to the tests that call it.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from dataclasses import dataclass, field

#: How many calls deep the functions of the test's own module are followed.
FOLLOW_DEPTH = 3


@dataclass
class Names:
    """What some code names: globals by module, attribute names, and modules it holds."""

    globals: set[tuple[str, str]] = field(default_factory=set)
    attributes: set[str] = field(default_factory=set)
    modules: set[str] = field(default_factory=set)

    def names(self, qualified: str) -> bool:
        """Whether ``module.NAME`` (*qualified*) is named."""
        module, _, name = qualified.rpartition(".")
        return (module, name) in self.globals or (
            name in self.attributes and module in self.modules
        )


def _code_names(code: types.CodeType) -> Iterable[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # nested functions, lambdas, comprehensions
            yield from _code_names(const)


def named_by(functions: Iterable[object], own_module: str | None) -> Names:
    """What *functions* (a test function and its fixtures) name, following the
    functions of *own_module* they call up to :data:`FOLLOW_DEPTH` deep."""
    found = Names()
    seen: set[types.FunctionType] = set()
    pending = [(f, 0) for f in functions]
    while pending:
        function, depth = pending.pop()
        function = getattr(function, "__func__", function)  # a method
        function = getattr(function, "__wrapped__", function)  # a decorated fixture
        if not isinstance(function, types.FunctionType) or function in seen:
            continue
        seen.add(function)
        scope = function.__globals__
        module = str(scope.get("__name__", ""))
        for name in _code_names(function.__code__):
            found.globals.add((module, name))
            found.attributes.add(name)
            value = scope.get(name)
            if isinstance(value, types.ModuleType):
                found.modules.add(value.__name__)
            elif (
                isinstance(value, types.FunctionType)
                and depth < FOLLOW_DEPTH
                and value.__module__ == own_module
            ):
                pending.append((value, depth + 1))
    return found
