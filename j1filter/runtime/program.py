"""The per-entity runtime: the compiled program of each kind of entity, and running it.

One document's path (:meth:`Runtime.run`): the :class:`Preparer` of the entity's raw key shape
(the keys of its root, ``entity`` and ``properties`` objects, hashed once) writes the
prepared entity; the :class:`Program` for its kind (its ``_class``, ``_type``,
``_integration_type``) and prepared key shape comes from one bounded LRU cache, built on a
miss; the program coerces the typed raw fields in place, then its generated rules function
writes the ECS fields.

Building a program: :meth:`CompiledMappings.select` picks the files and rules whose static
conditions hold for the kind (a :class:`Selection`); the shape (the keys of the root,
``entity`` and ``properties`` containers that any selected rule or coercion reads) lets
:mod:`.codegen` leave out the rules that cannot fire. Selections and programs are shared
by every cache entry that needs the same one (weakly: the cache alone keeps them alive), so
8,000 kinds of one class cost 8,000 small cache keys and one program.
"""

from __future__ import annotations

import functools
import itertools
import linecache
import re
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Any, NamedTuple

from jmespath.exceptions import JMESPathError

from ..convert.transforms import java_string, keys_values
from ..convert.types import ANY, SAME
from ..errors import ConfigurationError, J1FilterError, TransformError
from ..language.spec import Expression, Path
from .codegen import CoercionSpec, Present, absent, by_key_container, render, render_preparer
from .compiler import CompiledField, CompiledMappings, CompiledRule, EntityKind, Step
from .paths import (
    PerKeySet,
    delete_path,
    distinct_snake_names,
    dotted_keys,
    expand_dots,
    expand_keys,
    expanded_name,
    get_path,
    snake_clean,
)

RulesFn = Callable[[dict[str, Any], dict[str, Any], list[str]], None]
Tracer = Callable[[int, str, str], None]
EMPTY: dict[str, Any] = {}

#: The containers whose keys make up an entity's shape (root, entity, properties).
SHAPE_CONTAINERS: tuple[Path, ...] = ((), ("entity",), ("properties",))
DEFAULT_CACHE_SIZE = 1024
#: Most raw key shapes whose preparation is kept (then all are forgotten, as in paths.PerKeySet).
PREPARED_SHAPES = 1024


# --- helpers the generated code calls ----------------------------------------------------------


def map_items(fn: Callable[[Any], Any], value: Any) -> Any:
    """``fn`` of each item of a list (items it turns into nothing are dropped; an empty
    result is nothing), or of a single value. One bad item fails the whole value."""
    if value.__class__ is list:
        return [item for item in map(fn, value) if item is not None] or None
    return fn(value)


def collect_values(values: tuple[Any, ...]) -> Any:
    """Every value read (lists flattened, duplicates dropped) as one list; nothing if none."""
    found: list[Any] = []
    for value in values:
        if value is not None:
            extend_new(found, value if value.__class__ is list else (value,))
    return found or None


#: Lists shorter than this are searched item by item; longer ones get a set (see extend_new).
_SCAN_LIMIT = 16


def extend_new(target: list[Any], items: Iterable[Any]) -> None:
    """Append each item (not None) that no equal item in ``target`` precedes. Short lists (the
    usual case) are scanned; from _SCAN_LIMIT items on, a set of the hashable items answers,
    so that deduplicating a list of n items is O(n), not O(n^2)."""
    index: set[Any] | None = None
    for item in items:
        if item is None:
            continue
        if index is None:
            if len(target) < _SCAN_LIMIT:
                if item not in target:
                    target.append(item)
                continue
            index = set()
            for known in target:
                try:
                    index.add(known)
                except TypeError:  # unhashable (a dict or a list): found by the scan below
                    pass
        try:
            if item in index:
                continue
            index.add(item)
        except TypeError:
            if item in target:
                continue
        target.append(item)


def all_args(values: tuple[Any, ...]) -> Any:
    """The values read, when every one is present (``args``); nothing otherwise."""
    return None if any(v is None for v in values) else values


def append_values(parent: dict[str, Any], leaf: str, value: Any) -> None:
    """Add ``value`` (or each of its items) as text to the list at ``parent[leaf]``,
    skipping values already there. Checks every item before changing anything."""
    if value.__class__ is str:  # the usual case: one text
        current = parent.get(leaf)
        if current is None:
            parent[leaf] = [value]
        elif current.__class__ is not list:
            parent[leaf] = [current] if current == value else [current, value]
        elif value not in current:
            current.append(value)
        return
    items = value if value.__class__ is list else (value,)
    for item in items:
        if item.__class__ is not str and isinstance(item, (dict, list)):
            raise TransformError(f"cannot append an object or nested list to [{leaf}]")
    current = parent.get(leaf)
    if current is None:
        current = parent[leaf] = []
    elif current.__class__ is not list:
        current = parent[leaf] = [current]
    extend_new(current, [item if item.__class__ is str else java_string(item) for item in items])


def failure(label: str, exc: BaseException) -> str:
    """The error entry for a rule that raised: ``file:line rule-id: what``."""
    if isinstance(exc, J1FilterError):
        return f"{label}: {exc}"
    if isinstance(exc, JMESPathError):
        return f"{label}: expression failed: {exc}"
    return f"{label}: {type(exc).__name__}: {exc}"


_NAMESPACE = {
    "EMPTY": EMPTY,
    "UNSET": object(),  # a shared step's value not computed yet (see codegen.shared_first_steps)
    "EMPTIABLE": frozenset((str, list, dict)),
    "get_path": get_path,
    "delete_path": delete_path,
    "map_items": map_items,
    "collect_values": collect_values,
    "all_args": all_args,
    "append_values": append_values,
    "keys_values": keys_values,
    "failure": failure,
}


# --- coercions of the raw entity ------------------------------------------------------------------


@dataclass(frozen=True)
class Coercion:
    fn: Callable[[Any], Any]  # applied to the value, or to each item of a list when per_item
    per_item: bool
    compiled: CompiledField
    #: For an ``on_error: keep`` coercion whose first step is a built-in conversion to a
    #: scalar (pure, and refusing every object): the texts it has refused. An object, or a
    #: text refused before, is then kept as it is without a call, which gives the same
    #: result without an exception raised and caught per entity (Tenable's port object
    #: under a coercion of port numbers, its prose impact under a numeric one). None: the
    #: coercion is always called.
    refused: set[str] | None = None

    def remember_refused(self, value: Any) -> None:
        refused = self.refused
        if refused is not None and value.__class__ is str and len(value) <= _REFUSED_TEXT:
            if len(refused) >= _REFUSED_TEXTS:
                refused.clear()
            refused.add(value)


#: Bounds of what a coercion remembers as refused: texts up to this length, this many.
_REFUSED_TEXT = 512
_REFUSED_TEXTS = 1024


def _coercion(compiled: CompiledField) -> Coercion:
    steps = compiled.steps
    keeps = compiled.field.on_error == "keep" and len(steps) == 1 and steps[0].refuses_objects
    refused: set[str] | None = set() if keeps else None
    if len(steps) == 1:
        return Coercion(steps[0].fn, steps[0].per_item, compiled, refused)
    return Coercion(_chain(steps), False, compiled, refused)


def _chain(steps: tuple[Step, ...]) -> Callable[[Any], Any]:
    def chain(value: Any) -> Any:
        for step in steps:
            value = map_items(step.fn, value) if step.per_item else step.fn(value)
            if value is None:
                return None
        return value

    return chain


@dataclass
class FieldTable:
    """The coercions of one container (e.g. ``properties``): exact keys, then patterns."""

    exact: dict[str, Coercion] = field(default_factory=dict)
    patterns: list[tuple[re.Pattern[str], Coercion]] = field(default_factory=list)
    memo: dict[str, Coercion | None] = field(default_factory=dict)
    #: Per key set of a container: its keys that have a coercion, in order, with it.
    plans: PerKeySet = field(init=False)

    def __post_init__(self) -> None:
        self.plans = PerKeySet(self.plan)

    def plan(self, keys: tuple[str, ...]) -> tuple[tuple[str, Coercion], ...]:
        return tuple((key, found) for key in keys if (found := self.lookup(key)) is not None)

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


def coercion_failed(errors: list[str], failed: tuple[Coercion, Path], exc: Exception, value: Any) -> Any:
    """What a coercion that raised leaves: the value as it was (``on_error: keep``), or
    nothing, with an error entry (``remove``)."""
    coercion, path = failed
    if coercion.compiled.field.on_error == "keep":
        coercion.remember_refused(value)
        return value
    where = f"jupiter_one.asset.{'.'.join(path)}"
    loc = coercion.compiled.field.location
    errors.append(
        f"{where}: {exc}"
        if isinstance(exc, TransformError)
        else failure(f"{loc.file}:{loc.line} fields.{'.'.join(path)}", exc)
    )
    return None


def _apply_coercion(
    asset: dict[str, Any],
    container: dict[str, Any],
    container_path: Path,
    key: str,
    coercion: Coercion,
    errors: list[str],
) -> None:
    value = container.get(key)
    if value is None:  # removed meanwhile (e.g. by an earlier failure that emptied its parent)
        return
    if coercion.refused is not None and (
        value.__class__ is dict or (value.__class__ is str and value in coercion.refused)
    ):
        return  # kept as it is: see Coercion.refused
    try:
        value = map_items(coercion.fn, value) if coercion.per_item else coercion.fn(value)
    except Exception as exc:  # noqa: BLE001 - one guard for every coercion, as for rules
        value = coercion_failed(errors, (coercion, container_path + (key,)), exc, value)
    if value is None:
        delete_path(asset, container_path + (key,))
    else:
        container[key] = value


def coerce_tables(
    tables: tuple[tuple[Path, FieldTable], ...], asset: dict[str, Any], errors: list[str], notes: list[str]
) -> None:
    """Convert every key of the given containers that has a coercion (containers whose keys
    the program was not specialised for). A failure goes to ``errors`` for a coercion of an
    Elastic-parity file, to ``notes`` for any other."""
    for container_path, table in tables:
        container = get_path(asset, container_path) if container_path else asset
        if container.__class__ is not dict:
            continue
        keys = tuple(container)  # a copy: a failed coercion removes its key
        plan = table.plans.get(keys)
        for key, found in table.plans.learn(keys) if plan is None else plan:
            problems = errors if found.compiled.demotes else notes
            _apply_coercion(asset, container, container_path, key, found, problems)


# --- selections and programs ------------------------------------------------------------------


class Selection:
    """What the mappings do for the kinds whose static conditions select the same files and
    rules: coercion tables, rules (each with the type its value has before it is written),
    the raw paths dropped as duplicates, and the keys any of them reads."""

    def __init__(self, compiled: CompiledMappings, key: tuple[tuple[int, ...], tuple[int, ...]]):
        spec_ids, rule_ids = key
        self.key = key
        self.tables: dict[Path, FieldTable] = {}
        declared: dict[Path, set[str]] = {}
        for n in spec_ids:
            for compiled_field in compiled.fields[n]:
                *container, name = compiled_field.field.path.split(".")
                table = self.tables.setdefault(tuple(container), FieldTable())
                coercion = _coercion(compiled_field)
                if "*" in name or "?" in name:
                    table.patterns.append((re.compile(translate(name)), coercion))
                else:
                    table.exact[name] = coercion
                    declared.setdefault((*container, name), set()).add(compiled_field.result)
        self.rules = [compiled.rules[i] for i in rule_ids]
        types = {path: kinds.pop() for path, kinds in declared.items() if len(kinds) == 1}
        self.typed_rules = [(rule, _result_type(rule, types)) for rule in self.rules]
        self.names = [compiled.specs[n].name for n in spec_ids]
        self.duplicates = _group(p for n in spec_ids for p in compiled.specs[n].duplicates)
        self.reads: dict[Path, set[str]] = {c: set() for c in SHAPE_CONTAINERS}
        #: Per shape container, the patterns of the by_key rules that read it whole: the keys
        #: matching one belong to the shape too.
        self.key_patterns: dict[Path, list[re.Pattern[str]]] = {}
        for rule in self.rules:
            for path in (*rule.rule.sources, *rule.rule.when.has, *rule.rule.when.missing):
                if not isinstance(path, Expression):
                    self.reads[()].add(path[0])
                    if len(path) >= 2 and (path[0],) in self.reads:
                        self.reads[(path[0],)].add(path[1])
            read_whole = by_key_container(rule)
            if read_whole is not None:
                self.key_patterns.setdefault(read_whole, []).append(rule.steps[0].key_pattern)  # type: ignore[arg-type]
        # The keys above deeper tables and duplicates too: a program skips those not there.
        for path in (
            *(p for p in self.tables if p not in self.reads),
            *((*parent, leaf) for parent, leaves in self.duplicates for leaf in leaves),
        ):
            holder, shape_name = shape_key(path)
            self.reads[holder].add(shape_name)

    def shape(self, keys: tuple[tuple[str, ...], ...]) -> Shape:
        """The keys of each shape container that a rule or a coercion looks at, and, for the
        containers that by_key rules read whole, the keys matching one of their patterns in
        the entity's order (by_key gives values in key order)."""
        present = []
        ordered = []
        for container, names in zip(SHAPE_CONTAINERS, keys):
            reads, table = self.reads[container], self.tables.get(container)
            patterns = self.key_patterns.get(container)
            matching = (
                () if patterns is None else tuple(k for k in names if any(p.search(k) for p in patterns))
            )
            if patterns is not None:
                ordered.append((container, matching))
            present.append(
                frozenset(
                    k for k in names if k in reads or (table is not None and table.lookup(k)) or k in matching
                )
            )
        return Shape(tuple(present), tuple(ordered))


class Shape(NamedTuple):
    """What a program is specialised to (see Selection.shape)."""

    present: tuple[frozenset[str], ...]  # per shape container
    key_order: tuple[tuple[Path, tuple[str, ...]], ...]  # per container read by by_key


def shape_key(path: Path) -> tuple[Path, str]:
    """The shape container holding ``path`` (or the container above it) and its key there."""
    if len(path) >= 2 and (path[0],) in SHAPE_CONTAINERS:
        return (path[0],), path[1]
    return (), path[0]


def _result_type(compiled: CompiledRule, declared: dict[Path, str]) -> str:
    """The type of a rule's value before it is written, as far as this selection knows."""
    if compiled.result != SAME:
        return compiled.result
    rule = compiled.rule
    if rule.source_kind == "from" and len(rule.sources) == 1 and not isinstance(rule.sources[0], Expression):
        return declared.get(rule.sources[0], ANY)
    return ANY


def _group(paths: Any) -> tuple[tuple[Path, tuple[str, ...]], ...]:
    by_container: dict[Path, list[str]] = {}
    for path in dict.fromkeys(paths):
        by_container.setdefault(path[:-1], []).append(path[-1])
    return tuple((container, tuple(keys)) for container, keys in by_container.items())


_program_numbers = itertools.count(1)


class Program:
    """The compiled program of one selection and shape (``None``: any shape): one generated
    function converting the raw fields (inline for the keys of the shape, through the tables
    for deeper containers) and writing the rules' fields. Its source is registered with
    :mod:`linecache` for as long as the program lives."""

    def __init__(self, selection: Selection, shape: Shape | None, trace: bool = False):
        self.selection = selection
        present: Present | None = None if shape is None else dict(zip(SHAPE_CONTAINERS, shape.present))
        coercions: list[CoercionSpec] = []
        if present is not None:  # the coercions of the keys present, inline
            coercions = [
                (container, name, c.fn, c.per_item, (c, (*container, name)))
                for container in SHAPE_CONTAINERS
                if (table := selection.tables.get(container)) is not None
                for name in sorted(present[container])
                if (c := table.lookup(name))
            ]
        tables = tuple(
            (path, table)
            for path, table in selection.tables.items()
            if present is None or (path not in present and not absent(path, present))
        )
        self.duplicates = (
            selection.duplicates
            if present is None
            else tuple(
                (container, kept)
                for container, keys in selection.duplicates
                if (kept := tuple(k for k in keys if not absent((*container, k), present)))
            )
        )
        # A nested table's coercion may empty, and so remove, the shape key above it.
        volatile = frozenset((*container, key) for container, key in map(shape_key, (p for p, _ in tables)))
        # The tables below them: inline for a specialised program when a table has exact keys
        # only (Tenable's properties.port.port), else run by coerce_tables.
        nested: list[tuple[Path, list[CoercionSpec] | None]] = [
            (
                path,
                None
                if present is None or table.patterns
                else [
                    (path, name, c.fn, c.per_item, (c, (*path, name)))
                    for name, c in sorted(table.exact.items())
                ],
            )
            for path, table in tables
        ]
        key_order = {} if shape is None else dict(shape.key_order)
        source = render(selection.typed_rules, present, trace, coercions, nested, volatile, key_order)
        for number, (path, table) in enumerate(tables):
            if nested[number][1] is None:
                source.namespace[f"coerce_table_{number}"] = functools.partial(
                    coerce_tables, ((path, table),)
                )
        self.source = source.code.text()
        self.filename = (
            f"<j1filter program {next(_program_numbers)}: {', '.join(selection.names)}"
            f"{'' if shape is None else ' (shape-specialised)'}>"
        )
        namespace = dict(_NAMESPACE, coercion_failed=coercion_failed, **source.namespace)
        exec(compile(self.source, self.filename, "exec"), namespace)  # noqa: S102 - validated specs
        self.apply_rules: Callable[..., None] = namespace["apply_rules"]
        lines = self.source.splitlines(keepends=True)
        linecache.cache[self.filename] = (len(self.source), None, lines, self.filename)
        weakref.finalize(self, linecache.cache.pop, self.filename, None)


# --- preparation, per raw key shape ------------------------------------------------------------

#: The keys of an entity's root, ``entity`` and ``properties`` objects, as they arrive.
RawShape = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
KeySets = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


class Preparer:
    """The preparation of raw entities of one key shape: snake_case names, empty values
    dropped, dotted property keys expanded, written out key by key (see
    :func:`.codegen.render_preparer`). ``prepare(raw, errors)`` returns the prepared entity
    and the bits of the names dropped as empty; :meth:`keys` turns those into the key sets
    that :meth:`Runtime.program` specialises a rules program to."""

    def __init__(self, shape: RawShape, names: KeySets):
        self.shape, self.names = shape, names
        self.dotted = dotted_keys(names[2])
        (root, entity, properties), (root_names, entity_names, property_names) = shape, names
        source = render_preparer(
            list(zip(root, root_names)),
            list(zip(entity, entity_names)),
            list(zip(properties, property_names)),
            self.dotted,
        )
        self.source = source.code.text()
        namespace = dict(source.namespace, snake_clean=snake_clean, expand_keys=expand_keys)
        filename = f"<j1filter preparer {next(_program_numbers)}>"
        exec(compile(self.source, filename, "exec"), namespace)  # noqa: S102 - names only as repr literals
        self.prepare: Callable[[dict[str, Any], list[str]], tuple[dict[str, Any], int]] = namespace["prepare"]
        self._keys: dict[int, KeySets] = {}

    def keys(self, dropped: int) -> KeySets:
        """The key sets of the root, ``entity`` and ``properties`` objects of an entity
        prepared with the names of the bits of ``dropped`` left out."""
        found = self._keys.get(dropped)
        if found is None:
            if len(self._keys) >= 64:  # a shape whose values are empty in ever other ways
                self._keys.clear()
            found = self._keys[dropped] = self._compute_keys(dropped)
        return found

    def _compute_keys(self, dropped: int) -> KeySets:
        bits = iter(range(10_000))  # numbered as render_preparer numbers them
        kept: tuple[list[str], list[str], list[str]] = ([], [], [])
        for key, name in zip(self.shape[0], self.names[0]):
            if not dropped >> next(bits) & 1 and key != "_collection":
                kept[0].append(name)
            nested = {"entity": 1, "properties": 2}.get(key)
            if nested is not None:
                kept[nested].extend(n for n in self.names[nested] if not dropped >> next(bits) & 1)
        properties = [name for name in kept[2] if name not in self.dotted]
        for name in kept[2]:
            if name in self.dotted and (top := expanded_name(name)) is not None and top not in properties:
                properties.append(top)
        return tuple(kept[0]), tuple(kept[1]), tuple(properties)


#: A raw key shape that is prepared by the generic path (keys that share a snake_case name).
_GENERIC = object()


# --- the runtime ---------------------------------------------------------------------------------


def _text_set(value: Any, where: str, errors: list[str]) -> frozenset[str]:
    """A J1 field that may be a string or a list of strings, as a set."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset((value,))
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    errors.append(f"{where}: expected text or a list of text, found {json_kind(value)}")
    return frozenset()


def _kind(entity: Any) -> tuple[Any, Any, Any]:
    if entity.__class__ is not dict:
        entity = EMPTY
    return entity.get("_class"), entity.get("_type"), entity.get("_integration_type")


def prepare_generic(raw: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """The prepared entity, for any raw entity (what a :class:`Preparer` writes out for one
    key shape): snake_case names, no empty values, its shape checked, dotted property keys
    expanded. Raises TooDeepError for nesting deeper than MAX_DEPTH."""
    if "_collection" in raw:  # written by `collect`: about the collection, not the entity
        raw = {key: value for key, value in raw.items() if key != "_collection"}
    asset: dict[str, Any] = snake_clean(raw)
    entity = asset.get("entity")
    if not isinstance(entity, dict):
        found = "nothing" if entity is None else json_kind(entity)
        errors.append(f'entity: expected the "entity" object of a J1 entity, found {found}')
        asset.pop("entity", None)
    properties = asset.get("properties")
    if isinstance(properties, dict):
        errors.extend(expand_dots(properties))
    elif properties is not None:
        errors.append(f"properties: expected an object, found {json_kind(properties)}")
        del asset["properties"]
    return asset


def json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    names = {dict: "an object", list: "an array", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


class Runtime:
    """Runs compiled mappings on prepared entities, keeping at most ``cache_size`` programs
    (least recently used first out), keyed by kind and key shape."""

    def __init__(
        self, compiled: CompiledMappings, cache_size: int = DEFAULT_CACHE_SIZE, specialise: bool = True
    ):
        if cache_size < 1:
            raise ConfigurationError("the program cache needs room for at least one program")
        self.compiled = compiled
        self.cache_size = cache_size
        #: False: every entity is prepared generically and runs the generic program of its
        #: kind (nothing left out because of its key shape), for comparison in tests.
        self.specialise = specialise
        self._preparers: dict[RawShape, Preparer | object | None] = {}  # None: seen once
        self._cache: OrderedDict[Any, Program] = OrderedDict()
        # Sharing, not caching: these hold only what cache entries keep alive.
        self._selections: weakref.WeakValueDictionary[Any, Selection] = weakref.WeakValueDictionary()
        self._programs: weakref.WeakValueDictionary[Any, Program] = weakref.WeakValueDictionary()

    def run(
        self, raw: dict[str, Any], doc: dict[str, Any], errors: list[str], notes: list[str]
    ) -> tuple[dict[str, Any], Program]:
        """One trip for a raw entity (its ``_collection`` left out): prepared (snake_case names,
        no empty values, dotted property keys expanded), its typed fields converted and its
        rules' fields written into ``doc``. Returns the prepared entity and its program.

        The usual entity takes the generated preparation of its raw key shape (compiled the
        second time the shape comes, so that one-off shapes cost no compilation), then the
        program of its kind and prepared key shape; anything else the generic preparation."""
        entity, properties = raw.get("entity"), raw.get("properties")
        if entity.__class__ is dict and properties.__class__ is dict and self.specialise:
            preparer = self._preparer((tuple(raw), tuple(entity), tuple(properties)))
            if preparer is not None:
                asset, dropped = preparer.prepare(raw, errors)
                program = self._lookup(
                    asset.get("entity", EMPTY), (preparer, dropped), lambda: preparer.keys(dropped), errors
                )
                program.apply_rules(asset, doc, errors, notes)
                return asset, program
        asset = prepare_generic(raw, errors)
        if self.specialise:
            program = self.program(asset, errors)
        else:
            program = Program(self.selection(_kind(asset.get("entity")), errors), None)
        program.apply_rules(asset, doc, errors, notes)
        return asset, program

    def _preparer(self, shape: RawShape) -> Preparer | None:
        found = self._preparers.get(shape)
        if found is None:  # the first entity of this shape: prepared generically, shape noted
            if shape not in self._preparers:
                if len(self._preparers) >= PREPARED_SHAPES:
                    self._preparers.clear()
                self._preparers[shape] = None
                return None
            root, entity, properties = (distinct_snake_names(keys) for keys in shape)
            if root is None or entity is None or properties is None:
                found = _GENERIC  # keys that share a snake_case name
            elif sum(map(len, itertools.chain(*shape))) > 16_384:
                found = _GENERIC  # a huge shape: not worth its code
            else:
                found = Preparer(shape, (root, entity, properties))
            self._preparers[shape] = found
        return None if found is _GENERIC else found  # type: ignore[return-value]

    def program(self, asset: dict[str, Any], errors: list[str]) -> Program:
        """The program for an entity prepared generically (see :func:`prepare_generic`)."""
        entity = asset.get("entity")
        if entity.__class__ is not dict:
            entity = EMPTY
        properties = asset.get("properties")
        keys = (tuple(asset), tuple(entity), tuple(properties) if properties.__class__ is dict else ())
        return self._lookup(entity, keys, lambda: keys, errors)

    def _lookup(
        self, entity: dict[str, Any], shape: Any, keys: Callable[[], KeySets], errors: list[str]
    ) -> Program:
        """The program for the kind of ``entity`` and the prepared key sets that ``shape``
        stands for (``keys()`` gives them), from the cache or built."""
        classes, types, integration = kind = _kind(entity)
        key = (
            tuple(classes) if classes.__class__ is list else classes,
            tuple(types) if types.__class__ is list else types,
            tuple(integration) if integration.__class__ is list else integration,
            shape,
        )
        try:
            program = self._cache[key]
        except KeyError:
            pass
        except TypeError:  # unhashable, e.g. an object as _class: reported below, not cached
            return self._build(kind, keys(), errors)
        else:
            self._cache.move_to_end(key)
            return program
        problems: list[str] = []
        program = self._build(kind, keys(), problems)
        if problems:
            errors.extend(problems)  # not cached: each such entity reports its problem
            return program
        self._cache[key] = program
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return program

    def selection(self, raw_kind: tuple[Any, Any, Any], errors: list[str]) -> Selection:
        kind = EntityKind(
            *(
                _text_set(value, f"entity.{name}", errors)
                for value, name in zip(raw_kind, ("_class", "_type", "_integration_type"))
            )
        )
        key = self.compiled.select(kind)
        selection = self._selections.get(key)
        if selection is None:
            selection = self._selections[key] = Selection(self.compiled, key)
        return selection

    def _build(
        self, raw_kind: tuple[Any, Any, Any], keys: tuple[tuple[str, ...], ...], errors: list[str]
    ) -> Program:
        selection = self.selection(raw_kind, errors)
        shape = selection.shape(keys)
        program = self._programs.get((selection.key, shape))
        if program is None:
            program = self._programs[(selection.key, shape)] = Program(selection, shape)
        return program

    def explain(
        self,
        raw: dict[str, Any],
        doc: dict[str, Any],
        errors: list[str],
        trace: Tracer,
        notes: list[str] | None = None,
    ) -> tuple[dict[str, Any], Program]:
        """:meth:`run` with the generic preparation and a generic program (every rule of the
        kind emitted) that reports each rule's outcome to ``trace``. Not cached."""
        asset = prepare_generic(raw, errors)
        program = Program(self.selection(_kind(asset.get("entity")), errors), None, trace=True)
        program.apply_rules.__globals__["trace"] = trace
        program.apply_rules(asset, doc, errors, notes)
        return asset, program

    def cached_programs(self) -> list[Program]:
        """The distinct programs in the cache, most recently used last."""
        return list({id(p): p for p in self._cache.values()}.values())
