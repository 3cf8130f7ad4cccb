"""Field types for the index templates, from the one source: ECS facts for ECS fields, the
mappings' own `fields:` coercions for `jupiter_one.*`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..ecs import ecs_fields
from ..language.spec import Expression, MappingSpec
from ..runtime.compiler import coercion_types as compiled_coercion_types
from ..runtime.compiler import compile_mappings

JsonObject = dict[str, Any]

#: Where the raw entity lands in the ECS document.
ASSET_ROOT = "jupiter_one.asset"

#: ECS fields written by something other than a mapping rule, so no rule names them.
INFRASTRUCTURE_ECS_FIELDS = (
    # the filter itself (runtime/mapper.py), also on error documents
    "@timestamp",
    "ecs.version",
    "event.original",
    "event.dataset",
    "event.module",
    "event.kind",
    "error.message",
    "error.type",
    "tags",
    # the final ingest pipeline; the latest transform syncs on it
    "event.ingested",
    # Filebeat (filestream) and Logstash
    "agent.id",
    "agent.name",
    "agent.type",
    "agent.version",
    "agent.ephemeral_id",
    "log.file.path",
    # Logstash http_poller failure events (j1-http-poller.conf)
    "url.full",
    "http.request.method",
    "host.hostname",
    "event.duration",
)
#: Fields outside ECS written by the shippers, with their mapping.
SHIPPER_FIELDS: dict[str, JsonObject] = {
    "@version": {"type": "keyword", "ignore_above": 1024},  # Logstash
    "input.type": {"type": "keyword", "ignore_above": 1024},  # Filebeat
    "log.offset": {"type": "long"},  # Filebeat
}
#: Collection metadata written by `collect` and honoured by the filter (design: current state).
COLLECTION_FIELDS: dict[str, JsonObject] = {
    "kind": {"type": "keyword", "ignore_above": 1024},
    "snapshot": {"type": "date"},
}
#: J1's entity metadata every entity carries (J1 data model); keyword unless a mapping coerces it.
ENTITY_METADATA = (
    "id",
    "entity._account_id",
    "entity._class",
    "entity._id",
    "entity._integration_class",
    "entity._integration_definition_id",
    "entity._integration_instance_id",
    "entity._integration_name",
    "entity._integration_type",
    "entity._key",
    "entity._scope",
    "entity._source",
    "entity._type",
    "entity._version",
    "entity._raw_data_hashes",
    "entity.display_name",
)

_KEYWORD: JsonObject = {"type": "keyword", "ignore_above": 1024}
# A coercion's result type -> the mapping of the raw field. Raw J1 values keep
# ignore_malformed: a value a mapping left as it was must never reject the document.
_COERCED: dict[str, JsonObject] = {
    "date": {"type": "date", "ignore_malformed": True},
    "long": {"type": "long", "ignore_malformed": True},
    "double": {"type": "double", "ignore_malformed": True},
    "ip": {"type": "ip", "ignore_malformed": True},
    "boolean": {"type": "boolean", "ignore_malformed": True},  # ES 8.8+
    "string": _KEYWORD,
}
# JSON value kinds a wildcard coercion's dynamic template must catch, per result type.
_DYNAMIC_KINDS = {
    "date": ("string", "long"),
    "long": ("string", "long"),
    "double": ("string", "long", "double"),
    "ip": ("string",),
    "boolean": ("string", "boolean"),
    "string": ("string", "long", "double", "boolean"),
}


def coercion_types(specs: Iterable[MappingSpec]) -> dict[str, str]:
    """Raw entity path (dotted, may hold `*` in its last segment) -> coercion result type, as
    the compiled mappings declare it (the transforms' declared result types); long + double
    -> double."""
    types = compiled_coercion_types(compile_mappings(specs))
    return {path: kind if kind in _COERCED else "string" for path, kind in types.items()}


def _paths_read(specs: Iterable[MappingSpec]) -> set[str]:
    """Raw entity paths the mappings read or drop as duplicates: they exist in J1's data."""
    paths: set[str] = set()
    for spec in specs:
        paths.update(".".join(p) for p in spec.duplicates)
        for rule in spec.rules:
            paths.update(".".join(s) for s in rule.sources if not isinstance(s, Expression))
    return paths


def ecs_targets(specs: Iterable[MappingSpec]) -> set[str]:
    """ECS leaf fields the rules can write (a rule writing an ECS object, e.g. `url`, any leaf under it)."""
    facts = ecs_fields()
    out: set[str] = set()
    for spec in specs:
        for rule in spec.rules:
            name = ".".join(rule.to)
            if name in facts and facts[name]["type"] != "object":
                out.add(name)
            else:
                out.update(f for f, v in facts.items() if f.startswith(name + ".") and v["type"] != "object")
    return out


def ecs_mapping(name: str) -> JsonObject:
    """The mapping ECS defines for one field."""
    facts = ecs_fields()[name]
    mapping: JsonObject = {"type": facts["type"]}
    for key in ("ignore_above", "index", "doc_values", "scaling_factor"):
        if key in facts:
            mapping[key] = facts[key]
    if facts.get("multi_fields"):
        mapping["fields"] = {m["name"]: {"type": m["type"]} for m in facts["multi_fields"]}
    return mapping


def nest(flat: dict[str, JsonObject]) -> JsonObject:
    """{"a.b": m} -> {"a": {"properties": {"b": m}}}, names sorted for a stable rendering."""
    root: JsonObject = {}
    for name in sorted(flat):
        node = root
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {}).setdefault("properties", {})
        node[leaf] = flat[name]
    return root


def ecs_properties(specs: Iterable[MappingSpec], extra: Iterable[str] = ()) -> JsonObject:
    names = ecs_targets(specs) | set(INFRASTRUCTURE_ECS_FIELDS) | set(extra)
    unknown = sorted(n for n in names if n not in ecs_fields() and n not in SHIPPER_FIELDS)
    if unknown:
        raise ValueError(f"not ECS fields: {', '.join(unknown)}")
    return nest({**{name: ecs_mapping(name) for name in names if name in ecs_fields()}, **SHIPPER_FIELDS})


def jupiter_one_leaves(specs: list[MappingSpec], used: Iterable[str] = ()) -> dict[str, JsonObject]:
    """Raw entity path -> mapping for every raw field known by name: coerced by a mapping,
    read by a rule, J1 entity metadata, or `used` (e.g. by a dashboard panel). Uncoerced -> keyword."""
    types = coercion_types(specs)
    known = {p for p in types if "*" not in p} | _paths_read(specs) | set(ENTITY_METADATA) | set(used)
    # a path that is the parent of another known path is an object (e.g. properties.port under
    # entity metadata), unless it sits below `properties` where objects are flattened
    leaves: dict[str, JsonObject] = {}
    for path in sorted(known):
        is_parent = any(other.startswith(path + ".") for other in known)
        if is_parent and not path.startswith("properties."):
            continue
        leaves[path] = _COERCED[types[path]] if path in types else _KEYWORD
    return leaves


def jupiter_one_properties(specs: list[MappingSpec], used: Iterable[str] = ()) -> JsonObject:
    leaves = jupiter_one_leaves(specs, used)
    flat_properties = {p[len("properties.") :]: m for p, m in leaves.items() if p.startswith("properties.")}
    nested = nest({p: m for p, m in leaves.items() if not p.startswith("properties.")})
    # Below `properties` J1 integrations disagree on shapes (Qualys `port: 3389`, Tenable
    # `port: {port: 443}`): subobjects false keeps both as the leaves `port` and `port.port`.
    nested["properties"] = {
        "type": "object",
        "subobjects": False,
        "properties": {k: flat_properties[k] for k in sorted(flat_properties)},
    }
    return {
        "jupiter_one": {
            "properties": {"asset": {"properties": nested}, "collection": {"properties": COLLECTION_FIELDS}}
        }
    }


def dynamic_templates(specs: list[MappingSpec]) -> list[JsonObject]:
    """Wildcard coercions first (e.g. `properties.*_on` -> date), then: any other raw J1 value
    is a keyword, so integrations that disagree on a type never make a mapping conflict."""
    out: list[JsonObject] = []
    for path, result in coercion_types(specs).items():
        if "*" not in path:
            continue
        stem = re.sub(r"[^a-z0-9]+", "_", path.replace("*", "")).strip(
            "_"
        )  # properties.*_on -> properties_on
        for kind in _DYNAMIC_KINDS[result]:
            out.append(
                {
                    f"j1_{stem}_{kind}_as_{result}": {
                        "path_match": f"{ASSET_ROOT}.{path}",
                        "match_mapping_type": kind,
                        "mapping": _COERCED[result],
                    }
                }
            )
    for kind in ("string", "long", "double", "boolean"):
        out.append(
            {
                f"j1_other_{kind}_as_keyword": {
                    "path_match": "jupiter_one.*",
                    "match_mapping_type": kind,
                    "mapping": _KEYWORD,
                }
            }
        )
    out.append({"catch_all_strings_as_keyword": {"match_mapping_type": "string", "mapping": _KEYWORD}})
    return out


def field_mapping(properties: JsonObject, name: str) -> JsonObject | None:
    """Look a dotted field up in rendered `properties` (honouring subobjects: false)."""
    node: JsonObject = {"properties": properties}
    parts = name.split(".")
    for i, part in enumerate(parts):
        children: JsonObject = node.get("properties", {})
        if node.get("subobjects") is False:
            leaf: JsonObject | None = children.get(".".join(parts[i:]))
            return leaf
        if part not in children:
            return None
        node = children[part]
    return node if "type" in node and node["type"] != "object" else None
