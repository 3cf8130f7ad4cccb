"""The OpenSearch asset set by structure (the engine itself checks it in the other modules):
no Elasticsearch-only feature, the ISM policy against the ISM plugin's own parser, the Logstash
pipeline for logstash-output-opensearch, and the `--engine` option."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from node import REPO

from j1filter.assets import Names, render

sys.path.insert(0, str(REPO / "tests" / "logstash"))
from ls_helpers import find, plugins_of

OS_DIR = REPO / "logstash" / "opensearch"


def _bodies(names: Names | None = None) -> dict[str, Any]:
    files = render(names, engine="opensearch")
    return {Path(k).name: json.loads(v) for k, v in files.items() if k.endswith(".json")}


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    out = [(path, value)]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _walk(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for n, v in enumerate(value):
            out += _walk(v, f"{path}[{n}]")
    return out


def test_no_elasticsearch_only_feature_in_the_opensearch_set() -> None:
    for name, body in _bodies().items():
        for path, value in _walk(body):
            assert not path.endswith("subobjects"), f"{name}: {path}"
            assert not path.endswith(".lifecycle"), f"{name}: {path}"
            assert value != "constant_keyword", f"{name}: {path}"
            if isinstance(value, dict) and value.get("type") == "boolean":
                assert "ignore_malformed" not in value, f"{name}: {path}"
            if isinstance(value, dict) and value.get("type") == "wildcard":
                assert value.get("doc_values") is True, f"{name}: {path}"
    pipeline = _bodies()["ingest-pipeline-final.json"]
    assert "_meta" not in pipeline


def test_raw_properties_are_one_flat_object_and_the_rest_keeps_its_types() -> None:
    j1 = _bodies()["component-template-jupiter_one-mappings.json"]["template"]["mappings"]
    asset = j1["properties"]["jupiter_one"]["properties"]["asset"]["properties"]
    assert asset["properties"] == {"type": "flat_object"}
    assert asset["entity"]["properties"]["_created_on"] == {"type": "date", "ignore_malformed": True}
    assert asset["entity"]["properties"]["_deleted"]["type"] == "keyword"
    assert not any(
        t["path_match"].startswith("jupiter_one.asset.properties.")
        for entry in j1["dynamic_templates"]
        for t in entry.values()
        if "path_match" in t
    ), "a dynamic template below the flat_object never fires"


# The ISM plugin cannot be loaded into the test node (its zips are not on Maven Central), so the
# policy is checked against the fields its parser accepts, read in opensearch-project/
# index-management @5078c9a6 (2026-08-19): model/Policy.kt, State.kt, Transition.kt (Conditions),
# ISMTemplate.kt and action/RolloverActionParser.kt; each parser throws on any other field.
ISM_POLICY_FIELDS = {"policy_id", "description", "last_updated_time", "schema_version", "error_notification",
                     "default_state", "states", "ism_template", "user"}  # fmt: skip
ISM_STATE_FIELDS = {"name", "actions", "transitions"}
ISM_CONDITIONS = {"min_index_age", "min_doc_count", "min_size", "cron", "min_rollover_age", "no_alias",
                  "min_state_age"}  # fmt: skip
ISM_ROLLOVER_FIELDS = {"min_size", "min_doc_count", "min_index_age", "min_primary_shard_size", "copy_alias",
                       "prevent_empty_rollover", "any_of"}  # fmt: skip
ISM_TEMPLATE_FIELDS = {"index_patterns", "priority", "last_updated_time"}


def test_ism_policy_is_one_the_ism_parser_accepts_and_follows_ilm() -> None:
    names = Names()
    policy = _bodies(names)["ism-policy.json"]["policy"]
    assert set(policy) <= ISM_POLICY_FIELDS
    states = {s["name"]: s for s in policy["states"]}
    assert len(states) == len(policy["states"]) and policy["default_state"] in states
    for state in policy["states"]:
        assert set(state) <= ISM_STATE_FIELDS
        for transition in state["transitions"]:
            assert transition["state_name"] in states
            assert len(transition["conditions"]) == 1 and set(transition["conditions"]) <= ISM_CONDITIONS
    (rollover,) = (a["rollover"] for a in states["hot"]["actions"])
    assert set(rollover) <= ISM_ROLLOVER_FIELDS
    # the Elasticsearch ILM policy's meaning: roll over at 7 days or 50 GB a primary shard,
    # delete 30 days after rollover
    ilm = json.loads((REPO / "logstash" / "elasticsearch" / "ilm-policy.json").read_text())["policy"][
        "phases"
    ]
    assert rollover == {
        "min_index_age": ilm["hot"]["actions"]["rollover"]["max_age"],
        "min_primary_shard_size": ilm["hot"]["actions"]["rollover"]["max_primary_shard_size"],
    }
    assert states["hot"]["transitions"] == [
        {"state_name": "delete", "conditions": {"min_rollover_age": ilm["delete"]["min_age"]}}
    ]
    assert states["delete"] == {"name": "delete", "actions": [{"delete": {}}], "transitions": []}
    (template,) = policy["ism_template"]
    assert set(template) <= ISM_TEMPLATE_FIELDS
    # ISM matches a data stream's backing index by the data stream's name
    assert any(fnmatch.fnmatchcase(names.data_stream, p) for p in template["index_patterns"])
    assert not fnmatch.fnmatchcase(names.latest_index, template["index_patterns"][0])


def test_logstash_pipeline_writes_history_and_current_state_as_designed() -> None:
    plugins = plugins_of((OS_DIR / "j1-collector-opensearch.conf").read_text())
    history, current = find(plugins, "output", "opensearch")
    assert not find(plugins, "output", "elasticsearch")
    assert history.get("action") == "create" and history.get("document_id") == "%{[@metadata][_id]}"
    assert (
        history.get("index") == "%{[data_stream][type]}-%{[data_stream][dataset]}-%{[data_stream][namespace]}"
    )
    assert current.get("action") == "index" and current.get("version_type") == "external_gte"
    assert current.get("version") == "%{[@metadata][_version]}"
    assert current.get("index").startswith("j1filter-latest-")
    assert [c.strip("()") for c in current.conditions] == ["[event][id]"]
    for output in (history, current):
        assert output.get("manage_template") is False or output.get("manage_template") == "false"
        assert output.get("hosts") == ["${OPENSEARCH_HOSTS}"]
        assert output.get("password") == "${OPENSEARCH_PASSWORD}"
        assert "data_stream" not in output.options  # not an option of logstash-output-opensearch
        assert output.get("failure_type_logging_whitelist") == ["version_conflict_engine_exception"]
    (ids,) = [p for p in find(plugins, "filter", "ruby") if p.get("id") == "j1_ids_and_version"]
    assert "bytesize > 512" in ids.get("code") and "SHA256" in ids.get("code")


def test_non_default_names_reach_the_opensearch_set() -> None:
    names = Names(dataset="j1.findings", namespace="prod")
    files = render(names, engine="opensearch")
    env = files["opensearch/assets.env"].decode()
    assert "J1_DATA_STREAM='logs-j1.findings-prod'" in env and "J1_ISM_POLICY=" in env
    assert "J1_TRANSFORM" not in env
    conf = files["opensearch/j1-collector-opensearch.conf"].decode()
    assert '"[data_stream][namespace]" => "prod"' in conf and "@J1_" not in conf
    assert json.loads(files["opensearch/current-index.json"]) == {
        "aliases": {names.latest_alias: {"is_write_index": True}}
    }


@pytest.mark.parametrize("engine", ["opensearch", "elasticsearch"])
def test_cli_engine_option(tmp_path: Path, engine: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "j1filter", "assets", "--engine", engine, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for rel, data in render(engine=engine).items():
        assert (tmp_path / rel).read_bytes() == data, rel
    other = "elasticsearch" if engine == "opensearch" else "opensearch"
    assert not (tmp_path / other).exists()


def test_cli_refuses_an_unknown_engine(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "j1filter", "assets", "--engine", "solr", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2 and "invalid choice: 'solr'" in done.stderr
