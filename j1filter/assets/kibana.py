"""Kibana saved objects: two data views of their own (latest view, history) and three dashboards
of Lens panels stored by value, as NDJSON for `POST /api/saved_objects/_import`.

Format: the 8.x saved-object export format (`coreMigrationVersion` 8.8.0, dashboards at
`typeMigrationVersion` 8.9.0, Lens `formBased` datasource); Kibana migrates it forward on import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from .fieldtypes import JsonObject
from .names import Names

A = "jupiter_one.asset."
CLASS, OPEN, DELETED = A + "entity._class", A + "properties.open", A + "entity._deleted"
#: Every panel leaves out J1's tombstones (an entity deleted in J1 stays in the latest view
#: as its newest document until retention removes it).
NOT_DELETED = f"not {DELETED}: true"
#: Remediation deadlines in days by event.severity (J1's 0-10 buckets); a common policy, edit to taste.
SLA_DAYS = ((10, 10, "Critical", 15), (8, 9, "High", 30), (6, 7, "Medium", 90), (1, 5, "Low", 180))
AGE_BUCKETS = (
    ("< 7 days", 'event.created >= "now-7d"'),
    ("7-30 days", 'event.created < "now-7d" and event.created >= "now-30d"'),
    ("30-90 days", 'event.created < "now-30d" and event.created >= "now-90d"'),
    ("> 90 days", 'event.created < "now-90d"'),
)
CORE_MIGRATION_VERSION = "8.8.0"
DASHBOARD_MIGRATION_VERSION = "8.9.0"
DATA_VIEW_MIGRATION_VERSION = "8.0.0"


def _kql(*parts: str) -> str:
    return " and ".join(f"({p})" for p in (NOT_DELETED, *parts) if p)


@dataclass
class Panel:
    """One Lens chart: `columns` in order, the visualization state, the data view it reads."""

    title: str
    vis_type: str
    columns: dict[str, JsonObject]
    visualization: JsonObject
    view: str  # "latest" or "history"
    query: str
    w: int = 16
    h: int = 12
    fields: set[str] = field(default_factory=set)  # every field it reads, KQL included


def _terms(name: str, by: str, size: int = 10, label: str = "") -> JsonObject:
    return {
        "label": label or f"Top {size} {name}",
        "customLabel": bool(label),
        "dataType": "string",
        "operationType": "terms",
        "scale": "ordinal",
        "sourceField": name,
        "isBucketed": True,
        "params": {
            "size": size,
            "orderBy": {"type": "column", "columnId": by},
            "orderDirection": "desc",
            "otherBucket": True,
            "missingBucket": False,
            "parentFormat": {"id": "terms"},
        },
    }


def _count(label: str = "Count", kql: str = "") -> JsonObject:
    col: JsonObject = {
        "label": label,
        "customLabel": True,
        "dataType": "number",
        "operationType": "count",
        "scale": "ratio",
        "sourceField": "___records___",
        "isBucketed": False,
        "params": {"emptyAsNull": True},
    }
    if kql:
        col["filter"] = {"query": kql, "language": "kuery"}
    return col


def _metric(op: str, name: str, label: str) -> JsonObject:
    return {
        "label": label,
        "customLabel": True,
        "dataType": "number",
        "operationType": op,
        "scale": "ratio",
        "sourceField": name,
        "isBucketed": False,
        "params": {"emptyAsNull": True},
    }


def _histogram(name: str, label: str) -> JsonObject:
    return {
        "label": label,
        "customLabel": True,
        "dataType": "date",
        "operationType": "date_histogram",
        "sourceField": name,
        "scale": "interval",
        "isBucketed": True,
        "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False},
    }


def _filters(label: str, buckets: list[tuple[str, str]]) -> JsonObject:
    return {
        "label": label,
        "customLabel": True,
        "dataType": "string",
        "operationType": "filters",
        "scale": "ordinal",
        "isBucketed": True,
        "params": {"filters": [{"label": b, "input": {"query": q, "language": "kuery"}} for b, q in buckets]},
    }


def pie(title: str, name: str, query: str = "", size: int = 5) -> Panel:
    cols = {"g": _terms(name, "m", size), "m": _count()}
    layer = {
        "layerId": "L",
        "layerType": "data",
        "primaryGroups": ["g"],
        "metric": "m",
        "metrics": ["m"],
        "numberDisplay": "percent",
        "categoryDisplay": "default",
        "legendDisplay": "default",
        "nestedLegend": False,
    }
    return Panel(title, "lnsPie", cols, {"shape": "donut", "layers": [layer]}, "latest", query, fields={name})


def _xy(series: str, layers: list[JsonObject]) -> JsonObject:
    return {
        "legend": {"isVisible": True, "position": "right"},
        "valueLabels": "hide",
        "fittingFunction": "None",
        "preferredSeriesType": series,
        "layers": [{"seriesType": series, "layerType": "data", **layer} for layer in layers],
    }


def bars(title: str, name: str, query: str = "", split: str = "", size: int = 10) -> Panel:
    cols = {"x": _terms(name, "m", size), "m": _count()}
    layer: JsonObject = {"layerId": "L", "xAccessor": "x", "accessors": ["m"]}
    fields = {name}
    if split:
        cols["s"] = _terms(split, "m", 5)
        layer["splitAccessor"] = "s"
        fields.add(split)
    return Panel(title, "lnsXY", cols, _xy("bar_horizontal_stacked", [layer]), "latest", query, fields=fields)


def table(title: str, name: str, query: str = "", label: str = "", size: int = 10) -> Panel:
    cols = {"g": _terms(name, "m", size, label), "m": _metric("unique_count", "event.id", "Entities")}
    vis = {"layerId": "L", "layerType": "data", "columns": [{"columnId": "g"}, {"columnId": "m"}]}
    return Panel(title, "lnsDatatable", cols, vis, "latest", query, fields={name, "event.id"})


def metric(title: str, column: JsonObject, query: str = "", fields: set[str] | None = None) -> Panel:
    vis = {"layerId": "L", "layerType": "data", "metricAccessor": "m"}
    return Panel(title, "lnsMetric", {"m": column}, vis, "latest", query, w=12, h=6, fields=fields or set())


def buckets_table(
    title: str, label: str, buckets: list[tuple[str, str]], query: str, fields: set[str]
) -> Panel:
    cols = {"g": _filters(label, buckets), "m": _count("Open findings")}
    vis = {"layerId": "L", "layerType": "data", "columns": [{"columnId": "g"}, {"columnId": "m"}]}
    return Panel(title, "lnsDatatable", cols, vis, "latest", query, w=24, fields=fields)


def severity_over_time() -> Panel:
    cols = {
        "x": _histogram("@timestamp", "Collection time"),
        "s": _terms("event.severity", "m", 11),
        "m": _metric("unique_count", "event.id", "Entities"),
    }
    layer = {"layerId": "L", "xAccessor": "x", "splitAccessor": "s", "accessors": ["m"]}
    return Panel(
        "Severity over time (entities collected, by event.severity)",
        "lnsXY",
        cols,
        _xy("bar_stacked", [layer]),
        "history",
        "",
        w=48,
        fields={"@timestamp", "event.severity", "event.id"},
    )


def new_versus_resolved() -> Panel:
    """Two layers: when open findings were created in J1, when closed ones were last updated."""
    updated = A + "properties.updated_on"
    cols = {
        "x": _histogram("event.created", "Created in J1"),
        "m": _count("New (created)"),
        "x2": _histogram(updated, "Last updated"),
        "m2": _count("Resolved (closed, by last update)", f"{OPEN}: false"),
    }
    layers = [
        {"layerId": "L", "xAccessor": "x", "accessors": ["m"]},
        {"layerId": "L2", "xAccessor": "x2", "accessors": ["m2"]},
    ]
    return Panel(
        "New versus resolved over time",
        "lnsXY",
        cols,
        _xy("bar_stacked", layers),
        "latest",
        "",
        w=48,
        fields={"event.created", updated, OPEN},
    )


def _sla_buckets() -> list[tuple[str, str]]:
    out = []
    for low, high, label, days in SLA_DAYS:
        sev = f"event.severity >= {low} and event.severity <= {high}"
        out.append((f"{label}: past {days}-day SLA", f'{sev} and event.created < "now-{days}d"'))
        out.append((f"{label}: within SLA", f'{sev} and event.created >= "now-{days}d"'))
    return out


def dashboards() -> list[tuple[str, str, list[Panel]]]:
    """(key, title, panels) of every dashboard; panels in reading order."""
    finding, alert, vuln = f'{CLASS}: "Finding"', f'{CLASS}: "Alert"', f'{CLASS}: "Vulnerability"'
    open_finding = f'{OPEN}: true and not {CLASS}: "Alert"'
    overview = [
        pie("Assets by status", A + "properties.status"),
        pie("Assets by type", A + "entity._type"),
        pie("Assets by source", A + "entity._source"),
        bars("Assets by class", A + "entity._class"),
        bars("Assets by classification", A + "properties.classification"),
        bars(
            "Per source (integration) by event.severity",
            A + "entity._integration_name",
            split="event.severity",
        ),
    ]
    risks = [
        metric("Open alerts", _count("Open alerts"), f"{alert} and {OPEN}: true", {CLASS, OPEN}),
        metric("Closed alerts", _count("Closed alerts"), f"{alert} and {OPEN}: false", {CLASS, OPEN}),
        metric(
            "Open vulnerabilities", _count("Open vulnerabilities"), f"{vuln} and {OPEN}: true", {CLASS, OPEN}
        ),
        metric(
            "Affected entities",
            _metric("sum", A + "properties.total_number_of_affected_entities", "Affected entities"),
            "",
            {A + "properties.total_number_of_affected_entities"},
        ),
        severity_over_time(),
        pie("Findings by device status", A + "properties.device_status", finding),
        bars("Findings by MITRE technique", "threat.technique.name", finding),
        bars("Findings by MITRE tactic", "threat.tactic.name", finding),
        bars("Risks and alerts by category", A + "properties.category"),
        bars("Findings by product", A + "properties.product", finding),
        table("Top device IPs", A + "properties.device_external_ip", label="Device external IP"),
        table(
            "Top product name versions", A + "properties.product_name_version", label="Product name version"
        ),
    ]
    for p in risks[:4]:
        p.fields.add(CLASS)
    findings = [
        table("Open findings by Qualys QID", A + "properties.qid", f"{OPEN}: true", "QID", 20),
        table(
            "Open findings by CVE",
            "vulnerability.id",
            f'{OPEN}: true and vulnerability.enumeration: "CVE"',
            "CVE",
            20,
        ),
        buckets_table(
            "Open findings by age (since created in J1)",
            "Age",
            list(AGE_BUCKETS),
            open_finding,
            {"event.created", OPEN, CLASS},
        ),
        buckets_table(
            "Open findings against their SLA (days by severity)",
            "SLA",
            _sla_buckets(),
            open_finding,
            {"event.created", "event.severity", OPEN, CLASS},
        ),
        table("Top affected hosts", "host.name", f"{OPEN}: true", "Host"),
        table("Top affected IPs", "host.ip", f"{OPEN}: true", "IP"),
        bars(
            "Open findings per source (integration type)",
            A + "entity._integration_type",
            f"{OPEN}: true",
            split="vulnerability.severity",
        ),
        new_versus_resolved(),
    ]
    findings[1].fields.add("vulnerability.enumeration")
    for p in findings:
        if OPEN in p.query:
            p.fields.add(OPEN)
    return [
        ("overview", "J1 assets overview", overview),
        ("risks", "J1 risks and alerts", risks),
        ("findings", "J1 findings: QIDs, CVEs, age, SLA, hosts", findings),
    ]


def fields_used() -> set[str]:
    """Every field a panel reads (template and sample tests check each)."""
    return {DELETED}.union(*(p.fields for _, _, panels in dashboards() for p in panels))


def _data_view(obj_id: str, title: str, name: str, time_field: str | None) -> JsonObject:
    attributes: JsonObject = {
        "title": title,
        "name": name,
        "allowNoIndex": True,
        "fieldFormatMap": "{}",
        "runtimeFieldMap": "{}",
        "sourceFilters": "[]",
        "fields": "[]",
        "typeMeta": "{}",
    }
    if time_field:
        attributes["timeFieldName"] = time_field
    return {
        "id": obj_id,
        "type": "index-pattern",
        "attributes": attributes,
        "references": [],
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": DATA_VIEW_MIGRATION_VERSION,
    }


def _lens_attributes(panel: Panel, data_view: str) -> JsonObject:
    layer_ids = [layer["layerId"] for layer in panel.visualization.get("layers", [panel.visualization])]
    layers = {}
    for layer_id in layer_ids:
        # a layer owns the columns named for it: "x2"/"m2" belong to "L2"
        suffix = layer_id[1:]
        own = [c for c in panel.columns if c[1:] == suffix]
        layers[layer_id] = {
            "columns": {c: panel.columns[c] for c in own},
            "columnOrder": own,
            "incompleteColumns": {},
        }
    return {
        "title": panel.title,
        "description": "",
        "visualizationType": panel.vis_type,
        "type": "lens",
        "references": [
            {"type": "index-pattern", "id": data_view, "name": f"indexpattern-datasource-layer-{lid}"}
            for lid in layer_ids
        ],
        "state": {
            "visualization": panel.visualization,
            "query": {"query": _kql(panel.query), "language": "kuery"},
            "filters": [],
            "internalReferences": [],
            "adHocDataViews": {},
            "datasourceStates": {"formBased": {"layers": layers}},
        },
    }


def _dashboard(
    obj_id: str, title: str, panels: list[Panel], views: dict[str, str], names: Names
) -> JsonObject:
    panel_json, references, x, y, row_h = [], [], 0, 0, 0
    for n, panel in enumerate(panels, 1):
        if x + panel.w > 48:
            x, y, row_h = 0, y + row_h, 0
        pid = f"p{n}"
        attrs = _lens_attributes(panel, views[panel.view])
        panel_json.append(
            {
                "type": "lens",
                "panelIndex": pid,
                "gridData": {"x": x, "y": y, "w": panel.w, "h": panel.h, "i": pid},
                "embeddableConfig": {"attributes": attrs, "enhancements": {}},
            }
        )
        references += [{**ref, "name": f"{pid}:{ref['name']}"} for ref in attrs["references"]]
        x, row_h = x + panel.w, max(row_h, panel.h)
    scope = "" if names.is_default else f" ({names.data_stream})"
    return {
        "id": obj_id,
        "type": "dashboard",
        "attributes": {
            "title": f"[j1filter] {title}{scope}",
            "description": f"JupiterOne current state from j1filter's latest view {names.latest_alias} "
            f"(deleted entities excluded); history panels read {names.data_stream}.",
            "panelsJSON": orjson.dumps(panel_json).decode(),
            "optionsJSON": orjson.dumps(
                {
                    "useMargins": True,
                    "syncColors": False,
                    "syncCursor": True,
                    "syncTooltips": False,
                    "hidePanelTitles": False,
                }
            ).decode(),
            "version": 1,
            "timeRestore": True,
            "timeFrom": "now-30d",
            "timeTo": "now",
            "refreshInterval": {"pause": True, "value": 60000},
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": orjson.dumps(
                    {"query": {"query": "", "language": "kuery"}, "filter": []}
                ).decode()
            },
        },
        "references": references,
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": DASHBOARD_MIGRATION_VERSION,
    }


def saved_objects(names: Names) -> list[JsonObject]:
    """Data views first, then dashboards (import resolves references within the file)."""
    views = {
        "latest": f"j1filter-latest-{names.data_stream}",
        "history": f"j1filter-history-{names.data_stream}",
    }
    objects = [
        # No time field: the latest view is the current state whatever the time picker says.
        _data_view(views["latest"], names.latest_alias, f"j1filter latest ({names.data_stream})", None),
        _data_view(
            views["history"], names.data_stream, f"j1filter history ({names.data_stream})", "@timestamp"
        ),
    ]
    for key, title, panels in dashboards():
        objects.append(_dashboard(f"j1filter-{key}-{names.data_stream}", title, panels, views, names))
    return objects


def ndjson(objects: list[JsonObject]) -> bytes:
    return b"".join(orjson.dumps(o) + b"\n" for o in objects)
