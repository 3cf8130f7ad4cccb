"""Transform registries: which transform names a compilation may use, and what each returns.

The built-in transforms live in :mod:`.transforms`; :func:`builtin_transforms` gives a fresh
:class:`TransformRegistry` holding them, which a caller may extend and pass to
``j1filter.compile_mappings(specs, transforms=...)``. Nothing global is ever mutated.

Every transform declares its result type, so ``j1filter check`` can tell whether its output
fits the ECS field a rule writes: an Elasticsearch type (``keyword``, ``long``, ``double``,
``date``, ``ip``, ``boolean``, ``object``), ``same`` (the type of its input), ``any``
(unknown: the value is checked when it is written), or a function of the parameters
(``lookup``: the type of its table values).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import J1FilterError
from .transforms import TRANSFORMS, ValueFn

ResultType = str | Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class RegisteredTransform:
    name: str
    factory: Callable[..., ValueFn]  # keyword parameters from YAML -> the value function
    per_item: bool  # applied to each item of a list
    result: ResultType
    doc: str

    def result_type(self, params: dict[str, Any]) -> str:
        return self.result(params) if callable(self.result) else self.result


def _scalar_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "keyword"
    return "object" if isinstance(value, dict) else "any"


def constant_type(values: list[Any]) -> str:
    """One type for a set of constants (``long`` and ``double`` together make ``double``)."""
    kinds = {_scalar_type(v) for v in values if v is not None}
    if kinds == {"long", "double"}:
        return "double"
    return kinds.pop() if len(kinds) == 1 else "any"


def _lookup_result(params: dict[str, Any]) -> str:
    table = params.get("table")
    values = list(table.values()) if isinstance(table, dict) else []
    return constant_type(values + [params.get("default")])


#: The declared result type of every built-in transform.
BUILTIN_RESULTS: dict[str, ResultType] = {
    "date": "date",
    "long": "long",
    "double": "double",
    "boolean": "boolean",
    "ip": "ip",
    "only_ips": "ip",
    "string": "keyword",
    "lowercase": "keyword",
    "uppercase": "keyword",
    "trim": "keyword",
    "mac": "keyword",
    "basename": "keyword",
    "extract": "keyword",
    "lookup": _lookup_result,
    "only_urls": "keyword",
    "first": "same",
    "to_list": "same",
    "split": "keyword",
    "url_parts": "object",
    "duration_ns": "long",
    "cvss_version": "keyword",
    "cvss_classification": "keyword",
    "id_scheme": "keyword",
    "command_line_args": "keyword",
    "executable_name": "keyword",
    "cve_ids": "keyword",
    "by_key": "any",
    "capitalize": "keyword",
}


class TransformRegistry:
    """Named transforms a compilation may use. ``copy()`` before adding your own."""

    def __init__(self, entries: dict[str, RegisteredTransform] | None = None):
        self._entries: dict[str, RegisteredTransform] = dict(entries or {})

    def register(
        self, name: str, factory: Callable[..., ValueFn], *, result: ResultType, per_item: bool = False
    ) -> None:
        """Add a transform: ``factory(**params)`` returns the function applied to values,
        which returns the new value, ``None`` for nothing, or raises TransformError."""
        if name in self._entries:
            raise J1FilterError(f"transform '{name}' is already registered")
        self._entries[name] = RegisteredTransform(
            name, factory, per_item, result, (factory.__doc__ or "").strip()
        )

    def get(self, name: str) -> RegisteredTransform | None:
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def copy(self) -> TransformRegistry:
        return TransformRegistry(self._entries)

    def __iter__(self) -> Iterator[RegisteredTransform]:
        return iter(self._entries[name] for name in self.names())


def builtin_transforms() -> TransformRegistry:
    """A new registry holding the built-in transforms."""
    return TransformRegistry(
        {
            name: RegisteredTransform(
                name, entry.factory, entry.per_item, BUILTIN_RESULTS.get(name, "any"), entry.doc
            )
            for name, entry in TRANSFORMS.items()
        }
    )
