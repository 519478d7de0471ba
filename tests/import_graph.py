"""Folder-level import graph of the project's packages, built with ``ast``.

Every import counts, including imports inside functions; imports under
``if TYPE_CHECKING:`` do not (they never run). Nodes are a package's direct
children (subpackages and modules, plus its ``__init__``), so a cycle among
siblings or through a parent's ``__init__`` (an "arrow back up") shows as a
cycle among the children of that package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path


def module_names(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Map dotted module names (``pkg.__init__`` for packages) to files."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(tree: ast.AST, package: str) -> list[str]:
    """Dotted names imported anywhere in ``tree`` except TYPE_CHECKING blocks."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names.extend(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def module_edges(root: Path, packages: Iterable[str]) -> set[tuple[str, str]]:
    """(importer, imported) pairs between the project's own modules."""
    modules = module_names(root, packages)
    edges: set[tuple[str, str]] = set()
    for name, path in modules.items():
        is_init = name.endswith(".__init__")
        package = name.removesuffix(".__init__") if is_init else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(), filename=str(path))
        for target in _imports(tree, package if is_init else package or name):
            # ``from P import x``: the module P.x when it exists, else a name of P (its __init__).
            parent = target.rpartition(".")[0]
            candidates = (target, f"{target}.__init__", parent, f"{parent}.__init__")
            hit = next((c for c in candidates if c in modules), None)
            if hit is not None and hit != name:
                edges.add((name, hit))
    return edges


def folder_cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Cycles among the children of each package (folder level)."""
    graphs: dict[str, dict[str, set[str]]] = {}
    for source, target in edges:
        a, b = source.split("."), target.split(".")
        common = 0
        while common < min(len(a), len(b)) - 1 and a[common] == b[common]:
            common += 1
        parent = ".".join(a[:common])
        node_a, node_b = ".".join(a[: common + 1]), ".".join(b[: common + 1])
        if node_a != node_b:
            graphs.setdefault(parent, {}).setdefault(node_a, set()).add(node_b)
    cycles: list[list[str]] = []
    for graph in graphs.values():
        cycles.extend(_cycles(graph))
    return cycles


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with a cycle (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                strong(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strong(node)
    return found
