"""j1filter: JupiterOne entities -> Elastic Common Schema documents.

The library API, in pipeline order (see README, "As a library")::

    import j1filter
    specs = j1filter.load_mappings(["my-mappings/"])      # parse: shipped files, then yours
    compiled = j1filter.compile_mappings(specs)           # check, bind: MappingError if invalid
    mapper = j1filter.Mapper(compiled, j1filter.Options(namespace="prod"))
    doc = mapper.map_entity(entity, original_text)        # map one entity
    stats = j1filter.run(source, sink, mapper)            # run a stream of lines (binary files)

``j1filter.compile_mappings()`` without specs compiles the shipped mappings;
``j1filter.compile_files(["my-mappings/"])`` reads, checks and binds files in one call, its
MappingError listing the problems of every stage (what ``j1filter check`` reports). Custom
transforms go into a registry passed to ``compile_mappings``; nothing global changes.
"""

from __future__ import annotations

from ._meta import ECS_VERSION, __version__
from .convert.registry import TransformRegistry, builtin_transforms
from .errors import J1FilterError, MappingError, Problem, TransformError
from .language.loader import load_mappings
from .runtime.compiler import CompiledMappings, compile_files, compile_mappings, field_types
from .runtime.mapper import Mapper, Options
from .stream import Stats, run

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
    "compile_files",
    "compile_mappings",
    "field_types",
    "load_mappings",
    "run",
]
