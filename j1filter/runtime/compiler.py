"""Compile mapping specs once, strictly at load time: check transform names, parameters,
targets and types; bind transforms; pre-coerce constants. Nothing here runs per entity.

The result, :class:`CompiledMappings`, is plain data for :mod:`.program`, which selects the
rules and fields of each kind of entity and generates the code that runs them.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from .._meta import ECS_VERSION
from ..convert.coerce import Coercer, coercer
from ..convert.registry import RegisteredTransform, TransformRegistry, builtin_transforms, constant_type
from ..ecs import ecs_fields, field_type
from ..errors import ConfigurationError, MappingError, Problem, TransformError
from ..language.spec import Condition, FieldType, Location, MappingSpec, Path, Rule, TransformCall
from ..language.types import ANY, SAME, close_ecs_field, fits, hint_for, target_type

#: Output fields the engine itself writes; a rule may not target them.
RESERVED_TARGETS = (
    "@timestamp",
    "ecs",
    "data_stream",
    "error",
    "tags",
    "jupiter_one",
    "event.original",
    "event.dataset",
    "event.module",
)

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
    """Mapping specs checked and bound. Raises MappingError listing every problem found."""

    def __init__(self, specs: Iterable[MappingSpec], transforms: TransformRegistry | None = None):
        self.specs = tuple(specs)
        self.transforms = builtin_transforms() if transforms is None else transforms
        problems: list[Problem] = []
        self.fields = tuple(
            tuple(self._compile_field(ft, spec, problems) for ft in spec.fields) for spec in self.specs
        )
        declared = _declared_types(self.fields)
        rules: list[CompiledRule] = []
        self.rules_by_spec: tuple[tuple[CompiledRule, ...], ...] = ()
        by_spec = []
        for spec in self.specs:
            compiled = [
                self._compile_rule(len(rules) + n, rule, spec, declared, problems)
                for n, rule in enumerate(spec.rules)
            ]
            rules.extend(compiled)
            by_spec.append(tuple(compiled))
        self.rules = tuple(rules)
        self.rules_by_spec = tuple(by_spec)
        problems.extend(_target_problems(self.specs))
        problems.extend(_file_condition_problems(self.specs))
        if problems:
            raise MappingError(problems)

    def select(self, kind: EntityKind) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The mapping files and the rules that apply to ``kind`` (by static conditions)."""
        spec_ids = tuple(n for n, spec in enumerate(self.specs) if static_match(spec.when, kind))
        rule_ids = tuple(
            c.index for n in spec_ids for c in self.rules_by_spec[n] if static_match(c.rule.when, kind)
        )
        return spec_ids, rule_ids

    # -- compiling ----------------------------------------------------------------------------

    def _steps(
        self, calls: tuple[TransformCall, ...], problems: list[Problem], where: str, start: str
    ) -> tuple[tuple[Step, ...], str]:
        """The bound steps of a transform chain and the type of its result."""
        steps, result = [], start
        for index, call in enumerate(calls):
            spot = f"{where}.transform[{index}]" if len(calls) > 1 else f"{where}.transform"
            entry = self.transforms.get(call.name)
            if entry is None:
                close = difflib.get_close_matches(call.name, self.transforms.names(), n=1)
                hint = f"did you mean '{close[0]}'?" if close else "see `j1filter fields --transforms`"
                problems.append(_problem(call.location, spot, f"unknown transform '{call.name}'", hint))
                continue
            problem = _parameter_problem(entry, call.params)
            if problem:
                what, hint = problem
                problems.append(_problem(call.location, spot, f"transform '{call.name}': {what}", hint))
                continue
            try:
                fn = entry.factory(**call.params)
            except (TypeError, ValueError, ConfigurationError) as exc:  # a custom factory may raise either
                problems.append(_problem(call.location, spot, f"transform '{call.name}': {exc}"))
                continue
            steps.append(Step(call.name, fn, entry.per_item))
            declared = entry.result_type(call.params)
            result = result if declared == SAME else declared
        return tuple(steps), result

    def _compile_field(self, ft: FieldType, spec: MappingSpec, problems: list[Problem]) -> CompiledField:
        steps, result = self._steps(ft.transforms, problems, f"fields.{ft.path}", ANY)
        return CompiledField(ft, steps, ANY if ft.on_error == "keep" else result, result, spec.parity)

    def _compile_rule(
        self, index: int, rule: Rule, spec: MappingSpec, declared: dict[Path, str], problems: list[Problem]
    ) -> CompiledRule:
        where = f"rule '{rule.id}'"
        start = SAME
        if rule.source_kind == "value":
            start = constant_type([rule.value])
        elif rule.source_kind == "from" and len(rule.sources) == 1 and isinstance(rule.sources[0], tuple):
            start = declared.get(rule.sources[0], SAME)
        steps, result = self._steps(rule.transforms, problems, where, SAME)
        checked = start if result == SAME else result  # the type as far as the files tell
        dotted = ".".join(rule.to)
        target = target_type(dotted, spec.custom_namespaces)
        loc = rule.location
        value = _plain(rule.value)
        if target is None and _reserved(dotted):
            target = ANY  # refused by _target_problems
        if target is None:
            close = close_ecs_field(dotted)
            hint = (
                f"did you mean '{close}'?"
                if close
                else "use labels.* or declare its namespace in custom_namespaces"
            )
            problems.append(
                _problem(loc, f"{where}.to", f"'{dotted}' is not an ECS {ECS_VERSION} field", hint)
            )
            target = ANY
        coerce = coercer(target)
        if rule.source_kind == "value" and not steps:
            try:
                value = value if coerce is None else coerce(value)
                result = target  # written as it is
            except TransformError as exc:
                problems.append(
                    _problem(
                        loc,
                        f"{where}.value",
                        f"{value!r} cannot go into '{dotted}' ({target}): {exc}",
                        hint_for(target),
                    )
                )
        elif not fits(checked, target):
            spot = rule.transforms[-1].location if rule.transforms else loc
            what = (
                f"transform '{rule.transforms[-1].name}' returns {checked}"
                if rule.transforms
                else f"source is {checked}"
            )
            problems.append(
                _problem(
                    spot,
                    f"{where}.transform" if rule.transforms else where,
                    f"{what}, which cannot go into '{dotted}' ({target})",
                    hint_for(target),
                )
            )
        return CompiledRule(index, rule, rule_label(rule), steps, value, target, result, coerce, spec.parity)

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
                types[name] = _wider(types.get(name), "keyword" if result == "object" else result)
        return dict(sorted(types.items()))


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
            types[path] = _wider(types.get(path), result)
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


def _wider(known: str | None, other: str) -> str:
    """One type for a field two coercions declare: the same, a number both fit, or text."""
    if known is None or known == other:
        return other
    return "double" if {known, other} == {"long", "double"} else "keyword"


def _plain(value: Any) -> Any:
    """A YAML constant as plain lists and dicts (the loader's carry positions)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _declared_types(fields: tuple[tuple[CompiledField, ...], ...]) -> dict[Path, str]:
    """Raw paths every ``fields:`` coercion of which agrees on one type (exact paths only)."""
    seen: dict[Path, set[str]] = {}
    for group in fields:
        for compiled in group:
            if "*" not in compiled.field.path and "?" not in compiled.field.path:
                seen.setdefault(tuple(compiled.field.path.split(".")), set()).add(compiled.result)
    return {path: kinds.pop() for path, kinds in seen.items() if len(kinds) == 1}


def _problem(loc: Location, where: str, what: str, hint: str = "") -> Problem:
    return Problem(loc.file, loc.line, loc.column, where, what, hint)


def _parameter_problem(entry: RegisteredTransform, params: dict[str, Any]) -> tuple[str, str] | None:
    """Unknown or missing parameters, as (what, hint); None when they fit the factory."""
    accepted = inspect.signature(entry.factory).parameters
    hint = "parameters: " + (", ".join(accepted) if accepted else "none")
    for name in params:
        if name not in accepted:
            close = difflib.get_close_matches(name, list(accepted), n=1)
            return f"unknown parameter '{name}'", (f"did you mean '{close[0]}'?" if close else hint)
    for name, parameter in accepted.items():
        if parameter.default is inspect.Parameter.empty and name not in params:
            return f"missing parameter '{name}'", hint
    return None


def _reserved(dotted: str) -> bool:
    return any(dotted == r or dotted.startswith(r + ".") for r in RESERVED_TARGETS)


def _target_problems(specs: tuple[MappingSpec, ...]) -> list[Problem]:
    problems = []
    targets: dict[Path, Rule] = {}
    for spec in specs:
        for rule in spec.rules:
            dotted = ".".join(rule.to)
            if _reserved(dotted):
                problems.append(
                    _problem(
                        rule.location,
                        f"rule '{rule.id}'.to",
                        f"'{dotted}' is written by j1filter itself",
                        "choose another target",
                    )
                )
            targets.setdefault(rule.to, rule)
    for path, rule in targets.items():
        for depth in range(1, len(path)):
            other = targets.get(path[:depth])
            if other is not None:
                problems.append(
                    _problem(
                        rule.location,
                        f"rule '{rule.id}'.to",
                        f"'{'.'.join(path)}' is inside '{'.'.join(other.to)}', which rule '{other.id}' "
                        f"({other.location}) sets as a whole",
                        "a field is either a value or an object",
                    )
                )
    return problems


def _file_condition_problems(specs: tuple[MappingSpec, ...]) -> list[Problem]:
    return [
        _problem(
            s.location,
            "when",
            "a file-level condition may only test class, not_class, type, not_type and integration_type",
            "put has/missing on the rules",
        )
        for s in specs
        if not s.when.is_static
    ]


__all__ = [
    "CompiledField",
    "CompiledMappings",
    "CompiledRule",
    "EntityKind",
    "Step",
    "field_types",
    "rule_label",
    "static_match",
]
