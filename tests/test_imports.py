"""Every module of src/ imports, and no two modules import each other, directly or in a ring."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = sorted(
    ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for p in SRC.rglob("*.py")
)


def imported_modules(path: Path) -> set[str]:
    """The src/ modules a file imports at any level (`import a.b`, `from a.b import c`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found & set(MODULES)


def module_path(name: str) -> Path:
    path = SRC.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A ring of imports a -> b -> ... -> a, or None (depth-first search, colouring)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (ring := visit(nxt, [*path, nxt])):
                return ring
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (ring := visit(start, [start])):
            return ring
    return None


def test_no_import_cycle_in_src():
    # a package's __init__ is imported before its modules: an edge pkg.mod -> pkg is no ring
    graph = {
        name: {m for m in imported_modules(module_path(name)) if not name.startswith(m + ".")}
        for name in MODULES
    }
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_ring():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)
