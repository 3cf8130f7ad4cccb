"""The Kibana saved objects: importable NDJSON, their own data views, fields that exist.

Every field a panel reads must be mapped in the rendered templates with an aggregatable type,
and present in the documents the real filter produces from the bundled samples.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from es_mapping import template_mappings
from ls_helpers import LOGSTASH, REPO, load_asset, run_j1filter

from j1filter.assets import Names, render
from j1filter.assets.fieldtypes import field_mapping
from j1filter.assets.kibana import DELETED, NOT_DELETED, dashboards, fields_used

NDJSON = LOGSTASH / "kibana" / "j1filter-dashboards.ndjson"
AGGREGATABLE = {
    "keyword",
    "constant_keyword",
    "long",
    "integer",
    "short",
    "byte",
    "double",
    "float",
    "half_float",
    "scaled_float",
    "date",
    "date_nanos",
    "ip",
    "boolean",
    "wildcard",
}


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return [json.loads(line) for line in NDJSON.read_text().splitlines()]


def _panels(dashboard: dict) -> list[dict]:
    return json.loads(dashboard["attributes"]["panelsJSON"])


def _layers(panel: dict) -> dict:
    return panel["embeddableConfig"]["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]


def test_ndjson_is_importable_shape(objects):
    ids = Counter((o["type"], o["id"]) for o in objects)
    assert all(n == 1 for n in ids.values()), ids
    assert {o["type"] for o in objects} == {"index-pattern", "dashboard"}
    for o in objects:
        assert set(o) >= {
            "id",
            "type",
            "attributes",
            "references",
            "coreMigrationVersion",
            "typeMigrationVersion",
        }
        if o["type"] == "dashboard":
            for key in ("panelsJSON", "optionsJSON"):
                json.loads(o["attributes"][key])
            json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def test_references_resolve_within_the_file(objects):
    present = {(o["type"], o["id"]) for o in objects}
    for o in objects:
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in present, (o["id"], ref)
        if o["type"] != "dashboard":
            continue
        names = {r["name"] for r in o["references"]}
        panel_ids = [p["panelIndex"] for p in _panels(o)]
        assert len(set(panel_ids)) == len(panel_ids)
        for p in _panels(o):
            attrs = p["embeddableConfig"]["attributes"]
            for layer_id in _layers(p):
                assert f"{p['panelIndex']}:indexpattern-datasource-layer-{layer_id}" in names
            for ref in attrs["references"]:
                assert (ref["type"], ref["id"]) in present


def test_own_data_views_never_logs_star(objects):
    env = Names()
    views = {o["id"]: o["attributes"] for o in objects if o["type"] == "index-pattern"}
    assert {v["title"] for v in views.values()} == {env.latest_alias, env.data_stream}
    assert all(not v["title"].startswith("logs-*") for v in views.values())
    # the latest view is the current state whatever the time picker says; history is time-based
    by_title = {v["title"]: v for v in views.values()}
    assert "timeFieldName" not in by_title[env.latest_alias]
    assert by_title[env.data_stream]["timeFieldName"] == "@timestamp"


def test_every_panel_excludes_deleted_entities(objects):
    for o in (o for o in objects if o["type"] == "dashboard"):
        for p in _panels(o):
            query = p["embeddableConfig"]["attributes"]["state"]["query"]
            assert query["language"] == "kuery" and f"({NOT_DELETED})" in query["query"], (
                o["id"],
                p["panelIndex"],
            )


def test_panels_cover_elastic_dashboards_and_more():
    titles = {p.title for _, _, panels in dashboards() for p in panels}
    elastic = {
        "Assets by status",
        "Assets by type",
        "Assets by source",
        "Assets by class",
        "Assets by classification",
        "Open alerts",
        "Closed alerts",
        "Open vulnerabilities",
        "Affected entities",
        "Findings by device status",
        "Findings by MITRE technique",
        "Findings by MITRE tactic",
        "Risks and alerts by category",
        "Findings by product",
        "Top device IPs",
        "Top product name versions",
    }
    assert elastic <= titles, elastic - titles
    assert any(t.startswith("Severity over time") for t in titles)
    added = (
        "by Qualys QID",
        "by CVE",
        "by age",
        "against their SLA",
        "Top affected hosts",
        "Top affected IPs",
        "per source",
        "New versus resolved",
    )
    assert all(any(a in t for t in titles) for a in added), added


def test_source_fields_are_what_fields_used_reports(objects):
    """fields_used() feeds the templates: it must list every sourceField of every column."""
    declared = fields_used()
    for o in (o for o in objects if o["type"] == "dashboard"):
        for p in _panels(o):
            for layer in _layers(p).values():
                for col in layer["columns"].values():
                    if col.get("sourceField") not in (None, "___records___"):
                        assert col["sourceField"] in declared, col["sourceField"]


@pytest.mark.parametrize("template", ["index-template-latest.json", "index-template-source.json"])
def test_every_panel_field_is_mapped_aggregatable(template):
    names = Names()
    components = {
        names.settings_component: load_asset("component-template-settings.json"),
        names.ecs_component: load_asset("component-template-ecs-mappings.json"),
        names.jupiter_one_component: load_asset("component-template-jupiter_one-mappings.json"),
    }
    props = template_mappings(load_asset(template), components)["properties"]
    problems = []
    for name in sorted(fields_used()):
        mapping = field_mapping(props, name)
        if mapping is None:
            problems.append(f"{name}: not in {template}")
        elif mapping["type"] not in AGGREGATABLE or mapping.get("doc_values") is False:
            problems.append(f"{name}: {mapping['type']} is not aggregatable")
    assert not problems, "\n".join(problems)


def test_every_panel_field_is_in_the_sample_documents(require_j1filter):
    docs = run_j1filter((REPO / "j1filter" / "samples" / "entities.ndjson").read_bytes())

    def has(doc: dict, name: str) -> bool:
        node: object = doc
        parts = name.split(".")
        i = 0
        while i < len(parts):
            if not isinstance(node, dict):
                return False
            # raw J1 properties keep dotted leaf names (port.port) only below `properties`
            for j in range(len(parts), i, -1):
                key = ".".join(parts[i:j])
                if key in node:
                    node, i = node[key], j
                    break
            else:
                return False
        return node not in (None, [], "")

    missing = [name for name in sorted(fields_used()) if not any(has(d, name) for d in docs)]
    assert not missing, f"no sample document has: {missing}"
    assert any(has(d, DELETED) and d["jupiter_one"]["asset"]["entity"]["_deleted"] for d in docs), (
        "the samples must hold a tombstone the panels exclude"
    )


def test_fields_missing_from_the_template_are_caught():
    props = template_mappings(
        load_asset("index-template-latest.json"),
        {
            Names().ecs_component: {"template": {"mappings": {"properties": {}}}},
            Names().jupiter_one_component: {"template": {"mappings": {"properties": {}}}},
        },
    )["properties"]
    assert field_mapping(props, "threat.tactic.name") is None
    assert field_mapping(props, "labels.is_transform_source")["type"] == "constant_keyword"


def test_rendered_dashboards_equal_the_shipped_ones():
    assert render()["kibana/j1filter-dashboards.ndjson"] == NDJSON.read_bytes()


KQL_FIELD = re.compile(r"([A-Za-z_@][\w.@]*)\s*(?::|>=|<=|<|>)")


def _queries(panel: dict) -> list[str]:
    state = panel["embeddableConfig"]["attributes"]["state"]
    out = [state["query"]["query"]]
    for layer in state["datasourceStates"]["formBased"]["layers"].values():
        for col in layer["columns"].values():
            if "filter" in col:
                out.append(col["filter"]["query"])
            out += [f["input"]["query"] for f in col.get("params", {}).get("filters", [])]
    return out


def test_fields_in_panel_queries_are_declared_too(objects):
    declared = fields_used()
    seen = set()
    for o in (o for o in objects if o["type"] == "dashboard"):
        for p in _panels(o):
            for query in _queries(p):
                for name in KQL_FIELD.findall(query):
                    seen.add(name)
                    assert name in declared, (p["embeddableConfig"]["attributes"]["title"], name, query)
    assert {"event.created", "event.severity", "vulnerability.enumeration", DELETED} <= seen


def test_visualizations_point_at_columns_of_their_layer(objects):
    for o in (o for o in objects if o["type"] == "dashboard"):
        for p in _panels(o):
            state = p["embeddableConfig"]["attributes"]["state"]
            layers = _layers(p)
            vis = state["visualization"]
            for vis_layer in vis.get("layers", [vis]):
                columns = layers[vis_layer["layerId"]]["columns"]
                assert layers[vis_layer["layerId"]]["columnOrder"] == list(columns)
                refs = [vis_layer.get(k) for k in ("xAccessor", "splitAccessor", "metricAccessor", "metric")]
                refs += vis_layer.get("accessors", []) + vis_layer.get("primaryGroups", [])
                refs += [c["columnId"] for c in vis_layer.get("columns", [])]
                for ref in filter(None, refs):
                    assert ref in columns, (p["embeddableConfig"]["attributes"]["title"], ref, list(columns))
                for col in columns.values():
                    order = col.get("params", {}).get("orderBy", {})
                    assert order.get("type") != "column" or order["columnId"] in columns
