"""The current state of J1 on a real OpenSearch node, over accelerated time (issue 9's test,
with the engine instead of the model of the latest transform).

The same simulated J1 world as tests/collect/test_current_state.py (entities created, updated,
deleted with and without a new version, forgotten; the real collector on the shipped schedule;
the real filter). Each collection is written as logstash/opensearch/j1-collector-opensearch.conf
writes it: `create` into the data stream, and `index` into the current-state alias with
_id = event.id, version = the collection time in epoch ms, version_type as the pipeline says.
After every collection the shipped prune query runs (with the simulated clock for `now`) and the
current state, read back with a real search, must satisfy the same guarantees as the latest view
on Elasticsearch. At the end, after a full collection, the questions a SOC asks (open findings
now by severity, source and host) are answered by aggregations and compared with J1's own state.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from engine import OPENSEARCH_CONF, IdRule, bulk, document_id, refresh
from es_model import capped
from node import REPO, Client, Node

from j1filter.assets import Names, render, write
from j1filter.assets.names import parse_duration
from j1filter.collect._timestamps import iso_from_ms as _iso

sys.path.insert(0, str(REPO / "tests" / "collect"))
import test_current_state as es_side
from collect_helpers import make_entity

NAMES = Names(namespace="currentstate")
SEVERITIES = ("critical", "high", "medium", "low")
SOURCES = ("Qualys", "Tenable", "Snyk")
HOSTS = tuple(f"web-{n}" for n in range(5))


def _conf_setting(output_id: str, key: str) -> str:
    """A setting of one output of the shipped OpenSearch pipeline."""
    text = OPENSEARCH_CONF.read_text()
    block = text[text.index(f'id                => "{output_id}"') :]
    return re.search(rf'\n\s*{key}\s*=>\s*"([^"]+)"', block)[1]  # type: ignore[index]


class Retention:
    """What check() reads of the transform: how long a gone entity may stay."""

    def __init__(self, names: Names) -> None:
        self.max_age_ms = parse_duration(names.retention) * 1000


class OpenSearchWorld(es_side.World):
    def __init__(self, tmp_path: Path, seed: int, client: Client, prune_query: dict[str, Any]) -> None:
        super().__init__(tmp_path, seed)
        self.client = client
        self.transform = Retention(NAMES)  # type: ignore[assignment]
        self.prune_query = prune_query
        self.rule = IdRule.from_conf(OPENSEARCH_CONF)
        self.history_conflicts = self.current_conflicts = 0
        self.last_batch: list[dict[str, Any]] = []

    def create(self) -> None:  # as World.create, varied in what the questions group by
        item = make_entity(self.next_index)
        item["properties"].update(
            revision=1, severity=self.rng.choice(SEVERITIES), hostname=self.rng.choice(HOSTS)
        )
        item["entity"]["_integrationName"] = self.rng.choice(SOURCES)
        self.sim.upsert(item)
        self.next_index += 1

    def collect(self) -> None:
        docs = self.collected_documents()
        for doc in docs:  # what Logstash's `pipe` input does to the data_stream fields: nothing
            doc["data_stream"]["namespace"] = NAMES.namespace
        self.last_batch = docs
        self.write(docs)
        self.prune()

    def write(self, docs: list[dict[str, Any]]) -> tuple[int, int]:
        history = bulk(
            self.client,
            (({"create": {"_index": NAMES.data_stream, "_id": document_id(self.rule, d)}}, d) for d in docs),
            workers=1,
        )
        assert not history.rejected, history.rejected[:3]
        self.history_conflicts += history.conflicts
        version_type = _conf_setting("j1_os_current", "version_type")
        current = bulk(
            self.client,
            (
                (
                    {
                        "index": {
                            "_index": NAMES.latest_alias,
                            "_id": capped(d["event"]["id"]),
                            "version": es_side._ms(d["@timestamp"]),
                            "version_type": version_type,
                        }
                    },
                    d,
                )
                for d in docs
                if d.get("event", {}).get("id")
            ),
            workers=1,
        )
        assert not current.rejected, current.rejected[:3]
        self.current_conflicts += current.conflicts
        refresh(self.client, NAMES.latest_alias)  # the prune and the checks read it
        return current.created, current.conflicts

    def prune(self) -> None:
        """The shipped prune query, `now` being the simulated clock."""
        body = orjson.loads(
            orjson.dumps(self.prune_query).replace(b'"now-', f'"{_iso(self.now)}||-'.encode())
        )
        self.client.ok("POST", f"/{NAMES.latest_alias}/_delete_by_query?conflicts=proceed&refresh=true", body)

    def latest_view(self) -> dict[str, dict[str, Any]]:
        answer = self.client.ok("POST", f"/{NAMES.latest_alias}/_search", {"size": 10_000, "version": True})
        hits = answer["hits"]["hits"]
        assert answer["hits"]["total"]["value"] == len(hits) < 10_000
        view = {hit["_source"]["event"]["id"]: hit["_source"] for hit in hits}
        assert len(view) == len(hits), "an entity more than once in the current state"
        for hit in hits:
            assert hit["_version"] == es_side._ms(hit["_source"]["@timestamp"]), (
                "version is not the collection time"
            )
        return view


def _install(node: Node, out: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(out / "opensearch" / "install.sh"), *args],
        env={**os.environ, "OPENSEARCH_URL": node.url, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("current-state-assets")
    write(render(NAMES, engine="opensearch"), out)
    return out


@pytest.fixture(scope="module")
def shipped(opensearch_node: Node, rendered: Path) -> dict[str, Any]:
    """The OpenSearch set for the namespace `currentstate`, installed by its install.sh."""
    done = _install(opensearch_node, rendered, J1_ISM="false")
    assert done.returncode == 0, done.stdout + done.stderr
    return orjson.loads((rendered / "opensearch" / "current-prune-query.json").read_bytes())


def test_installer_without_the_ism_plugin_fails_loudly_and_prunes(
    opensearch_node: Node, rendered: Path, shipped
) -> None:
    done = _install(opensearch_node, rendered)
    assert done.returncode == 1
    assert "ISM policy: HTTP 400 (Index Management plugin missing? J1_ISM=false skips it)" in done.stderr
    done = _install(opensearch_node, rendered, "prune")
    assert done.returncode == 0 and f"ok    prune current state {NAMES.latest_alias}" in done.stdout, (
        done.stderr
    )


@pytest.mark.parametrize(("seed", "days"), es_side.CASES)
def test_the_current_state_follows_j1_on_opensearch(
    tmp_path: Path, seed: int, days: int, opensearch: Client, shipped: dict[str, Any]
) -> None:
    assert _conf_setting("j1_os_current", "action") == "index"
    assert _conf_setting("j1_os_current", "document_id") == "%{[@metadata][_current_id]}"
    world = OpenSearchWorld(tmp_path, seed, opensearch, shipped)
    world.start()
    try:
        for hour in range(1, days * 24 + 1):
            world.change_during_the_hour(es_side.START + hour * es_side.HOUR)
            world.collect()
            es_side.check(world)
        # a late, older collection arrives again (a replayed spool): the newer state stays
        before = world.latest_view()
        older = [
            dict(d, **{"@timestamp": _iso(es_side._ms(d["@timestamp"]) - es_side.HOUR)})
            for d in world.last_batch
        ]
        _, conflicts = world.write(older)
        assert conflicts == len([d for d in older if d.get("event", {}).get("id")]) > 0
        assert world.latest_view() == before
        # then up to the next full collection, and the questions
        hour = days * 24
        while True:
            hour += 1
            world.change_during_the_hour(es_side.START + hour * es_side.HOUR)
            full_before = world.kinds["full"]
            world.collect()
            es_side.check(world)
            if world.kinds["full"] > full_before:
                break
        answer_the_questions(world)
    finally:
        world.sim.stop()
    assert world.kinds["full"] == days + 1
    assert world.history_conflicts > 0, "incremental re-collections must be idempotent in the history (409)"
    deleted = [i for i in world.sim.entities if i["entity"]["_deleted"]]
    assert deleted, "the run must cover deletions"


def answer_the_questions(world: OpenSearchWorld) -> None:
    """Open findings now, by severity, source and host: aggregations on the current state equal
    J1's own state just after a full collection."""
    snapshot = max(d["jupiter_one"]["collection"]["snapshot"] for d in world.last_batch)
    query = {
        "size": 0,
        "query": {
            "bool": {
                "filter": [{"term": {"jupiter_one.collection.snapshot": snapshot}}],
                "must_not": [{"term": {"jupiter_one.asset.entity._deleted": True}}],
            }
        },
        "aggs": {
            "severity": {"terms": {"field": "vulnerability.severity", "size": 50}},
            "source": {"terms": {"field": "jupiter_one.asset.entity._integration_name", "size": 50}},
            "host": {"terms": {"field": "host.name", "size": 50}},
        },
    }
    answer = world.client.ok("POST", f"/{NAMES.latest_alias}/_search", query)
    got = {
        name: {b["key"]: b["doc_count"] for b in agg["buckets"]}
        for name, agg in answer["aggregations"].items()
    }
    live = [i for i in world.sim.entities if not i["entity"]["_deleted"]]
    expected = {
        "severity": Counter(i["properties"]["severity"] for i in live),
        "source": Counter(i["entity"].get("_integrationName") for i in live),
        "host": Counter(i["properties"]["hostname"] for i in live),
    }
    assert answer["hits"]["total"]["value"] == len(live)
    for name, counts in expected.items():
        assert got[name] == dict(counts), (
            f"open findings by {name}: OpenSearch {got[name]}, J1 {dict(counts)}"
        )
