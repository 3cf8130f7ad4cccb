"""Stream lines of raw J1 JSON through a :class:`Mapper`: bytes in, ECS JSON lines out.

Input lines may be (a) a raw entity as ``queryV1`` lists it, (b) a whole ``queryV1``
response page, expanded to one document per entity, or (c) a Logstash/Beats event whose
``message`` (or ``event.original``) holds the raw entity text. A line that cannot be used
becomes an error document carrying the original text: no line is lost and the stream
never stops. Blank lines are skipped (and counted).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterator, Sequence

import orjson

from ..runtime.mapper import Mapper

#: Lines longer than this are not parsed; their first bytes go out in an error document.
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
#: Envelope fields Logstash adds when it hands over an entity as the event itself.
_ENVELOPE_KEYS = ("@timestamp", "@version", "tags")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


@dataclass
class Stats:
    lines: int = 0
    blank_lines: int = 0
    documents: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # error kind -> documents
    output_closed: bool = False

    def summary(self) -> str:
        text = f"j1filter: {self.lines} lines in, {self.documents} documents out"
        if self.blank_lines:
            text += f", {self.blank_lines} blank lines skipped"
        total = sum(self.errors.values())
        if total:
            kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(self.errors.items()))
            text += f", {total} with errors ({kinds})"
        else:
            text += ", no errors"
        return text + (", output closed early" if self.output_closed else "")


@dataclass(frozen=True)
class Mapped:
    doc: dict[str, Any]
    error_kind: str | None  # None for a clean document


# --- parsing ---------------------------------------------------------------------------------


class _BadLine(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _big_int(text: str) -> int | float:
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


# --- one line ----------------------------------------------------------------------------------


def map_line(mapper: Mapper, line: bytes, where: str) -> list[Mapped]:
    """All documents for one input line (without its newline). ``where`` names the line
    in error messages, e.g. ``"line 12"``."""
    try:
        text = _decode(line)
        value = parse_json(line)
    except _BadLine as exc:
        original = line.decode("utf-8", "backslashreplace")
        return [Mapped(mapper.error_document(original, [f"{where}: {exc}"]), exc.kind)]
    return _map_value(mapper, value, text, where, tags=())


def _map_value(mapper: Mapper, value: Any, text: str, where: str, tags: Sequence[str]) -> list[Mapped]:
    if isinstance(value, dict):
        data = value.get("data")
        if (isinstance(data, dict) and "queryV1" in data) or ("errors" in value and "data" in value):
            return _map_page(mapper, value, text, where, tags)
        if "entity" not in value:
            inner = _wrapped_original(value)
            if inner is not None:
                return _map_event(mapper, value, inner, where)
        if any(k in value for k in _ENVELOPE_KEYS):
            tags = list(tags) + _tag_list(value.get("tags"))
            value = {k: v for k, v in value.items() if k not in _ENVELOPE_KEYS}
            text = orjson.dumps(value).decode()
    return [_entity(mapper, value, text, tags)]


def _entity(mapper: Mapper, value: Any, original: str, tags: Sequence[str]) -> Mapped:
    doc = mapper.map_entity(value, original, tags=tags)
    if "error" not in doc:
        return Mapped(doc, None)
    return Mapped(doc, "not_an_entity" if not isinstance(value, dict) or "entity" not in value
                  else "field_error")


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


def _map_page(mapper: Mapper, page: dict[str, Any], text: str, where: str, tags: Sequence[str]) -> list[Mapped]:
    """A whole ``queryV1`` response: one document per entity, and an error document for
    GraphQL ``errors`` (a page may carry both: the entities are kept)."""
    results = []
    errors = page.get("errors")
    if errors:
        messages = [e.get("message", str(e)) if isinstance(e, dict) else str(e)
                    for e in (errors if isinstance(errors, list) else [errors])]
        results.append(Mapped(mapper.error_document(
            text, [f"{where}: GraphQL error: {m}" for m in messages], tags=tags), "graphql_error"))
    data = page.get("data")
    query = data.get("queryV1") if isinstance(data, dict) else None
    entities = query.get("data") if isinstance(query, dict) else None
    if isinstance(entities, list):
        results.extend(_entity(mapper, entity, orjson.dumps(entity).decode(), tags) for entity in entities)
    elif not errors:
        results.append(Mapped(mapper.error_document(
            text, [f"{where}: queryV1 page without a data list"], tags=tags), "not_an_entity"))
    return results


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
        yield line.rstrip(b"\r\n"), size


def run(source: BinaryIO, sink: BinaryIO, mapper: Mapper, *, line_buffered: bool = False,
        errors_sink: BinaryIO | None = None, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        batch_size: int = 512, name: str = "line") -> Stats:
    """Map every line of ``source`` to ``sink``; return what happened. Error documents go
    to ``sink`` too (and, as a copy, to ``errors_sink``)."""
    stats = Stats()
    pending: list[bytes] = []
    dumps = orjson.dumps
    try:
        for line_no, (line, size) in enumerate(read_lines(source, max_line_bytes), 1):
            stats.lines += 1
            where = f"{name} {line_no}"
            if size > max_line_bytes:
                results = [Mapped(mapper.error_document(
                    line.decode("utf-8", "backslashreplace"),
                    [f"{where}: line of {size} bytes is longer than the limit of {max_line_bytes}; "
                     "event.original holds its first bytes"]), "line_too_long")]
            elif not line.strip():
                stats.blank_lines += 1
                continue
            else:
                results = map_line(mapper, line, where)
            for result in results:
                try:
                    encoded = dumps(result.doc)
                except (TypeError, orjson.JSONEncodeError) as exc:
                    result = Mapped(mapper.error_document(
                        result.doc["event"]["original"], [f"{where}: cannot serialise: {exc}"]),
                        "not_serialisable")
                    encoded = dumps(result.doc)
                pending.append(encoded)
                stats.documents += 1
                if result.error_kind:
                    stats.errors[result.error_kind] += 1
                    if errors_sink is not None:
                        errors_sink.write(encoded + b"\n")
            if line_buffered or len(pending) >= batch_size:
                _flush(sink, pending, line_buffered)
        _flush(sink, pending, True)
    except BrokenPipeError:
        stats.output_closed = True
    return stats


def _flush(sink: BinaryIO, pending: list[bytes], flush: bool) -> None:
    if pending:
        pending.append(b"")
        sink.write(b"\n".join(pending))
        pending.clear()
    if flush:
        sink.flush()
