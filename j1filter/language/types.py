"""The types of the fields rules write, decided at compile time from one source each:
ECS fields from the vendored ECS field facts (:mod:`j1filter.ecs`), ``labels.*`` as keyword,
fields in a custom namespace a mapping file declares as whatever its rules produce.

``fits`` says whether a transform's declared result can go into a field (what ``j1filter
check`` refuses); ``proven`` whether it always does, so the runtime may skip the coercion.
"""

from __future__ import annotations

import difflib
import functools

from ..convert.coerce import FLOAT_TYPES, INTEGER_RANGES, OBJECT_TYPES, TEXT_TYPES
from ..ecs import ecs_fields, field_type

#: Types a value may have before it is written (besides the Elasticsearch types).
ANY, SAME = "any", "same"


@functools.lru_cache(maxsize=1)
def _ecs_prefixes() -> frozenset[str]:
    """Every proper prefix of an ECS field name (``url``, ``host.os``, ...): the field sets."""
    return frozenset(
        ".".join(name.split(".")[:n]) for name in ecs_fields() for n in range(1, name.count(".") + 1)
    )


def target_type(path: str, custom_namespaces: frozenset[str]) -> str | None:
    """The type of the field a rule writes, or None when it is not a field one may write."""
    found = field_type(path)
    if found is not None:
        return found
    if path.startswith("labels."):
        return "keyword"
    if path.split(".", 1)[0] in custom_namespaces:
        return ANY
    if path in _ecs_prefixes():
        return "object"
    return None


def close_ecs_field(path: str) -> str | None:
    found = difflib.get_close_matches(path, list(ecs_fields()), n=1, cutoff=0.8)
    return found[0] if found else None


def fits(result: str, target: str) -> bool:
    """Whether a value of type ``result`` can be written to a field of type ``target``."""
    if result in (ANY, SAME) or target == ANY:
        return True
    if target in OBJECT_TYPES:
        return result == "object"
    if result == "object":
        return False
    if target in TEXT_TYPES:
        return True  # Elasticsearch indexes any scalar as text
    if target in INTEGER_RANGES:
        return result == "long"
    if target in FLOAT_TYPES:
        return result in ("long", "double")
    if target in ("date", "date_nanos"):
        return result == "date"
    if target in ("ip", "boolean"):
        return result == target
    return True  # geo_point and the like: not checked


def proven(result: str, target: str) -> bool:
    """Whether every value of type ``result`` already fits ``target`` as it is."""
    if target == ANY:
        return True
    if result in (ANY, SAME):
        return False
    if target in TEXT_TYPES:
        return result != "object"
    if target == "long":
        return result == "long"
    if target in FLOAT_TYPES:
        return result in ("long", "double")
    if target in OBJECT_TYPES:
        return result == "object"
    return result == target


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
