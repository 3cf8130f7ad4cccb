"""The type lattice, in one place: the types a value may have before it is written, the
Elasticsearch field types grouped by what they accept, and how the two meet.

A transform declares the :class:`ValueType` of what it returns; a field has an Elasticsearch
type (an open set of names from the ECS facts: ``keyword``, ``long``, ``scaled_float``, ...).
``fits`` says whether a value type can go into a field type (what ``j1filter check``
refuses); ``proven`` whether it always does as it is, so the runtime may skip the coercion.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ValueType(StrEnum):
    """What a value is before it is written: an Elasticsearch type, or ANY (unknown: checked
    when written) or SAME (the type of the transform's input)."""

    KEYWORD = "keyword"
    LONG = "long"
    DOUBLE = "double"
    BOOLEAN = "boolean"
    DATE = "date"
    IP = "ip"
    OBJECT = "object"
    ANY = "any"
    SAME = "same"


ANY, SAME = ValueType.ANY, ValueType.SAME

# Elasticsearch field types by what they accept.
TEXT_TYPES = frozenset({"keyword", "constant_keyword", "wildcard", "text", "match_only_text"})
INTEGER_RANGES = {
    "long": (-(2**63), 2**63 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-128, 127),
    "unsigned_long": (0, 2**64 - 1),
}
FLOAT_TYPES = frozenset({"float", "double", "half_float", "scaled_float"})
#: The largest magnitude a narrower-than-double float field takes; beyond it the engine
#: rounds to infinity and refuses the whole document.
FLOAT_LIMITS = {"float": 3.4028234663852886e38, "half_float": 65504.0}
OBJECT_TYPES = frozenset({"object", "flattened", "nested"})
DATE_TYPES = frozenset({"date", "date_nanos"})


def scalar_type(value: Any) -> ValueType:
    """The type of one constant (a YAML value)."""
    if isinstance(value, bool):
        return ValueType.BOOLEAN
    if isinstance(value, int):
        return ValueType.LONG
    if isinstance(value, float):
        return ValueType.DOUBLE
    if isinstance(value, str):
        return ValueType.KEYWORD
    return ValueType.OBJECT if isinstance(value, dict) else ANY


def constant_type(values: list[Any]) -> ValueType:
    """One type for a set of constants (``long`` and ``double`` together make ``double``)."""
    kinds = {scalar_type(v) for v in values if v is not None}
    if kinds == {ValueType.LONG, ValueType.DOUBLE}:
        return ValueType.DOUBLE
    return kinds.pop() if len(kinds) == 1 else ANY


def fits(result: str, target: str) -> bool:
    """Whether a value of type ``result`` can be written to a field of type ``target``."""
    if result in (ANY, SAME) or target == ANY:
        return True
    if target in OBJECT_TYPES:
        return result == ValueType.OBJECT
    if result == ValueType.OBJECT:
        return False
    if target in TEXT_TYPES:
        return True  # Elasticsearch indexes any scalar as text
    if target in INTEGER_RANGES:
        return result == ValueType.LONG
    if target in FLOAT_TYPES:
        return result in (ValueType.LONG, ValueType.DOUBLE)
    if target in DATE_TYPES:
        return result == ValueType.DATE
    if target in (ValueType.IP, ValueType.BOOLEAN):
        return result == target
    return True  # geo_point and the like: not checked


def proven(result: str, target: str) -> bool:
    """Whether every value of type ``result`` already fits ``target`` as it is."""
    if target == ANY:
        return True
    if result in (ANY, SAME):
        return False
    if target in TEXT_TYPES:
        return result != ValueType.OBJECT
    if target == "long":
        return result == ValueType.LONG
    if target in FLOAT_LIMITS:  # a double may be beyond a narrower float's range
        return False
    if target in FLOAT_TYPES:
        return result in (ValueType.LONG, ValueType.DOUBLE)
    if target in OBJECT_TYPES:
        return result == ValueType.OBJECT
    return result == target


def wider(known: str | None, other: str) -> str:
    """One field type for two declarations: the same, a number both fit, or text."""
    if known is None or known == other:
        return other
    return "double" if {known, other} == {"long", "double"} else "keyword"


def hint_for(target: str) -> str:
    """How to make a value fit a field of type ``target``."""
    if target in INTEGER_RANGES:
        return "give a whole number, or end the chain with the 'long' transform"
    if target in FLOAT_TYPES:
        return "give a number, or end the chain with the 'double' transform"
    if target in ("date", "ip", "boolean"):
        return f"give a valid {target}, or end the chain with the '{target}' transform"
    if target in OBJECT_TYPES:
        return "this field holds an object (e.g. from url_parts)"
    return "text fields take text, numbers and booleans, never an object"
