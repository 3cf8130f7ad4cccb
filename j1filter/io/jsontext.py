"""Compact JSON text of any parsed value: orjson when it can, else an encoder without
recursion, so no depth, unpaired surrogate or huge integer can make writing a value fail.
Used by every route that writes JSON lines (the filter's protocol, the collector, the
simulator)."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_surrogates(text: str) -> str:
    """``text`` with each unpaired UTF-16 surrogate (which UTF-8 cannot carry) written as its
    ``\\uXXXX`` escape: inside JSON text, the same value; elsewhere, visible."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def json_bytes(value: Any) -> bytes:
    """Compact JSON of a parsed value, UTF-8: the lines ``collect`` writes. Never fails on
    what :func:`parse_json` or the standard library returns: nesting orjson refuses (over 254
    levels) is rendered without recursion, unpaired surrogates are escaped, integers beyond
    64 bits written out."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: too deep, surrogates, an integer beyond 64 bits
        return escape_surrogates("".join(_render(value))).encode()


def json_text(value: Any) -> str:
    """:func:`json_bytes` as text, for ``event.original``."""
    return json_bytes(value).decode()


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
