"""The third compile-time stage: bind checked mappings to their transform functions and
field coercers, and pre-coerce constants. Nothing here runs per entity.

    parse (:mod:`j1filter.language.parser`) -> check (:mod:`j1filter.language.check`)
    -> bind (here); :func:`compile_mappings` runs the three.

The result, :class:`CompiledMappings`, is plain data for :mod:`.program`, which selects the
rules and fields of each kind of entity and generates the code that runs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ..convert.coerce import Coercer, coercer
from ..convert.registry import TransformRegistry
from ..convert.transforms import TRANSFORMS, Transform
from ..convert.types import ANY, SAME, ValueType, wider
from ..ecs import ecs_fields, field_type
from ..errors import MappingError, ParameterError, Problem
from ..language.check import (
    CheckedField,
    CheckedMappings,
    CheckedRule,
    bind_step,
    check_mappings,
    every_problem,
    plain,
)
from ..language.loader import load_mappings, read_mappings
from ..language.spec import Condition, FieldType, MappingSpec, Rule, TransformCall

#: Fields the engine writes itself, with their types (see :func:`field_types`).
ENGINE_FIELDS = (
    "@timestamp",
    "ecs.version",
    "data_stream.type",
    "data_stream.dataset",
    "data_stream.namespace",
    "event.original",
    "event.dataset",
    "event.module",
    "event.kind",
    "error.message",
    "tags",
)

ValueFn = Callable[[Any], Any]


@dataclass(frozen=True)
class Step:
    """One bound transform: its function, applied to each item of a list when ``per_item``."""

    name: str
    fn: ValueFn
    per_item: bool
    #: Equal for steps that compute the same function of their value: a built-in transform
    #: (pure) with the same parameters, whose result is no object. None: not to be shared.
    shared: Any = None
    #: The built-in transform raises for every object (see Transform.refuses_objects).
    refuses_objects: bool = False
    #: The built-in ``by_key``'s pattern: a program specialised to an entity's key shape
    #: knows which keys match it (see Selection.shape and codegen).
    key_pattern: re.Pattern[str] | None = None


@dataclass(frozen=True)
class EntityKind:
    """What static conditions look at: the entity's classes, types and integration types."""

    classes: frozenset[str]
    types: frozenset[str]
    integration_types: frozenset[str]


@dataclass(frozen=True)
class CompiledField:
    """A ``fields:`` coercion of the raw entity, bound."""

    field: FieldType
    steps: tuple[Step, ...]
    result: str  # the declared type of what it leaves in the field (any, with on_error: keep)
    converts_to: str  # the declared type of its transforms' result, whatever on_error says
    demotes: bool = False  # a failure makes the document a pipeline_error (its file has parity: true)


@dataclass(frozen=True)
class CompiledRule:
    """A rule, checked and bound: what :mod:`.program` needs to generate its code."""

    index: int  # position among all rules, in the order they run
    rule: Rule
    label: str  # "file:line rule-id", the prefix of its run-time error messages
    steps: tuple[Step, ...]
    value: Any  # the constant, already coerced to the target's type
    target: str  # the target field's type ("any" for a custom namespace)
    result: str  # the type of the value before it is written; "same": the source's type
    coerce: Coercer | None  # the target type's coercer (None: any value will do)
    demotes: bool = False  # a failure makes the document a pipeline_error (its file has parity: true)


def rule_label(rule: Rule) -> str:
    return f"{rule.location.file}:{rule.location.line} {rule.id}"


def static_match(cond: Condition, kind: EntityKind) -> bool:
    if cond.classes and not _any_match(cond.classes, kind.classes):
        return False
    if _any_match(cond.not_classes, kind.classes):
        return False
    if cond.types and not _any_match(cond.types, kind.types):
        return False
    if _any_match(cond.not_types, kind.types):
        return False
    return not (cond.integration_types and not _any_match(cond.integration_types, kind.integration_types))


def _any_match(patterns: frozenset[str], values: frozenset[str]) -> bool:
    """Any value equal to a pattern, or matching one with ``*``/``?`` wildcards (case-sensitive)."""
    if patterns & values:
        return True
    return any(fnmatchcase(value, p) for p in patterns if "*" in p or "?" in p for value in values)


class CompiledMappings:
    """Checked mapping specs bound to their transform functions and coercers: what the
    runtime runs. Build it with :func:`compile_mappings`."""

    def __init__(self, checked: CheckedMappings):
        self.specs = checked.specs
        self.transforms = checked.transforms
        problems: list[Problem] = []
        self.fields = tuple(
            tuple(self._bind_field(f, spec.parity, problems) for f in group)
            for spec, group in zip(self.specs, checked.fields)
        )
        rules: list[CompiledRule] = []
        by_spec = []
        for spec, group in zip(self.specs, checked.rules):
            compiled = [
                self._bind_rule(len(rules) + n, r, spec.parity, problems) for n, r in enumerate(group)
            ]
            rules.extend(compiled)
            by_spec.append(tuple(compiled))
        self.rules = tuple(rules)
        self.rules_by_spec = tuple(by_spec)
        if problems:  # only a custom factory that refuses what it accepted when checked
            raise MappingError(problems)

    def _steps(self, calls: tuple[TransformCall, ...], problems: list[Problem]) -> tuple[Step, ...]:
        steps = []
        for call in calls:
            entry = self.transforms.get(call.name)
            if entry is None:  # the registry changed since the check
                problems.append(Problem(*_at(call), "transform", f"unknown transform '{call.name}'"))
                continue
            try:
                fn = bind_step(entry, call.params)
                builtin = TRANSFORMS.get(call.name) is entry
                steps.append(
                    Step(
                        call.name,
                        fn,
                        entry.per_item,
                        _shared_key(entry, call) if builtin else None,
                        builtin and entry.refuses_objects,
                        re.compile(plain(call.params)["pattern"])
                        if builtin and call.name == "by_key"
                        else None,
                    )
                )
            except (TypeError, ValueError, ParameterError) as exc:
                problems.append(Problem(*_at(call), "transform", f"transform '{call.name}': {exc}"))
        return tuple(steps)

    def _bind_field(self, checked: CheckedField, parity: bool, problems: list[Problem]) -> CompiledField:
        return CompiledField(
            checked.field,
            self._steps(checked.field.transforms, problems),
            checked.result,
            checked.converts_to,
            parity,
        )

    def _bind_rule(
        self, index: int, checked: CheckedRule, parity: bool, problems: list[Problem]
    ) -> CompiledRule:
        rule = checked.rule
        coerce = coercer(checked.target)
        value = plain(rule.value)
        if rule.source_kind == "value" and not rule.transforms and coerce is not None:
            value = coerce(value)  # the check proved it fits
        steps = self._steps(rule.transforms, problems)
        return CompiledRule(
            index, rule, rule_label(rule), steps, value, checked.target, checked.result, coerce, parity
        )

    def select(self, kind: EntityKind) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The mapping files and the rules that apply to ``kind`` (by static conditions)."""
        spec_ids = tuple(n for n, spec in enumerate(self.specs) if static_match(spec.when, kind))
        rule_ids = tuple(
            c.index for n in spec_ids for c in self.rules_by_spec[n] if static_match(c.rule.when, kind)
        )
        return spec_ids, rule_ids

    # -- facts for other tools ------------------------------------------------------------------

    def field_types(self) -> dict[str, str]:
        """Every field the mappings (and the engine) write, with its Elasticsearch type."""
        types: dict[str, str] = {name: field_type(name) or "keyword" for name in ENGINE_FIELDS}
        for compiled in self.rules:
            dotted = ".".join(compiled.rule.to)
            if compiled.target == "object":
                types.update((name, kind) for name, kind in _ecs_children(dotted))
            elif compiled.target == ANY:
                types.setdefault(dotted, compiled.result if compiled.result not in (ANY, SAME) else "keyword")
            else:
                types[dotted] = compiled.target
        for fields in self.fields:
            for compiled_field in fields:
                result = compiled_field.result if compiled_field.result not in (ANY, SAME) else "keyword"
                name = f"jupiter_one.asset.{compiled_field.field.path}"
                types[name] = wider(types.get(name), "keyword" if result == "object" else result)
        return dict(sorted(types.items()))


def compile_mappings(
    specs: Iterable[MappingSpec] | None = None, *, transforms: TransformRegistry | None = None
) -> CompiledMappings:
    """Check and bind mapping specs once (default: the shipped mappings, read now), with the
    built-in transforms or the given registry. Raises MappingError listing every problem."""
    return CompiledMappings(check_mappings(load_mappings() if specs is None else specs, transforms))


def compile_files(
    extra: Iterable[str | Path] = (),
    *,
    shipped: bool = True,
    transforms: TransformRegistry | None = None,
) -> CompiledMappings:
    """Read, check and bind mapping files: the shipped ones (unless ``shipped=False``), then
    ``extra`` files and directories. Raises MappingError listing the problems of every stage
    at once: a file's YAML or shape does not hide its unknown fields or wrong types."""
    checked, problems = every_problem(read_mappings(extra, shipped=shipped), transforms)
    if problems:
        raise MappingError(problems)
    return CompiledMappings(checked)


def _shared_key(entry: Transform, call: TransformCall) -> Any:
    """What makes two calls of a built-in transform compute the same values (see
    Step.shared), or None."""
    if entry.result_type(call.params) == ValueType.OBJECT:
        return None
    return call.name, repr(sorted(plain(call.params).items()))


def _at(call: TransformCall) -> tuple[str, int, int]:
    return call.location.file, call.location.line, call.location.column


def coercion_types(compiled: CompiledMappings) -> dict[str, str]:
    """Raw entity path (dotted; the last segment may hold ``*``) -> the type its ``fields:``
    coercions convert to, ``on_error: keep`` included (what an index template maps, with
    ignore_malformed for the values left raw). Where files disagree, the wider type wins."""
    types: dict[str, str] = {}
    for fields in compiled.fields:
        for compiled_field in fields:
            result = compiled_field.converts_to
            result = "keyword" if result in (ANY, SAME, "object") else result
            path = compiled_field.field.path
            types[path] = wider(types.get(path), result)
    return types


def field_types(compiled: CompiledMappings) -> dict[str, str]:
    """Every output field the compiled mappings write, with its Elasticsearch type: rule
    targets (ECS types from the vendored ECS facts; each ECS field of an object target such
    as ``url``), ``jupiter_one.asset.<path>`` from ``fields:`` coercions (the last segment
    may hold ``*``), and the fields the engine writes itself."""
    return compiled.field_types()


def _ecs_children(prefix: str) -> list[tuple[str, str]]:
    return [
        (name, str(spec["type"]))
        for name, spec in ecs_fields().items()
        if name.startswith(prefix + ".") and name.count(".") == prefix.count(".") + 1
    ]


__all__ = [
    "CompiledField",
    "CompiledMappings",
    "CompiledRule",
    "EntityKind",
    "Step",
    "compile_files",
    "compile_mappings",
    "field_types",
    "rule_label",
    "static_match",
]
