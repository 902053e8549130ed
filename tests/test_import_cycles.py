"""No import cycles in the package, read from the source: every ``import`` and ``from … import``
counts, at module level or inside a function (a lazy import is still a dependency), with
relative imports resolved. Checked twice: between modules, and between the package's parts (its
top-level modules and folders), so that ``settings.py`` cannot lean on ``stream/`` while
``stream/`` leans on it."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "stream_trf"
Graph = dict[str, set[str]]


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` under ``root`` (a package: ``__init__``
    files name their folder)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _imported(node: ast.AST, package: str) -> Iterable[str]:
    """The dotted names one import statement may load (``package``: the importer's package)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            parts = package.split(".")
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        # ``from pkg import x``: the submodule pkg.x, or (a name defined in it) pkg itself
        yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(root: Path) -> Graph:
    """Module → the package's modules it imports (anywhere in its source)."""
    modules = module_names(root)
    graph: Graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in _imported(node, package):
                while target not in modules and "." in target:  # a name inside a module
                    target = target.rpartition(".")[0]
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def by_part(graph: Graph) -> Graph:
    """The graph between the package's parts: ``root.x`` for each top-level module or folder."""

    def part(name: str) -> str:
        return ".".join(name.split(".")[:2])

    parts: Graph = {part(name): set() for name in graph}
    for name, targets in graph.items():
        parts[part(name)] |= {part(t) for t in targets if part(t) != part(name)}
    return parts


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle (as a path that ends where it starts) per strongly connected component of more
    than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return [_a_cycle(graph, component) for component in components]


def _a_cycle(graph: Graph, component: set[str]) -> list[str]:
    """A shortest path from the component's first node back to itself, within the component."""
    first = min(component)
    paths = {first: [first]}
    frontier = [first]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == first:
                    return [*paths[node], first]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {first} in {sorted(component)}")


def _explain(found: list[list[str]]) -> str:
    return "import cycles:\n" + "\n".join("  " + " -> ".join(c) for c in found)


def test_no_module_imports_itself_back() -> None:
    found = cycles(import_graph(PACKAGE))
    assert not found, _explain(found)


def test_no_part_of_the_package_imports_itself_back() -> None:
    found = cycles(by_part(import_graph(PACKAGE)))
    assert not found, _explain(found)


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph(PACKAGE)
    assert "stream_trf.model.source" in graph["stream_trf"]  # from .model.source import X
    assert "stream_trf.monitor.stats" in graph["stream_trf.monitor.monitor"]  # from . import stats
    # a lazy import inside a function: the CLI loads its commands' modules on use
    assert "stream_trf.stream.worker" in graph["stream_trf.cli"]
    assert "stream_trf.errors" in graph["stream_trf.model.gpu"]  # lazy, inside a function


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        (  # two modules, one of the imports lazy (inside a function)
            {
                "__init__.py": "",
                "sub/__init__.py": "",
                "sub/a.py": "from .b import g\n",
                "sub/b.py": "def g():\n    from . import a\n",
            },
            ["pkg.sub.a", "pkg.sub.b", "pkg.sub.a"],
        ),
        (  # through a parent package and an absolute import
            {
                "__init__.py": "",
                "top.py": "from .sub import c\n",
                "sub/__init__.py": "",
                "sub/c.py": "import pkg.top\n",
            },
            ["pkg.sub.c", "pkg.top", "pkg.sub.c"],
        ),
    ],
)
def test_a_cycle_is_found_and_named(
    tmp_path: Path, files: dict[str, str], cycle: list[str]
) -> None:
    graph = import_graph(_write(tmp_path / "pkg", files))
    assert cycles(graph) == [cycle]


def test_parts_that_import_each_other_through_different_modules_are_a_cycle(
    tmp_path: Path,
) -> None:
    root = _write(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "settings.py": "from .stream.memory import LIMIT\n",
            "stream/__init__.py": "",
            "stream/memory.py": "LIMIT = 32\n",
            "stream/worker.py": "from ..settings import LIMIT\n",
        },
    )
    graph = import_graph(root)
    assert cycles(graph) == []  # no module cycle…
    assert cycles(by_part(graph)) == [["pkg.settings", "pkg.stream", "pkg.settings"]]
