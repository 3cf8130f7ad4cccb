"""The Elasticsearch assets (plain JSON) and their installer.

The installer is run for real (/bin/sh + curl) against a fake Elasticsearch on
127.0.0.1 that records every request.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ls_helpers import ES_ASSETS, load_asset

INSTALLER = ES_ASSETS / "install.sh"


def _duration_seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text)
    assert m, text
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def test_assets_are_valid_json():
    for path in ES_ASSETS.glob("*.json"):
        json.loads(path.read_text())


def test_templates_reference_each_other_consistently():
    installer = INSTALLER.read_text()
    settings = load_asset("component-template-settings.json")["template"]["settings"]["index"]
    assert settings["lifecycle"]["name"] in installer
    assert f"/_ilm/policy/{settings['lifecycle']['name']} " in installer
    assert f"/_ingest/pipeline/{settings['final_pipeline']} " in installer
    # Elastic's own ingest pipeline must not run again on j1filter documents.
    assert settings["default_pipeline"] == "_none"
    assert "jupiter_one" not in settings["final_pipeline"].replace("j1filter-risks_and_alerts", "")
    for name in ("index-template-risks_and_alerts.json", "index-template-latest.json"):
        template = load_asset(name)
        for component in template["composed_of"]:
            assert f"/_component_template/{component} " in installer, component
        # must win over Elastic's jupiter_one integration templates (priority 200)
        assert template["priority"] > 200


def test_source_template_is_a_data_stream_template():
    t = load_asset("index-template-risks_and_alerts.json")
    assert t["index_patterns"] == ["logs-jupiter_one.risks_and_alerts-*"]
    assert "data_stream" in t


def test_final_pipeline_only_stamps_event_ingested():
    p = load_asset("ingest-pipeline-final.json")
    assert p["processors"] == [{"set": {"field": "event.ingested", "value": "{{{_ingest.timestamp}}}",
                                        "tag": "set_event_ingested"}}]


def test_latest_transform_outlives_the_collection_interval():
    t = load_asset("transform-latest.json")
    ilm = load_asset("ilm-policy.json")["policy"]["phases"]
    assert t["latest"]["unique_key"] == ["event.dataset", "event.id"]  # as Elastic's
    assert t["source"]["index"] == ["logs-jupiter_one.risks_and_alerts-*"]
    retention = t["retention_policy"]["time"]
    # @timestamp is the collection time (DESIGN-current-state.md): the newest collection
    # wins, and every full snapshot (daily) refreshes it, so retention on @timestamp of
    # full_interval + margin (24h + max(2 x 1h, 24h / 4)) drops exactly what J1 no longer has.
    assert t["latest"]["sort"] == retention["field"] == "@timestamp"
    assert t["sync"]["time"]["field"] == "event.ingested"
    max_age = _duration_seconds(retention["max_age"])
    assert max_age == 86400 + max(2 * 3600, 86400 / 4)
    assert ilm["hot"]["actions"]["rollover"]["max_age"]
    assert _duration_seconds(t["sync"]["time"]["delay"]) < max_age
    assert t["settings"]["deduce_mappings"] is False
    dest = t["dest"]["index"]
    latest = load_asset("index-template-latest.json")
    assert any(re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), dest) for p in latest["index_patterns"])
    assert "data_stream" not in latest, "the transform destination is a plain index"
    assert not dest.startswith("logs-jupiter_one_latest"), "do not collide with Elastic's integration"


def test_ilm_deletes_history_but_not_before_rollover():
    phases = load_asset("ilm-policy.json")["policy"]["phases"]
    assert "rollover" in phases["hot"]["actions"]
    assert "delete" in phases["delete"]["actions"]
    assert _duration_seconds(phases["delete"]["min_age"]) >= 7 * 86400


# --------------------------------------------------------------------------
# installer against a fake Elasticsearch
# --------------------------------------------------------------------------

class FakeES:
    def __init__(self, existing: set[str] = frozenset()):
        self.requests: list[dict] = []
        self.existing = set(existing)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append({"method": self.command, "path": self.path,
                                      "headers": dict(self.headers), "body": body})
                path = self.path.split("?")[0]
                if self.command == "GET" and path not in fake.existing:
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


def _run_installer(env_extra: dict, spybin: Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{spybin}{os.pathsep}{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/tmp"),
           **env_extra}
    return subprocess.run(["sh", str(INSTALLER)], env=env, capture_output=True, text=True, timeout=120)


def test_installer_puts_assets_in_dependency_order(curl_spy, tmp_path):
    es = FakeES()
    try:
        secret = 'k3y-"quoted"\\x'
        proc = _run_installer({"ES_URL": es.url + "/", "ES_USER": "j1-installer-user", "ES_PASSWORD": secret}, curl_spy)
    finally:
        es.close()
    assert proc.returncode == 0, proc.stderr + proc.stdout
    calls = [(r["method"], r["path"].split("?")[0]) for r in es.requests]
    writes = [c for c in calls if c[0] != "GET"]
    assert writes == [
        ("PUT", "/_ilm/policy/j1filter-risks_and_alerts"),
        ("PUT", "/_ingest/pipeline/j1filter-risks_and_alerts-final"),
        ("PUT", "/_component_template/j1filter-risks_and_alerts@settings"),
        ("PUT", "/_component_template/j1filter-ecs@mappings"),
        ("PUT", "/_component_template/j1filter-jupiter_one@mappings"),
        ("PUT", "/_index_template/j1filter-logs-jupiter_one.risks_and_alerts"),
        ("PUT", "/_index_template/j1filter-latest-risks_and_alerts"),
        ("PUT", "/logs-j1filter_latest.dest_risks_and_alerts-1"),
        ("PUT", "/_transform/j1filter-latest-risks_and_alerts"),
        ("POST", "/_transform/j1filter-latest-risks_and_alerts/_start"),
    ], writes
    by_path = {r["path"].split("?")[0]: r for r in es.requests if r["method"] == "PUT"}
    assert json.loads(by_path["/_index_template/j1filter-logs-jupiter_one.risks_and_alerts"]["body"]) == \
        load_asset("index-template-risks_and_alerts.json")
    assert json.loads(by_path["/_transform/j1filter-latest-risks_and_alerts"]["body"]) == \
        load_asset("transform-latest.json")
    transform_put = next(r for r in es.requests if r["path"].startswith("/_transform/j1filter-latest-risks_and_alerts?"))
    assert "defer_validation=true" in transform_put["path"], "the source data stream may not exist yet"
    import base64
    expected = "Basic " + base64.b64encode(f"j1-installer-user:{secret}".encode()).decode()
    assert all(r["headers"].get("Authorization") == expected for r in es.requests)
    argv = (tmp_path / "argv.log").read_text()
    assert secret not in argv and "j1-installer-user" not in argv, "credentials must not appear on curl's command line"


def test_installer_api_key_and_rerun(curl_spy, tmp_path):
    es = FakeES(existing={"/_data_stream/logs-jupiter_one.risks_and_alerts-default",
                          "/logs-j1filter_latest.dest_risks_and_alerts-1",
                          "/_transform/j1filter-latest-risks_and_alerts"})
    try:
        proc = _run_installer({"ES_URL": es.url, "ES_API_KEY": "myid:mysecretkey"}, curl_spy)
    finally:
        es.close()
    assert proc.returncode == 0, proc.stderr + proc.stdout
    import base64
    expected = "ApiKey " + base64.b64encode(b"myid:mysecretkey").decode()
    assert all(r["headers"].get("Authorization") == expected for r in es.requests)
    writes = [(r["method"], r["path"].split("?")[0]) for r in es.requests if r["method"] != "GET"]
    # the existing data stream is rolled over so it picks up the new mappings,
    # the existing destination index is kept, the transform is replaced
    assert ("POST", "/logs-jupiter_one.risks_and_alerts-default/_rollover") in writes
    assert ("PUT", "/logs-j1filter_latest.dest_risks_and_alerts-1") not in writes
    i_stop = writes.index(("POST", "/_transform/j1filter-latest-risks_and_alerts/_stop"))
    i_del = writes.index(("DELETE", "/_transform/j1filter-latest-risks_and_alerts"))
    i_put = writes.index(("PUT", "/_transform/j1filter-latest-risks_and_alerts"))
    assert i_stop < i_del < i_put
    assert "mysecretkey" not in (tmp_path / "argv.log").read_text()


def test_installer_fails_loudly(curl_spy):
    proc = _run_installer({}, curl_spy)
    assert proc.returncode != 0 and "ES_URL" in proc.stderr
    proc = _run_installer({"ES_URL": "http://127.0.0.1:9"}, curl_spy)  # nothing listens
    assert proc.returncode != 0 and "cannot reach" in proc.stderr
