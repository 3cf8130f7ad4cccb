"""The package's imports read top-down: each module imports only from its own layer or lower
ones, and no chain of imports leads back to where it started.

Found by walking the source (ast), so imports inside functions count too: an import deferred
for start-up time is still an arrow between two modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "j1filter"

#: The layers, lowest first. A module belongs to the layer of its longest listed prefix.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("j1filter._meta", "j1filter.errors", "j1filter.datastream"),  # constants, the error tree, names
    ("j1filter.io",),  # stop signals, exit codes, the line writer
    ("j1filter.convert",),  # value conversions, the type lattice, the transforms
    ("j1filter.ecs",),  # the vendored ECS field facts
    ("j1filter.language",),  # mapping files: parse, check
    ("j1filter.runtime",),  # bind, generate, run per entity
    ("j1filter.protocol", "j1filter.stream"),  # one line in, documents out; the line stream
    ("j1filter.collect",),  # the J1 API client and collector
    ("j1filter.assets",),  # Elasticsearch and Kibana assets
    ("j1filter.cli",),  # every subcommand
    ("j1filter", "j1filter.__main__"),  # the public facade
)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    best, found = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    assert found >= 0, f"{module} is in no layer: add it to LAYERS"
    return found


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    is_package = MODULES[importer].name == "__init__.py"
    base = importer.split(".")
    if node.level:
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        return ".".join(base + ([node.module] if node.module else []))
    return node.module or ""


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """(imported j1filter module, line) for every import statement of ``module``."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            # `from . import dates` imports a module; `from .x import name` imports from one.
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import j1filter.a.b` names a module or its parent
                target = target.rpartition(".")[0]
            if target.startswith("j1filter") and target != module:
                yield target, node.lineno


GRAPH = {module: sorted({t for t, _ in imports_of(module)}) for module in MODULES}


def test_the_layers_cover_every_module():
    assert len(MODULES) > 40
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module):
    upward = [
        f"{MODULES[module].relative_to(REPO)}:{line}: {module} ({LAYERS[layer_of(module)][0]}) imports "
        f"{target} ({LAYERS[layer_of(target)][0]})"
        for target, line in imports_of(module)
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in graph:
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_catch_what_they_guard():
    """The guards themselves: an upward import and a cycle are found (and a chain is not one)."""
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None
    assert layer_of("j1filter.io.stops") < layer_of("j1filter.convert.dates") < layer_of("j1filter.cli.main")
    assert "j1filter.io.output" in GRAPH["j1filter.collect.collector"]
    assert "j1filter.convert.dates" in GRAPH["j1filter.convert.coerce"]  # `from . import dates`
