"""The Elasticsearch request bodies: ILM policy, final ingest pipeline, component and index
templates, the latest view's index and its transform. Pure functions of Names and the specs."""

from __future__ import annotations

from collections.abc import Iterable

from ..language.spec import MappingSpec
from .fieldtypes import (
    JsonObject,
    dynamic_templates,
    ecs_properties,
    jupiter_one_leaves,
    jupiter_one_properties,
)
from .names import Names

MANAGED = {"managed_by": "j1filter"}
#: Templates win over Elastic's JupiterOne integration (priority 200).
PRIORITY = 250
TOTAL_FIELDS_LIMIT = 5000


def ilm_policy(names: Names) -> JsonObject:
    return {
        "policy": {
            "phases": {
                "hot": {
                    "min_age": "0ms",
                    "actions": {"rollover": {"max_age": "7d", "max_primary_shard_size": "50gb"}},
                },
                "delete": {"min_age": "30d", "actions": {"delete": {}}},
            },
            "_meta": {
                **MANAGED,
                "description": "History of J1 entity versions: roll over weekly, "
                "delete 30 days after rollover",
            },
        }
    }


def raw_scalars(specs: list[MappingSpec], used: Iterable[str] = ()) -> list[str]:
    """Raw entity paths the templates map as a single value, outside `properties` (whose
    objects are flattened: subobjects false here, a flat_object on OpenSearch)."""
    return sorted(p for p in jupiter_one_leaves(specs, used) if not p.startswith("properties."))


# A raw J1 value where the template declares a scalar but the entity holds an object (a hostile
# or broken `entity._key: {...}`) would reject the whole document: move it out of the way, say
# so in error.message as j1filter does; the value stays in event.original.
_OBJECT_GUARD = """
def asset = ctx.jupiter_one instanceof Map ? ctx.jupiter_one.asset : null;
if (!(asset instanceof Map)) { return; }
List found = new ArrayList();
for (String path : params.scalars) {
  String[] parts = path.splitOnToken('.');
  def node = asset;
  for (int i = 0; i < parts.length - 1 && node instanceof Map; i++) { node = node[parts[i]]; }
  if (!(node instanceof Map) || !node.containsKey(parts[parts.length - 1])) { continue; }
  def value = node[parts[parts.length - 1]];
  boolean bad = value instanceof Map;
  if (value instanceof List) { for (def v : value) { bad = bad || v instanceof Map; } }
  if (bad) { node.remove(parts[parts.length - 1]); found.add('jupiter_one.asset.' + path); }
}
if (found.isEmpty()) { return; }
if (!(ctx.error instanceof Map)) { ctx.error = new HashMap(); }
def messages = ctx.error.message;
if (!(messages instanceof List)) { messages = messages == null ? new ArrayList() : [messages]; }
for (String path : found) {
  messages.add(path + ': an object where J1 has a single value; left out (the value is in event.original)');
}
ctx.error.message = messages;
if (!(ctx.event instanceof Map)) { ctx.event = new HashMap(); }
ctx.event.kind = 'pipeline_error';
""".strip()


def final_pipeline(names: Names, scalars: Iterable[str] = ()) -> JsonObject:
    """Keep raw J1 objects out of the raw scalar fields `scalars` (paths below
    jupiter_one.asset), then stamp event.ingested."""
    return {
        "description": "j1filter: keep raw J1 objects out of scalar fields, stamp event.ingested (the "
        "latest transform syncs on it). Nothing else: j1filter already produced the ECS document.",
        "processors": [
            {
                "script": {
                    "lang": "painless",
                    "source": _OBJECT_GUARD,
                    "params": {"scalars": sorted(scalars)},
                    "tag": "raw_objects_out_of_scalar_fields",
                }
            },
            {
                "set": {
                    "field": "event.ingested",
                    "value": "{{{_ingest.timestamp}}}",
                    "tag": "set_event_ingested",
                }
            },
        ],
        "_meta": MANAGED,
    }


def settings_component(names: Names) -> JsonObject:
    return {
        "template": {
            "settings": {
                "index": {
                    "lifecycle": {"name": names.ilm_policy},
                    # Elastic's JupiterOne ingest pipeline must not run again on finished documents.
                    "default_pipeline": "_none",
                    "final_pipeline": names.final_pipeline,
                    "mapping": {"total_fields": {"limit": TOTAL_FIELDS_LIMIT}},
                }
            }
        },
        "_meta": {
            **MANAGED,
            "description": "Source data stream settings: ILM policy, no default ingest pipeline",
        },
    }


def ecs_component(specs: list[MappingSpec], used: Iterable[str] = ()) -> JsonObject:
    return {
        "template": {"mappings": {"properties": ecs_properties(specs, used)}},
        "_meta": {**MANAGED, "description": "ECS fields j1filter and the shippers write; types from ECS"},
    }


def jupiter_one_component(specs: list[MappingSpec], used: Iterable[str] = ()) -> JsonObject:
    return {
        "template": {
            "mappings": {
                "date_detection": False,
                "numeric_detection": False,
                "dynamic_templates": dynamic_templates(specs),
                "properties": jupiter_one_properties(specs, used),
            }
        },
        "_meta": {
            **MANAGED,
            "description": "The raw J1 entity under jupiter_one.asset; types from the "
            "mappings' fields: coercions",
        },
    }


def _data_stream_fields(names: Names, *, constant: bool) -> JsonObject:
    if not constant:  # the latest view holds documents of any namespace the source had
        return {k: {"type": "keyword", "ignore_above": 1024} for k in ("type", "dataset", "namespace")}
    return {
        "type": {"type": "constant_keyword", "value": names.type},
        "dataset": {"type": "constant_keyword", "value": names.dataset},
        "namespace": {"type": "constant_keyword"},
    }


def _is_transform_source(value: str) -> JsonObject:
    # The label Elastic's dashboards filter on ("false" = latest view).
    return {"labels": {"properties": {"is_transform_source": {"type": "constant_keyword", "value": value}}}}


def source_template(names: Names) -> JsonObject:
    return {
        "index_patterns": [f"{names.stem}-*"],
        "data_stream": {},
        "priority": PRIORITY,
        "composed_of": [names.settings_component, names.ecs_component, names.jupiter_one_component],
        "template": {
            "mappings": {
                "properties": {
                    "data_stream": {"properties": _data_stream_fields(names, constant=True)},
                    **_is_transform_source("true"),
                }
            }
        },
        "_meta": {**MANAGED, "description": "j1filter ECS documents: history of every J1 entity version"},
    }


def latest_template(names: Names) -> JsonObject:
    return {
        "index_patterns": [f"{names.latest_template}-*"],
        "priority": PRIORITY,
        "composed_of": [names.ecs_component, names.jupiter_one_component],
        "template": {
            "settings": {
                "index": {
                    "default_pipeline": "_none",
                    "final_pipeline": "_none",
                    "mapping": {"total_fields": {"limit": TOTAL_FIELDS_LIMIT}},
                }
            },
            "mappings": {
                "properties": {
                    "data_stream": {"properties": _data_stream_fields(names, constant=False)},
                    **_is_transform_source("false"),
                }
            },
        },
        "_meta": {
            **MANAGED,
            "description": "Latest view (transform destination): one document per J1 entity",
        },
    }


def latest_index(names: Names) -> JsonObject:
    return {"aliases": {names.latest_alias: {}}}


def latest_transform(names: Names) -> JsonObject:
    return {
        "description": f"j1filter: latest version of every J1 entity in {names.data_stream} "
        f"(collections every {names.interval}, full snapshot every {names.full_interval})",
        "source": {
            "index": [names.data_stream],
            "query": {"bool": {"filter": [{"exists": {"field": "event.id"}}]}},
        },
        "dest": {"index": names.latest_index},
        # As Elastic's: one document per (dataset, J1 id), the newest collection wins.
        "latest": {"unique_key": ["event.dataset", "event.id"], "sort": "@timestamp"},
        "frequency": "1m",
        "sync": {"time": {"field": "event.ingested", "delay": "120s"}},
        # An entity no full snapshot has seen again within full interval + margin is gone from J1.
        "retention_policy": {"time": {"field": "@timestamp", "max_age": names.retention}},
        "settings": {"deduce_mappings": False, "unattended": True},
        "_meta": {**MANAGED, "interval": names.interval, "full_interval": names.full_interval},
    }
