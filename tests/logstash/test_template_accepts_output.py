"""The index template accepts every document j1filter really produces.

j1filter runs as a subprocess over every entity file in the repository (bundled
samples, test fixtures, the edge cases in tests/logstash/data). Each emitted leaf
is resolved against the composed template the way Elasticsearch would resolve it
(explicit property, else the first matching dynamic template) and its value is
checked against the field type. A field that only the generic catch-all template
would map counts as unmapped: every field j1filter emits must have a deliberate type.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from es_mapping import NOT_INDEXED, Mapper, check_value, template_mappings
from ls_helpers import DATA, REPO, load_asset, run_j1filter

CATCH_ALL = "dynamic:catch_all_strings_as_keyword"
# Raw J1 fields are typed by the mappings' coercions, which apply to their own sources only: another
# source's raw value of another shape (Qualys `port: 22` vs a text `port: "443/tcp"`) is accepted
# (ignore_malformed) and kept in _source, only not indexed. ECS fields get no such leniency.
RAW_J1 = "jupiter_one.asset."
# Dynamic templates whose fields may legitimately hold unparseable raw values
# (j1filter leaves a *_on/_at/_time/_date property raw when it cannot normalise it).
LENIENT_TEMPLATES = {
    f"dynamic:j1_{stem}_{kind}_as_date"
    for kind in ("string", "long")
    for stem in (
        "properties_on",
        "properties_at",
        "properties_time",
        "properties_date",
        "properties_scan_on",
        "entity_on",
    )
}
# Explicitly typed fields where j1filter keeps a non-conforming value ON PURPOSE;
# the document is still accepted (ignore_malformed), the value is only not indexed.
ACCEPTED_VIA_IGNORE_MALFORMED = {
    # Tenable writes a text synopsis as `impact` (mappings/50-tenable.yml: on_error keep);
    # CrowdStrike and Elastic's package use a number.
    "jupiter_one.asset.properties.impact",
}


def _components() -> dict[str, dict]:
    from j1filter.assets import Names

    names = Names()
    return {
        names.settings_component: load_asset("component-template-settings.json"),
        names.ecs_component: load_asset("component-template-ecs-mappings.json"),
        names.jupiter_one_component: load_asset("component-template-jupiter_one-mappings.json"),
    }


@pytest.fixture(scope="module")
def source_mapper() -> Mapper:
    return Mapper(template_mappings(load_asset("index-template-source.json"), _components()))


@pytest.fixture(scope="module")
def latest_mapper() -> Mapper:
    return Mapper(template_mappings(load_asset("index-template-latest.json"), _components()))


def input_files() -> list[Path]:
    files = set(REPO.glob("j1filter/samples/*.ndjson"))
    for pattern in ("tests/**/*.ndjson", "tests/**/*.log"):
        files |= {p for p in REPO.glob(pattern) if "expected" not in p.name}
    return sorted(files)


@pytest.fixture(scope="module")
def documents(require_j1filter) -> list[tuple[str, dict]]:
    files = input_files()
    assert any(p.parent == DATA for p in files)
    data = b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in files)
    docs = []
    for args in ((), ("--preserve-duplicate-custom-fields",)):
        for doc in run_j1filter(data, *args):
            docs.append((" ".join(args) or "default", doc))
    assert len(docs) >= 2 * 20, "expected j1filter to emit a document per input entity"
    return docs


def problems_for(mapper: Mapper, doc: dict) -> list[str]:
    problems = []
    for r in mapper.resolve(doc):
        if r.error:
            problems.append(r.error)
        elif r.source == NOT_INDEXED:
            assert r.path.startswith(RAW_J1), f"{r.path}: only raw J1 fields may go unindexed"
        elif r.mapping is None or r.source == CATCH_ALL:
            problems.append(f"{r.path} is not mapped (value {r.value!r})")
        else:
            why = check_value(r.mapping, r.value)
            tolerated = r.mapping.get("ignore_malformed") and (
                r.source in LENIENT_TEMPLATES
                or r.path in ACCEPTED_VIA_IGNORE_MALFORMED
                or r.path.startswith(RAW_J1)
            )
            if why and not tolerated:
                problems.append(f"{r.path} ({r.mapping.get('type')}, {r.source}): {why}")
    return problems


def _report(failures: dict[str, set[str]]) -> str:
    return "\n".join(f"{p}   [e.g. event.id={ids}]" for p, ids in sorted(failures.items()))


def _check_all(mapper: Mapper, docs) -> dict[str, set[str]]:
    failures: dict[str, set[str]] = {}
    for mode, doc in docs:
        for p in problems_for(mapper, doc):
            failures.setdefault(p, set()).add(f"{doc.get('event', {}).get('id')} ({mode})")
    return failures


def test_every_emitted_field_is_mapped_and_valid(documents, source_mapper):
    failures = _check_all(source_mapper, documents)
    assert not failures, "documents the data stream would reject or leave untyped:\n" + _report(failures)


def test_documents_as_shipped_are_accepted(documents, source_mapper):
    """What Logstash / Filebeat and the final ingest pipeline add on the way."""
    shipped = []
    for mode, doc in documents[:60]:
        d = copy.deepcopy(doc)
        d["@version"] = "1"  # Logstash
        d.setdefault("tags", []).append("_jsonparsefailure")  # Logstash json codec, worst case
        d["agent"] = {
            "type": "filebeat",
            "version": "9.1.0",
            "id": "x",
            "name": "h",
            "ephemeral_id": "y",
        }  # Filebeat
        d["input"] = {"type": "filestream"}
        d["log"] = {**d.get("log", {}), "offset": 1234, "file": {"path": "/var/spool/j1filter/a.ndjson"}}
        d.setdefault("event", {})["ingested"] = "2025-11-22T04:18:17.127456789Z"  # final pipeline
        shipped.append((mode, d))
    # an http_poller API error event (ECS failure fields)
    shipped.append(
        (
            "poller-error",
            {
                "@timestamp": "2025-11-22T04:18:17.127Z",
                "@version": "1",
                "tags": ["_http_request_failure", "_j1_api_error"],
                "event": {"kind": "pipeline_error", "duration": 1200000},
                "error": {"message": "Connection refused"},
                "url": {"full": "https://graphql.us.jupiterone.io"},
                "http": {"request": {"method": "post"}},
                "host": {"hostname": "logstash-1"},
                "data_stream": {
                    "type": "logs",
                    "dataset": "jupiter_one.risks_and_alerts",
                    "namespace": "default",
                },
            },
        )
    )
    failures = _check_all(source_mapper, shipped)
    assert not failures, _report(failures)


def test_latest_index_accepts_the_transform_output(documents, latest_mapper):
    latest = []
    for mode, doc in documents:
        d = copy.deepcopy(doc)
        d.setdefault("event", {})["ingested"] = "2025-11-22T04:18:17.127Z"
        latest.append((mode, d))
    failures = _check_all(latest_mapper, latest)
    assert not failures, _report(failures)


def test_data_stream_fields_match_the_data_stream(documents):
    template = load_asset("index-template-source.json")
    ds = template["template"]["mappings"]["properties"]["data_stream"]["properties"]
    assert all(v["type"] == "constant_keyword" for v in ds.values())
    for _, doc in documents:
        d = doc["data_stream"]
        assert d["type"] == ds["type"]["value"] == "logs"
        assert d["dataset"] == ds["dataset"]["value"] == "jupiter_one.risks_and_alerts"
        name = f"{d['type']}-{d['dataset']}-{d['namespace']}"
        assert name.startswith(template["index_patterns"][0].rstrip("*"))


def test_dynamic_raw_dates_really_are_tolerated(source_mapper):
    """The *_on/_at/_time/_date properties j1filter could not normalise stay raw:
    the mapping must be a date with ignore_malformed, or one bad value rejects the doc."""
    doc = {
        "jupiter_one": {
            "asset": {
                "properties": {
                    "last_seen_on": "yesterday",
                    "first_seen_at": 1736935200000,
                    "scan": {"started_on": "2025-02-01T00:00:00.000Z"},
                    "check_time": "12:30",
                    "resolved_date": "2025-03-01",
                }
            }
        }
    }
    seen = {}
    for r in source_mapper.resolve(doc):
        seen[r.path] = r
        assert r.mapping["type"] == "date" and r.mapping.get("ignore_malformed") is True, (r.path, r.mapping)
    assert "jupiter_one.asset.properties.scan.started_on" in seen


def test_mixed_types_across_integrations_do_not_conflict(source_mapper):
    """Qualys writes `port: 3389`, Tenable `port: {port: 443, protocol: TCP}`: in one
    data stream that is an object/leaf conflict unless properties has subobjects: false."""
    for props in (
        {"port": 3389},
        {"port": {"port": 443, "protocol": "TCP"}},
        {"port.port": 22},
        {"cvss_score": 7.5},
        {"cvss_score": "7.5 (high)"},
        {"is_ignored": 1},
        {"is_ignored": True},
    ):
        for r in source_mapper.resolve({"jupiter_one": {"asset": {"properties": props}}}):
            assert r.error is None, r.error
            # a type a mapping declared (ignore_malformed: other shapes are kept, not refused), or keyword
            assert r.mapping["type"] == "keyword" or r.mapping.get("ignore_malformed"), (props, r.mapping)


# --------------------------------------------------------------------------
# the types the issue asks for, explicitly
# --------------------------------------------------------------------------

EXPECTED_TYPES = {
    "@timestamp": "date",
    "event.created": "date",
    "event.start": "date",
    "event.end": "date",
    "event.ingested": "date",
    "event.duration": "long",
    "event.severity": "long",
    "event.risk_score": "float",
    "event.original": "keyword",
    "event.id": "keyword",
    "host.ip": "ip",
    "related.ip": "ip",
    "threat.indicator.ip": "ip",
    "url.port": "long",
    "destination.port": "long",
    "vulnerability.score.base": "float",
    "message": "match_only_text",
    "error.message": "match_only_text",
    "data_stream.type": "constant_keyword",
    "data_stream.dataset": "constant_keyword",
    "data_stream.namespace": "constant_keyword",
    "jupiter_one.asset.entity._deleted": "boolean",
    "jupiter_one.asset.entity._created_on": "date",
    "jupiter_one.asset.entity._version": "keyword",
    "jupiter_one.asset.properties.numeric_severity": "double",
    "jupiter_one.asset.properties.total_number_of_affected_entities": "long",
    "jupiter_one.asset.properties.score": "double",
    "jupiter_one.asset.properties.device_local_ip": "ip",
    "jupiter_one.asset.properties.open": "boolean",
    "jupiter_one.asset.properties.tag.production": "boolean",
    "jupiter_one.asset.properties.reported_on": "date",
}
SAMPLE_VALUES = {
    "date": "2025-01-01T00:00:00.000Z",
    "long": 1,
    "float": 1.5,
    "double": 1.5,
    "ip": "10.0.0.1",
    "keyword": "x",
    "match_only_text": "x",
    "boolean": True,
    "constant_keyword": None,
}


@pytest.mark.parametrize("path,expected", sorted(EXPECTED_TYPES.items()))
def test_field_type(source_mapper, path, expected):
    value = SAMPLE_VALUES[expected]
    if expected == "constant_keyword":
        value = {"type": "logs", "dataset": "jupiter_one.risks_and_alerts", "namespace": "default"}[
            path.split(".")[-1]
        ]
    doc: dict = {}
    cur = doc
    parts = path.split(".")
    if path.startswith("jupiter_one.asset.properties."):
        parts = ["jupiter_one", "asset", "properties", path[len("jupiter_one.asset.properties.") :]]
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value
    (r,) = list(source_mapper.resolve(doc))
    assert r.source == "explicit", f"{path} must be mapped explicitly, got {r.source}"
    assert r.mapping["type"] == expected, f"{path}: {r.mapping}"


def test_new_raw_keys_outside_properties_add_no_field(source_mapper):
    """`dynamic: false` on jupiter_one.asset: a new key in `entity` or at the entity's top level
    is not indexed (kept in _source); below `properties` every key is still typed."""
    doc = {
        "jupiter_one": {
            "asset": {
                "brand_new": "x",
                "entity": {"_key": "k", "_new_meta": {"deeper": 1}},
                "properties": {"new_prop": "y", "found_on": "2024-01-01T00:00:00Z"},
            }
        }
    }
    sources = {r.path: r.source for r in source_mapper.resolve(doc)}
    assert sources["jupiter_one.asset.brand_new"] == NOT_INDEXED
    assert sources["jupiter_one.asset.entity._new_meta.deeper"] == NOT_INDEXED
    assert sources["jupiter_one.asset.entity._key"] == "explicit"
    assert sources["jupiter_one.asset.properties.new_prop"] == "dynamic:j1_other_string_as_keyword"
    assert sources["jupiter_one.asset.properties.found_on"].startswith("dynamic:j1_properties_on_")


def test_event_original_is_stored_not_indexed(source_mapper):
    (r,) = list(source_mapper.resolve({"event": {"original": "{}"}}))
    assert r.mapping == {"type": "keyword", "index": False, "doc_values": False}


def test_the_model_rejects_bad_values(source_mapper):
    """The checks above can fail: wrong values for typed fields are reported."""
    bad = {
        "event": {"duration": 1.5, "created": "yesterday", "severity": "high"},
        "related": {"ip": ["10.0.0.1", "not-an-ip"]},
        "data_stream": {"dataset": "other"},
        "brand_new_field": "x",
        "host": "a-string-host",
    }
    problems = problems_for(source_mapper, bad)
    for needle in (
        "event.duration",
        "event.created",
        "event.severity",
        "related.ip",
        "data_stream.dataset",
        "brand_new_field",
        "host is mapped as an object",
    ):
        assert any(needle in p for p in problems), (needle, problems)
    # Raw J1 booleans carry ignore_malformed (kept, not indexed); the value check itself is strict.
    assert check_value({"type": "boolean"}, "no") == "'no' is not a boolean"
