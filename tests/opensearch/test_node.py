"""The test node itself: a real OpenSearch with the modules the assets need."""

from __future__ import annotations

from node import RUNNER_VERSION, Client


def test_the_node_is_a_real_opensearch_with_ingest_and_painless(opensearch: Client) -> None:
    info = opensearch.ok("GET", "/")
    assert info["version"]["distribution"] == "opensearch"
    assert RUNNER_VERSION.startswith(info["version"]["number"] + ".")
    modules = {p["component"] for p in opensearch.ok("GET", "/_cat/plugins?format=json")}
    for needed in ("IngestCommonPlugin", "PainlessPlugin", "MapperExtrasPlugin", "ReindexPlugin"):
        assert any(m.endswith("." + needed) for m in modules), (needed, sorted(modules))
    # yellow once indices exist: one node holds no replicas
    assert opensearch.ok("GET", "/_cluster/health")["status"] in ("green", "yellow")
