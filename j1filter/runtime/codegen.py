"""Write the Python source of one program's rules function; :mod:`.program` compiles it.

The rules of a program run for every entity of its kind, and most find nothing to copy, so
their cost is dominated by call overhead. Emitting them as inline code makes a rule that
does not apply cost one dict lookup, and given the keys an entity has (its shape), rules
whose sources are absent are not emitted at all. Every rule runs inside its own ``try``: any
exception becomes an error entry ``file:line rule-id: what`` and the next rule runs: in
``errors`` for a rule of an Elastic-parity file (the document becomes a pipeline_error), in
``notes`` for any other (the document keeps its event.kind).

Names and values from mapping files only ever appear in the source as ``repr`` literals or
as constants bound in the function's namespace, never as code. ``j1filter explain --code``
prints the source; tracebacks show it (it is registered with :mod:`linecache`).

With ``trace``, the same code also reports each rule's outcome to ``trace(index, outcome,
detail)`` (what ``j1filter explain --all`` shows).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..convert.types import TEXT_TYPES, proven
from ..language.spec import Expression, Path, Source, source_text
from .compiler import CompiledRule
from .paths import expansions

Present = dict[Path, frozenset[str]]
#: Per shape container that by_key rules read whole: its keys matching their patterns, in order.
KeyOrder = dict[Path, tuple[str, ...]]
#: A raw field coercion to inline: (container, key, function, per item, failure info).
CoercionSpec = tuple[Path, str, Callable[[Any], Any], bool, Any]

#: ``c`` (not None) is an empty text, list or object: what a default-mode rule may fill.
#: One truth test for the usual non-empty value (0 and false are values, not empty).
IS_EMPTY = "(not c and c.__class__ in EMPTIABLE)"

#: Outcomes a traced rule reports.
FIRED, CONDITION, NO_SOURCE, NOTHING, KEPT, ERROR = (
    "fired",
    "condition false",
    "source missing",
    "transform returned nothing",
    "not written: field already set",
    "error",
)


class Code:
    """Python source made of nested blocks: indentation follows the ``with`` nesting."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    @contextlib.contextmanager
    def block(self, header: str) -> Iterator[None]:
        self.line(header)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    @contextlib.contextmanager
    def when(self, test: str, otherwise: str | None = None) -> Iterator[None]:
        """``if test:`` around the body; with ``otherwise``, an ``else:`` running that line."""
        with self.block(f"if {test}:"):
            yield
        if otherwise is not None:
            with self.block("else:"):
                self.line(otherwise)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class ProgramSource:
    """The source of one rules function and the constants it refers to."""

    def __init__(self, trace: bool) -> None:
        self.trace = trace
        self.code = Code()
        self.namespace: dict[str, Any] = {}
        self.parents: dict[Path, str] = {}  # output parent path -> the local holding it
        self.memos: dict[int, str] = {}  # rule index -> the local sharing its first step's value
        self.key_order: KeyOrder = {}

    def const(self, name: str, value: Any) -> str:
        self.namespace[name] = value
        return name

    def parent_local(self, path: Path) -> str:
        return self.parents.setdefault(path, f"p{len(self.parents)}")

    def report(self, index: int, outcome: str, detail: str = "") -> str | None:
        """The trace call for an outcome, or None when not tracing."""
        return f"trace({index}, {outcome!r}, {detail!r})" if self.trace else None


def _read_expr(source: Source, src: ProgramSource, name: str) -> str:
    """An expression reading one source from the prepared entity ``A``."""
    if isinstance(source, Expression):
        return f"{src.const(name, source.compiled)}.search(A)"
    if len(source) == 2 and source[0] == "properties":
        return f"P.get({source[1]!r})"
    if len(source) == 2 and source[0] == "entity":
        return f"E.get({source[1]!r})"
    if len(source) == 1:
        return f"A.get({source[0]!r})"
    return f"get_path(A, {src.const(name, source)})"


def absent(path: Path, present: Present | None) -> bool:
    """True when the entity's shape says ``path`` cannot hold a value."""
    if present is None:
        return False
    if len(path) >= 2 and (path[0],) in present:
        return path[1] not in present[(path[0],)]
    return path[0] not in present[()]


def certain(path: Path | Expression, fixed: Present | None) -> bool:
    """True when the shape proves ``path`` holds a value when the rules run: a key of a shape
    container that no coercion may remove (``fixed``: the present keys without those)."""
    if fixed is None or isinstance(path, Expression):
        return False
    if len(path) == 2 and (path[0],) in fixed:
        return path[1] in fixed[(path[0],)]
    return len(path) == 1 and path[0] in fixed[()]


def by_key_container(compiled: CompiledRule) -> Path | None:
    """The shape container a rule reads whole through the built-in by_key as its first step
    (e.g. ``from: properties`` with ``by_key``), if it does."""
    rule = compiled.rule
    if (
        rule.source_kind == "from"
        and len(rule.sources) == 1
        and rule.sources[0] in _CONTAINER_LOCALS
        and compiled.steps
        and compiled.steps[0].key_pattern is not None
    ):
        return rule.sources[0]
    return None


def by_key_matches(compiled: CompiledRule, key_order: KeyOrder) -> list[str] | None:
    """For a by_key rule of a shape-specialised program: the keys of its container that match
    its pattern, in the entity's order (the shape holds them, see Selection.shape; a generic
    program has no key order)."""
    container = by_key_container(compiled)
    if container is None or container not in key_order:
        return None
    pattern = compiled.steps[0].key_pattern
    return [k for k in key_order[container] if pattern.search(k)]  # type: ignore[union-attr]


def skipped(
    compiled: CompiledRule,
    present: Present | None,
    fixed: Present | None = None,
    key_order: KeyOrder | None = None,
) -> bool:
    """True when the shape proves the rule cannot fire, so no code is emitted for it."""
    if key_order and by_key_matches(compiled, key_order) == []:
        return True  # by_key finds nothing: the rule writes nothing
    rule = compiled.rule
    paths = [s for s in rule.sources if not isinstance(s, Expression)]
    if (
        rule.source_kind == "from"
        and len(paths) == len(rule.sources)
        and all(absent(s, present) for s in paths)
    ):
        return True
    if (
        rule.source_kind == "collect"
        and len(paths) == len(rule.sources)
        and all(absent(s, present) for s in paths)
    ):
        return True
    if rule.source_kind == "args" and any(absent(s, present) for s in paths):
        return True
    return any(absent(path, present) for path in rule.when.has) or any(
        certain(path, fixed) for path in rule.when.missing
    )


def _emit_read(src: ProgramSource, compiled: CompiledRule, present: Present | None) -> None:
    rule, i, line = compiled.rule, compiled.index, src.code.line
    if rule.source_kind == "value":
        line(f"v = {src.const(f'V{i}', compiled.value)}")
        return
    if rule.source_kind == "from":  # the first present: absent ones left out
        sources = _readable(rule.sources, present)
        line(f"v = {_read_expr(sources[0], src, f'S{i}_0')}")
        for n, source in enumerate(sources[1:], 1):
            line(f"if v is None: v = {_read_expr(source, src, f'S{i}_{n}')}")
        return
    if rule.source_kind == "collect":  # absent sources add nothing: left out
        sources = _readable(rule.sources, present)
        if len(sources) == 1 and rule.mode == "append" and not compiled.steps:
            # One text is appended as the list of it would be: no list built for it.
            line(f"v = {_read_expr(sources[0], src, f'S{i}_0')}")
            line("if v is not None and v.__class__ is not str: v = collect_values((v,))")
            return
        reads = ", ".join(_read_expr(source, src, f"S{i}_{n}") for n, source in enumerate(sources))
        line(f"v = collect_values(({reads},))")
        return
    reads = ", ".join(_read_expr(source, src, f"S{i}_{n}") for n, source in enumerate(rule.sources))
    line(f"v = all_args(({reads},))")


def _readable(sources: Sequence[Source], present: Present | None) -> list[Source]:
    """The sources a ``from`` rule reads, in order: those the shape proves absent are left out."""
    return [s for s in sources if isinstance(s, Expression) or not absent(s, present)]


def _emit_write(src: ProgramSource, compiled: CompiledRule, result: str, prechecked: bool) -> None:
    """The write; ``prechecked``: a default-mode rule whose target was found empty before the read."""
    rule, i, line = compiled.rule, compiled.index, src.code.line
    text = compiled.target in TEXT_TYPES
    if compiled.coerce is not None and not proven(result, compiled.target):
        coerce = src.const(f"C{i}", compiled.coerce)
        line(f"if v.__class__ is not str: v = {coerce}(v)" if text else f"v = {coerce}(v)")
    # Targets never conflict (checked at compile time), so every parent is a dict, and once
    # found it stays the same dict: keep it in a local for the following rules.
    target = "doc"
    for n in range(1, len(rule.to)):
        local = src.parent_local(rule.to[:n])
        line(f"if {local} is None: {local} = {target}.setdefault({rule.to[n - 1]!r}, {{}})")
        target = local
    leaf = repr(rule.to[-1])
    fired = src.report(i, FIRED)
    if rule.mode == "set" or prechecked:
        line(f"{target}[{leaf}] = v")
    elif rule.mode == "default":
        line(f"c = {target}.get({leaf})")
        with src.code.when(f"c is None or {IS_EMPTY}", src.report(i, KEPT)):
            line(f"{target}[{leaf}] = v")
            if fired:
                line(fired)
            fired = None
    else:  # append: as Elastic's append with allow_duplicates false, values as text
        line(f"append_values({target}, {leaf}, v)")
    if fired:
        line(fired)


def _emit_rule(
    src: ProgramSource, compiled: CompiledRule, present: Present | None, fixed: Present | None, result: str
) -> None:
    rule, i, code = compiled.rule, compiled.index, src.code
    code.line(f"# {rule.id!r} at {str(rule.location)!r}")
    with contextlib.ExitStack() as nested:
        nested.enter_context(code.block("try:"))
        # The entity was cleaned of empty values before the rules run: present means not None.
        for n, path in enumerate(p for p in rule.when.has if not certain(p, fixed)):
            nested.enter_context(
                code.when(
                    f"{_read_expr(path, src, f'H{i}_{n}')} is not None",
                    src.report(i, CONDITION, f"has: {'.'.join(path)} is missing"),
                )
            )
        for n, path in enumerate(p for p in rule.when.missing if not absent(p, present)):
            nested.enter_context(
                code.when(
                    f"{_read_expr(path, src, f'M{i}_{n}')} is None",
                    src.report(i, CONDITION, f"missing: {'.'.join(path)} is present"),
                )
            )
        prechecked = rule.mode == "default" and bool(compiled.steps or rule.source_kind != "from")
        if prechecked:
            # Reading and converting costs more than looking: skip both when an earlier
            # rule already filled the target.
            # Parents are always objects (checked at compile time): walk them inline.
            walk = " or ".join(
                f"(c := {'doc' if n == 0 else 'c'}.get({key!r})) is None" for n, key in enumerate(rule.to)
            )
            nested.enter_context(code.when(f"{walk} or {IS_EMPTY}", src.report(i, KEPT)))
        _emit_read(src, compiled, present)
        read_certain = rule.source_kind == "from" and certain(_readable(rule.sources, present)[0], fixed)
        if not read_certain and (
            rule.source_kind != "value" or compiled.value is None
        ):  # a constant is there or not
            nested.enter_context(
                code.when(
                    "v is not None",
                    src.report(i, NO_SOURCE, " | ".join(map(source_text, rule.sources)) or "value is null"),
                )
            )
        matches = by_key_matches(compiled, src.key_order)
        for n, step in enumerate(compiled.steps):
            fn = src.const(f"T{i}_{n}", step.fn)
            first = _applied(fn, step.per_item)
            if n == 0 and matches:  # by_key: the shape says which keys match, in which order
                first = f"keys_values(v, {tuple(matches)!r})"
            if n == 0 and (memo := src.memos.get(i)) is not None:
                # Another rule reads the same source through the same first step: computed once.
                code.line(f"if {memo} is UNSET: {memo} = {first}")
                code.line(f"v = {memo}.copy() if {memo}.__class__ is list else {memo}")
            elif n == 0:
                code.line(f"v = {first}")
            else:
                with code.block("if v is not None:"):
                    code.line(_call(fn, step.per_item))
        if compiled.steps:
            nested.enter_context(
                code.when("v is not None and (v or v.__class__ not in EMPTIABLE)", src.report(i, NOTHING))
            )
        _emit_write(src, compiled, result, prechecked)
    # A rule of an Elastic-parity file demotes the document (errors); any other only notes.
    problems = "errors" if compiled.demotes else "notes"
    with code.block("except Exception as exc:"):
        code.line(f"{problems}.append(failure({src.const(f'L{i}', compiled.label)}, exc))")
        if src.trace:
            code.line(f"trace({i}, {ERROR!r}, {problems}[-1])")


def _call(fn: str, per_item: bool) -> str:
    """``v = fn(v)``; a per-item function maps the items of a list (a scalar needs no helper)."""
    return f"v = {_applied(fn, per_item)}"


def _applied(fn: str, per_item: bool) -> str:
    return f"map_items({fn}, v) if v.__class__ is list else {fn}(v)" if per_item else f"{fn}(v)"


def shared_first_steps(rules: Sequence[CompiledRule]) -> dict[int, str]:
    """The rules (by index) whose first step another of ``rules`` also applies to the same
    source, each with the local that keeps that step's value for the rest of the entity's
    rules. Rules never change the entity, and a shared step is a pure built-in transform, so
    its value is the same whichever rule computes it first; each rule takes a copy of a list,
    so that no rule's write or append changes what the others get."""
    groups: dict[Any, list[int]] = {}
    for compiled in rules:
        rule = compiled.rule
        if (
            compiled.steps
            and compiled.steps[0].shared is not None
            and rule.source_kind != "value"
            and not any(isinstance(s, Expression) for s in rule.sources)
        ):
            key = (rule.source_kind, rule.sources, compiled.steps[0].shared)
            groups.setdefault(key, []).append(compiled.index)
    memos: dict[int, str] = {}
    for indices in groups.values():
        if len(indices) > 1:
            memos.update(dict.fromkeys(indices, f"m{len(set(memos.values()))}"))
    return memos


#: The local holding each shape container in the generated function.
_CONTAINER_LOCALS = {(): "A", ("entity",): "E", ("properties",): "P"}


def _emit_coercion(src: ProgramSource, n: int, coercion: CoercionSpec, local: str | None = None) -> None:
    """Convert one raw field in place; a failure is handed to ``coercion_failed`` (which
    records it, or keeps the value for ``on_error: keep``); nothing left removes the key.
    ``local``: the local holding its container (default: the shape container's)."""
    container, key, fn, per_item, info = coercion
    local, code = local or _CONTAINER_LOCALS[container], src.code
    code.line(f"# coerce {'.'.join((*container, key))!r}")
    code.line(f"v = {local}.get({key!r})")
    test = "v is not None"
    if info[0].refused is not None:  # an object or a text refused before is kept as it is
        refused = src.const(f"KR{n}", info[0].refused)
        test += f" and v.__class__ is not dict and (v.__class__ is not str or v not in {refused})"
    with code.block(f"if {test}:"):
        with code.block("try:"):
            name = src.const(f"K{n}", fn)
            code.line(_call(name, per_item))
        with code.block("except Exception as exc:"):
            problems = "errors" if info[0].compiled.demotes else "notes"
            code.line(f"v = coercion_failed({problems}, {src.const(f'KI{n}', info)}, exc, v)")
        code.line(f"if v is None: delete_path(A, {src.const(f'KP{n}', (*container, key))})")
        code.line(f"else: {local}[{key!r}] = v")


def _emit_nested(
    src: ProgramSource, first: int, table: int, path: Path, coercions: Sequence[CoercionSpec]
) -> int:
    """The coercions (numbered from ``first``) of the exact keys of one container below a
    shape container (e.g. ``properties.port``, table number ``table``), in place when it is
    an object; returns the next coercion number."""
    code = src.code
    code.line(f"X = {_read_expr(path, src, f'N{table}')}")
    with code.when("X.__class__ is dict"):
        for coercion in coercions:
            _emit_coercion(src, first, coercion, "X")
            first += 1
    return first


#: Coercions below the shape containers, per container in order: those of its exact keys,
#: written inline (None: it has patterns, and ``coerce_table_N`` runs its table).
Nested = Sequence[tuple[Path, Sequence[CoercionSpec] | None]]


def render(
    rules: Sequence[tuple[CompiledRule, str]],
    present: Present | None,
    trace: bool,
    coercions: Sequence[CoercionSpec] = (),
    nested: Nested = (),
    volatile: frozenset[Path] = frozenset(),
    key_order: KeyOrder | None = None,
) -> ProgramSource:
    """The source of ``apply_rules(A, doc, errors, notes)``: first the ``coercions`` of the raw
    fields of the shape containers, then the ``nested`` ones of the containers below (inline,
    or ``coerce_table_N(A, errors, notes)`` for a container's table), then ``rules`` (each with
    the type its value has before it is written). With
    ``present`` (the keys of the root, ``entity`` and ``properties`` containers), rules whose
    sources cannot be there are left out, and so are the tests of keys that are certainly there
    (``volatile``: the key paths that coercions may still remove)."""
    src = ProgramSource(trace)
    body = ProgramSource(trace)
    body.namespace, body.parents = src.namespace, src.parents
    body.key_order = src.key_order = key_order or {}
    body.code.depth = 1
    for n, coercion in enumerate(coercions):
        _emit_coercion(body, n, coercion)
    next_coercion = len(coercions)
    for table, (path, inline) in enumerate(nested):
        if inline is None:
            body.code.line(f"coerce_table_{table}(A, errors, notes)")
        else:
            next_coercion = _emit_nested(body, next_coercion, table, path, inline)
    volatile = volatile | {(*container, key) for container, key, *_ in coercions}
    fixed = (
        None
        if present is None
        else {
            container: frozenset(k for k in keys if (*container, k) not in volatile)
            for container, keys in present.items()
        }
    )
    emitted = [compiled for compiled, _ in rules if not skipped(compiled, present, fixed, body.key_order)]
    body.memos = src.memos = shared_first_steps(emitted)
    for compiled, result in rules:
        if not skipped(compiled, present, fixed, body.key_order):
            _emit_rule(body, compiled, present, fixed, result)
        elif trace:
            body.code.line(f"trace({compiled.index}, {NO_SOURCE!r}, 'not in this entity')")
    body.code.line("return None")
    with src.code.block("def apply_rules(A, doc, errors, notes=None):"):
        src.code.line("if notes is None: notes = errors")
        src.code.line("P = A.get('properties')")
        src.code.line("if P.__class__ is not dict: P = EMPTY")
        src.code.line("E = A.get('entity')")
        src.code.line("if E.__class__ is not dict: E = EMPTY")
        if src.parents:
            src.code.line(" = ".join(src.parents.values()) + " = None")
        if src.memos:
            src.code.line(" = ".join(sorted(set(src.memos.values()))) + " = UNSET")
    src.code.lines.extend(body.code.lines)
    return src


# --- the preparation of one raw key shape ---------------------------------------------------------


def render_preparer(
    root: Sequence[tuple[str, str]],
    entity: Sequence[tuple[str, str]],
    properties: Sequence[tuple[str, str]],
    dotted: tuple[str, ...],
) -> ProgramSource:
    """The source of ``prepare(R, errors) -> (A, dropped)`` for raw entities whose root,
    ``entity`` and ``properties`` objects have exactly these keys (``(raw key, snake_case
    name)`` in order): what :func:`.paths.snake_clean`
    and the expansion of the ``dotted`` property keys do, written out key by key. Bit ``n``
    of ``dropped`` says that the ``n``-th name (in the order of the root's keys, each
    followed by those of ``entity`` or ``properties`` when it is one of them) was dropped
    as empty, so the rules program can rely on the others."""
    src = ProgramSource(trace=False)
    code = src.code
    bits = iter(range(10_000))
    with code.block("def prepare(R, errors):"):
        code.line("d = 0")
        code.line("A = {}")
        for key, name in root:
            bit = 1 << next(bits)
            if key == "entity":
                code.line("E = {}")
                _emit_clean_keys(code, "R['entity']", "E", entity, bits, depth=2)
                with code.when("E", "d |= " + str(bit)):
                    code.line("A['entity'] = E")
            elif key == "properties":
                code.line("P = {}")
                _emit_clean_keys(code, "R['properties']", "P", properties, bits, depth=2)
                with code.when("P", "d |= " + str(bit)):
                    code.line("A['properties'] = P")
            elif key != "_collection":  # about the collection, not the entity (see the mapper)
                _emit_clean_key(code, "R", "A", key, name, bit, depth=1)
        with code.when("not E"):
            code.line(f"errors.append({src.const('NO_ENTITY', NO_ENTITY)})")
        if dotted:
            with code.when("P"):
                code.line(f"errors.extend(expand_keys(P, {src.const('DOTTED', expansions(dotted))}))")
        code.line("return A, d")
    return src


#: The problem of an entity without an ``entity`` object (or with an empty one).
NO_ENTITY = 'entity: expected the "entity" object of a J1 entity, found nothing'


def _emit_clean_keys(
    code: Code, source: str, target: str, keys: Sequence[tuple[str, str]], bits: Iterator[int], depth: int
) -> None:
    if keys:
        code.line(f"X = {source}")
    for key, name in keys:
        _emit_clean_key(code, "X", target, key, name, 1 << next(bits), depth)


def _emit_clean_key(code: Code, source: str, target: str, key: str, name: str, bit: int, depth: int) -> None:
    """``target[name]`` = the cleaned value of ``source[key]``, unless it is empty."""
    code.line(f"v = {source}[{key!r}]")
    with code.block("if v.__class__ is str:"):
        code.line(f"if v: {target}[{name!r}] = v")
        code.line(f"else: d |= {bit}")
    with code.block("elif v.__class__ is dict or v.__class__ is list:"):
        code.line(f"v = snake_clean(v, {depth})")
        code.line(f"if v: {target}[{name!r}] = v")
        code.line(f"else: d |= {bit}")
    code.line(f"elif v is not None: {target}[{name!r}] = v")
    code.line(f"else: d |= {bit}")
