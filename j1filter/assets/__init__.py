"""The asset renderer: every Elasticsearch and Kibana asset the deployment uses, rendered from the
one source of field types (ECS facts and the mappings' own coercions)."""

from ..errors import AssetNameError
from .bundle import render, write
from .names import Names

__all__ = ["AssetNameError", "Names", "render", "write"]
