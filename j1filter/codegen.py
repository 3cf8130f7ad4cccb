"""Generate one straight-line Python function from the rules of a plan.

The rules of a plan run for every entity of its kind, and most find nothing to copy, so
their cost is dominated by call overhead. Emitting them as inline code (the approach of
fastjsonschema) makes a rule that does not apply cost one dict lookup. Only the common
shapes are inlined (dotted sources, constants, plain ``set``); everything else calls the
same small closures the compiler builds, bound into the generated function's namespace.

``J1FILTER_SHOW_CODE=1`` prints the generated source to stderr, for debugging.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any, Callable

from .errors import TransformError
from .paths import get_path
from .spec import Expression, Path, Rule

RulesFn = Callable[[dict, dict, list], None]
_EMPTY: dict = {}


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    transform: Callable[[Any], Any] | None  # composed transform chain, or None
    read: Callable[[dict], Any]  # the general reader, for sources not inlined
    write: Callable[[dict, Any], None]  # the general writer, for modes not inlined
    label: str  # "target <- source", the prefix of its error messages


class _Emitter:
    def __init__(self) -> None:
        self.lines = ["def apply_rules(A, doc, errors):",
                      "    P = A.get('properties')",
                      "    if P.__class__ is not dict: P = _EMPTY",
                      "    E = A.get('entity')",
                      "    if E.__class__ is not dict: E = _EMPTY"]
        self.parents: set[str] = set()  # locals holding output parent objects
        self.namespace: dict[str, Any] = {"_EMPTY": _EMPTY, "TransformError": TransformError,
                                          "get_path": get_path}

    def const(self, name: str, value: Any) -> str:
        self.namespace[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)


def _parent_local(path: Path) -> str:
    return "p_" + "_".join(path).replace("@", "_at_")


def _read_expr(path: Path, emitter: _Emitter, name: str) -> str:
    if len(path) == 2 and path[0] == "properties":
        return f"P.get({path[1]!r})"
    if len(path) == 2 and path[0] == "entity":
        return f"E.get({path[1]!r})"
    if len(path) == 1:
        return f"A.get({path[0]!r})"
    return f"get_path(A, {emitter.const(name, path)})"


def _emit_rule(emitter: _Emitter, index: int, compiled: CompiledRule) -> None:
    rule = compiled.rule
    emit = emitter.emit
    emit(1, f"# {rule.id} ({rule.location})")
    depth = 1
    # The entity was cleaned of empty values before the rules run: present means not None.
    for n, path in enumerate(rule.when.has):
        emit(depth, f"if {_read_expr(path, emitter, f'H{index}_{n}')} is not None:")
        depth += 1
    for n, path in enumerate(rule.when.missing):
        emit(depth, f"if {_read_expr(path, emitter, f'M{index}_{n}')} is None:")
        depth += 1
    simple_sources = rule.source_kind == "from" and not any(isinstance(s, Expression) for s in rule.sources)
    if rule.source_kind == "value":
        emit(depth, f"v = {emitter.const(f'V{index}', rule.value)}")
    elif simple_sources:
        emit(depth, f"v = {_read_expr(rule.sources[0], emitter, f'S{index}_0')}")
        for n, path in enumerate(rule.sources[1:], 1):
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
    if rule.mode == "set":
        # Targets never conflict (checked at compile time), so every parent is a dict, and
        # once found it stays the same dict: keep it in a local for the following rules.
        target = "doc"
        for n in range(1, len(rule.to)):
            local = _parent_local(rule.to[:n])
            emitter.parents.add(local)
            emit(depth, f"if {local} is None: {local} = {target}.setdefault({rule.to[n - 1]!r}, {{}})")
            target = local
        emit(depth, f"{target}[{rule.to[-1]!r}] = v")
    else:
        label = emitter.const(f"L{index}", compiled.label + ": ")
        emit(depth, "try:")
        emit(depth + 1, f"{emitter.const(f'W{index}', compiled.write)}(doc, v)")
        emit(depth, "except ValueError as exc:")
        emit(depth + 1, f"errors.append({label} + str(exc))")


def generate(rules: list[CompiledRule], name: str) -> RulesFn:
    """One function applying ``rules`` in order: ``apply_rules(asset, doc, errors)``."""
    emitter = _Emitter()
    for index, compiled in enumerate(rules):
        _emit_rule(emitter, index, compiled)
    emitter.emit(1, "return None")
    if emitter.parents:
        emitter.lines.insert(5, "    " + " = ".join(sorted(emitter.parents)) + " = None")
    source = "\n".join(emitter.lines) + "\n"
    if os.environ.get("J1FILTER_SHOW_CODE"):
        print(f"# --- generated for {name}\n{source}", file=sys.stderr)
    code = compile(source, f"<j1filter rules: {name}>", "exec")
    exec(code, emitter.namespace)  # noqa: S102 - our own generated source, from validated specs
    return emitter.namespace["apply_rules"]
