"""Dotted-path access to nested dicts, and the preparation of a raw entity.

Preparation is one recursive pass that renames every key to snake_case and drops
``null``, ``""``, ``[]`` and ``{}`` values (bottom-up, so containers emptied by the
cleaning go too): the key rename and the cleanup Elastic's pipeline does in two steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..convert.casing import _CACHE as _NAMES
from ..convert.casing import snake_case
from ..errors import TooDeepError

#: Deepest nesting accepted in an entity. orjson refuses output nested more than 254
#: levels deep, and nothing in J1's data model comes near this.
MAX_DEPTH = 64


class PerKeySet(dict[tuple[str, ...], Any]):
    """What ``compute`` says of a key set, remembered: the objects of one kind of entity
    repeat their key sets, so the work per key is done once. Bounded for hostile input: at
    most 1,024 key sets of at most 4,096 characters are kept."""

    LIMIT, CHARS = 1024, 4096

    def __init__(self, compute: Callable[[tuple[str, ...]], Any]):
        super().__init__()
        self.compute = compute

    def learn(self, key_set: tuple[str, ...]) -> Any:
        """``compute(key_set)``, kept for next time (call after ``get`` found nothing)."""
        value = self.compute(key_set)
        if sum(map(len, key_set)) <= self.CHARS:
            if len(self) >= self.LIMIT:
                self.clear()
            self[key_set] = value
        return value


def distinct_snake_names(key_set: tuple[str, ...]) -> tuple[str, ...] | None:
    """The snake_case names of ``key_set`` in order; None when two keys share a name."""
    names = tuple(_NAMES.get(key) or snake_case(key) for key in key_set)
    return names if len(set(names)) == len(names) else None


_SNAKE_NAMES = PerKeySet(distinct_snake_names)


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
    key_set = tuple(value)
    names = _SNAKE_NAMES.get(key_set)
    if names is None:
        names = _SNAKE_NAMES.learn(key_set)
        if names is None:  # two keys share a snake_case name
            return _clean_colliding(value, depth)
    out = {}
    for name, item in zip(names, value.values()):
        kind = item.__class__
        if kind is dict or kind is list:
            item = snake_clean(item, depth + 1)
            if not item:
                continue
        elif item is None or item == "":
            continue
        out[name] = item
    return out


def _clean_colliding(value: dict[str, Any], depth: int) -> dict[str, Any]:
    """An object with keys that share a snake_case name (``fooBar``, ``foo_bar``): of those
    with a value, the key already in snake_case wins, else the first."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        cleaned = snake_clean({"": item}, depth).get("")  # the value as snake_clean leaves it, or None
        name = _NAMES.get(key) or snake_case(key)
        if cleaned is not None and (name not in out or key == name):
            out[name] = cleaned
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


def dotted_keys(key_set: tuple[str, ...]) -> tuple[str, ...]:
    """The keys to expand: with a dot, not at the start."""
    return tuple(key for key in key_set if "." in key and key[0] != ".")


#: How to expand one dotted key: the key, the names of the objects above its value and its
#: leaf name, or what is wrong with it (then it is removed, not expanded).
Expansion = tuple[str, tuple[str, ...], str, str | None]


def expansions(dotted: tuple[str, ...]) -> tuple[Expansion, ...]:
    """The :data:`Expansion` of each dotted key, worked out once per key set."""
    found = []
    for key in dotted:
        parts = key.split(".")
        refused = None
        if len(parts) > MAX_DEPTH:  # nothing may nest deeper than a whole entity may
            refused = (
                f"properties.{key[:100]}...: cannot expand a key of {len(parts)} "
                f"segments, deeper than {MAX_DEPTH} levels"
            )
        elif not all(parts):
            refused = f"properties.{key}: cannot expand [{key}], it has an empty path segment"
        found.append((key, tuple(parts[:-1]), parts[-1], refused))
    return tuple(found)


_EXPANSIONS = PerKeySet(lambda key_set: expansions(dotted_keys(key_set)))


def expand_dots(properties: dict[str, Any]) -> list[str]:
    """Expand the top-level dotted keys of ``properties`` in place (``tag.jira`` ->
    ``tag: {jira}``), as Elastic's ``dot_expander`` with ``field: '*'``. A value that meets
    an existing value at the same path joins it in a list. Returns one message per key
    that could not be expanded (a value stands where an object is needed); those keys are
    removed, their value stays in ``event.original``."""
    key_set = tuple(properties)
    planned = _EXPANSIONS.get(key_set)
    if planned is None:
        planned = _EXPANSIONS.learn(key_set)
    return expand_keys(properties, planned)


_MISSING = object()


def expanded_name(key: str) -> str | None:
    """The top-level name a dotted key expands to, or None when it cannot be expanded."""
    parts = key.split(".")
    return parts[0] if len(parts) <= MAX_DEPTH and all(parts) else None


def expand_keys(properties: dict[str, Any], planned: tuple[Expansion, ...]) -> list[str]:
    """:func:`expand_dots` for the given :func:`expansions` (keys not in ``properties`` skipped)."""
    problems: list[str] = []
    for key, parents, leaf, refused in planned:
        value = properties.pop(key, _MISSING)
        if value is _MISSING:
            continue
        if refused is not None:
            problems.append(refused)
            continue
        node = properties
        blocked = None
        for depth, part in enumerate(parents):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                blocked = ".".join(parents[: depth + 1])
                break
            node = child
        if blocked is not None:
            problems.append(
                f"properties.{key}: cannot expand [{key}], because [{blocked}] is not an object field, but a value field"
            )
            continue
        if leaf in node:
            existing = node[leaf]
            merged = existing if isinstance(existing, list) else [existing]
            merged.extend(value if isinstance(value, list) else [value])
            node[leaf] = merged
        else:
            node[leaf] = value
    return problems
