"""Elastic Common Schema field facts, vendored: the one source of ECS field types.

``ecs-9.2.0-fields.json`` is taken unchanged from ``../shared/ecs``: the facts (name, type,
normalisation, allowed values, multi-fields) of the elastic/ecs repository's generated flat
field list at tag v9.2.0. Descriptions are left out.
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import Any

import orjson

from .._meta import ECS_VERSION
from ..errors import ConfigurationError

FIELDS_FILE = f"ecs-{ECS_VERSION}-fields.json"


@functools.lru_cache(maxsize=1)
def ecs_fields() -> dict[str, dict[str, Any]]:
    """Every ECS field by dotted name: ``{"type": ..., "normalize": [...], ...}``."""
    data = orjson.loads(importlib.resources.files(__name__).joinpath(FIELDS_FILE).read_bytes())
    if data.get("ecs_version") != ECS_VERSION:
        raise ConfigurationError(f"{FIELDS_FILE} is ECS {data.get('ecs_version')}, expected {ECS_VERSION}")
    fields: dict[str, dict[str, Any]] = data["fields"]
    return fields


def field_type(name: str) -> str | None:
    """The ECS type of a dotted field name (``keyword``, ``long``, ``ip``, ...), or None if not ECS."""
    spec = ecs_fields().get(name)
    return None if spec is None else str(spec["type"])
