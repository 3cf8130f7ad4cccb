"""The line protocol: the bytes of one input line in, the bytes of its documents out. No I/O.

The filter (:mod:`j1filter.stream`), ``collect --map``, ``explain`` and the library all go
through here, so one entity gives the same output bytes by every route.

An input line may be (a) a raw entity as ``queryV1`` lists it, (b) a whole ``queryV1``
response page, expanded to one document per entity, or (c) a Logstash/Beats event whose
``message`` (or ``event.original``) holds the raw entity text. A line that cannot be used
becomes an error document carrying the original text (built by
:meth:`Mapper.error_document <j1filter.runtime.mapper.Mapper.error_document>`, the one
builder): nothing is lost. :func:`encode` is the one encoder: a document whose texts UTF-8
cannot carry (unpaired surrogates) is written with those escaped and flagged, keeping what
was mapped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from ._meta import ECS_VERSION, ERROR_TAG, EVENT_MODULE
from .io.jsontext import escape_surrogates, json_bytes, json_text
from .runtime.mapper import Mapper
from .runtime.program import Tracer

#: Longest exception text or GraphQL error quoted in an error message.
_MAX_QUOTE = 1000
#: Envelope fields Logstash adds when it hands over an entity as the event itself.
_ENVELOPE_KEYS = frozenset(("@timestamp", "@version", "tags"))
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
#: Digits beyond which an integer cannot even be a double (1.8e308 has 309).
_MAX_INT_DIGITS = 400

Tags = Sequence[str]
#: One output line (without its newline) and its error kind (None: a clean document).
Encoded = tuple[bytes, str | None]

#: Said once in the first error document and in the summary when the input looks like
#: pretty-printed JSON: every line of it is invalid on its own.
PRETTY_PRINTED_HINT = (
    "j1filter: hint: the input looks like pretty-printed JSON; j1filter reads "
    "one JSON document per line (compact it with `jq -c .`)"
)
ALREADY_MAPPED = (
    "input is already an ECS document from j1filter (it has ecs.version and event.module "
    f"{EVENT_MODULE}); map raw J1 entities only"
)


class Mapped(NamedTuple):
    doc: dict[str, Any]
    error_kind: str | None  # None for a clean document


# --- parsing ---------------------------------------------------------------------------------


class BadLine(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _big_int(text: str) -> int | float:
    if len(text) > _MAX_INT_DIGITS:
        raise ValueError(f"integer of {len(text):,} digits")
    value = int(text)
    return value if _LONG_MIN <= value <= _LONG_MAX else float(value)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(data: bytes | str) -> Any:
    """Strict JSON. Integers beyond 64 bits (which orjson refuses) become floats."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        first_error = exc
    try:  # the standard library reads big integers; NaN/Infinity stay refused
        return json.loads(data, parse_int=_big_int, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise BadLine("invalid_json", f"invalid JSON: {first_error}") from None


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadLine("invalid_utf8", f"invalid UTF-8 at byte {exc.start}") from None


def _quote(value: Any) -> str:
    """A value quoted in an error message: text as it is, anything else as JSON, cut short."""
    text = value if isinstance(value, str) else json_text(value)
    return text if len(text) <= _MAX_QUOTE else text[:_MAX_QUOTE] + f"... ({len(text):,} characters)"


def failure(where: str, what: str, exc: BaseException) -> str:
    """An error message for an exception: where, what failed, and the exception, cut short."""
    try:
        detail = escape_surrogates(_quote(str(exc)))
    except Exception:  # noqa: BLE001 - an exception whose text cannot be rendered
        detail = "(no description)"
    return f"{where}: {what} ({type(exc).__name__}: {detail})"


# --- one line to units, units to documents ----------------------------------------------------------


class Unit(NamedTuple):
    """What one document of an input line is made from: an entity to map, or a problem
    (``error_kind`` and ``messages``) that becomes an error document; either way with the
    original text, where it was and the tags it came with."""

    original: str
    where: str
    tags: Tags = ()
    entity: Any = None
    error_kind: str | None = None
    messages: tuple[str, ...] = ()


def line_units(line: bytes, where: str) -> list[Unit]:
    """The units of one input line (without its newline). ``where`` names the line in
    error messages, e.g. ``"line 12"``."""
    try:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:  # invalid UTF-8 or JSON, or what only the fallback reads
            text = _decode(line)
            value = parse_json(line)
        else:
            text = line.decode()  # orjson read it: valid UTF-8
    except BadLine as exc:
        messages = [f"{where}: {exc}"]
        if exc.kind == "invalid_json" and looks_pretty_printed(line):
            messages.append(f"{where}: {PRETTY_PRINTED_HINT.removeprefix('j1filter: hint: ')}")
        return [_problem(line.decode("utf-8", "backslashreplace"), where, exc.kind, messages)]
    return value_units(value, text, where)


def _problem(original: str, where: str, kind: str, messages: list[str], tags: Tags = ()) -> Unit:
    return Unit(original, where, tags, error_kind=kind, messages=tuple(messages))


def looks_pretty_printed(line: bytes) -> bool:
    """A lone ``{`` or ``[`` (e.g. `jq .` output): the input is pretty-printed JSON."""
    return line.strip() in (b"{", b"[")


def value_units(value: Any, text: str, where: str, tags: Tags = ()) -> list[Unit]:
    """The units of one parsed input line; ``text`` is its JSON text."""
    if isinstance(value, dict):
        data = value.get("data")
        if (isinstance(data, dict) and "queryV1" in data) or ("errors" in value and "data" in value):
            return _page_units(value, text, where, tags)
        if "entity" not in value:
            if _is_ecs_document(value):
                return [_problem(text, where, "already_mapped", [f"{where}: {ALREADY_MAPPED}"])]
            inner = _wrapped_original(value)
            if inner is not None:
                return _event_units(value, inner, where)
        if not _ENVELOPE_KEYS.isdisjoint(value):
            tags = list(tags) + _tag_list(value.get("tags"))
            value = {k: v for k, v in value.items() if k not in _ENVELOPE_KEYS}
            text = json_text(value)
    # The usual line. tuple.__new__: a NamedTuple without its Python-level __new__ (per line).
    return [tuple.__new__(Unit, (text, where, tags, value, None, ()))]


def _is_ecs_document(value: dict[str, Any]) -> bool:
    """j1filter's own output (``collect --map | j1filter``, or a file mapped twice)."""
    ecs, event = value.get("ecs"), value.get("event")
    return (
        isinstance(ecs, dict)
        and ecs.get("version") == ECS_VERSION
        and isinstance(event, dict)
        and event.get("module") == EVENT_MODULE
    )


def _wrapped_original(event: dict[str, Any]) -> str | None:
    message = event.get("message")
    if isinstance(message, str):
        return message
    inner = event.get("event")
    original = inner.get("original") if isinstance(inner, dict) else None
    return original if isinstance(original, str) else None


def _tag_list(tags: Any) -> list[str]:
    if isinstance(tags, str):
        return [tags]
    if isinstance(tags, list):
        return [t for t in tags if isinstance(t, str)]
    return []


def _event_units(event: dict[str, Any], inner: str, where: str) -> list[Unit]:
    """A Logstash/Beats event carrying the raw entity text in ``message``/``event.original``."""
    tags = _tag_list(event.get("tags"))
    try:
        value = parse_json(inner.encode("utf-8", "surrogatepass"))
    except BadLine as exc:
        return [_problem(inner, where, exc.kind, [f"{where}: message: {exc}"], tags)]
    return value_units(value, inner, where, tags)


def _page_units(page: dict[str, Any], text: str, where: str, tags: Tags) -> list[Unit]:
    """A whole ``queryV1`` response: one unit per entity, and one for GraphQL ``errors``
    (a page may carry both: the entities are kept)."""
    units = []
    errors = page.get("errors")
    if errors:
        messages = [
            _quote(e.get("message", e) if isinstance(e, dict) else e)
            for e in (errors if isinstance(errors, list) else [errors])
        ]
        units.append(
            _problem(text, where, "graphql_error", [f"{where}: GraphQL error: {m}" for m in messages], tags)
        )
    data = page.get("data")
    query = data.get("queryV1") if isinstance(data, dict) else None
    entities = query.get("data") if isinstance(query, dict) else None
    if isinstance(entities, list):
        units.extend(
            Unit(json_text(entity), f"{where}, entity {n}", tags, entity=entity)
            for n, entity in enumerate(entities, 1)
        )
    elif not errors:
        units.append(
            _problem(text, where, "not_an_entity", [f"{where}: queryV1 page without a data list"], tags)
        )
    return units


def map_unit(mapper: Mapper, unit: Unit, trace: Tracer | None = None) -> Mapped:
    """The document of one unit; a failure while mapping costs this document only."""
    original, where, tags, value, error_kind, messages = unit  # one unpacking, not six lookups
    if error_kind is not None:
        return Mapped(mapper.error_document(original, list(messages), tags=tags), error_kind)
    try:
        doc = mapper.map_entity(value, original, tags=tags, where=where, trace=trace)
    except Exception as exc:  # noqa: BLE001 - e.g. a user rule failing on this entity: the rest go on
        message = failure(where, "cannot map this entity", exc)
        return Mapped(mapper.error_document(original, [message], tags=tags), "unexpected_error")
    if "error" not in doc:
        return tuple.__new__(Mapped, (doc, None))  # as a usual line's Unit: built cheaply
    if not isinstance(value, dict) or "entity" not in value:
        return Mapped(doc, "not_an_entity")
    # A failed j1filter-only enrichment leaves the document's event.kind as it was.
    return Mapped(doc, "field_error" if doc["event"].get("kind") == "pipeline_error" else "enrichment_error")


def map_line(mapper: Mapper, line: bytes, where: str) -> list[Mapped]:
    """All documents for one input line (without its newline)."""
    return [map_unit(mapper, unit) for unit in line_units(line, where)]


# --- documents to bytes --------------------------------------------------------------------------


def encode_line(mapper: Mapper, line: bytes, where: str) -> list[Encoded]:
    """The output lines of one input line with their error kinds.

    The last-resort guard: whatever goes wrong anywhere in the line's handling, the line
    becomes one error document carrying it."""
    try:
        return [encode(mapper, map_unit(mapper, unit), where) for unit in line_units(line, where)]
    except Exception as exc:  # noqa: BLE001 - a stream never stops for data
        return [_unexpected(mapper, line.decode("utf-8", "backslashreplace"), where, exc)]


def encode_value(mapper: Mapper, value: Any, where: str) -> list[Encoded]:
    """The output lines for a parsed input value (what ``collect --map`` hands over): the
    same bytes as :func:`encode_line` gives for the line ``json_bytes(value)``, without
    parsing it again unless the text needed escapes that change what it reads as."""
    try:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:  # surrogates, big integers, deep nesting: read as the filter reads it
            return encode_line(mapper, json_bytes(value), where)
        return [encode(mapper, map_unit(mapper, unit), where) for unit in value_units(value, text, where)]
    except Exception as exc:  # noqa: BLE001 - as encode_line
        return [_unexpected(mapper, json_text(value), where, exc)]


def _unexpected(mapper: Mapper, original: str, where: str, exc: Exception) -> Encoded:
    doc = mapper.error_document(original, [failure(where, "cannot map this line", exc)])
    return orjson.dumps(doc), "unexpected_error"


def encode(mapper: Mapper, result: Mapped, where: str) -> Encoded:
    """The one encoder: compact JSON bytes of a document. Texts that UTF-8 cannot carry
    (unpaired surrogates) are written as ``\\uXXXX`` escapes and the document is flagged;
    a document that cannot be written otherwise becomes an error document with the input."""
    try:
        return orjson.dumps(result.doc), result.error_kind
    except TypeError as exc:  # orjson.JSONEncodeError
        reason = str(exc)
    try:
        doc, count = _escape_all(result.doc)
        if count:
            _flag(
                doc,
                f"{where}: unpaired UTF-16 surrogates in {count} text(s), written as "
                "\\uXXXX escapes (UTF-8 cannot carry them)",
            )
            return orjson.dumps(doc), result.error_kind or "unpaired_surrogate"
    except (TypeError, RecursionError):  # something else: the original alone goes out
        pass
    original = escape_surrogates(str(result.doc["event"]["original"]))
    message = (
        f"{where}: cannot serialise the mapped document ({escape_surrogates(reason)}); "
        "event.original holds the input"
    )
    return orjson.dumps(mapper.error_document(original, [message])), "not_serialisable"


def _escape_all(value: Any) -> tuple[Any, int]:
    """A copy of ``value`` with unpaired surrogates escaped in every key and text; and how
    many texts had some."""
    if isinstance(value, str):
        fixed = escape_surrogates(value)
        return fixed, int(fixed is not value and fixed != value)
    if isinstance(value, dict):
        out, total = {}, 0
        for key, item in value.items():
            (key, n), (item, m) = _escape_all(key), _escape_all(item)
            out[key] = item
            total += n + m
        return out, total
    if isinstance(value, list):
        pairs = [_escape_all(item) for item in value]
        return [item for item, _ in pairs], sum(n for _, n in pairs)
    return value, 0


def _flag(doc: dict[str, Any], message: str) -> None:
    """Mark the escaped copy of a mapped document as having an error, keeping what was mapped."""
    doc.setdefault("event", {})["kind"] = "pipeline_error"
    error = doc.setdefault("error", {})
    error["message"] = [*error.get("message", []), message]
    tags = doc.get("tags") or []
    doc["tags"] = tags if ERROR_TAG in tags else [*tags, ERROR_TAG]


def too_long(mapper: Mapper, line: bytes, size: int, max_line_bytes: int, where: str) -> Encoded:
    """The error document of a line cut at ``max_line_bytes`` (its first bytes kept)."""
    doc = mapper.error_document(
        line.decode("utf-8", "backslashreplace"),
        [
            f"{where}: line of {size} bytes is longer than the limit of {max_line_bytes}; "
            "event.original holds its first bytes"
        ],
    )
    return orjson.dumps(doc), "line_too_long"
