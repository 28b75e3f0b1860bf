"""The server reads top-down: every import goes from a higher layer to a lower one, never back,
and no two modules import each other (directly or around a loop).

    entry points   app, cli, embedded, mcp_stdio, __init__ (they assemble everything)
    api            routes, dependencies, middleware: HTTP only
    services       use cases; transport-agnostic
    adapters       storage (SQL, LanceDB), embedding, providers
    foundation     errors, ids, tokens, chunking, scaffold, settings, memtrim, priority

Read from the source with `ast`, so imports inside functions and under `TYPE_CHECKING` count too:
a lazy import of a higher layer is still a dependency on it. For cycles, imports under
`TYPE_CHECKING` are left out: naming another module's type (a service handed another service)
creates no loop when the modules load. A module of a layer may import its
own layer and any layer below it. A new top-level module must be given a layer here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "agentmem_server"
SOURCE = Path(__file__).resolve().parents[2] / "server" / PACKAGE

# The first dotted part after `agentmem_server.` decides the layer. Higher numbers are higher.
LAYERS: dict[str, int] = {
    "errors": 0,
    "ids": 0,
    "tokens": 0,
    "chunking": 0,
    "dates": 0,  # dates of archival lines, relative phrases resolved (pure)
    "scaffold": 0,  # a unit's `[date] Speaker:` scaffold; embeds through a callable it is given
    "settings": 0,
    "memtrim": 0,  # gives freed heap back to the OS; imports nothing of ours
    "priority": 0,  # lowers bulk threads' OS priority; imports nothing of ours
    "storage": 1,
    "embedding": 1,
    "providers": 1,
    "services": 2,
    "api": 3,
    "app": 4,
    "cli": 4,
    "embedded": 4,
    "mcp_stdio": 4,  # `agentmem mcp`: relays stdio to a running server's /mcp
    "": 4,  # agentmem_server/__init__.py
}

# Adapters are side by side, not stacked: storage, embedding and providers never import each
# other (a service combines them).
SIBLINGS = {"storage", "embedding", "providers"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_module(name: str) -> bool:
    """Whether a dotted name is a module or package of the server (not a name inside one)."""
    path = SOURCE.parent.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def type_checking_nodes(tree: ast.AST) -> set[ast.AST]:
    """The nodes inside `if TYPE_CHECKING:` blocks."""
    inside: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                inside.update(ast.walk(statement))
    return inside


def imports_of(path: Path) -> Iterator[tuple[str, int, bool]]:
    """(module imported, line, only under TYPE_CHECKING) for every server module `path`
    imports."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = type_checking_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, node in typing_only
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import module` depends on that module, not only on the package.
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield (
                    (submodule if is_module(submodule) else source),
                    node.lineno,
                    (node in typing_only),
                )


def graph(*, with_type_checking: bool) -> dict[str, dict[str, int]]:
    """module -> {server module it imports: first line}."""
    edges: dict[str, dict[str, int]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        name = module_name(path)
        targets = edges.setdefault(name, {})
        for target, line, typing_only in imports_of(path):
            if typing_only and not with_type_checking:
                continue
            if (target == PACKAGE or target.startswith(PACKAGE + ".")) and target != name:
                targets.setdefault(target, line)
    return edges


def top(name: str) -> str:
    return name.removeprefix(PACKAGE).removeprefix(".").partition(".")[0]


EDGES = graph(with_type_checking=True)
RUNTIME_EDGES = graph(with_type_checking=False)


def test_the_graph_is_read() -> None:
    """Guards the test itself: it sees the modules and the imports it is about."""
    assert "agentmem_server.services.memory" in EDGES
    assert "agentmem_server.storage.sql.store" in EDGES["agentmem_server.services.memory"]
    assert "agentmem_server.services.recall" in EDGES["agentmem_server.services.archival"]
    # services/memory.py names ArchivalIndex for its type only.
    assert "agentmem_server.services.archival" in EDGES["agentmem_server.services.memory"]
    assert (
        "agentmem_server.services.archival" not in RUNTIME_EDGES["agentmem_server.services.memory"]
    )


@pytest.mark.parametrize("module", sorted(EDGES))
def test_every_module_has_a_layer(module: str) -> None:
    assert top(module) in LAYERS, f"{module}: give `{top(module)}` a layer in {__name__}.LAYERS"


def test_imports_go_down_only() -> None:
    upward = [
        f"{source}:{line} imports {target}"
        for source, targets in EDGES.items()
        for target, line in targets.items()
        if top(source) in LAYERS
        and top(target) in LAYERS
        and (
            LAYERS[top(target)] > LAYERS[top(source)]
            or (top(source) in SIBLINGS and top(target) in SIBLINGS and top(source) != top(target))
        )
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components: any component of two or more modules is a loop.

    A package's `__init__` re-exporting its own modules is not a loop (the package imports its
    children; the children import each other), so edges from a module to a package that contains
    it are left out: they stand for `from . import x` inside that package.
    """
    edges = {
        source: [t for t in targets if t in RUNTIME_EDGES and not source.startswith(t + ".")]
        for source, targets in RUNTIME_EDGES.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert cycles == []
