"""Compile mapping specs once: check names, parameters and targets, bind transforms and
readers, and (through :mod:`codegen`) generate the rule functions.

The result is a :class:`CompiledMappings`; :class:`j1filter.runtime.mapper.Mapper` asks it for the
:class:`Plan` of each kind of entity (class, type, integration type), so the conditions
that depend only on those are decided once per kind, not once per entity, and a plan keeps
a :class:`Shape` per set of keys its entities carry.
"""

from __future__ import annotations

import difflib
import inspect
import re
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Any, Callable, Iterable

from .codegen import CompiledRule, RulesFn, generate
from ..errors import MappingError, Problem
from .paths import get_path
from ..language.loader import source_text
from ..language.spec import Condition, Expression, FieldType, MappingSpec, Path, Rule, Source, TransformCall
from ..convert.transforms import TRANSFORMS, Transform

#: Output fields the engine itself writes; a rule may not target them.
RESERVED_TARGETS = ("@timestamp", "ecs", "data_stream", "error", "tags", "jupiter_one",
                    "event.original", "event.dataset", "event.module")

ValueFn = Callable[[Any], Any]


@dataclass(frozen=True)
class EntityKind:
    """What static conditions look at: the entity's classes, types and integration types."""

    classes: frozenset[str]
    types: frozenset[str]
    integration_types: frozenset[str]


@dataclass(frozen=True)
class Coercion:
    fn: ValueFn  # applied to the value, or to each item of a list when per_item
    per_item: bool
    on_error: str


@dataclass
class FieldTable:
    """The coercions of one container (e.g. ``properties``): exact keys, then patterns."""

    exact: dict[str, Coercion] = field(default_factory=dict)
    patterns: list[tuple[re.Pattern, Coercion]] = field(default_factory=list)
    memo: dict[str, Coercion | None] = field(default_factory=dict)

    def lookup(self, key: str) -> Coercion | None:
        try:
            return self.memo[key]
        except KeyError:
            pass
        found = self.exact.get(key)
        if found is None:
            found = next((c for regex, c in self.patterns if regex.match(key)), None)
        if len(self.memo) < 50_000:
            self.memo[key] = found
        return found


#: The containers whose keys make up an entity's shape (root, entity, properties).
SHAPE_CONTAINERS: tuple[Path, ...] = ((), ("entity",), ("properties",))


@dataclass(frozen=True)
class Shape:
    """What a plan does for entities with one set of keys: the coercions of the keys present
    (``None``: look every key up), the tables of deeper containers, and the rules function
    generated without the rules whose sources cannot be there."""

    coercions: tuple[tuple[Path, str, Coercion], ...] | None
    tables: tuple[tuple[Path, FieldTable], ...]
    apply_rules: RulesFn


class Plan:
    """Everything the mappings do for one kind of entity (classes, types, integration types).

    Entities of one integration mostly share their keys, so the plan also keeps a
    :class:`Shape` per key set, up to ``MAX_SHAPES``; past that, the generic shape serves."""

    MAX_SHAPES = 256

    def __init__(self, name: str, tables: dict[Path, FieldTable], rules: list[CompiledRule],
                 duplicates: tuple[tuple[Path, tuple[str, ...]], ...]):
        self.name = name
        self.tables = tables
        self.rules = rules
        self.duplicates = duplicates  # (container, keys) removed unless duplicates are preserved
        self.generic = Shape(None, tuple(tables.items()), generate(rules, name))
        self._shapes: dict[tuple, Shape] = {}

    def shape(self, asset: dict) -> Shape:
        entity, properties = asset.get("entity"), asset.get("properties")
        key = (tuple(asset), tuple(entity) if entity.__class__ is dict else (),
               tuple(properties) if properties.__class__ is dict else ())
        found = self._shapes.get(key)
        if found is None:
            if len(self._shapes) >= self.MAX_SHAPES:
                return self.generic
            found = self._shapes[key] = self._build_shape(key)
        return found

    def _build_shape(self, key: tuple) -> Shape:
        present = dict(zip(SHAPE_CONTAINERS, map(frozenset, key)))
        coercions: list[tuple[Path, str, Coercion]] = []
        for container, names in zip(SHAPE_CONTAINERS, key):
            table = self.tables.get(container)
            if table is not None:
                coercions.extend((container, name, c) for name in names if (c := table.lookup(name)))
        nested = tuple((path, table) for path, table in self.tables.items() if path not in present)
        rules = generate(self.rules, f"{self.name} shape {len(self._shapes) + 1}", present)
        return Shape(tuple(coercions), nested, rules)


def static_match(cond: Condition, kind: EntityKind) -> bool:
    if cond.classes and not cond.classes & kind.classes:
        return False
    if cond.not_classes & kind.classes:
        return False
    if cond.types and not cond.types & kind.types:
        return False
    if cond.integration_types and not cond.integration_types & kind.integration_types:
        return False
    return True


class CompiledMappings:
    """Mapping specs checked and turned into closures; builds a :class:`Plan` per kind."""

    def __init__(self, specs: Iterable[MappingSpec], transforms: dict[str, Transform] | None = None):
        self.specs = tuple(specs)
        self._transforms = TRANSFORMS if transforms is None else transforms
        problems: list[Problem] = []
        self._fields = [
            [(ft, *self._compose_coercion(ft, problems)) for ft in spec.fields]
            for spec in self.specs
        ]
        self._rules = [[(rule, self._compile_rule(rule, problems)) for rule in spec.rules]
                       for spec in self.specs]
        problems.extend(_target_problems(self.specs))
        problems.extend(_file_condition_problems(self.specs))
        if problems:
            raise MappingError(problems)
        self._plans: dict[EntityKind, Plan] = {}

    # -- per kind ---------------------------------------------------------------------------

    def plan(self, kind: EntityKind) -> Plan:
        found = self._plans.get(kind)
        if found is None:
            found = self._plans[kind] = self._build_plan(kind)
        return found

    def _build_plan(self, kind: EntityKind) -> Plan:
        tables: dict[Path, FieldTable] = {}
        rules: list[CompiledRule] = []
        duplicates: list[Path] = []
        for spec, fields, compiled_rules in zip(self.specs, self._fields, self._rules):
            if not static_match(spec.when, kind):
                continue
            for ft, fn, per_item in fields:
                *container, key = ft.path.split(".")
                table = tables.setdefault(tuple(container), FieldTable())
                coercion = Coercion(fn, per_item, ft.on_error)
                if "*" in key or "?" in key:
                    table.patterns.append((re.compile(translate(key)), coercion))
                else:
                    table.exact[key] = coercion
            rules.extend(c for rule, c in compiled_rules if static_match(rule.when, kind))
            duplicates.extend(spec.duplicates)
        name = f"classes={sorted(kind.classes)} types={sorted(kind.types)}"
        by_container: dict[Path, list[str]] = {}
        for path in dict.fromkeys(duplicates):
            by_container.setdefault(path[:-1], []).append(path[-1])
        grouped = tuple((container, tuple(keys)) for container, keys in by_container.items())
        return Plan(name, tables, rules, grouped)

    # -- compiling ----------------------------------------------------------------------------

    def _compose_coercion(self, field_type: FieldType, problems: list[Problem]) -> tuple[ValueFn, bool]:
        """A coercion's function; a single per-item transform is applied item by item by the
        caller (saving a wrapper call per value), a chain handles lists itself."""
        calls = field_type.transforms
        entry = self._transforms.get(calls[0].name) if len(calls) == 1 else None
        fn = self._compose(calls, problems, f"fields.{field_type.path}", wrap_per_item=entry is None)
        return fn, bool(entry and entry.per_item)

    def _compose(self, calls: tuple[TransformCall, ...], problems: list[Problem], where: str,
                 wrap_per_item: bool = True) -> ValueFn:
        steps = []
        for index, call in enumerate(calls):
            spot = f"{where}.transform[{index}]" if len(calls) > 1 else f"{where}.transform"
            entry = self._transforms.get(call.name)
            if entry is None:
                close = difflib.get_close_matches(call.name, self._transforms, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "see `j1filter fields --transforms`"
                problems.append(_problem(call, spot, f"unknown transform '{call.name}'", hint))
                continue
            problem = _parameter_problem(entry, call.params)
            if problem:
                what, hint = problem
                problems.append(_problem(call, spot, f"transform '{call.name}': {what}", hint))
                continue
            try:
                fn = entry.factory(**call.params)
            except (TypeError, ValueError) as exc:
                problems.append(_problem(call, spot, f"transform '{call.name}': {exc}"))
                continue
            steps.append(_per_item(fn) if entry.per_item and wrap_per_item else fn)
        if len(steps) == 1:
            return steps[0]

        def chain(value: Any) -> Any:
            for step in steps:
                value = step(value)
                if value is None:
                    return None
            return value

        return chain

    def _compile_rule(self, rule: Rule, problems: list[Problem]) -> CompiledRule:
        fn = self._compose(rule.transforms, problems, f"rule '{rule.id}'") if rule.transforms else None
        label = f"{'.'.join(rule.to)} <- {' | '.join(map(source_text, rule.sources)) or 'value'}"
        return CompiledRule(rule, fn, _reader(rule), label)


def _problem(call: TransformCall, where: str, what: str, hint: str = "") -> Problem:
    loc = call.location
    return Problem(loc.file, loc.line, loc.column, where, what, hint)


def _parameter_problem(entry: Transform, params: dict[str, Any]) -> tuple[str, str] | None:
    """Unknown or missing parameters, as (what, hint); None when they fit the factory."""
    accepted = inspect.signature(entry.factory).parameters
    hint = "parameters: " + (", ".join(accepted) if accepted else "none")
    for name in params:
        if name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=1)
            return f"unknown parameter '{name}'", (f"did you mean '{close[0]}'?" if close else hint)
    for name, parameter in accepted.items():
        if parameter.default is inspect.Parameter.empty and name not in params:
            return f"missing parameter '{name}'", hint
    return None


def map_items(fn: ValueFn, value: Any) -> Any:
    """``fn`` of each item of a list (items it turns into nothing are dropped; an empty
    result is nothing), or of a single value. One bad item fails the whole value."""
    if value.__class__ is list:
        return [item for item in map(fn, value) if item is not None] or None
    return fn(value)


def _per_item(fn: ValueFn) -> ValueFn:
    return lambda value: map_items(fn, value)


def _path_getter(path: Source) -> Callable[[dict], Any]:
    if isinstance(path, Expression):
        search = path.compiled.search
        return lambda asset: search(asset)
    if len(path) == 1:
        key = path[0]
        return lambda asset: asset.get(key)
    if len(path) == 2:
        outer, inner = path

        def get2(asset: dict) -> Any:
            container = asset.get(outer)
            return container.get(inner) if container.__class__ is dict else None

        return get2
    return lambda asset: get_path(asset, path)


def _reader(rule: Rule) -> Callable[[dict], Any] | None:
    """The reader of a rule's sources; ``None`` for a constant, which codegen inlines."""
    if rule.source_kind == "value":
        return None
    getters = [_path_getter(p) for p in rule.sources]
    if rule.source_kind == "from":
        if len(getters) == 1:
            return getters[0]

        def first_present(asset: dict) -> Any:
            for get in getters:
                value = get(asset)
                if value is not None:
                    return value
            return None

        return first_present
    if rule.source_kind == "collect":

        def collect(asset: dict) -> Any:
            found: list = []
            for get in getters:
                value = get(asset)
                for item in value if isinstance(value, list) else (value,):
                    if item is not None and item not in found:
                        found.append(item)
            return found or None

        return collect

    def all_args(asset: dict) -> Any:  # "args": every source is required
        values = tuple(get(asset) for get in getters)
        return None if any(v is None for v in values) else values

    return all_args


def _target_problems(specs: tuple[MappingSpec, ...]) -> list[Problem]:
    problems = []
    targets: dict[Path, Rule] = {}
    for spec in specs:
        for rule in spec.rules:
            dotted = ".".join(rule.to)
            reserved = next((r for r in RESERVED_TARGETS if dotted == r or dotted.startswith(r + ".")), None)
            if reserved:
                loc = rule.location
                problems.append(Problem(loc.file, loc.line, loc.column, f"rule '{rule.id}'.to",
                                        f"'{dotted}' is written by j1filter itself",
                                        "choose another target"))
            targets.setdefault(rule.to, rule)
    for path, rule in targets.items():
        for depth in range(1, len(path)):
            other = targets.get(path[:depth])
            if other is not None:
                loc = rule.location
                problems.append(Problem(
                    loc.file, loc.line, loc.column, f"rule '{rule.id}'.to",
                    f"'{'.'.join(path)}' is inside '{'.'.join(other.to)}', which rule '{other.id}' "
                    f"({other.location}) sets as a whole", "a field is either a value or an object",
                ))
    return problems


def _file_condition_problems(specs: tuple[MappingSpec, ...]) -> list[Problem]:
    return [
        Problem(s.location.file, s.location.line, s.location.column, "when",
                "a file-level condition may only test class, not_class, type and integration_type",
                "put has/missing on the rules")
        for s in specs if not s.when.is_static
    ]
