"""The OpenSearch request bodies, from the same type source as the Elasticsearch ones.

What changes from the Elasticsearch set, and why (docs/opensearch.md has the full table):

- `jupiter_one.asset.properties` (`subobjects: false` in Elasticsearch, which OpenSearch lacks)
  becomes one `flat_object`: J1 integrations disagree on shapes below it (`port: 3389` vs
  `port: {port: 443}`), and only a flat object takes both. Its leaves are searchable as strings
  (term, prefix, range, wildcard), not as dates or numbers, and cannot be aggregated.
- A raw J1 boolean with `ignore_malformed` (refused by OpenSearch's boolean) becomes a keyword:
  a malformed raw value must never reject the document. `true` still matches `true`.
- `constant_keyword` (OpenSearch needs a fixed value) becomes `keyword`;
  `labels.is_transform_source`, which only Elastic's dashboards read, is left out.
- `wildcard` gets `doc_values: true`, as Elasticsearch's always has (OpenSearch < 3.4: false).
- No ILM: an ISM policy attaches itself to new backing indices through its `ism_template`.
- No latest transform: the current state is a second write, by Logstash, into a regular index
  whose `_id` is the J1 entity, with the collection time as external version (`external_gte`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from ..language.spec import MappingSpec
from . import elasticsearch as es
from .fieldtypes import ASSET_ROOT, JsonObject
from .names import Names

#: The index template version 2.19 accepts (ISM priority mirrors the template priority).
PRIORITY = es.PRIORITY
KEYWORD: JsonObject = {"type": "keyword", "ignore_above": 1024}
#: Below this object every raw J1 property lands in one flat_object (no subobjects in OpenSearch).
FLAT_PROPERTIES = f"{ASSET_ROOT}.properties"


def translate_mapping(mapping: JsonObject) -> JsonObject:
    """One Elasticsearch field mapping -> its OpenSearch counterpart (see the module docstring)."""
    kind = mapping.get("type")
    if kind == "boolean" and mapping.get("ignore_malformed"):
        return dict(KEYWORD)
    if kind == "constant_keyword":
        return dict(KEYWORD)
    if kind == "wildcard":
        return {**mapping, "doc_values": True}
    return mapping


def translate_properties(properties: JsonObject) -> JsonObject:
    """Every field of rendered Elasticsearch `properties`, translated; an object with
    `subobjects: false` becomes one flat_object."""
    out: JsonObject = {}
    for name, node in properties.items():
        if node.get("subobjects") is False:
            out[name] = {"type": "flat_object"}
        elif "properties" in node and "type" not in node:
            out[name] = {**node, "properties": translate_properties(node["properties"])}
        else:
            translated = translate_mapping(node)
            if "fields" in translated:
                translated = {
                    **translated,
                    "fields": {k: translate_mapping(v) for k, v in translated["fields"].items()},
                }
            out[name] = translated
    return out


def ism_policy(names: Names) -> JsonObject:
    """ILM's hot (roll over weekly or at 50 GB a primary shard) -> delete 30 days after rollover.
    ISM checks its conditions every job interval (5 minutes by default), ILM every 10."""
    ilm = es.ilm_policy(names)["policy"]["phases"]
    rollover = ilm["hot"]["actions"]["rollover"]
    return {
        "policy": {
            "description": "j1filter: history of J1 entity versions: roll over weekly, "
            "delete 30 days after rollover",
            "default_state": "hot",
            "states": [
                {
                    "name": "hot",
                    "actions": [
                        {
                            "rollover": {
                                "min_index_age": rollover["max_age"],
                                "min_primary_shard_size": rollover["max_primary_shard_size"],
                            }
                        }
                    ],
                    "transitions": [
                        {"state_name": "delete", "conditions": {"min_rollover_age": ilm["delete"]["min_age"]}}
                    ],
                },
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
            ],
            # matched against the data stream's name, for backing indices created after the policy
            "ism_template": [{"index_patterns": [f"{names.stem}-*"], "priority": PRIORITY}],
        }
    }


def final_pipeline(names: Names, scalars: Iterable[str] = ()) -> JsonObject:
    """The Elasticsearch pipeline without `_meta` (OpenSearch 2.19 refuses it on pipelines)."""
    body = es.final_pipeline(names, scalars)
    del body["_meta"]
    body["description"] = (
        "j1filter (managed_by j1filter): keep raw J1 objects out of scalar fields, stamp event.ingested "
        "(when the engine received the document). j1filter already produced the ECS document."
    )
    return body


def settings_component(names: Names) -> JsonObject:
    body = copy.deepcopy(es.settings_component(names))
    del body["template"]["settings"]["index"]["lifecycle"]  # ISM attaches by ism_template instead
    body["_meta"]["description"] = (
        "Source data stream settings: no default ingest pipeline (ISM policy attaches itself)"
    )
    return body


def ecs_component(specs: list[MappingSpec], used: Iterable[str] = ()) -> JsonObject:
    body = es.ecs_component(specs, used)
    body["template"]["mappings"]["properties"] = translate_properties(
        body["template"]["mappings"]["properties"]
    )
    return body


def jupiter_one_component(specs: list[MappingSpec], used: Iterable[str] = ()) -> JsonObject:
    body = es.jupiter_one_component(specs, used)
    mappings = body["template"]["mappings"]
    mappings["properties"] = translate_properties(mappings["properties"])
    # Dynamic templates below the flat_object never fire: leave them out.
    mappings["dynamic_templates"] = [
        {name: {**t, "mapping": translate_mapping(t["mapping"])}}
        for entry in mappings["dynamic_templates"]
        for name, t in entry.items()
        if not t.get("path_match", "").startswith(FLAT_PROPERTIES + ".")
    ]
    body["_meta"]["description"] = (
        "The raw J1 entity under jupiter_one.asset (properties: one flat_object); types from the "
        "mappings' fields: coercions"
    )
    return body


def _data_stream_keywords() -> JsonObject:
    return {"data_stream": {"properties": {k: dict(KEYWORD) for k in ("type", "dataset", "namespace")}}}


def source_template(names: Names) -> JsonObject:
    body = es.source_template(names)
    body["template"]["mappings"]["properties"] = _data_stream_keywords()
    return body


def current_template(names: Names) -> JsonObject:
    """The current-state indices: regular indices (not data streams: only they take external
    versions), the same mappings, event.ingested stamped by the same final pipeline.
    Elasticsearch's latest-index template, but written by Logstash rather than a transform."""
    body = copy.deepcopy(es.latest_template(names))
    body["template"]["settings"]["index"]["final_pipeline"] = names.final_pipeline
    body["template"]["mappings"] = {"properties": _data_stream_keywords()}
    body["_meta"]["description"] = (
        "Current state: one document per J1 entity, _id = event.id, version = collection time (external_gte)"
    )
    return body


def current_index(names: Names) -> JsonObject:
    return {"aliases": {names.latest_alias: {"is_write_index": True}}}


def prune_query(names: Names) -> JsonObject:
    """`_delete_by_query` on the current state: entities no collection has seen within the
    retention (deleted in J1 without a new version, or forgotten) go, as the transform's
    retention_policy removes them on Elasticsearch."""
    return {"query": {"range": {"@timestamp": {"lt": f"now-{names.retention}"}}}}
