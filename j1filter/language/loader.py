"""Read mapping YAML into :class:`MappingSpec`, reporting every problem with file:line:col.

Validation happens in two passes: the shape of the file here (unknown keys, wrong types),
and the meaning of names (transforms, parameters, target conflicts) in :mod:`compiler`.
Both raise :class:`MappingError` listing all problems found, each with a hint.
"""

from __future__ import annotations

import difflib
import importlib.resources
from collections.abc import Iterable
from pathlib import Path as FsPath
from typing import Any

import jmespath
import yaml
from jmespath.exceptions import JMESPathError

from .._meta import MAPPING_FORMAT_VERSION
from ..convert.casing import snake_case
from ..errors import MappingError, Problem
from .spec import Condition, Expression, FieldType, Location, MappingSpec, Rule, Source, TransformCall

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
SOURCE_KEYS = ("from", "collect", "args", "value")
WHEN_KEYS = ("class", "not_class", "type", "not_type", "integration_type", "has", "missing")
FIELD_KEYS = ("transform", "on_error")
MODES = ("set", "append", "default")
ON_ERROR = ("remove", "keep")


# --- YAML with positions ---------------------------------------------------------------------


class MarkedDict(dict[Any, Any]):
    """A YAML mapping that remembers where it and each of its keys and values start."""

    mark: Any = None
    key_marks: dict[Any, Any]
    value_marks: dict[Any, Any]


class MarkedList(list[Any]):
    mark: Any = None
    item_marks: list[Any]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser when PyYAML has it (ten times faster: start-up reads every mapping
    file), with the same marks; our constructors keep them."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> MarkedDict:
    own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)  # merge keys (<<): merged entries first, then the node's own
    merged = len(node.value) - own
    result = MarkedDict()
    result.mark, result.key_marks, result.value_marks = node.start_mark, {}, {}
    own_keys: set[Any] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float)):  # numbers appear in lookup tables
            raise yaml.MarkedYAMLError(
                None, None, f"keys must be text or numbers, found {key!r}", key_node.start_mark
            )
        if index >= merged:  # the node's own keys override merged ones, but not each other
            if key in own_keys:
                raise yaml.MarkedYAMLError(None, None, f"duplicate key '{key}'", key_node.start_mark)
            own_keys.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_marks[key] = key_node.start_mark
        result.value_marks[key] = value_node.start_mark
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> MarkedList:
    result = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
    result.mark, result.item_marks = node.start_mark, [child.start_mark for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


# --- validation helpers ------------------------------------------------------------------------


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


#: Most nodes plus text characters a mapping file may expand to through its aliases (or
#: twice its own length, if more): 300 times the largest shipped mapping, far less than
#: an alias bomb.
MAX_EXPANDED_SIZE = 1_000_000


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes plus scalar characters of ``node`` with every alias expanded (each node is
    measured once, so this costs time linear in the file, however large the expansion)."""
    found = sizes.get(id(node))
    if found is not None:
        return found
    sizes[id(node)] = 0  # a recursive alias: the constructor refuses it
    if isinstance(node, yaml.ScalarNode):
        size = 1 + len(node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    else:
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = size
    return size


def _alias_bomb(node: yaml.Node, sizes: dict[int, int], limit: int) -> yaml.Node | None:
    """The innermost node whose expansion is over ``limit``, if any: where aliases blow up."""
    if sizes[id(node)] <= limit:
        return None
    children = (
        node.value
        if isinstance(node, yaml.SequenceNode)
        else [v for pair in node.value for v in pair]
        if isinstance(node, yaml.MappingNode)
        else []
    )
    for child in children:
        if sizes[id(child)] > limit:
            return _alias_bomb(child, sizes, limit)
    return node


class _AliasBomb(yaml.MarkedYAMLError):
    pass


def _load_yaml(text: str) -> Any:
    """The YAML document, refused (MarkedYAMLError) when its aliases expand it beyond
    MAX_EXPANDED_SIZE: an alias bomb would otherwise pass and blow up every document."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}
        total = _expanded_size(node, sizes)
        limit = max(MAX_EXPANDED_SIZE, 2 * len(text))
        bomb = _alias_bomb(node, sizes, limit)
        if bomb is not None:
            raise _AliasBomb(
                None,
                None,
                f"aliases expand this value to {sizes[id(bomb)]:,} nodes and characters "
                f"(the whole file to {total:,}); the limit is {limit:,}",
                bomb.start_mark,
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def parse_mapping(text: str, file: str) -> MappingSpec:
    """Parse and check one mapping file's text; raise MappingError with every problem."""
    try:
        document = _load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        hint = (
            "use fewer or less nested aliases"
            if isinstance(exc, _AliasBomb)
            else "check indentation and quoting"
        )
        raise MappingError([Problem(file, line, col, "yaml", what, hint)]) from None
    except yaml.YAMLError as exc:
        raise MappingError([Problem(file, 1, 1, "yaml", str(exc))]) from None
    except RecursionError:
        raise MappingError([Problem(file, 1, 1, "yaml", "nested too deeply")]) from None
    check = _Checker(file)
    if not isinstance(document, MarkedDict):
        check.add(
            getattr(document, "mark", None),
            "file",
            "a mapping file must be a YAML mapping",
            "start with 'version: 1' and 'name: ...'",
        )
        raise MappingError(check.problems)
    spec = _parse_file(document, check)
    if check.problems:
        raise MappingError(check.problems)
    return spec


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
        on_error = "remove"
        if isinstance(spec, MarkedDict) and "transform" in spec:
            check.unknown_keys(spec, FIELD_KEYS, where)
            on_error = spec.get("on_error", "remove")
            if on_error not in ON_ERROR:
                check.add(
                    spec.value_marks.get("on_error"),
                    f"{where}.on_error",
                    f"unknown on_error '{on_error}'",
                    "one of: " + ", ".join(ON_ERROR),
                )
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
    problems_before = len(check.problems)
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
    kind = given[0] if given else "value"
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
    mode = node.get("mode", "set")
    if mode not in MODES:
        check.add(
            node.value_marks.get("mode"),
            f"{where}.mode",
            f"unknown mode '{mode}'",
            "one of: " + ", ".join(MODES),
        )
    transforms = _parse_transforms(node, "transform", check, where)
    when = _parse_when(node, "when", check, where)
    if len(check.problems) != problems_before or to is None:
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


def source_text(source: Source) -> str:
    return source.text if isinstance(source, Expression) else ".".join(source)


# --- finding files ---------------------------------------------------------------------------


def load_mapping(path: str | FsPath, name: str | None = None) -> MappingSpec:
    """Load one mapping file; raise MappingError (with file:line:col) if it is invalid.
    ``name`` is how messages call the file (default: its path)."""
    path = FsPath(path)
    name = str(path) if name is None else name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError([Problem(name, 1, 1, "file", f"cannot read: {exc}")]) from None
    return parse_mapping(text, name)


def shipped_mapping_paths() -> list[FsPath]:
    """The mapping files installed with the package (or, from a source tree, ``mappings/``)."""
    try:
        root = importlib.resources.files("j1filter.mappings")
        files = sorted(
            (FsPath(str(entry)) for entry in root.iterdir() if entry.name.endswith(".yml")),
            key=lambda p: p.name,
        )
        if files:
            return files
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    source_tree = FsPath(__file__).resolve().parents[2] / "mappings"
    return sorted(source_tree.glob("*.yml"))


def expand_paths(paths: Iterable[str | FsPath]) -> list[FsPath]:
    """Files as given; directories contribute their ``*.yml`` files in name order."""
    result: list[FsPath] = []
    for path in map(FsPath, paths):
        result.extend(sorted(path.glob("*.yml")) if path.is_dir() else [path])
    return result


def load_mappings(extra: Iterable[str | FsPath] = (), *, shipped: bool = True) -> list[MappingSpec]:
    """Shipped mappings, then ``extra`` files; an extra file with the name of an earlier
    mapping replaces it. Ordered by ``order`` then load order. Reports all invalid files."""
    # Shipped files are named as in the source tree (mappings/NAME.yml) wherever installed.
    paths = [(p, f"mappings/{p.name}") for p in shipped_mapping_paths()] if shipped else []
    paths += [(p, str(p)) for p in expand_paths(extra)]
    specs: dict[str, MappingSpec] = {}
    problems: list[Problem] = []
    for path, name in paths:
        try:
            spec = load_mapping(path, name)
        except MappingError as exc:
            problems.extend(exc.problems)
            continue
        specs.pop(spec.name, None)  # a later file of the same name replaces (and re-orders)
        specs[spec.name] = spec
    if problems:
        raise MappingError(problems)
    ordered = list(specs.values())
    ordered.sort(key=lambda s: s.order)  # stable: load order breaks ties
    return ordered
