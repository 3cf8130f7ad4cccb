"""The test node itself: a real OpenSearch with the modules the assets need."""

from __future__ import annotations

import pytest
from node import RUNNER_VERSION, Client, NodeUnavailable, runner_jars, verdict


def test_the_node_is_a_real_opensearch_with_ingest_and_painless(opensearch: Client) -> None:
    info = opensearch.ok("GET", "/")
    assert info["version"]["distribution"] == "opensearch"
    assert RUNNER_VERSION.startswith(info["version"]["number"] + ".")
    modules = {p["component"] for p in opensearch.ok("GET", "/_cat/plugins?format=json")}
    for needed in ("IngestCommonPlugin", "PainlessPlugin", "MapperExtrasPlugin", "ReindexPlugin"):
        assert any(m.endswith("." + needed) for m in modules), (needed, sorted(modules))
    # yellow once indices exist: one node holds no replicas
    assert opensearch.ok("GET", "/_cluster/health")["status"] in ("green", "yellow")


def test_without_maven_outside_ci_skips_and_in_ci_fails(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr("node.CACHE", tmp_path)  # no cached jars, so Maven would be needed
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NodeUnavailable, match="`mvn` not found") as caught:
        runner_jars()
    assert caught.value.missing_tool
    assert verdict(caught.value, in_ci=False) == "skip"
    assert verdict(caught.value, in_ci=True) == "fail"
    assert verdict(NodeUnavailable("the node exited with 1"), in_ci=False) == "fail"
