"""Coerce a value to the Elasticsearch type of the field it is written to.

Every rule's value passes through the coercer of its target's type (unless the compiler
proved it already fits): ``"7"`` into a ``long`` field becomes ``7``, ``"not-an-ip"`` into an
``ip`` field raises :class:`TransformError` and nothing is written. Lists are coerced item
by item (any field may hold a list). Text fields take any scalar, written as text (a number
as Elastic renders it), but never an object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import TransformError
from . import dates
from .transforms import boolean_transform, canonical_ip, double_transform, java_string, long_transform
from .types import DATE_TYPES, FLOAT_LIMITS, FLOAT_TYPES, INTEGER_RANGES, OBJECT_TYPES, TEXT_TYPES

Coercer = Callable[[Any], Any]


def _each(fn: Coercer) -> Coercer:
    def coerce(value: Any) -> Any:
        if value.__class__ is list:
            return [fn(item) for item in value]
        return fn(value)

    return coerce


def _text(value: Any) -> Any:
    """Any scalar, or a list of scalars, as text (``12345`` -> ``"12345"``, as Elastic renders
    it): a keyword id is the same text whatever JSON type its source wrote."""
    if value.__class__ is list:
        return [_text_item(item) for item in value]
    return _text_item(value)


def _text_item(item: Any) -> str:
    if item.__class__ is str:
        return item
    if isinstance(item, (dict, list)):
        raise TransformError("an object cannot go into a text field")
    return java_string(item)


def _integer(kind: str) -> Coercer:
    low, high = INTEGER_RANGES[kind]
    to_long = long_transform()

    def coerce(value: Any) -> int:
        result = value if value.__class__ is int else to_long(value)
        if not low <= result <= high:
            raise TransformError(f"[{java_string(value)}] is out of range for {kind}")
        return int(result)

    return coerce


def _float(kind: str) -> Coercer:
    to_double = double_transform()
    limit = FLOAT_LIMITS.get(kind)

    def coerce(value: Any) -> Any:
        # Whole numbers stay as they are: Elasticsearch takes them for float fields.
        result = value if value.__class__ is int or value.__class__ is float else to_double(value)
        if limit is not None and not -limit <= result <= limit:
            raise TransformError(f"[{java_string(value)}] is out of range for {kind}")
        return result

    return coerce


def _object(value: Any) -> Any:
    if not isinstance(value, dict):
        raise TransformError(f"[{java_string(value)}] is not an object")
    return value


def coercer(es_type: str) -> Coercer | None:
    """The coercer for an Elasticsearch field type; None when any JSON value will do."""
    if es_type in TEXT_TYPES:
        return _text
    if es_type in INTEGER_RANGES:
        return _each(_integer(es_type))
    if es_type in FLOAT_TYPES:
        return _each(_float(es_type))
    if es_type in DATE_TYPES:
        return _each(dates.normalize_date)
    if es_type == "ip":
        return _each(canonical_ip)
    if es_type == "boolean":
        return _each(boolean_transform())
    if es_type in OBJECT_TYPES:
        return _object
    return None
