"""j1filter: JupiterOne entities -> Elastic Common Schema documents.

    import j1filter
    mapper = j1filter.Mapper()                   # the shipped mappings
    doc = mapper.map_entity(entity, original_text)

The pipeline is load (YAML with positions) -> compile (checked, generated code) -> map.
"""

from ._meta import ECS_VERSION, __version__
from .runtime.compiler import CompiledMappings
from .errors import J1FilterError, MappingError, Problem, TransformError
from .language.loader import load_mapping, load_mappings, parse_mapping
from .runtime.mapper import Mapper, Options
from .shell.stream import Mapped, Stats, map_line, run
from .convert.transforms import TRANSFORMS, transform

__all__ = [
    "ECS_VERSION", "__version__", "CompiledMappings", "J1FilterError", "MappingError", "Problem",
    "TransformError", "load_mapping", "load_mappings", "parse_mapping", "Mapper", "Options",
    "Mapped", "Stats", "map_line", "run", "TRANSFORMS", "transform",
]
