"""Compact JSON text of any decoded J1 value: orjson when it can, else an encoder without
recursion, so no depth, lone surrogate or huge integer can make writing a value fail."""

from __future__ import annotations

import json

import orjson


def dumps_any(value: object) -> bytes:
    """Compact JSON of a decoded J1 value, whatever its depth or content."""
    try:
        return orjson.dumps(value)
    except TypeError:  # deeper than orjson goes, a lone surrogate (\ud800), a huge integer
        return _dumps_iteratively(value)


class _Text(str):
    """Already-encoded JSON text on the encoder's stack."""


def _dumps_iteratively(value: object) -> bytes:
    """JSON without recursion (a 100,000-deep list is fine); strings escaped to ASCII, so a lone
    surrogate stays an escape. Only decoded-JSON types are expected."""
    out: list[str] = []
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item)
        elif isinstance(item, dict):
            parts: list[object] = [_Text("{")]
            for index, (key, inner) in enumerate(item.items()):
                parts.append(_Text(("," if index else "") + json.dumps(str(key)) + ":"))
                parts.append(inner)
            parts.append(_Text("}"))
            stack.extend(reversed(parts))
        elif isinstance(item, (list, tuple)):
            parts = [_Text("[")]
            for index, inner in enumerate(item):
                if index:
                    parts.append(_Text(","))
                parts.append(inner)
            parts.append(_Text("]"))
            stack.extend(reversed(parts))
        else:
            out.append(json.dumps(item))
    return "".join(out).encode("ascii")
