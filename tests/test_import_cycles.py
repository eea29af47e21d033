"""No import cycles among the project's own modules.

Every import counts: at the top of a module, inside a function, under ``if TYPE_CHECKING:``. A cycle that
only type checking or a late import keeps from failing at run time is still two modules that cannot be
understood, tested or replaced one without the other. ``from package import name`` is an edge to the
submodule ``package.name`` when there is one, else to ``package``; a package's ``__init__`` is a node of
its own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search", "indexer", "web", "evaluation", "benchmarks", "semsearch_cli")


@dataclass(frozen=True)
class Module:
    name: str  # dotted; a package's __init__ is named by the package
    path: Path
    is_package: bool


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int


def first_party_modules(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Module]:
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            modules[name] = Module(name, path, is_package)
    return modules


def _known_prefix(name: str, modules: dict[str, Module]) -> str | None:
    """``name`` if it is a first-party module, else its longest first-party parent, else None (third party)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _from_base(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module ``from ... import`` reads from, relative imports resolved against ``module``."""
    if node.level == 0:
        return node.module or ""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _imported_from(base: str, name: str, modules: dict[str, Module]) -> str | None:
    """``from base import name``: the submodule ``base.name`` if there is one, else ``base`` (a name defined in it)."""
    submodule = f"{base}.{name}"
    return submodule if submodule in modules else _known_prefix(base, modules)


def imports_of(module: Module, modules: dict[str, Module], source: str | None = None) -> list[Edge]:
    """The first-party modules ``module`` imports (``source``: its text, read from its file if not given)."""
    edges = []
    text = module.path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(text, filename=str(module.path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [_known_prefix(alias.name, modules) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(module, node)
            targets = [_imported_from(base, alias.name, modules) for alias in node.names]
        else:
            continue
        edges += [Edge(module.name, target, node.lineno) for target in targets if target is not None and target != module.name]
    return list(dict.fromkeys(edges))  # one edge per statement and target, however many names it imports


def import_graph(modules: dict[str, Module]) -> dict[str, list[Edge]]:
    return {name: imports_of(module, modules) for name, module in modules.items()}


def strongly_connected(graph: dict[str, list[Edge]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit): the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted({edge.target for edge in graph[start]})))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted({edge.target for edge in graph[successor]}))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return sorted(components)


def a_cycle(graph: dict[str, list[Edge]], component: list[str]) -> list[Edge]:
    """One shortest cycle through the component's first module, as the import statements that make it."""
    members = set(component)
    start = component[0]
    came_by: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for edge in sorted(graph[node], key=lambda edge: (edge.target, edge.line)):
                if edge.target == start:
                    path = [edge]
                    while path[0].source != start:
                        path.insert(0, came_by[path[0].source])
                    return path
                if edge.target in members and edge.target not in came_by:
                    came_by[edge.target] = edge
                    following.append(edge.target)
        frontier = following
    raise AssertionError(f"{component} is not strongly connected")


def describe(graph: dict[str, list[Edge]], modules: dict[str, Module], component: list[str]) -> str:
    """The component's modules, one cycle through them, and every import between them (what there is to break)."""

    def label(name: str) -> str:
        return f"{name} (__init__)" if modules[name].is_package else name

    def step(edge: Edge) -> str:
        return f"    {label(edge.source)} -> {label(edge.target)}  ({modules[edge.source].path.relative_to(ROOT)}:{edge.line})"

    members = set(component)
    inside = sorted((edge for name in component for edge in graph[name] if edge.target in members), key=lambda e: (e.source, e.line))
    return "\n".join(
        [
            f"{len(component)} modules in one cycle: {', '.join(label(name) for name in component)}",
            "  for example:",
            *map(step, a_cycle(graph, component)),
            "  every import between them:",
            *map(step, inside),
        ]
    )


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The resolution rules on a small tree: submodules, names, packages, relative, late and type-only imports."""
    files = {
        "app/__init__.py": "from app.core import engine\n",
        "app/core/__init__.py": "VERSION = 1\n",
        "app/core/engine.py": "import os\nimport app.core\n",
        "app/core/errors.py": "class Oops(Exception): ...\n",
        "app/store/disk.py": (  # a folder without __init__ still holds modules
            "from typing import TYPE_CHECKING\n"
            "import numpy\n"
            "from app.core import errors\n"  # a submodule
            "from app.core.errors import Oops\n"  # a name in a module
            "from . import index\n"  # relative: a submodule
            "from ..core import VERSION\n"  # relative: a name in a package's __init__
            "if TYPE_CHECKING:\n"
            "    from app.core.engine import Engine\n"
            "def late():\n"
            "    import app.core.engine\n"
        ),
        "app/store/index.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    modules = first_party_modules(tmp_path, ["app"])
    assert sorted(modules) == ["app", "app.core", "app.core.engine", "app.core.errors", "app.store.disk", "app.store.index"]
    assert modules["app.core"].is_package and not modules["app.core.engine"].is_package
    graph = import_graph(modules)
    assert [(edge.line, edge.target) for edge in sorted(graph["app.store.disk"], key=lambda edge: edge.line)] == [
        (3, "app.core.errors"),
        (4, "app.core.errors"),
        (5, "app.store.index"),
        (6, "app.core"),
        (8, "app.core.engine"),
        (10, "app.core.engine"),
    ]
    assert [edge.target for edge in graph["app"]] == ["app.core.engine"]
    assert [edge.target for edge in graph["app.core.engine"]] == ["app.core"]
    assert strongly_connected(graph) == []


def test_tarjan_finds_cycles_and_only_cycles() -> None:
    def graph_of(pairs: list[tuple[str, str]], nodes: str) -> dict[str, list[Edge]]:
        graph: dict[str, list[Edge]] = {node: [] for node in nodes}
        for source, target in pairs:
            graph[source].append(Edge(source, target, 1))
        return graph

    graph = graph_of([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("f", "a")], "abcdef")
    assert strongly_connected(graph) == [["a", "b", "c"], ["d", "e"]]
    assert [edge.target for edge in a_cycle(graph, ["a", "b", "c"])] == ["b", "c", "a"]
    assert strongly_connected(graph_of([("a", "b"), ("b", "c"), ("a", "c")], "abc")) == []


def test_first_party_modules_import_one_another_without_cycles() -> None:
    modules = first_party_modules()
    graph = import_graph(modules)
    cycles = [describe(graph, modules, component) for component in strongly_connected(graph)]
    for cycle in cycles:
        print(cycle)
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + "\n".join(cycles)
