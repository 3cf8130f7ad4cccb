"""The first compile-time stage: parse one mapping file's YAML into a :class:`MappingSpec`,
checking its shape (unknown keys, wrong types, paths that can never match), with every
problem located at file:line:col. The meaning of names and types is checked next, in
:mod:`.check`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import jmespath
import yaml
from jmespath.exceptions import JMESPathError

from .._meta import MAPPING_FORMAT_VERSION
from ..convert.casing import snake_case
from ..errors import MappingError, Problem
from .marked_yaml import AliasBombError, MarkedDict, MarkedList, load_yaml
from .spec import (
    MODES,
    ON_ERROR,
    Condition,
    Expression,
    FieldType,
    Location,
    MappingSpec,
    Mode,
    OnError,
    Rule,
    Source,
    SourceKind,
    TransformCall,
    source_text,
)

FILE_KEYS = (
    "version",
    "name",
    "description",
    "order",
    "when",
    "fields",
    "duplicates",
    "rules",
    "custom_namespaces",
    "parity",
)
RULE_KEYS = ("id", "to", "from", "collect", "args", "value", "transform", "mode", "when")
SOURCE_KEYS: tuple[SourceKind, ...] = ("from", "collect", "args", "value")
WHEN_KEYS = ("class", "not_class", "type", "not_type", "integration_type", "has", "missing")
FIELD_KEYS = ("transform", "on_error")

Choice = TypeVar("Choice", bound=str)


@dataclass(frozen=True)
class Parsed:
    """What parsing one file found: its spec, as far as it could be read (None when the text
    is not a YAML mapping at all), and every problem. A spec with problems is for reporting
    only (``j1filter check`` checks it further); it is never compiled."""

    file: str
    spec: MappingSpec | None
    problems: tuple[Problem, ...]


class _Checker:
    """Collects problems for one file; every check names where it looked."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []

    def loc(self, mark: Any) -> Location:
        if mark is None:
            return Location(self.file, 1, 1)
        return Location(self.file, mark.line + 1, mark.column + 1)

    def add(self, mark: Any, where: str, what: str, hint: str = "") -> None:
        loc = self.loc(mark)
        self.problems.append(Problem(self.file, loc.line, loc.column, where, what, hint))

    def unknown_keys(self, node: MarkedDict, allowed: Iterable[str], where: str) -> None:
        allowed = tuple(allowed)
        for key in node:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean '{close[0]}'?" if close else "allowed: " + ", ".join(allowed)
                self.add(node.key_marks[key], where, f"unknown key '{key}'", hint)

    def text(self, node: MarkedDict, key: str, where: str, required: bool = False) -> str | None:
        if key not in node:
            if required:
                self.add(node.mark, where, f"missing required key '{key}'")
            return None
        value = node[key]
        if not isinstance(value, str) or not value:
            self.add(node.value_marks[key], f"{where}.{key}", f"expected text, found {_kind(value)}")
            return None
        return value

    def choice(self, node: MarkedDict, key: str, allowed: tuple[Choice, ...], where: str) -> Choice:
        """One of ``allowed`` (the first when the key is absent or its value is not allowed)."""
        value = node.get(key, allowed[0])
        if value in allowed:
            return value  # type: ignore[no-any-return]
        self.add(
            node.value_marks[key],
            f"{where}.{key}",
            f"unknown {key} '{value}'",
            "one of: " + ", ".join(allowed),
        )
        return allowed[0]

    def text_list(self, node: MarkedDict, key: str, where: str) -> tuple[str, ...]:
        """A string or a list of strings, as a tuple."""
        if key not in node:
            return ()
        value = node[key]
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(i, str) and i for i in items):
            self.add(
                node.value_marks[key],
                f"{where}.{key}",
                f"expected text or a list of text, found {_kind(value)}",
            )
            return ()
        return tuple(items)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    for kind, name in (
        (bool, "a boolean"),
        ((int, float), "a number"),
        (str, "text"),
        (dict, "a mapping"),
        (list, "a list"),
    ):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _dotted(text: str) -> tuple[str, ...] | None:
    parts = tuple(text.split("."))
    return parts if all(parts) else None


def _raw_path(text: str, check: _Checker, mark: Any, where: str) -> tuple[str, ...] | None:
    """A dotted path into the raw entity. Its keys are snake_cased before any rule runs, so a
    camelCase key could never match: say which name to write instead."""
    dotted = _dotted(text)
    if dotted is None:
        check.add(mark, where, f"invalid path '{text}'", "a dotted path such as properties.cve_id")
        return None
    fixed = ".".join(snake_case(part) for part in dotted)
    if fixed != text:
        check.add(
            mark, where, f"'{text}' can never match: entity keys are snake_cased first", f"write '{fixed}'"
        )
        return None
    return dotted


# A source with any of these characters is a JMESPath expression, not a dotted path.
_EXPRESSION_CHARS = frozenset("[]|()*@&!=<>'\"`{},? \t")


def _source(text: str, check: _Checker, mark: Any, where: str) -> Source | None:
    if not _EXPRESSION_CHARS.intersection(text):
        return _raw_path(text, check, mark, where)
    try:
        return Expression(text, jmespath.compile(text))
    except JMESPathError as exc:
        detail = str(exc).splitlines()[0].rstrip(": ")
        check.add(
            mark,
            where,
            f"invalid JMESPath expression '{text}': {detail}",
            'see https://jmespath.org; quote keys with dashes: properties."my-key"',
        )
        return None


# --- the file format -------------------------------------------------------------------------


def parse_mapping(text: str, file: str) -> MappingSpec:
    """Parse and check one mapping file's text; raise MappingError with every problem."""
    parsed = parse_mapping_text(text, file)
    if parsed.problems or parsed.spec is None:
        raise MappingError(list(parsed.problems))
    return parsed.spec


def parse_mapping_text(text: str, file: str) -> Parsed:
    """Parse one mapping file's text, reporting every problem of its shape."""
    try:
        document = load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        hint = (
            "use fewer or less nested aliases"
            if isinstance(exc, AliasBombError)
            else "check indentation and quoting"
        )
        return Parsed(file, None, (Problem(file, line, col, "yaml", what, hint),))
    except yaml.YAMLError as exc:
        return Parsed(file, None, (Problem(file, 1, 1, "yaml", str(exc)),))
    except RecursionError:
        return Parsed(file, None, (Problem(file, 1, 1, "yaml", "nested too deeply"),))
    check = _Checker(file)
    if not isinstance(document, MarkedDict):
        check.add(
            getattr(document, "mark", None),
            "file",
            "a mapping file must be a YAML mapping",
            "start with 'version: 1' and 'name: ...'",
        )
        return Parsed(file, None, tuple(check.problems))
    spec = _parse_file(document, check)
    return Parsed(file, spec, tuple(check.problems))


def _parse_file(doc: MarkedDict, check: _Checker) -> MappingSpec:
    check.unknown_keys(doc, FILE_KEYS, "file")
    version = doc.get("version")
    if version != MAPPING_FORMAT_VERSION:
        mark = doc.value_marks.get("version", doc.mark)
        check.add(
            mark,
            "version",
            f"unsupported format version {version!r}",
            f"this release reads version: {MAPPING_FORMAT_VERSION}",
        )
    name = check.text(doc, "name", "file", required=True)
    description = check.text(doc, "description", "file") or ""
    order = doc.get("order", 100)
    if isinstance(order, bool) or not isinstance(order, int):
        check.add(doc.value_marks.get("order"), "order", f"expected a whole number, found {_kind(order)}")
        order = 100
    parity = doc.get("parity", False)
    if not isinstance(parity, bool):
        check.add(doc.value_marks.get("parity"), "parity", f"expected true or false, found {_kind(parity)}")
        parity = False
    when = _parse_when(doc, "when", check)
    fields = _parse_fields(doc, check)
    duplicates = _parse_paths(doc, "duplicates", check)
    rules = _parse_rules(doc, check)
    namespaces = check.text_list(doc, "custom_namespaces", "file")
    for namespace in namespaces:
        if not namespace.isidentifier() or namespace in ("jupiter_one", "labels"):
            check.add(
                doc.value_marks["custom_namespaces"],
                "custom_namespaces",
                f"invalid namespace '{namespace}'",
                "a single name such as myorg",
            )
    return MappingSpec(
        name=name or "",
        file=check.file,
        order=order,
        description=description,
        when=when,
        fields=fields,
        duplicates=duplicates,
        rules=rules,
        custom_namespaces=frozenset(namespaces),
        parity=parity,
        location=check.loc(doc.mark),
    )


def _parse_when(node: MarkedDict, key: str, check: _Checker, where: str = "") -> Condition:
    where = f"{where}.{key}" if where else key
    if key not in node:
        return Condition()
    when = node[key]
    if not isinstance(when, MarkedDict):
        check.add(
            node.value_marks[key],
            where,
            f"expected a mapping, found {_kind(when)}",
            "e.g. when: {class: Vulnerability}",
        )
        return Condition()
    check.unknown_keys(when, WHEN_KEYS, where)
    paths = {}
    for path_key in ("has", "missing"):
        items = check.text_list(when, path_key, where)
        parsed = []
        for item in items:
            dotted = _raw_path(item, check, when.value_marks[path_key], f"{where}.{path_key}")
            if dotted is not None:
                parsed.append(dotted)
        paths[path_key] = tuple(parsed)
    return Condition(
        classes=frozenset(check.text_list(when, "class", where)),
        not_classes=frozenset(check.text_list(when, "not_class", where)),
        types=frozenset(check.text_list(when, "type", where)),
        not_types=frozenset(check.text_list(when, "not_type", where)),
        integration_types=frozenset(check.text_list(when, "integration_type", where)),
        has=paths["has"],
        missing=paths["missing"],
    )


def _parse_transforms(node: MarkedDict, key: str, check: _Checker, where: str) -> tuple[TransformCall, ...]:
    if key not in node:
        return ()
    raw = node[key]
    if isinstance(raw, MarkedList):
        items = list(zip(raw, raw.item_marks))
    else:
        items = [(raw, node.value_marks[key])]
    calls = []
    for index, (item, mark) in enumerate(items):
        spot = f"{where}.{key}[{index}]" if isinstance(raw, MarkedList) else f"{where}.{key}"
        if isinstance(item, str) and item:
            calls.append(TransformCall(item, {}, check.loc(mark)))
        elif isinstance(item, MarkedDict) and isinstance(item.get("name"), str):
            params = {k: v for k, v in item.items() if k != "name"}
            calls.append(TransformCall(item["name"], params, check.loc(mark)))
        else:
            check.add(
                mark, spot, f"expected a transform name or {{name: ..., param: ...}}, found {_kind(item)}"
            )
    return tuple(calls)


def _parse_fields(doc: MarkedDict, check: _Checker) -> tuple[FieldType, ...]:
    if "fields" not in doc:
        return ()
    fields = doc["fields"]
    if not isinstance(fields, MarkedDict):
        check.add(
            doc.value_marks["fields"],
            "fields",
            f"expected a mapping of path: transform, found {_kind(fields)}",
        )
        return ()
    result = []
    for path, spec in fields.items():
        where = f"fields.{path}"
        parts = _dotted(path)
        if parts is None or any("*" in p for p in parts[:-1]):
            check.add(
                fields.key_marks[path],
                where,
                f"invalid field path '{path}'",
                "dotted path; '*' only in its last segment",
            )
            continue
        if _raw_path(path, check, fields.key_marks[path], where) is None:
            continue
        on_error: OnError = "remove"
        if isinstance(spec, MarkedDict) and "transform" in spec:
            check.unknown_keys(spec, FIELD_KEYS, where)
            on_error = check.choice(spec, "on_error", ON_ERROR, where)
            calls = _parse_transforms(spec, "transform", check, where)
        else:
            calls = _parse_transforms(fields, path, check, "fields")
        if calls:
            result.append(FieldType(path, calls, on_error, check.loc(fields.key_marks[path])))
    return tuple(result)


def _parse_paths(doc: MarkedDict, key: str, check: _Checker) -> tuple[tuple[str, ...], ...]:
    result = []
    for item in check.text_list(doc, key, "file"):
        dotted = _raw_path(item, check, doc.value_marks[key], key)
        if dotted is not None:
            result.append(dotted)
    return tuple(result)


def _parse_rules(doc: MarkedDict, check: _Checker) -> tuple[Rule, ...]:
    if "rules" not in doc:
        return ()
    rules = doc["rules"]
    if not isinstance(rules, MarkedList):
        check.add(doc.value_marks["rules"], "rules", f"expected a list of rules, found {_kind(rules)}")
        return ()
    parsed = []
    for index, (node, mark) in enumerate(zip(rules, rules.item_marks)):
        where = f"rules[{index}]"
        if not isinstance(node, MarkedDict):
            check.add(mark, where, f"expected a rule mapping, found {_kind(node)}")
            continue
        rule = _parse_rule(node, check, where)
        if rule is not None:
            parsed.append(rule)
    return tuple(parsed)


def _parse_rule(node: MarkedDict, check: _Checker, where: str) -> Rule | None:
    check.unknown_keys(node, RULE_KEYS, where)
    target = check.text(node, "to", where, required=True)
    to = _dotted(target) if target else None
    if target and to is None:
        check.add(node.value_marks["to"], f"{where}.to", f"invalid target path '{target}'")
    given = [k for k in SOURCE_KEYS if k in node]
    if len(given) != 1:
        check.add(
            node.mark,
            where,
            "a rule needs exactly one of: from, collect, args, value"
            + (f" (found {', '.join(given)})" if given else ""),
            "from: a path (or a list: first present wins)",
        )
    kind: SourceKind = given[0] if given else "value"
    sources: list[Source] = []
    if kind != "value":
        for item in check.text_list(node, kind, where):
            source = _source(item, check, node.value_marks[kind], f"{where}.{kind}")
            if source is not None:
                sources.append(source)
        if kind == "args" and len(sources) < 2:
            check.add(
                node.value_marks[kind],
                f"{where}.args",
                "args needs at least two paths",
                "use from: for a single source",
            )
    mode: Mode = check.choice(node, "mode", MODES, where)
    transforms = _parse_transforms(node, "transform", check, where)
    when = _parse_when(node, "when", check, where)
    if to is None:  # a rule with other problems is checked on; without a target it cannot be
        if transforms:
            check.add(node.mark, where, "its transforms are not checked: the rule has no valid 'to'")
        return None
    rule_id = node.get("id") or f"{' | '.join(map(source_text, sources)) or 'value'} -> {target}"
    return Rule(
        id=str(rule_id),
        to=to,
        source_kind=kind,
        sources=tuple(sources),
        value=node.get("value"),
        transforms=transforms,
        mode=mode,
        when=when,
        location=check.loc(node.mark),
    )
