"""Dotted-path access to nested dicts, and the preparation of a raw entity.

Preparation is one recursive pass that renames every key to snake_case and drops
``null``, ``""``, ``[]`` and ``{}`` values (bottom-up, so containers emptied by the
cleaning go too): the key rename and the cleanup Elastic's pipeline does in two steps.
"""

from __future__ import annotations

from typing import Any

from ..convert.casing import _CACHE as _NAMES, snake_case
from ..errors import J1FilterError

#: Deepest nesting accepted in an entity. orjson refuses output nested more than 254
#: levels deep, and nothing in J1's data model comes near this.
MAX_DEPTH = 64

class TooDeepError(J1FilterError):
    pass


def snake_clean(value: Any, depth: int = 0) -> Any:
    """Snake-case every key at every depth and drop empty values; returns a new object."""
    if depth > MAX_DEPTH:
        raise TooDeepError(f"nesting deeper than {MAX_DEPTH} levels")
    if value.__class__ is list:
        items = []
        for item in value:
            kind = item.__class__
            if kind is dict or kind is list:
                item = snake_clean(item, depth + 1)
                if not item:
                    continue
            elif item is None or item == "":
                continue
            items.append(item)
        return items
    out = {}
    names = _NAMES
    for key, item in value.items():
        kind = item.__class__
        if kind is dict or kind is list:
            item = snake_clean(item, depth + 1)
            if not item:
                continue
        elif item is None or item == "":
            continue
        name = names.get(key) or snake_case(key)
        if name in out and key != name:
            continue  # a key already in snake_case wins a collision (fooBar vs foo_bar)
        out[name] = item
    return out


def get_path(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def delete_path(obj: dict[str, Any], path: tuple[str, ...]) -> None:
    """Remove the value at ``path`` and any parent dict left empty by that."""
    trail = []
    for key in path[:-1]:
        child = obj.get(key)
        if not isinstance(child, dict):
            return
        trail.append((obj, key))
        obj = child
    obj.pop(path[-1], None)
    for parent, key in reversed(trail):
        if parent[key]:
            break
        del parent[key]


def expand_dots(properties: dict[str, Any]) -> list[str]:
    """Expand the top-level dotted keys of ``properties`` in place (``tag.jira`` ->
    ``tag: {jira}``), as Elastic's ``dot_expander`` with ``field: '*'``. A value that meets
    an existing value at the same path joins it in a list. Returns one message per key
    that could not be expanded (a value stands where an object is needed); those keys are
    removed, their value stays in ``event.original``."""
    problems: list[str] = []
    for key in [k for k in properties if "." in k and k[0] != "."]:
        value = properties.pop(key)
        parts = key.split(".")
        if len(parts) > MAX_DEPTH:  # nothing may nest deeper than a whole entity may
            problems.append(f"properties.{key[:100]}...: cannot expand a key of {len(parts)} "
                            f"segments, deeper than {MAX_DEPTH} levels")
            continue
        if not all(parts):
            problems.append(f"properties.{key}: cannot expand [{key}], it has an empty path segment")
            continue
        node = properties
        blocked = None
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                blocked = ".".join(parts[: depth + 1])
                break
            node = child
        if blocked is not None:
            problems.append(
                f"properties.{key}: cannot expand [{key}], because [{blocked}] is not an object field, but a value field"
            )
            continue
        leaf = parts[-1]
        if leaf in node:
            existing = node[leaf]
            merged = existing if isinstance(existing, list) else [existing]
            merged.extend(value if isinstance(value, list) else [value])
            node[leaf] = merged
        else:
            node[leaf] = value
    return problems
