"""Transform registries: which transform names a compilation may use.

The built-in transforms live in :mod:`.transforms`, each with its contract (parameters,
per-item application, result type) declared on its factory; :func:`builtin_transforms` gives
a fresh :class:`TransformRegistry` holding them, which a caller may extend and pass to
``j1filter.compile_mappings(specs, transforms=...)``. Nothing global is ever mutated.

A result type is a :class:`.types.ValueType`: an Elasticsearch type (``keyword``, ``long``,
``double``, ``date``, ``ip``, ``boolean``, ``object``), ``same`` (the type of its input),
``any`` (unknown: the value is checked when it is written), or a function of the parameters
(``lookup``: the type of its table values).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..errors import ConfigurationError
from .transforms import TRANSFORMS, ResultType, Transform, ValueFn
from .types import ValueType


class TransformRegistry:
    """Named transforms a compilation may use. ``copy()`` before adding your own."""

    def __init__(self, entries: dict[str, Transform] | None = None):
        self._entries: dict[str, Transform] = dict(entries or {})

    def register(
        self,
        name: str,
        factory: Callable[..., ValueFn],
        *,
        result: ResultType | str,
        per_item: bool = False,
    ) -> None:
        """Add a transform: ``factory(**params)`` returns the function applied to values,
        which returns the new value, ``None`` for nothing, or raises TransformError.
        ``result`` is the type of what it returns (a ValueType or its name)."""
        if name in self._entries:
            raise ConfigurationError(f"transform '{name}' is already registered")
        declared = result if callable(result) else ValueType(result)
        self._entries[name] = Transform(name, factory, per_item, declared, (factory.__doc__ or "").strip())

    def get(self, name: str) -> Transform | None:
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def copy(self) -> TransformRegistry:
        return TransformRegistry(self._entries)

    def __iter__(self) -> Iterator[Transform]:
        return iter(self._entries[name] for name in self.names())


def builtin_transforms() -> TransformRegistry:
    """A new registry holding the built-in transforms."""
    return TransformRegistry(TRANSFORMS)
