"""j1filter: JupiterOne entities -> Elastic Common Schema documents.

The library API, in pipeline order (see README, "As a library")::

    import j1filter
    specs = j1filter.load_mappings(["my-mappings/"])      # load: shipped files, then yours
    compiled = j1filter.compile_mappings(specs)           # compile once: MappingError if invalid
    mapper = j1filter.Mapper(compiled, j1filter.Options(namespace="prod"))
    doc = mapper.map_entity(entity, original_text)        # map one entity
    stats = j1filter.run(source, sink, mapper)            # run a stream of lines (binary files)

Custom transforms go into a registry passed to ``compile_mappings``; nothing global changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._meta import ECS_VERSION, __version__
from .convert.registry import TransformRegistry, builtin_transforms
from .errors import J1FilterError, MappingError, Problem, TransformError
from .language.loader import load_mappings
from .language.spec import MappingSpec
from .runtime.compiler import CompiledMappings, field_types
from .runtime.mapper import Mapper, Options
from .stream import Stats, run


def compile_mappings(
    specs: Iterable[MappingSpec] | None = None, *, transforms: TransformRegistry | None = None
) -> CompiledMappings:
    """Check and bind mapping specs (default: the shipped mappings) once, with the built-in
    transforms or the given registry. Raises MappingError listing every problem."""
    return CompiledMappings(load_mappings() if specs is None else specs, transforms)


__all__ = [
    "ECS_VERSION",
    "CompiledMappings",
    "J1FilterError",
    "Mapper",
    "MappingError",
    "Options",
    "Problem",
    "Stats",
    "TransformError",
    "TransformRegistry",
    "__version__",
    "builtin_transforms",
    "compile_mappings",
    "field_types",
    "load_mappings",
    "run",
]
