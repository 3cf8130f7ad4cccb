"""The second compile-time stage: check parsed mapping specs for what their shape cannot
tell. Transform names and parameters, target fields (ECS, ``labels.*`` or a declared custom
namespace), the type each rule writes against the type of its field, reserved and
conflicting targets. Every problem of every file is collected; nothing is bound here.

The outcome, :class:`CheckedMappings`, carries the types found, so that binding
(:mod:`j1filter.runtime.compiler`) never decides a type again.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._meta import ECS_VERSION
from ..convert.coerce import coercer
from ..convert.registry import TransformRegistry, builtin_transforms
from ..convert.transforms import Transform
from ..convert.types import ANY, SAME, ValueType, constant_type, fits, hint_for
from ..ecs import ecs_fields, field_type
from ..errors import MappingError, ParameterError, Problem, TransformError
from .loader import run_order
from .parser import Parsed
from .spec import FieldType, Location, MappingSpec, Path, Rule, TransformCall

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


@dataclass(frozen=True)
class CheckedField:
    """A ``fields:`` coercion with the types it leaves and converts to."""

    field: FieldType
    result: str  # the declared type of what it leaves in the field (any, with on_error: keep)
    converts_to: str  # the declared type of its transforms' result, whatever on_error says


@dataclass(frozen=True)
class CheckedRule:
    """A rule with its target's type and the type of the value it writes."""

    rule: Rule
    target: str  # the target field's Elasticsearch type ("any" for a custom namespace)
    result: str  # the type of the value before it is written; "same": the source's type


@dataclass(frozen=True)
class CheckedMappings:
    """Specs with no problem found, in the order their rules run, with their types."""

    specs: tuple[MappingSpec, ...]
    transforms: TransformRegistry
    fields: tuple[tuple[CheckedField, ...], ...]  # per spec
    rules: tuple[tuple[CheckedRule, ...], ...]  # per spec


def check_mappings(
    specs: Iterable[MappingSpec], transforms: TransformRegistry | None = None
) -> CheckedMappings:
    """Check specs together; raise MappingError listing every problem found."""
    checked, problems = mapping_problems(specs, transforms)
    if problems:
        raise MappingError(problems)
    return checked


def mapping_problems(
    specs: Iterable[MappingSpec], transforms: TransformRegistry | None = None
) -> tuple[CheckedMappings, list[Problem]]:
    """Every problem of the specs, and what was found of their types (for ``j1filter
    check``, which reports the problems of every stage at once)."""
    checker = _Checker(builtin_transforms() if transforms is None else transforms)
    specs = tuple(specs)
    fields = tuple(tuple(checker.field(ft) for ft in spec.fields) for spec in specs)
    declared = _declared_types(fields)
    rules = tuple(tuple(checker.rule(rule, spec, declared) for rule in spec.rules) for spec in specs)
    problems = checker.problems + _target_problems(specs) + _file_condition_problems(specs)
    return CheckedMappings(specs, checker.transforms, fields, rules), problems


def every_problem(
    parsed: Iterable[Parsed], transforms: TransformRegistry | None = None
) -> tuple[CheckedMappings, list[Problem]]:
    """The problems of parsing and of checking, in one list: each file's own, then what
    checking all of them together finds, on as much of each file as could be read. A file
    that could not be read as a mapping at all gets a line saying so. With no problem, the
    checked mappings are ready to bind."""
    parsed = list(parsed)
    problems = [problem for p in parsed for problem in p.problems]
    problems += [
        Problem(
            p.file,
            1,
            1,
            "file",
            "transforms, targets and types not checked: the file could not be read as a mapping",
            "fix the problem above first",
        )
        for p in parsed
        if p.spec is None
    ]
    checked, found = mapping_problems(run_order(parsed), transforms)
    problems += found
    files = list(dict.fromkeys(p.file for p in problems))
    return checked, sorted(problems, key=lambda p: files.index(p.file))  # file by file, stages in order


def target_type(path: str, custom_namespaces: frozenset[str]) -> str | None:
    """The type of the field a rule writes, or None when it is not a field one may write."""
    found = field_type(path)
    if found is not None:
        return found
    if path.startswith("labels."):
        return ValueType.KEYWORD
    if path.split(".", 1)[0] in custom_namespaces:
        return ANY
    if path in _ecs_prefixes():
        return ValueType.OBJECT
    return None


def plain(value: Any) -> Any:
    """A YAML constant as plain lists and dicts (the parser's carry positions)."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def bind_step(entry: Transform, params: dict[str, Any]) -> Any:
    """The value function of one transform call; raises ParameterError (or the TypeError or
    ValueError a custom factory may raise) for parameters it refuses."""
    return entry.factory(**params)


class _Checker:
    def __init__(self, transforms: TransformRegistry):
        self.transforms = transforms
        self.problems: list[Problem] = []

    def add(self, loc: Location, where: str, what: str, hint: str = "") -> None:
        self.problems.append(Problem(loc.file, loc.line, loc.column, where, what, hint))

    def chain(self, calls: tuple[TransformCall, ...], where: str, start: str) -> str:
        """Check a transform chain; the type of its result."""
        result = start
        for index, call in enumerate(calls):
            spot = f"{where}.transform[{index}]" if len(calls) > 1 else f"{where}.transform"
            entry = self.transforms.get(call.name)
            if entry is None:
                close = difflib.get_close_matches(call.name, self.transforms.names(), n=1)
                hint = f"did you mean '{close[0]}'?" if close else "see `j1filter fields --transforms`"
                self.add(call.location, spot, f"unknown transform '{call.name}'", hint)
                continue
            problem = _parameter_problem(entry, call.params)
            if problem is None:
                try:
                    bind_step(entry, call.params)  # the factory validates its parameters' values
                except (TypeError, ValueError, ParameterError) as exc:  # a custom factory may raise either
                    problem = str(exc), ""
            if problem is not None:
                what, hint = problem
                self.add(call.location, spot, f"transform '{call.name}': {what}", hint)
                continue
            declared = entry.result_type(call.params)
            result = result if declared == SAME else declared
        return result

    def field(self, ft: FieldType) -> CheckedField:
        result = self.chain(ft.transforms, f"fields.{ft.path}", ANY)
        return CheckedField(ft, ANY if ft.on_error == "keep" else result, result)

    def rule(self, rule: Rule, spec: MappingSpec, declared: dict[Path, str]) -> CheckedRule:
        where = f"rule '{rule.id}'"
        start: str = SAME
        if rule.source_kind == "value":
            start = constant_type([rule.value])
        elif rule.source_kind == "from" and len(rule.sources) == 1 and isinstance(rule.sources[0], tuple):
            start = declared.get(rule.sources[0], SAME)
        result = self.chain(rule.transforms, where, SAME)
        checked = start if result == SAME else result  # the type as far as the files tell
        dotted = ".".join(rule.to)
        target = target_type(dotted, spec.custom_namespaces)
        if target is None and _reserved(dotted):
            target = ANY  # refused by _target_problems
        if target is None:
            close = _close_ecs_field(dotted)
            hint = (
                f"did you mean '{close}'?"
                if close
                else "use labels.* or declare its namespace in custom_namespaces"
            )
            self.add(rule.location, f"{where}.to", f"'{dotted}' is not an ECS {ECS_VERSION} field", hint)
            target = ANY
        if rule.source_kind == "value" and not rule.transforms:
            coerce = coercer(target)
            value = plain(rule.value)
            try:
                if coerce is not None:
                    coerce(value)
                result = target  # written as it is
            except TransformError as exc:
                self.add(
                    rule.location,
                    f"{where}.value",
                    f"{value!r} cannot go into '{dotted}' ({target}): {exc}",
                    hint_for(target),
                )
        elif not fits(checked, target):
            last = rule.transforms[-1] if rule.transforms else None
            self.add(
                last.location if last else rule.location,
                f"{where}.transform" if last else where,
                f"{f'transform {last.name!r} returns' if last else 'source is'} {checked}, "
                f"which cannot go into '{dotted}' ({target})",
                hint_for(target),
            )
        return CheckedRule(rule, target, result)


@functools.lru_cache(maxsize=1)
def _ecs_prefixes() -> frozenset[str]:
    """Every proper prefix of an ECS field name (``url``, ``host.os``, ...): the field sets."""
    return frozenset(
        ".".join(name.split(".")[:n]) for name in ecs_fields() for n in range(1, name.count(".") + 1)
    )


def _close_ecs_field(path: str) -> str | None:
    found = difflib.get_close_matches(path, list(ecs_fields()), n=1, cutoff=0.8)
    return found[0] if found else None


def _declared_types(fields: tuple[tuple[CheckedField, ...], ...]) -> dict[Path, str]:
    """Raw paths every ``fields:`` coercion of which agrees on one type (exact paths only)."""
    seen: dict[Path, set[str]] = {}
    for group in fields:
        for checked in group:
            if "*" not in checked.field.path and "?" not in checked.field.path:
                seen.setdefault(tuple(checked.field.path.split(".")), set()).add(checked.result)
    return {path: kinds.pop() for path, kinds in seen.items() if len(kinds) == 1}


def _parameter_problem(entry: Transform, params: dict[str, Any]) -> tuple[str, str] | None:
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


def _problem(loc: Location, where: str, what: str, hint: str = "") -> Problem:
    return Problem(loc.file, loc.line, loc.column, where, what, hint)


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
