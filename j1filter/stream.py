"""Stream lines of raw J1 JSON through a :class:`Mapper`: bytes in, ECS JSON lines out.

Input lines may be (a) a raw entity as ``queryV1`` lists it, (b) a whole ``queryV1``
response page, expanded to one document per entity, or (c) a Logstash/Beats event whose
``message`` (or ``event.original``) holds the raw entity text. A line that cannot be used
becomes an error document carrying the original text: no line is lost and the stream
never stops. Blank lines are skipped (and counted).

Robustness is structural: one last-resort guard around each line's whole handling (decode,
parse, unwrap, map, serialise) turns any exception into an error document for that line,
and a guard around each entity keeps the other entities of a page. Output is batched by
count and by bytes, so memory follows the largest document, not the batch.
"""

from __future__ import annotations

import json
import re
import signal
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson

from ._meta import ERROR_TAG
from .io.output import LineWriter, Progress, plural
from .io.stops import GUARD, StopGuard, Stopped
from .runtime.mapper import Mapper

#: Lines longer than this are not parsed; their first bytes go out in an error document.
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
#: Output is written once this many documents or bytes are pending (whichever comes first).
DEFAULT_BATCH_SIZE = 512
DEFAULT_BATCH_BYTES = 1024 * 1024
#: Longest exception text or GraphQL error quoted in an error message.
_MAX_QUOTE = 1000
_SURROGATE = re.compile("[\ud800-\udfff]")
Tags = Sequence[str]
_BLANK = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.strip() removes
#: Envelope fields Logstash adds when it hands over an entity as the event itself.
_ENVELOPE_KEYS = frozenset(("@timestamp", "@version", "tags"))
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


@dataclass
class Stats:
    lines: int = 0
    blank_lines: int = 0
    documents: int = 0  # written whole to the output, not merely mapped
    errors: Counter[str] = field(default_factory=Counter)  # error kind -> documents written
    output_closed: bool = False
    stopped_by: int | None = None  # the stop signal that ended the run early
    looks_pretty_printed: bool = False  # a line was a lone "{" or "[" (e.g. `jq .` output)

    def summary(self) -> str:
        text = f"j1filter: {plural(self.lines, 'line')} in, {plural(self.documents, 'document')} out"
        if self.blank_lines:
            text += f", {plural(self.blank_lines, 'blank line')} skipped"
        total = sum(self.errors.values())
        if total:
            kinds = ", ".join(f"{kind}: {n:,}" for kind, n in sorted(self.errors.items()))
            text += f", {total:,} with errors ({kinds})"
        else:
            text += ", no errors"
        if self.output_closed:
            text += ", output closed early"
        if self.stopped_by is not None:
            text += f", stopped by {signal.Signals(self.stopped_by).name}"
        if self.looks_pretty_printed:
            text += "\n" + PRETTY_PRINTED_HINT
        return text


#: Said once in the first error document and in the summary when the input looks like
#: pretty-printed JSON: every line of it is invalid on its own.
PRETTY_PRINTED_HINT = (
    "j1filter: hint: the input looks like pretty-printed JSON; j1filter reads "
    "one JSON document per line (compact it with `jq -c .`)"
)


@dataclass(frozen=True)
class Mapped:
    doc: dict[str, Any]
    error_kind: str | None  # None for a clean document


# --- parsing ---------------------------------------------------------------------------------


class _BadLine(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


#: Digits beyond which an integer cannot even be a double (1.8e308 has 309).
_MAX_INT_DIGITS = 400


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
        raise _BadLine("invalid_json", f"invalid JSON: {first_error}") from None


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadLine("invalid_utf8", f"invalid UTF-8 at byte {exc.start}") from None


# --- JSON text of parsed values ------------------------------------------------------------------


def escape_surrogates(text: str) -> str:
    """``text`` with each unpaired UTF-16 surrogate (which UTF-8 cannot carry) written as its
    ``\\uXXXX`` escape: inside JSON text, the same value; elsewhere, visible."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def json_text(value: Any) -> str:
    """Compact JSON text of a parsed value, for ``event.original``. Never fails on what
    :func:`parse_json` returns: nesting orjson refuses (over 254 levels) is rendered without
    recursion, and unpaired surrogates are escaped."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError: too deep, surrogates, an integer beyond 64 bits
        return escape_surrogates("".join(_render(value)))


def _render(value: Any) -> list[str]:
    """JSON text pieces of ``value``, depth-first with an explicit stack (no recursion)."""
    encode = json.encoder.encode_basestring
    parts: list[str] = []
    stack: list[tuple[bool, Any]] = [(False, value)]  # (is literal text, item)
    while stack:
        literal, item = stack.pop()
        if literal:
            parts.append(item)
        elif isinstance(item, dict):
            todo: list[tuple[bool, Any]] = [(True, "{")]
            for n, (key, child) in enumerate(item.items()):
                todo += [(True, ("," if n else "") + encode(str(key)) + ":"), (False, child)]
            stack.extend(reversed(todo + [(True, "}")]))
        elif isinstance(item, list):
            todo = [(True, "[")]
            for n, child in enumerate(item):
                todo += [(True, ",")] if n else []
                todo.append((False, child))
            stack.extend(reversed(todo + [(True, "]")]))
        elif isinstance(item, str):
            parts.append(encode(item))
        else:
            parts.append(json.dumps(item))
    return parts


def _quote(value: Any) -> str:
    """A value quoted in an error message: text as it is, anything else as JSON, cut short."""
    text = value if isinstance(value, str) else json_text(value)
    return text if len(text) <= _MAX_QUOTE else text[:_MAX_QUOTE] + f"... ({len(text):,} characters)"


# --- one line ----------------------------------------------------------------------------------


def map_line(mapper: Mapper, line: bytes, where: str) -> list[Mapped]:
    """All documents for one input line (without its newline). ``where`` names the line
    in error messages, e.g. ``"line 12"``."""
    try:
        text = _decode(line)
        value = parse_json(line)
    except _BadLine as exc:
        original = line.decode("utf-8", "backslashreplace")
        messages = [f"{where}: {exc}"]
        if exc.kind == "invalid_json" and line.strip() in (b"{", b"["):  # e.g. `jq .` output
            messages.append(f"{where}: {PRETTY_PRINTED_HINT.removeprefix('j1filter: hint: ')}")
        return [Mapped(mapper.error_document(original, messages), exc.kind)]
    return _map_value(mapper, value, text, where, tags=())


def _map_value(mapper: Mapper, value: Any, text: str, where: str, tags: Tags) -> list[Mapped]:
    if isinstance(value, dict):
        data = value.get("data")
        if (isinstance(data, dict) and "queryV1" in data) or ("errors" in value and "data" in value):
            return _map_page(mapper, value, text, where, tags)
        if "entity" not in value:
            inner = _wrapped_original(value)
            if inner is not None:
                return _map_event(mapper, value, inner, where)
        if not _ENVELOPE_KEYS.isdisjoint(value):
            tags = list(tags) + _tag_list(value.get("tags"))
            value = {k: v for k, v in value.items() if k not in _ENVELOPE_KEYS}
            text = json_text(value)
    return [_entity(mapper, value, text, tags, where)]


def _entity(mapper: Mapper, value: Any, original: str, tags: Tags, where: str) -> Mapped:
    try:
        doc = mapper.map_entity(value, original, tags=tags)
    except Exception as exc:  # noqa: BLE001 - e.g. a user rule failing on this entity: the rest go on
        return Mapped(
            mapper.error_document(original, [_failure(where, "cannot map this entity", exc)], tags=tags),
            "unexpected_error",
        )
    if "error" not in doc:
        return Mapped(doc, None)
    _locate(doc, where)
    if not isinstance(value, dict) or "entity" not in value:
        return Mapped(doc, "not_an_entity")
    # A failed j1filter-only enrichment leaves the document's event.kind as it was.
    return Mapped(doc, "field_error" if doc["event"].get("kind") == "pipeline_error" else "enrichment_error")


def _failure(where: str, what: str, exc: BaseException) -> str:
    try:
        detail = escape_surrogates(_quote(str(exc)))
    except Exception:  # noqa: BLE001 - an exception whose text cannot be rendered
        detail = "(no description)"
    return f"{where}: {what} ({type(exc).__name__}: {detail})"


def _locate(doc: dict[str, Any], where: str) -> None:
    """Every error message starts with where the entity was (``line 12: ...``)."""
    doc["error"]["message"] = [m if m.startswith(where) else f"{where}: {m}" for m in doc["error"]["message"]]


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


def _map_event(mapper: Mapper, event: dict[str, Any], inner: str, where: str) -> list[Mapped]:
    """A Logstash/Beats event carrying the raw entity text in ``message``/``event.original``."""
    tags = _tag_list(event.get("tags"))
    try:
        value = parse_json(inner.encode("utf-8", "surrogatepass"))
    except _BadLine as exc:
        return [Mapped(mapper.error_document(inner, [f"{where}: message: {exc}"], tags=tags), exc.kind)]
    return _map_value(mapper, value, inner, where, tags)


def _map_page(mapper: Mapper, page: dict[str, Any], text: str, where: str, tags: Tags) -> list[Mapped]:
    """A whole ``queryV1`` response: one document per entity, and an error document for
    GraphQL ``errors`` (a page may carry both: the entities are kept)."""
    results = []
    errors = page.get("errors")
    if errors:
        messages = [
            _quote(e.get("message", e) if isinstance(e, dict) else e)
            for e in (errors if isinstance(errors, list) else [errors])
        ]
        results.append(
            Mapped(
                mapper.error_document(text, [f"{where}: GraphQL error: {m}" for m in messages], tags=tags),
                "graphql_error",
            )
        )
    data = page.get("data")
    query = data.get("queryV1") if isinstance(data, dict) else None
    entities = query.get("data") if isinstance(query, dict) else None
    if isinstance(entities, list):
        results.extend(
            _entity(mapper, entity, json_text(entity), tags, f"{where}, entity {n}")
            for n, entity in enumerate(entities, 1)
        )
    elif not errors:
        results.append(
            Mapped(
                mapper.error_document(text, [f"{where}: queryV1 page without a data list"], tags=tags),
                "not_an_entity",
            )
        )
    return results


# --- serialising -------------------------------------------------------------------------------


def encode_line(mapper: Mapper, line: bytes, where: str) -> list[tuple[bytes, str | None]]:
    """The serialised documents of one input line with their error kinds (``None``: clean).

    The last-resort guard: whatever goes wrong anywhere in the line's handling, the line
    becomes one error document carrying it, and the stream goes on."""
    try:
        return [_encode(mapper, result, where) for result in map_line(mapper, line, where)]
    except Exception as exc:  # noqa: BLE001 - the stream never stops for data
        original = line.decode("utf-8", "backslashreplace")  # UTF-8 always: no surrogates
        doc = mapper.error_document(original, [_failure(where, "cannot map this line", exc)])
        return [(orjson.dumps(doc), "unexpected_error")]


def _encode(mapper: Mapper, result: Mapped, where: str) -> tuple[bytes, str | None]:
    try:
        return orjson.dumps(result.doc), result.error_kind
    except TypeError as exc:  # orjson.JSONEncodeError
        reason = str(exc)
    try:
        doc, count = _escape_all(result.doc)
        if count:  # unpaired surrogates: UTF-8 cannot carry them, their escapes keep the value
            doc = _flag(
                doc,
                f"{where}: unpaired UTF-16 surrogates in {count} text(s), written as "
                "\\uXXXX escapes (UTF-8 cannot carry them)",
            )
            return orjson.dumps(doc), result.error_kind or "unpaired_surrogate"
    except (TypeError, RecursionError):  # something else: the original alone goes out
        pass
    original = escape_surrogates(str(result.doc["event"]["original"]))
    doc = mapper.error_document(
        original,
        [
            f"{where}: cannot serialise the mapped document "
            f"({escape_surrogates(reason)}); event.original holds the input"
        ],
    )
    return orjson.dumps(doc), "not_serialisable"


def _escape_all(value: Any) -> tuple[Any, int]:
    """``value`` with unpaired surrogates escaped in every key and text; and how many texts
    had some."""
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


def _flag(doc: dict[str, Any], message: str) -> dict[str, Any]:
    """Mark a mapped document as having an error, keeping what was mapped."""
    doc.setdefault("event", {})["kind"] = "pipeline_error"
    error = doc.setdefault("error", {})
    error["message"] = [*error.get("message", []), message]
    tags = doc.get("tags") or []
    doc["tags"] = tags if ERROR_TAG in tags else [*tags, ERROR_TAG]
    return doc


# --- the stream --------------------------------------------------------------------------------


def read_lines(source: BinaryIO, max_line_bytes: int) -> Iterator[tuple[bytes, int]]:
    """Lines without their line ending, with their full length in bytes. A line longer than
    ``max_line_bytes`` is cut there and the rest read past, so memory stays bounded."""
    while True:
        line = source.readline(max_line_bytes + 1)
        if not line:
            return
        size = len(line)
        if size > max_line_bytes and not line.endswith(b"\n"):
            while True:  # skip the rest of an over-long line
                chunk = source.readline(1 << 20)
                size += len(chunk)
                if not chunk or chunk.endswith(b"\n"):
                    break
            yield line[:max_line_bytes], size
            continue
        stripped = line.rstrip(b"\r\n")
        del line  # not kept alive (a copy of a huge line) while the caller maps the line
        yield stripped, size


def _too_long(
    mapper: Mapper, line: bytes, size: int, max_line_bytes: int, where: str
) -> tuple[bytes, str | None]:
    doc = mapper.error_document(
        line.decode("utf-8", "backslashreplace"),
        [
            f"{where}: line of {size} bytes is longer than the limit of {max_line_bytes}; "
            "event.original holds its first bytes"
        ],
    )
    return orjson.dumps(doc), "line_too_long"


def run(
    source: BinaryIO,
    sink: BinaryIO,
    mapper: Mapper,
    *,
    line_buffered: bool = False,
    errors_sink: BinaryIO | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    name: str = "line",
    guard: StopGuard = GUARD,
    progress: Progress | None = None,
) -> Stats:
    """Map every line of ``source`` to ``sink``; return what happened. Error documents go
    to ``sink`` too (and, as a copy, to ``errors_sink``). Output is written once
    ``batch_size`` documents or ``batch_bytes`` bytes are pending. A stop signal (see
    :mod:`.stops`) or a closed ``sink`` ends the run after whole lines only; the stats
    count the documents that were really written."""
    stats = Stats()
    out = LineWriter(sink, guard)
    errors_out = LineWriter(errors_sink, guard) if errors_sink is not None else None
    pending: list[tuple[bytes, str | None]] = []  # encoded document, error kind
    pending_bytes = 0
    try:
        for line_no, (line, size) in enumerate(read_lines(source, max_line_bytes), 1):
            stats.lines += 1
            where = f"{name} {line_no}"
            if size > max_line_bytes:
                encoded = [_too_long(mapper, line, size, max_line_bytes, where)]
            elif not line or (line[0] in _BLANK and not line.strip()):  # no copy of a usual line
                stats.blank_lines += 1
                continue
            else:
                encoded = encode_line(mapper, line, where)
                if not stats.looks_pretty_printed and _pretty_printed(line, encoded):
                    stats.looks_pretty_printed = True
            del line  # a huge line's bytes are not needed while its documents are written
            for doc, error_kind in encoded:
                pending.append((doc, error_kind))
                pending_bytes += len(doc)
            del encoded
            if line_buffered or len(pending) >= batch_size or pending_bytes >= batch_bytes:
                _flush(out, errors_out, pending, stats)
                pending_bytes = 0
            if progress is not None and progress.due():
                progress.show(stats.documents, sum(stats.errors.values()))
        _flush(out, errors_out, pending, stats)
    except Stopped as stop:  # the document being mapped is dropped; the finished ones go out whole
        stats.stopped_by = stop.signum
        _flush_quietly(out, errors_out, pending, stats)
    except BrokenPipeError:
        stats.output_closed = True
    return stats


def _pretty_printed(line: bytes, encoded: list[tuple[bytes, str | None]]) -> bool:
    """A lone ``{`` or ``[`` that is invalid JSON: the input is pretty-printed (its error
    document says so, see :func:`map_line`)."""
    return len(encoded) == 1 and encoded[0][1] == "invalid_json" and line.strip() in (b"{", b"[")


def _flush_quietly(
    out: LineWriter, errors_out: LineWriter | None, pending: list[tuple[bytes, str | None]], stats: Stats
) -> None:
    try:
        _flush(out, errors_out, pending, stats)
    except BrokenPipeError:
        stats.output_closed = True


def _flush(
    out: LineWriter, errors_out: LineWriter | None, pending: list[tuple[bytes, str | None]], stats: Stats
) -> None:
    """Write the pending documents; count those written whole, and copy the error
    documents among them to the errors file."""
    batch = pending[:]
    pending.clear()  # before writing: a stop right after the write must not repeat it
    before = out.lines
    with out.guard.writing():
        try:
            out.write([encoded for encoded, _ in batch])
        finally:
            written = batch[: out.lines - before]
            stats.documents = out.lines
            failed = [encoded for encoded, kind in written if kind]
            stats.errors.update(kind for _, kind in written if kind)
            if errors_out is not None and failed:
                errors_out.write(failed)
