"""Generate one straight-line Python function from the rules of a plan.

The rules of a plan run for every entity of its kind, and most find nothing to copy, so
their cost is dominated by call overhead. Emitting them as inline code (the approach of
fastjsonschema) makes a rule that does not apply cost one dict lookup, and given the keys
an entity has (its shape), rules whose sources are absent are not emitted at all. Dotted
sources, constants and the three write modes are inlined; other sources (``collect``,
``args``, JMESPath) and transforms call the closures the compiler built, bound into the
generated function's namespace. Names and values from mapping files only ever appear in
the source as ``repr`` literals or namespace constants, never as code.

``J1FILTER_SHOW_CODE=1`` prints the generated source to stderr, for debugging.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, cast

from ..errors import TransformError
from .paths import get_path
from ..language.spec import Expression, Path, Rule
from ..convert.transforms import java_string

RulesFn = Callable[[dict, dict, list], None]
_EMPTY: dict = {}


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    transform: Callable[[Any], Any] | None  # composed transform chain, or None
    read: Callable[[dict], Any] | None  # the general reader, for sources not inlined
    label: str  # "target <- source", the prefix of its error messages


class _Emitter:
    def __init__(self) -> None:
        self.lines = ["def apply_rules(A, doc, errors):",
                      "    P = A.get('properties')",
                      "    if P.__class__ is not dict: P = _EMPTY",
                      "    E = A.get('entity')",
                      "    if E.__class__ is not dict: E = _EMPTY"]
        self.parents: dict[Path, str] = {}  # output parent path -> the local holding it
        self.namespace: dict[str, Any] = {"_EMPTY": _EMPTY, "TransformError": TransformError,
                                          "get_path": get_path, "append_values": append_values}

    def const(self, name: str, value: Any) -> str:
        self.namespace[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def parent_local(self, path: Path) -> str:
        return self.parents.setdefault(path, f"p{len(self.parents)}")


def _read_expr(path: Path, emitter: _Emitter, name: str) -> str:
    if len(path) == 2 and path[0] == "properties":
        return f"P.get({path[1]!r})"
    if len(path) == 2 and path[0] == "entity":
        return f"E.get({path[1]!r})"
    if len(path) == 1:
        return f"A.get({path[0]!r})"
    return f"get_path(A, {emitter.const(name, path)})"


def _absent(path: Path, present: dict[Path, frozenset] | None) -> bool:
    """True when the entity's shape says ``path`` cannot hold a value."""
    if present is None:
        return False
    if len(path) >= 2 and (path[0],) in present:
        return path[1] not in present[(path[0],)]
    return path[0] not in present[()]


def _emit_rule(emitter: _Emitter, index: int, compiled: CompiledRule,
               present: dict[Path, frozenset] | None) -> None:
    rule = compiled.rule
    sources = rule.sources
    paths = [s for s in sources if not isinstance(s, Expression)]
    if rule.source_kind == "from":
        sources = tuple(s for s in sources if isinstance(s, Expression) or not _absent(s, present))
        if not sources:
            return
    elif rule.source_kind == "collect" and paths == list(sources) and all(_absent(s, present) for s in paths):
        return
    elif rule.source_kind == "args" and any(_absent(s, present) for s in paths):
        return
    if any(_absent(path, present) for path in rule.when.has):
        return
    missing = [path for path in rule.when.missing if not _absent(path, present)]
    emit = emitter.emit
    emit(1, f"# {str(rule.id)!r} at {str(rule.location)!r}")
    depth = 1
    # The entity was cleaned of empty values before the rules run: present means not None.
    for n, path in enumerate(rule.when.has):
        emit(depth, f"if {_read_expr(path, emitter, f'H{index}_{n}')} is not None:")
        depth += 1
    for n, path in enumerate(missing):
        emit(depth, f"if {_read_expr(path, emitter, f'M{index}_{n}')} is None:")
        depth += 1
    simple_sources = rule.source_kind == "from" and not any(isinstance(s, Expression) for s in sources)
    if rule.source_kind == "value":
        emit(depth, f"v = {emitter.const(f'V{index}', rule.value)}")
    elif simple_sources:
        dotted = cast("tuple[Path, ...]", sources)  # no Expression among them
        emit(depth, f"v = {_read_expr(dotted[0], emitter, f'S{index}_0')}")
        for n, path in enumerate(dotted[1:], 1):
            emit(depth, f"if v is None: v = {_read_expr(path, emitter, f'S{index}_{n}')}")
    else:
        emit(depth, f"v = {emitter.const(f'R{index}', compiled.read)}(A)")
    emit(depth, "if v is not None:")
    depth += 1
    if compiled.transform is not None:
        label = emitter.const(f"L{index}", compiled.label + ": ")
        emit(depth, "try:")
        emit(depth + 1, f"v = {emitter.const(f'T{index}', compiled.transform)}(v)")
        emit(depth, "except TransformError as exc:")
        emit(depth + 1, f"errors.append({label} + str(exc))")
        emit(depth + 1, "v = None")
        emit(depth, "if v is not None and v != '' and v != [] and v != {}:")
        depth += 1
    # Targets never conflict (checked at compile time), so every parent is a dict, and once
    # found it stays the same dict: keep it in a local for the following rules.
    target = "doc"
    for n in range(1, len(rule.to)):
        local = emitter.parent_local(rule.to[:n])
        emit(depth, f"if {local} is None: {local} = {target}.setdefault({rule.to[n - 1]!r}, {{}})")
        target = local
    leaf = repr(rule.to[-1])
    if rule.mode == "set":
        emit(depth, f"{target}[{leaf}] = v")
    elif rule.mode == "default":
        emit(depth, f"c = {target}.get({leaf})")
        emit(depth, "if c is None or c == '' or c == [] or c == {}:")
        emit(depth + 1, f"{target}[{leaf}] = v")
    else:  # append: as Elastic's append with allow_duplicates false, values as text
        label = emitter.const(f"L{index}", compiled.label + ": ")
        emit(depth, "try:")
        emit(depth + 1, f"append_values({target}, {leaf}, v)")
        emit(depth, "except ValueError as exc:")
        emit(depth + 1, f"errors.append({label} + str(exc))")


def append_values(parent: dict, leaf: str, value: Any) -> None:
    """Add ``value`` (or each of its items) as text to the list at ``parent[leaf]``,
    skipping values already there."""
    current = parent.get(leaf)
    if current is None:
        current = parent[leaf] = []
    elif current.__class__ is not list:
        current = parent[leaf] = [current]
    for item in value if value.__class__ is list else (value,):
        if item.__class__ is not str:
            if isinstance(item, (dict, list)):
                raise ValueError(f"cannot append an object or nested list to [{leaf}]")
            item = java_string(item)
        if item not in current:
            current.append(item)


def generate(rules: list[CompiledRule], name: str, present: dict[Path, frozenset] | None = None) -> RulesFn:
    """One function applying ``rules`` in order: ``apply_rules(asset, doc, errors)``.

    With ``present`` (the keys of the root, ``entity`` and ``properties`` containers of the
    entities it will see), rules whose sources are not among them are left out."""
    emitter = _Emitter()
    for index, compiled in enumerate(rules):
        _emit_rule(emitter, index, compiled, present)
    emitter.emit(1, "return None")
    if emitter.parents:
        emitter.lines.insert(5, "    " + " = ".join(emitter.parents.values()) + " = None")
    source = "\n".join(emitter.lines) + "\n"
    if os.environ.get("J1FILTER_SHOW_CODE"):
        print(f"# --- generated for {name}\n{source}", file=sys.stderr)
    code = compile(source, f"<j1filter rules: {name}>", "exec")
    exec(code, emitter.namespace)  # noqa: S102 - our own generated source, from validated specs
    return emitter.namespace["apply_rules"]
