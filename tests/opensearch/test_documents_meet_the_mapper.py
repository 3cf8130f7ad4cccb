"""Every document j1filter writes meets OpenSearch's real mapper through the shipped assets.

Two asset sets, each with the same documents and the same requirements:
- `opensearch`: logstash/opensearch as `j1filter assets --engine opensearch` renders it,
  loaded by its own install.sh;
- `elasticsearch`: the shipped Elasticsearch templates and pipeline after the short translation
  below (what OpenSearch lacks), under other names so both sets live side by side.

Documents are written as logstash-output-opensearch writes them (bulk `create` into the data
stream, the document id rule of the shipped pipeline, the final ingest pipeline run by the
index settings): the bundled samples, Elastic's golden input (when ../shared is present), the
hostile sweep's output and a generated corpus of 100,000 entities over every mapped source.
Required: no document rejected; a 409 only for an id sent before; the ingest pipeline ran on
every document; for every field j1filter emitted, the type OpenSearch reports in GET _mapping is
the type the templates declare; the field count stays under the limit.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import io
import json
import os
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from corpus import Corpus
from engine import (
    OPENSEARCH_CONF,
    BulkResult,
    IdRule,
    bulk,
    count,
    creates,
    emitted_leaves,
    leaf_types,
    mapped_types,
    refresh,
)
from node import FIGURES, REPO, Client, Node

from j1filter.assets import Names, render, write
from j1filter.runtime.compiler import compile_mappings
from j1filter.runtime.mapper import Mapper
from j1filter.stream import run as filter_stream
from tests.conftest import ELASTIC_FIXTURES, SAMPLES, SHARED
from tests.test_hostile_input import HOSTILE, WRAPPERS, Mutation, load_samples, make_case, sampled_cases

CORPUS_SIZE = int(os.environ.get("J1FILTER_OPENSEARCH_CORPUS", "100000"))
FLAT = ("jupiter_one.asset.properties",)
ES_ASSETS = REPO / "logstash" / "elasticsearch"

# The translation of the Elasticsearch assets for OpenSearch 2.19, the whole list:
# 1. an object with `subobjects: false` (jupiter_one.asset.properties) -> `flat_object`;
# 2. `ignore_malformed` on a `boolean` (ES 8.8+) -> `keyword` (OpenSearch refuses the parameter,
#    and without it a malformed raw value would reject the document);
# 3. `constant_keyword` without `value` (data_stream.namespace) -> `keyword` (OpenSearch
#    requires the value);
# 4. the setting `index.lifecycle` (ILM) is dropped;
# 5. the pipeline's `_meta` is dropped (OpenSearch 2.19 refuses it on pipelines).
# Names get an `es-` prefix and the index template matches the namespace `esassets` only.
ES_NAMESPACE = "esassets"


def _translate_es(node: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, child in node.items():
        if child.get("subobjects") is False:
            out[name] = {"type": "flat_object"}  # 1
        elif "properties" in child and "type" not in child:
            out[name] = {**child, "properties": _translate_es(child["properties"])}
        elif child.get("type") == "boolean" and child.get("ignore_malformed"):
            out[name] = {"type": "keyword", "ignore_above": 1024}  # 2
        elif child.get("type") == "constant_keyword" and "value" not in child:
            out[name] = {"type": "keyword", "ignore_above": 1024}  # 3
        else:
            out[name] = child
    return out


@dataclass
class AssetSet:
    name: str
    data_stream: str
    pipeline: str
    mappings: dict[str, Any]  # the composed mappings the templates declare
    total_fields_limit: int


def _compose(index_template: dict, components: dict[str, dict]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    dynamic: list[dict] = []

    def merge(dst: dict, src: dict) -> None:
        for key, value in src.items():
            if key in dst and "properties" in dst[key] and "properties" in value:
                merge(dst[key]["properties"], value["properties"])
            else:
                dst[key] = copy.deepcopy(value)

    parts = [components[n]["template"].get("mappings", {}) for n in index_template["composed_of"]]
    for part in [*parts, index_template["template"].get("mappings", {})]:
        merge(properties, part.get("properties", {}))
        dynamic += part.get("dynamic_templates", [])
    return {"properties": properties, "dynamic_templates": dynamic}


def install_opensearch_set(node: Node, out: Path) -> AssetSet:
    """The rendered OpenSearch set, loaded by its own install.sh (no ISM plugin in the node)."""
    write(render(engine="opensearch"), out)
    env = {**os.environ, "OPENSEARCH_URL": node.url, "J1_ISM": "false"}
    done = subprocess.run(
        ["sh", str(out / "opensearch" / "install.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    bodies = {p.name: json.loads(p.read_text()) for p in (out / "opensearch").glob("*.json")}
    names = Names()
    components = {
        names.ecs_component: bodies["component-template-ecs-mappings.json"],
        names.jupiter_one_component: bodies["component-template-jupiter_one-mappings.json"],
        names.settings_component: bodies["component-template-settings.json"],
    }
    settings = bodies["component-template-settings.json"]["template"]["settings"]["index"]
    return AssetSet(
        "opensearch",
        names.data_stream,
        names.final_pipeline,
        _compose(bodies["index-template-source.json"], components),
        settings["mapping"]["total_fields"]["limit"],
    )


def install_elasticsearch_set(client: Client) -> AssetSet:
    """The shipped Elasticsearch assets, translated (the list above), under `es-` names."""
    names = Names()
    bodies = {p.name: json.loads(p.read_text()) for p in ES_ASSETS.glob("*.json")}
    pipeline = {k: v for k, v in bodies["ingest-pipeline-final.json"].items() if k != "_meta"}  # 5
    client.ok("PUT", f"/_ingest/pipeline/es-{names.final_pipeline}", pipeline)
    components = {}
    for original, file in (
        (names.settings_component, "component-template-settings.json"),
        (names.ecs_component, "component-template-ecs-mappings.json"),
        (names.jupiter_one_component, "component-template-jupiter_one-mappings.json"),
    ):
        body = copy.deepcopy(bodies[file])
        template = body["template"]
        if "mappings" in template:
            template["mappings"]["properties"] = _translate_es(template["mappings"]["properties"])
        if "settings" in template:
            template["settings"]["index"].pop("lifecycle")  # 4
            template["settings"]["index"]["final_pipeline"] = f"es-{names.final_pipeline}"
        components[f"es-{original}"] = body
        client.ok("PUT", f"/_component_template/es-{original}", body)
    source = copy.deepcopy(bodies["index-template-source.json"])
    source["index_patterns"] = [f"{names.stem}-{ES_NAMESPACE}*"]
    source["priority"] += 10
    source["composed_of"] = [f"es-{n}" for n in source["composed_of"]]
    source["template"]["mappings"]["properties"] = _translate_es(source["template"]["mappings"]["properties"])
    client.ok("PUT", f"/_index_template/es-{names.source_template}", source)
    limit = bodies["component-template-settings.json"]["template"]["settings"]["index"]["mapping"]
    return AssetSet(
        "elasticsearch",
        f"{names.stem}-{ES_NAMESPACE}",
        f"es-{names.final_pipeline}",
        _compose(source, components),
        limit["total_fields"]["limit"],
    )


# -- the documents ------------------------------------------------------------------------


@functools.cache
def mapper() -> Mapper:
    return Mapper(compile_mappings())


def map_lines(lines: bytes) -> list[bytes]:
    out = io.BytesIO()
    filter_stream(io.BytesIO(lines), out, mapper())
    return out.getvalue().splitlines()


def hostile_lines() -> bytes:
    samples = load_samples()
    cases = [case for cases in sampled_cases(150).values() for case in cases]
    for wrapper in WRAPPERS:
        for spot in (
            "properties.description",
            "entity._createdOn",
            "entity._deleted",
            "properties.numericSeverity",
        ):
            cases += [make_case(samples, Mutation(0, spot, name), wrapper) for name in HOSTILE]
    return b"".join(case.line + b"\n" for case in cases)


@dataclass
class Group:
    name: str
    documents: list[bytes]  # j1filter's output lines


@pytest.fixture(scope="module")
def groups() -> list[Group]:
    started = time.perf_counter()
    found = [
        Group("samples", map_lines(SAMPLES.read_bytes())),
        Group("hostile sweep", map_lines(hostile_lines())),
    ]
    if SHARED.exists():
        golden = b"".join(
            p.read_bytes().rstrip(b"\n") + b"\n" for p in sorted(ELASTIC_FIXTURES.glob("*.log"))
        )
        golden += (SHARED / "fixtures" / "j1-datamodel-examples.ndjson").read_bytes()
        found.append(Group("golden inputs", map_lines(golden)))
    corpus = Corpus()
    documents: list[bytes] = []
    for start in range(0, CORPUS_SIZE, 10_000):
        documents += map_lines(corpus.lines(min(10_000, CORPUS_SIZE - start), seed=start))
    found.append(Group(f"corpus of {CORPUS_SIZE:,}", documents))
    FIGURES["documents generated and mapped"] = (
        f"{sum(len(g.documents) for g in found):,} in {time.perf_counter() - started:.1f} s"
    )
    return found


# -- indexing -----------------------------------------------------------------------------


@dataclass
class Outcome:
    assets: AssetSet
    results: dict[str, BulkResult]
    expected_conflicts: dict[str, int]
    values: dict[str, Any] = field(default_factory=dict)  # emitted leaf -> one value seen
    resent: BulkResult | None = None


def _index_group(
    client: Client, assets: AssetSet, group: Group, rule: IdRule, seen: set[str]
) -> tuple[BulkResult, int, dict]:
    values: dict[str, Any] = {}
    repeats = 0

    def actions() -> Iterator[tuple[dict, dict]]:
        nonlocal repeats
        for line in group.documents:
            doc = orjson.loads(line)
            for leaf in emitted_leaves(doc, flat=FLAT):
                values.setdefault(leaf, doc)
            ((action, body),) = creates(assets.data_stream, [doc], rule)
            doc_id = action["create"]["_id"]
            repeats += doc_id in seen
            seen.add(doc_id)
            yield action, body

    result = bulk(client, actions())
    return result, repeats, values


@pytest.fixture(scope="module", params=["opensearch", "elasticsearch"])
def outcome(request, opensearch_node: Node, groups: list[Group], tmp_path_factory) -> Outcome:
    client = opensearch_node.client
    if request.param == "opensearch":
        assets = install_opensearch_set(opensearch_node, tmp_path_factory.mktemp("assets"))
    else:
        assets = install_elasticsearch_set(client)
    rule = IdRule.from_conf(OPENSEARCH_CONF)
    seen: set[str] = set()
    results, expected, values = {}, {}, {}
    for group in groups:
        result, repeats, group_values = _index_group(client, assets, group, rule, seen)
        results[group.name], expected[group.name] = result, repeats
        for leaf, doc in group_values.items():
            values.setdefault(leaf, doc)
        if group.name.startswith("corpus"):
            FIGURES[f"_bulk throughput, {assets.name} assets"] = (
                f"{result.docs_per_second:,.0f} documents/s, {result.bytes / result.seconds / 1e6:.1f} MB/s "
                f"({result.created:,} documents, {result.bytes / 1e6:.0f} MB in {result.seconds:.1f} s)"
            )
    refresh(client, assets.data_stream)
    samples = [orjson.loads(line) for line in groups[0].documents]
    resent = bulk(client, creates(assets.data_stream, samples, rule))
    return Outcome(assets, results, expected, values, resent)


def test_no_document_is_rejected(outcome: Outcome) -> None:
    problems = []
    for name, result in outcome.results.items():
        if result.rejected:
            reasons = sorted({r.split(" in document ")[0] for r in result.rejected})
            problems.append(f"{name}: {len(result.rejected)} rejected:\n  " + "\n  ".join(reasons[:20]))
        if result.conflicts > outcome.expected_conflicts[name]:
            problems.append(
                f"{name}: {result.conflicts} answered 409, but only "
                f"{outcome.expected_conflicts[name]} ids had been sent before"
            )
        if not result.created:
            problems.append(f"{name}: nothing indexed")
    assert not problems, f"{outcome.assets.name} assets:\n" + "\n".join(problems)


def test_a_resent_document_is_a_409_and_nothing_else(outcome: Outcome) -> None:
    assert outcome.resent is not None
    assert outcome.resent.statuses.keys() == {409}, outcome.resent.rejected[:3]


def test_the_ingest_pipeline_ran_on_every_document(outcome: Outcome, opensearch: Client) -> None:
    index = outcome.assets.data_stream
    total = sum(r.created for r in outcome.results.values())
    assert count(opensearch, index) == total
    missing = count(opensearch, index, {"bool": {"must_not": {"exists": {"field": "event.ingested"}}}})
    assert missing == 0, (
        f"{missing} of {total} documents without event.ingested: the final pipeline did not run"
    )
    settings = opensearch.ok("GET", f"/{index}/_settings")
    assert {s["settings"]["index"]["final_pipeline"] for s in settings.values()} == {outcome.assets.pipeline}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    return "string" if isinstance(value, str) else "object"


def _leaf_value(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(doc, list):
            doc = next((d for d in doc if isinstance(d, dict) and part in d), {})
        doc = doc.get(part) if isinstance(doc, dict) else None
    while isinstance(doc, list):
        doc = next((d for d in doc if d is not None), None)
    return doc


#: The declared type of a field below `dynamic: false`: kept in _source, no field in the mapping.
NOT_INDEXED = "not indexed (dynamic: false)"


def _dynamic_at(properties: dict[str, Any], path: str) -> bool:
    """Whether an unknown field at `path` is indexed: the `dynamic` setting of the nearest
    declared enclosing object that has one (inherited, true at the root)."""
    node: dict[str, Any] | None = {"properties": properties}
    dynamic = True
    for part in path.split(".")[:-1]:
        node = (node or {}).get("properties", {}).get(part)
        if node is None:
            break
        dynamic = str(node.get("dynamic", dynamic)).lower() == "true"
    return dynamic


def declared_type(mappings: dict[str, Any], explicit: dict[str, str], path: str, value: Any) -> str | None:
    """The type the templates give `path`: its explicit mapping, else NOT_INDEXED below
    `dynamic: false`, else the first dynamic template matching its path and JSON kind (as
    OpenSearch picks one)."""
    if path in explicit:
        return explicit[path]
    if not _dynamic_at(mappings["properties"], path):
        return NOT_INDEXED
    for entry in mappings["dynamic_templates"]:
        ((name, template),) = entry.items()
        if "match_mapping_type" in template and template["match_mapping_type"] != _json_kind(value):
            continue
        if "path_match" in template and not fnmatch.fnmatchcase(path, template["path_match"]):
            continue
        if name == "catch_all_strings_as_keyword":
            return None  # the generic fallback: no deliberate type
        return str(template["mapping"]["type"])
    return None


def test_every_emitted_field_has_its_declared_type(outcome: Outcome, opensearch: Client) -> None:
    engine = mapped_types(opensearch, outcome.assets.data_stream)
    explicit = leaf_types(outcome.assets.mappings["properties"])
    problems = []
    for path, doc in sorted(outcome.values.items()):
        if any(path.startswith(scalar + ".") for scalar in explicit):
            continue  # a raw object in a scalar field: moved out by the pipeline
        value = _leaf_value(doc, path)
        declared = declared_type(outcome.assets.mappings, explicit, path, value)
        if declared is None:
            problems.append(f"{path}: no declared type (value {value!r:.60})")
        elif engine.get(path) != (None if declared == NOT_INDEXED else declared):
            problems.append(f"{path}: declared {declared}, OpenSearch mapped {engine.get(path)}")
    for path, declared in explicit.items():  # and the templates were applied as written
        if engine.get(path) != declared:
            problems.append(f"{path}: template says {declared}, GET _mapping says {engine.get(path)}")
    assert not problems, f"{outcome.assets.name} assets, {len(outcome.values)} fields emitted:\n" + "\n".join(
        problems
    )
    FIGURES[f"fields emitted / mapped, {outcome.assets.name} assets"] = (
        f"{len(outcome.values)} / {len(engine)}"
    )


def _entities_with_new_keys(where: str, n_entities: int = 3, n_keys: int = 3000) -> list[bytes]:
    """Sample entities with `n_keys` new raw keys each at `where` (`properties`, `entity` or
    the entity's top level), of every JSON kind, nested objects too."""
    rng = random.Random(14)
    template = orjson.loads(SAMPLES.read_bytes().splitlines()[0])
    entities = []
    for n in range(n_entities):
        entity = copy.deepcopy(template)
        entity["id"] = entity["entity"]["_id"] = f"many-{where or 'top'}-keys-{n}"
        target = entity[where] if where else entity
        for k in range(n_keys):  # far past the limit if each became a field
            name = f"customField{n}x{k}_{rng.randrange(10**6)}"
            target[name] = rng.choice([k, "text", True, 1.5, {"nested": {"deeper": k}}])
        entities.append(orjson.dumps(entity))
    return entities


@pytest.mark.parametrize("where", ["properties", "entity", ""], ids=["properties", "entity", "top-level"])
def test_field_count_stays_under_the_limit_however_many_new_raw_keys(
    outcome: Outcome, opensearch: Client, where: str
) -> None:
    """9,000 new raw keys add no field: below `properties` (one flat_object), elsewhere in the
    raw entity (`dynamic: false`); they stay in _source."""
    index = outcome.assets.data_stream
    before = len(mapped_types(opensearch, index))
    assert before < outcome.assets.total_fields_limit
    entities = _entities_with_new_keys(where)
    docs = [orjson.loads(line) for line in map_lines(b"\n".join(entities) + b"\n")]
    result = bulk(opensearch, creates(index, docs, IdRule.from_conf(OPENSEARCH_CONF)))
    assert result.created == 3 and not result.rejected, result.rejected[:2]
    after = len(mapped_types(opensearch, index))
    assert after == before, f"{after - before} new fields from new raw J1 keys in {where or 'the top level'}"
    refresh(opensearch, index)
    hits = opensearch.ok(
        "POST", f"/{index}/_search", {"query": {"term": {"event.id": docs[0]["event"]["id"]}}}
    )["hits"]["hits"]
    asset = hits[0]["_source"]["jupiter_one"]["asset"]
    kept = asset[where] if where else asset
    # (j1filter writes raw properties in snake case: custom_field0x1_...)
    new_keys = [k for k in kept if k.replace("_", "").lower().startswith("customfield")]
    assert len(new_keys) == 3000, f"the new keys are kept in _source: {len(new_keys)}"


def test_a_raw_object_in_a_scalar_field_is_moved_out_and_named(outcome: Outcome, opensearch: Client) -> None:
    """The final pipeline's guard: the document is indexed, the object is left out of the raw
    entity, error.message names the field, event.original keeps the value."""
    index = outcome.assets.data_stream
    entity = orjson.loads(SAMPLES.read_bytes().splitlines()[0])
    entity["id"] = entity["entity"]["_id"] = "raw-object-in-a-scalar"
    entity["entity"]["_key"] = {"hostile": {"deeper": 1}}
    entity["entity"]["_class"] = ["Finding", {"hostile": True}]
    (doc,) = [orjson.loads(line) for line in map_lines(orjson.dumps(entity) + b"\n")]
    result = bulk(opensearch, creates(index, [doc], IdRule.from_conf(OPENSEARCH_CONF)))
    assert result.created == 1 and not result.rejected, result.rejected
    refresh(opensearch, index)
    (hit,) = opensearch.ok(
        "POST", f"/{index}/_search", {"query": {"term": {"event.id": doc["event"]["id"]}}}
    )["hits"]["hits"]
    source = hit["_source"]
    assert "_key" not in source["jupiter_one"]["asset"]["entity"]
    assert "_class" not in source["jupiter_one"]["asset"]["entity"]
    messages = source["error"]["message"]
    messages = messages if isinstance(messages, list) else [messages]
    for field_name in ("jupiter_one.asset.entity._key", "jupiter_one.asset.entity._class"):
        assert any(m.startswith(f"{field_name}: an object where J1 has a single value") for m in messages), (
            messages
        )
    assert source["event"]["kind"] == "pipeline_error"
    assert '"hostile"' in source["event"]["original"]
