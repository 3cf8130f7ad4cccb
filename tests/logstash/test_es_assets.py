"""The Elasticsearch and Kibana assets: rendered by `j1filter assets`, shipped as its output.

The installer is run for real (/bin/sh + curl) against a fake Elasticsearch and a fake Kibana on
127.0.0.1 that record every request.
"""

from __future__ import annotations

import base64
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ls_helpers import ES_ASSETS, LOGSTASH, REPO, load_asset

from j1filter.assets import Names, render
from j1filter.assets.names import parse_duration

INSTALLER = ES_ASSETS / "install.sh"
DASHBOARDS = LOGSTASH / "kibana" / "j1filter-dashboards.ndjson"


def _env(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^(J1_\w+)='([^']*)'$", path.read_text(), re.M))


# --------------------------------------------------------------------------
# the shipped files are the renderer's output
# --------------------------------------------------------------------------


def test_shipped_assets_are_exactly_the_rendered_defaults():
    rendered = {**render(), **render(engine="opensearch")}
    problems = []
    for rel, data in sorted(rendered.items()):
        shipped = LOGSTASH / rel
        if not shipped.exists():
            problems.append(f"{shipped.relative_to(REPO)}: missing")
        elif shipped.read_bytes() != data:
            diff = difflib.unified_diff(
                shipped.read_text().splitlines(),
                data.decode().splitlines(),
                f"shipped {rel}",
                f"rendered {rel}",
                lineterm="",
                n=2,
            )
            problems.append("\n".join(list(diff)[:60]))
    for folder in (ES_ASSETS, LOGSTASH / "kibana", LOGSTASH / "opensearch"):
        for path in folder.iterdir():
            rel = f"{folder.name}/{path.name}"
            if rel not in rendered:
                problems.append(f"{path.relative_to(REPO)}: shipped but not rendered (stale?)")
    assert not problems, (
        "the shipped bundle drifted from `j1filter assets [--engine opensearch] --out logstash`; "
        "re-render it:\n" + "\n\n".join(problems)
    )


def test_drift_check_can_fail(tmp_path):
    files = render(Names(namespace="prod"))
    assert files["elasticsearch/transform-latest.json"] != (ES_ASSETS / "transform-latest.json").read_bytes()


def test_cli_renders_the_same_files(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "j1filter", "assets", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for rel, data in render().items():
        assert (tmp_path / rel).read_bytes() == data, rel
    assert os.access(tmp_path / "elasticsearch" / "install.sh", os.X_OK)


@pytest.mark.parametrize(
    "args, why",
    [
        (["--namespace", "Prod-EU"], "lowercase"),
        (["--namespace", "prod-eu"], "'-'"),
        (["--dataset", "jupiter one"], "' '"),
        (["--dataset", "x" * 101], "at most 100"),
        (["--dataset", "_j1"], "must not start with '_'"),
        (["--type", "_logs"], "must be one of logs, metrics"),
        (["--dataset", "x" * 60, "--namespace", "y" * 60], "keep <type>-<dataset>-<namespace> within 100"),
        (["--interval", "1 hour"], "duration"),
        (["--interval", "2d", "--full-interval", "1d"], "shorter than --interval"),
        (["--interval", "10s", "--full-interval", "30s"], "shorter than 1m"),
    ],
)
def test_cli_refuses_names_elasticsearch_would_refuse(tmp_path, args, why):
    proc = subprocess.run(
        [sys.executable, "-m", "j1filter", "assets", "--out", str(tmp_path), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 2 and why in proc.stderr, proc.stderr
    assert not any(tmp_path.iterdir()), "nothing is written for a refused name"


# --------------------------------------------------------------------------
# what the bodies say
# --------------------------------------------------------------------------


def test_installer_names_match_the_bodies():
    env = _env(ES_ASSETS / "assets.env")
    settings = load_asset("component-template-settings.json")["template"]["settings"]["index"]
    assert settings["lifecycle"]["name"] == env["J1_ILM_POLICY"]
    assert settings["final_pipeline"] == env["J1_FINAL_PIPELINE"]
    # Elastic's own ingest pipeline must not run again on j1filter documents.
    assert settings["default_pipeline"] == "_none"
    source, latest = load_asset("index-template-source.json"), load_asset("index-template-latest.json")
    assert source["composed_of"] == [
        env["J1_SETTINGS_COMPONENT"],
        env["J1_ECS_COMPONENT"],
        env["J1_JUPITER_ONE_COMPONENT"],
    ]
    assert latest["composed_of"] == [env["J1_ECS_COMPONENT"], env["J1_JUPITER_ONE_COMPONENT"]]
    for template in (source, latest):
        assert template["priority"] > 200, "must win over Elastic's jupiter_one templates (priority 200)"
    assert source["index_patterns"] == ["logs-jupiter_one.risks_and_alerts-*"] and "data_stream" in source
    assert "data_stream" not in latest, "the transform destination is a plain index"
    assert load_asset("latest-index.json") == {"aliases": {env["J1_LATEST_ALIAS"]: {}}}


def test_types_come_from_the_mappings_and_ecs():
    props = load_asset("component-template-jupiter_one-mappings.json")["template"]["mappings"]["properties"]
    raw = props["jupiter_one"]["properties"]["asset"]["properties"]["properties"]
    assert raw["subobjects"] is False, "Qualys `port: 3389` and Tenable `port: {port: 443}` both fit"
    raw = raw["properties"]
    # 10-risks.yml says long, 50-tenable.yml and 50-rapid7.yml say double: the wider type wins
    assert raw["numeric_severity"]["type"] == "double"
    assert raw["qid"]["type"] == raw["port"]["type"] == raw["port.port"]["type"] == "long"
    assert raw["open"]["type"] == "boolean" and raw["device_external_ip"]["type"] == "ip"
    ecs = load_asset("component-template-ecs-mappings.json")["template"]["mappings"]["properties"]
    assert ecs["event"]["properties"]["severity"] == {"type": "long"}
    assert ecs["event"]["properties"]["original"] == {"type": "keyword", "index": False, "doc_values": False}
    assert ecs["vulnerability"]["properties"]["score"]["properties"]["base"] == {"type": "float"}


def test_a_user_mapping_types_its_own_fields(tmp_path):
    (tmp_path / "90-mine.yml").write_text(
        "version: 1\nname: mine\norder: 90\ndescription: test\nfields:\n  properties.risk_points: long\n"
        "rules:\n  - {to: event.reference, from: properties.ticket_url}\n"
    )
    from j1filter.language.loader import load_mappings

    files = render(Names(), load_mappings([tmp_path / "90-mine.yml"]))
    raw = json.loads(files["elasticsearch/component-template-jupiter_one-mappings.json"])
    raw = raw["template"]["mappings"]["properties"]["jupiter_one"]["properties"]["asset"]["properties"]
    assert raw["properties"]["properties"]["risk_points"]["type"] == "long"
    assert raw["properties"]["properties"]["ticket_url"]["type"] == "keyword"


def test_final_pipeline_only_stamps_event_ingested():
    p = load_asset("ingest-pipeline-final.json")
    assert p["processors"] == [
        {"set": {"field": "event.ingested", "value": "{{{_ingest.timestamp}}}", "tag": "set_event_ingested"}}
    ]


def test_latest_transform_follows_the_design():
    t = load_asset("transform-latest.json")
    env = _env(ES_ASSETS / "assets.env")
    assert t["latest"] == {"unique_key": ["event.dataset", "event.id"], "sort": "@timestamp"}
    assert t["sync"]["time"]["field"] == "event.ingested"
    assert t["retention_policy"]["time"] == {"field": "@timestamp", "max_age": "30h"}  # 24h + max(2h, 6h)
    assert t["source"]["index"] == [env["J1_DATA_STREAM"]] == ["logs-jupiter_one.risks_and_alerts-default"]
    assert t["dest"]["index"] == env["J1_LATEST_INDEX"]
    assert t["settings"]["deduce_mappings"] is False
    latest = load_asset("index-template-latest.json")
    assert any(
        re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), t["dest"]["index"])
        for p in latest["index_patterns"]
    )
    # Elastic's dashboards read `logs-*`: the latest view must stay out of it or they count twice
    assert not t["dest"]["index"].startswith("logs-") and not env["J1_LATEST_ALIAS"].startswith("logs-")
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}[a-z0-9]", env["J1_TRANSFORM"]), "transform id rules"


@pytest.mark.parametrize(
    "interval, full, expected",
    [
        ("1h", "24h", "30h"),
        ("1h", "1h", "3h"),
        ("15m", "6h", "450m"),
        ("6h", "7d", "210h"),
        ("1d", "1d", "3d"),
    ],
)
def test_retention_follows_the_schedule(interval, full, expected):
    t = json.loads(
        render(Names(interval=interval, full_interval=full))["elasticsearch/transform-latest.json"]
    )
    max_age = t["retention_policy"]["time"]["max_age"]
    assert max_age == expected
    i, f = parse_duration(interval), parse_duration(full)
    assert parse_duration(max_age) == f + max(2 * i, f // 4)


def test_ilm_deletes_history_but_not_before_rollover():
    phases = load_asset("ilm-policy.json")["policy"]["phases"]
    assert "rollover" in phases["hot"]["actions"]
    assert "delete" in phases["delete"]["actions"]
    assert parse_duration(phases["delete"]["min_age"]) >= 7 * 86400


def test_non_default_names_follow_everywhere():
    names = Names(type="logs", dataset="j1.findings", namespace="prod_eu")
    files = render(names)
    source = json.loads(files["elasticsearch/index-template-source.json"])
    assert source["index_patterns"] == ["logs-j1.findings-*"]
    ds = source["template"]["mappings"]["properties"]["data_stream"]["properties"]
    assert ds["dataset"]["value"] == "j1.findings"
    t = json.loads(files["elasticsearch/transform-latest.json"])
    assert t["source"]["index"] == ["logs-j1.findings-prod_eu"]
    assert t["dest"]["index"] == "j1filter-latest-logs-j1.findings-prod_eu-1"
    views = [json.loads(line) for line in files["kibana/j1filter-dashboards.ndjson"].splitlines()]
    titles = {o["attributes"]["title"] for o in views if o["type"] == "index-pattern"}
    assert titles == {"j1filter-latest-logs-j1.findings-prod_eu", "logs-j1.findings-prod_eu"}
    assert all("prod_eu" in o["id"] for o in views)


def test_long_names_still_give_a_valid_transform_id():
    names = Names(dataset="a" * 45, namespace="b" * 45)  # the longest data stream name allowed
    assert len(names.data_stream) == 96
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}[a-z0-9]", names.transform)
    assert names.transform != Names(dataset="a" * 45, namespace="b" * 44 + "c").transform


# --------------------------------------------------------------------------
# installer against a fake Elasticsearch and a fake Kibana
# --------------------------------------------------------------------------


class FakeServer:
    """Records every request; GET of an unknown path is 404; `answers` overrides by (method, path)."""

    def __init__(self, existing: set[str] = frozenset(), answers: dict | None = None):
        self.requests: list[dict] = []
        self.existing = set(existing)
        self.answers = answers or {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                path = self.path.split("?")[0]
                if (self.command, path) in fake.answers:
                    status, answer = fake.answers[(self.command, path)]
                elif self.command == "GET" and path not in fake.existing:
                    status, answer = 404, {"error": "not found", "status": 404}
                else:
                    status, answer = 200, {"acknowledged": True}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


IMPORT = ("POST", "/api/saved_objects/_import")
IMPORT_OK = (200, {"success": True, "successCount": 5, "successResults": []})


@pytest.fixture()
def curl_spy(tmp_path: Path) -> Path:
    """A `curl` earlier on PATH that logs its argv, then runs the real curl."""
    real = shutil.which("curl")
    if real is None or shutil.which("sh") is None:
        pytest.skip("the installer needs sh and curl")
    bindir = tmp_path / "spybin"
    bindir.mkdir()
    log = tmp_path / "argv.log"
    spy = bindir / "curl"
    spy.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    spy.chmod(0o755)
    return bindir


def _run_installer(env_extra: dict, spybin: Path, installer: Path = INSTALLER) -> subprocess.CompletedProcess:
    env = {
        "PATH": f"{spybin}{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),
        **env_extra,
    }
    return subprocess.run(["sh", str(installer)], env=env, capture_output=True, text=True, timeout=120)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_installer_loads_everything_in_dependency_order(curl_spy, tmp_path):
    es, kibana = FakeServer(), FakeServer(answers={IMPORT: IMPORT_OK})
    secret = 'k3y-"quoted"\\x'
    try:
        proc = _run_installer(
            {
                "ES_URL": es.url + "/",
                "ES_USER": "j1-installer-user",
                "ES_PASSWORD": secret,
                "KIBANA_URL": kibana.url,
                "KIBANA_USER": "kib-user",
                "KIBANA_PASSWORD": secret,
            },
            curl_spy,
        )
    finally:
        es.close()
        kibana.close()
    assert proc.returncode == 0, proc.stderr + proc.stdout
    writes = [(r["method"], r["path"].split("?")[0]) for r in es.requests if r["method"] != "GET"]
    assert writes == [
        ("PUT", "/_ilm/policy/j1filter-logs-jupiter_one.risks_and_alerts"),
        ("PUT", "/_ingest/pipeline/j1filter-logs-jupiter_one.risks_and_alerts-final"),
        ("PUT", "/_component_template/j1filter-logs-jupiter_one.risks_and_alerts@settings"),
        ("PUT", "/_component_template/j1filter-ecs@mappings"),
        ("PUT", "/_component_template/j1filter-jupiter_one@mappings"),
        ("PUT", "/_index_template/j1filter-logs-jupiter_one.risks_and_alerts"),
        ("PUT", "/_index_template/j1filter-latest-logs-jupiter_one.risks_and_alerts"),
        ("PUT", "/j1filter-latest-logs-jupiter_one.risks_and_alerts-default-1"),
        ("PUT", "/_transform/j1filter-latest-logs-jupiter_one_risks_and_alerts-default"),
        ("POST", "/_transform/j1filter-latest-logs-jupiter_one_risks_and_alerts-default/_start"),
    ], writes
    by_path = {r["path"].split("?")[0]: r for r in es.requests if r["method"] == "PUT"}
    assert json.loads(
        by_path["/_index_template/j1filter-logs-jupiter_one.risks_and_alerts"]["body"]
    ) == load_asset("index-template-source.json")
    transform_put = next(
        r for r in es.requests if r["path"].startswith("/_transform/") and r["method"] == "PUT"
    )
    assert json.loads(transform_put["body"]) == load_asset("transform-latest.json")
    assert "defer_validation=true" in transform_put["path"], "the source data stream may not exist yet"
    assert all(r["headers"].get("Authorization") == _basic("j1-installer-user", secret) for r in es.requests)
    # Kibana: one multipart import of the bundled NDJSON, with overwrite and the xsrf header
    [imp] = kibana.requests
    assert imp["path"] == "/api/saved_objects/_import?overwrite=true"
    assert imp["headers"].get("kbn-xsrf") == "true"
    assert imp["headers"].get("Authorization") == _basic("kib-user", secret)
    assert imp["headers"]["Content-Type"].startswith("multipart/form-data")
    assert DASHBOARDS.read_bytes() in imp["body"] and b'name="file"' in imp["body"]
    argv = (tmp_path / "argv.log").read_text()
    assert secret not in argv and "j1-installer-user" not in argv and "kib-user" not in argv, (
        "credentials must not appear on curl's command line"
    )


def test_installer_api_key_and_rerun(curl_spy, tmp_path):
    es = FakeServer(
        existing={
            "/_data_stream/logs-jupiter_one.risks_and_alerts-default",
            "/j1filter-latest-logs-jupiter_one.risks_and_alerts-default-1",
            "/_transform/j1filter-latest-logs-jupiter_one_risks_and_alerts-default",
        }
    )
    kibana = FakeServer(answers={("POST", "/s/soc/api/saved_objects/_import"): IMPORT_OK})
    try:
        proc = _run_installer(
            {
                "ES_URL": es.url,
                "ES_API_KEY": "myid:mysecretkey",
                "KIBANA_URL": kibana.url,
                "KIBANA_SPACE": "soc",
            },
            curl_spy,
        )
    finally:
        es.close()
        kibana.close()
    assert proc.returncode == 0, proc.stderr + proc.stdout
    expected = "ApiKey " + base64.b64encode(b"myid:mysecretkey").decode()
    assert all(r["headers"].get("Authorization") == expected for r in es.requests + kibana.requests), (
        "Kibana falls back to the Elasticsearch credentials"
    )
    writes = [(r["method"], r["path"].split("?")[0]) for r in es.requests if r["method"] != "GET"]
    transform = "/_transform/j1filter-latest-logs-jupiter_one_risks_and_alerts-default"
    # the existing data stream is rolled over so it picks up the new mappings,
    # the existing destination index is kept, the transform is replaced
    assert ("POST", "/logs-jupiter_one.risks_and_alerts-default/_rollover") in writes
    assert not any(w[1].startswith("/j1filter-latest-") for w in writes)
    assert (
        writes.index(("POST", f"{transform}/_stop"))
        < writes.index(("DELETE", transform))
        < writes.index(("PUT", transform))
    )
    assert [r["path"] for r in kibana.requests] == ["/s/soc/api/saved_objects/_import?overwrite=true"]
    assert "mysecretkey" not in (tmp_path / "argv.log").read_text()


def test_installer_fails_when_kibana_refuses_objects(curl_spy):
    # Kibana answers 200 with success false when an object cannot be imported
    kibana = FakeServer(
        answers={
            IMPORT: (
                200,
                {"success": False, "successCount": 0, "errors": [{"id": "x", "error": {"type": "unknown"}}]},
            )
        }
    )
    try:
        proc = _run_installer({"KIBANA_URL": kibana.url}, curl_spy)
    finally:
        kibana.close()
    assert proc.returncode != 0 and "FAIL  Kibana" in proc.stderr, proc.stdout + proc.stderr


def test_rendered_installer_works_for_other_names(curl_spy, tmp_path):
    out = tmp_path / "bundle"
    from j1filter.assets import write

    write(render(Names(dataset="j1.findings", namespace="prod")), out)
    es, kibana = FakeServer(), FakeServer(answers={IMPORT: IMPORT_OK})
    try:
        proc = _run_installer(
            {"ES_URL": es.url, "KIBANA_URL": kibana.url}, curl_spy, out / "elasticsearch" / "install.sh"
        )
    finally:
        es.close()
        kibana.close()
    assert proc.returncode == 0, proc.stderr
    paths = [r["path"].split("?")[0] for r in es.requests if r["method"] == "PUT"]
    assert "/_index_template/j1filter-logs-j1.findings" in paths
    assert "/j1filter-latest-logs-j1.findings-prod-1" in paths
    assert "/_transform/j1filter-latest-logs-j1_findings-prod" in paths
    assert (out / "kibana" / "j1filter-dashboards.ndjson").read_bytes() in kibana.requests[0]["body"]


def test_installer_fails_loudly(curl_spy):
    proc = _run_installer({}, curl_spy)
    assert proc.returncode != 0 and "ES_URL" in proc.stderr
    proc = _run_installer({"ES_URL": "http://127.0.0.1:9"}, curl_spy)  # nothing listens
    assert proc.returncode != 0 and "cannot reach" in proc.stderr
    proc = _run_installer({"KIBANA_URL": "http://127.0.0.1:9"}, curl_spy)
    assert proc.returncode != 0 and "cannot reach" in proc.stderr


def test_cli_refuses_a_mapping_that_check_refuses(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 1\nname: bad\nrules:\n  - {to: event.severity, value: high}\n")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "j1filter", "assets", "--out", str(out), "-m", str(bad)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 2 and f"{bad}:4:5" in proc.stderr and "(long)" in proc.stderr, proc.stderr
    assert not out.exists(), "nothing is written for a refused mapping"
