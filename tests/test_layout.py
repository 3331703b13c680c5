"""The package's layout is its architecture: imports run one way, and pure code knows no pytest.

The graph is read from the source (``ast``), function-local imports included;
imports under ``if TYPE_CHECKING:`` are left out, since they never run. Run this file
as a script to print the graph, floor by floor::

    python tests/test_layout.py
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "pytest_parallel_lab"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

#: The pytest glue: the only modules that may import pytest.
GLUE = frozenset(
    {
        "plugin",
        "options",
        "hookspecs",
        "marked.hooks",
        "marked.session",
        "suite.hooks",
        "safety.hooks",
        "output.hooks",
    }
)
#: Who may import whom, by part (the first name of a module's path inside the package).
#: A part may always import itself; "glue" is every module in GLUE.
ALLOWED = {
    "vocabulary": set(),
    "timing": set(),
    "capacity": set(),
    "stats": {"vocabulary"},
    "document": {"stats", "vocabulary"},
    "environment": {"capacity", "document", "vocabulary"},
    "backends": {"timing"},
    "marked": {"backends", "capacity", "document", "stats", "timing", "vocabulary", "environment"},
    "suite": {"document", "stats", "timing", "vocabulary"},
    "safety": {"document", "timing", "vocabulary"},
    "output": {"capacity", "document", "stats", "timing", "vocabulary"},
    "cli": {"document", "output", "suite"},
    "__main__": {"cli"},
}
#: What the glue may import beyond the parts above: everything but another feature's glue.
GLUE_MAY_IMPORT = {
    "capacity",
    "vocabulary",
    "timing",
    "stats",
    "document",
    "environment",
    "backends",
    "marked",
    "suite",
    "safety",
    "output",
    "hookspecs",
    "options",
}


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@functools.cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for n in ast.walk(node)}
    return skipped


def imported(name: str, path: Path) -> Iterator[str]:
    """The package's modules that *name* imports at run time (function-local ones too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    known = modules()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([PACKAGE, *base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
        for target in targets:
            if target != PACKAGE and not target.startswith(PACKAGE + "."):
                continue
            inner = target.removeprefix(PACKAGE).removeprefix(".")
            while inner and inner not in known and "." in inner:
                inner = inner.rsplit(".", 1)[0]
            # The package's own __init__ holds only __version__: no arrow worth drawing.
            if inner and inner in known and inner != name:
                yield inner


@functools.cache
def graph() -> dict[str, set[str]]:
    return {name: set(imported(name, path)) for name, path in modules().items()}


def part(name: str) -> str:
    return name.split(".", 1)[0] if name else ""


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def floors(edges: dict[str, set[str]]) -> dict[str, int]:
    """Floor 1 imports nothing of the package; every module stands above what it imports."""
    floor: dict[str, int] = {}

    def height(node: str) -> int:
        if node not in floor:
            floor[node] = 0  # a cycle would recurse forever; the cycle test names it
            floor[node] = 1 + max((height(o) for o in edges[node]), default=0)
        return floor[node]

    for node in edges:
        height(node)
    return floor


def test_the_package_imports_form_no_cycle() -> None:
    assert cycles(graph()) == []


def test_only_the_glue_imports_pytest() -> None:
    importing = set()
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            if any(n == "pytest" or n.startswith(("pytest.", "_pytest")) for n in names):
                importing.add(name)
    assert importing <= GLUE, f"pure modules importing pytest: {sorted(importing - GLUE)}"


@pytest.mark.parametrize("name", sorted(modules()))
def test_each_module_imports_only_the_parts_below_it(name: str) -> None:
    imports = graph()[name]
    if name in GLUE:
        wrong = {i for i in imports if part(i) not in GLUE_MAY_IMPORT}
        # A feature's glue never imports another feature's glue: plugin.py hands things on.
        wrong |= {
            i for i in imports if i in GLUE and part(i) != part(name) and part(i) != "options"
        }
        if name == "plugin":
            wrong = {i for i in wrong if i not in GLUE}
    else:
        allowed = ALLOWED.get(part(name), set()) | {part(name)}
        wrong = {i for i in imports if part(i) not in allowed or i in GLUE}
    assert not wrong, f"{name} imports {sorted(wrong)}"


def test_every_part_of_the_package_has_a_rule() -> None:
    parts = {part(name) for name in modules() if name and name not in GLUE}
    assert parts - {""} <= set(ALLOWED)


def main() -> int:
    edges = graph()
    found = cycles(edges)
    if found:
        print("cycles:", found)
        return 1
    by_floor: dict[int, list[str]] = {}
    for name, floor in floors(edges).items():
        by_floor.setdefault(floor, []).append(name)
    lines = {n: len(p.read_text(encoding="utf-8").splitlines()) for n, p in modules().items()}
    for floor in sorted(by_floor, reverse=True):
        for name in sorted(by_floor[floor]):
            shown = ", ".join(sorted(edges[name])) or "-"
            print(f"floor {floor}  {name or PACKAGE:<22} {lines[name]:>4} lines  -> {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
