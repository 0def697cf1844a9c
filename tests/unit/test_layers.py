"""The layers, checked on the source: imports run one way, consumers ->
projections -> ledger, never in a circle, and the domain imports no I/O.

Every module of ledger/, projections/ and consumers/ is parsed with ``ast``
(nothing is imported or run), including the imports inside functions: an
import deferred to call time is still a dependency, and a circle hidden that
way is still a circle.  docs/ARCHITECTURE.md, "Layers", says why.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("ledger", "projections", "consumers")  # each may import only those before it

# What a module of the domain may not import: storage, brokers, the network,
# processes and the file system reach it through ports (ledger/ports.py) and
# the composition root (consumers/bootstrap.py), never directly.
IO_MODULES = frozenset({
    "sqlite3", "psycopg", "psycopg_pool", "kafka", "confluent_kafka", "socket", "ssl", "http", "urllib",
    "httpx", "requests", "starlette", "uvicorn", "asyncio", "subprocess", "os", "pathlib", "shutil", "tempfile",
    "eventsourcing",
})


@dataclass(frozen=True)
class Import:
    """One import statement of ``importer``: the module it names, at ``line``."""

    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} imports {self.imported} ({_path(self.importer)}:{self.line})"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _path(module: str) -> str:
    for candidate in (module.replace(".", "/") + ".py", module.replace(".", "/") + "/__init__.py"):
        if (ROOT / candidate).is_file():
            return candidate
    return module


def our_modules() -> dict[str, ast.Module]:
    return {_module_name(path): ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for layer in LAYERS for path in sorted((ROOT / layer).rglob("*.py"))}


def imports_of(module: str, tree: ast.Module, known: Iterable[str]) -> list[Import]:
    """Every module ``tree`` imports, by full name: ``from a import b`` names
    ``a.b`` where that is a module of ours, else ``a``."""
    known = set(known)
    package = module if _path(module).endswith("__init__.py") else module.rpartition(".")[0]
    found: dict[tuple[str, int], Import] = {}  # one per module and line: `from a import b, c` is one
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]
        else:
            continue
        for name in names:
            found.setdefault((name, node.lineno), Import(module, name, node.lineno))
    return list(found.values())


def import_graph() -> dict[str, list[Import]]:
    modules = our_modules()
    return {name: imports_of(name, tree, modules) for name, tree in modules.items()}


def _layer(module: str) -> int | None:
    top = module.split(".")[0]
    return LAYERS.index(top) if top in LAYERS else None


def upward_imports(graph: Mapping[str, list[Import]]) -> list[Import]:
    return [i for imports in graph.values() for i in imports
            if _layer(i.imported) is not None and _layer(i.imported) > _layer(i.importer)]  # type: ignore[operator]


def io_imports(graph: Mapping[str, list[Import]]) -> list[Import]:
    return [i for module, imports in graph.items() if module.split(".")[0] == "ledger"
            for i in imports if i.imported.split(".")[0] in IO_MODULES]


def import_cycles(graph: Mapping[str, list[Import]]) -> list[list[str]]:
    """The strongly connected components of more than one module, or of one
    that imports itself (Tarjan's algorithm, without recursion)."""
    edges = {m: sorted({i.imported for i in imports if i.imported in graph}) for m, imports in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
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
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges[node]:
                    cycles.append(sorted(component))
    return cycles


def _circle(component: list[str], graph: Mapping[str, list[Import]]) -> str:
    """The shortest way round from the component's first module back to it,
    one import a line."""
    inside, start = set(component), component[0]
    came_by: dict[str, Import] = {}
    frontier = [start]
    while frontier and start not in came_by:
        following = []
        for module in frontier:
            for i in graph[module]:
                if i.imported in inside and i.imported not in came_by:
                    came_by[i.imported] = i
                    following.append(i.imported)
        frontier = following
    steps, module = [], start
    while True:
        steps.append(came_by[module])
        module = came_by[module].importer
        if module == start:
            break
    return " -> ".join([start] + [i.imported for i in reversed(steps)]) + "\n    " + "\n    ".join(
        str(i) for i in reversed(steps))


def test_every_layer_is_parsed():
    graph = import_graph()
    assert {m.split(".")[0] for m in graph} == set(LAYERS)
    assert {"ledger.ports", "projections.store", "consumers.cli.core", "consumers.log.kafka"} <= set(graph)


def test_no_module_imports_a_layer_above_its_own():
    upward = upward_imports(import_graph())
    assert not upward, ("imports run consumers -> projections -> ledger; these run upward:\n  "
                        + "\n  ".join(map(str, upward)))


def test_no_import_circle():
    graph = import_graph()
    cycles = import_cycles(graph)
    assert not cycles, "modules that import each other, directly or around a circle:\n  " + "\n  ".join(
        _circle(c, graph) for c in cycles)


def test_the_domain_imports_no_io():
    found = io_imports(import_graph())
    assert not found, ("ledger/ does no I/O (adapters live in projections/ and consumers/); these import "
                       "I/O modules:\n  " + "\n  ".join(map(str, found)))


# -- the checks themselves can fail ----------------------------------------------------


def _graph_of(sources: Mapping[str, str]) -> dict[str, list[Import]]:
    return {m: imports_of(m, ast.parse(text), sources) for m, text in sources.items()}


def test_the_checks_name_what_offends():
    graph = _graph_of({
        "ledger.a": "import sqlite3\nfrom projections import b\n",
        "projections.b": "def later():\n    from consumers.c import run\n",
        "consumers.c": "from ledger import a\nfrom consumers import d\n",
        "consumers.d": "import consumers.c\n",
    })
    assert [str(i) for i in upward_imports(graph)] == [
        "ledger.a imports projections.b (ledger.a:2)", "projections.b imports consumers.c (projections.b:2)"]
    assert [i.imported for i in io_imports(graph)] == ["sqlite3"]
    assert import_cycles(graph) == [["consumers.c", "consumers.d", "ledger.a", "projections.b"]]
