"""The current-state guarantees over accelerated time (issue 9).

J1 (the simulator on a simulated clock) changes every hour: entities are created, updated,
left alone for days, deleted (with and without a new version), and forgotten 7 days after
deletion. The real collector runs on the shipped schedule (a full collection every 24 h, an
incremental one every hour, state in a checkpoint file), its lines go through the real filter
and are indexed with Elasticsearch's `create` + `_id` semantics (the id rule read from
logstash/j1-collector.conf); a model of the latest transform (unique key, sort and retention
read from transform-latest.json) gives the latest view. After every collection the view is
compared with J1's state:

- every entity that exists in J1 is in the view exactly once, with its newest version and a
  @timestamp within one full interval;
- an update is visible after the next (hourly) collection;
- a deleted entity is shown as deleted, or gone, within one full interval + one interval, and
  is gone for good once J1 forgot it and the retention passed.

J1FILTER_SLOW_TESTS=1 runs 30 simulated days for several seeds instead of 10 days for one.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from collect_helpers import ACCOUNT_ID, TOKEN, make_entity
from es_model import DataStream, LatestTransform, _ms, field_value

from j1filter.collect._timestamps import timestamp_ms
from j1filter.collect.client import ConnectionSettings, J1Client, RetryPolicy, Secret
from j1filter.collect.collector import DEFAULT_QUERY, CollectOptions, Collector
from j1filter.collect.simulator import DELETED_RETENTION_MS, Simulator
from j1filter.runtime.compiler import compile_mappings
from j1filter.runtime.mapper import Mapper
from j1filter.stream import run as filter_stream

HOUR = 3_600_000
DAY = 24 * HOUR
FULL_INTERVAL = DAY
INTERVAL = HOUR
START = 1_800_000_000_000 - 1_800_000_000_000 % DAY  # a midnight, UTC
SLOW = os.environ.get("J1FILTER_SLOW_TESTS") == "1"
CASES = [(seed, 30) for seed in range(5)] if SLOW else [(20261201, 10)]


class World:
    """J1 on a simulated clock plus the whole shipped pipeline down to the latest view."""

    def __init__(self, tmp_path: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.now = START - 3 * DAY
        self.sim = Simulator([], token=TOKEN, account_id=ACCOUNT_ID, page_size=40, clock_ms=lambda: self.now)
        self.next_index = 0
        self.out = io.BytesIO()
        self.mapper = Mapper(compile_mappings())
        self.stream = DataStream()
        self.transform = LatestTransform.from_asset()
        self.kinds: Counter[str] = Counter()
        self.tmp_path = tmp_path

    def start(self) -> None:
        self.sim.start()
        client = J1Client(
            ConnectionSettings(self.sim.url, timeout=10),
            Secret(TOKEN),
            ACCOUNT_ID,
            retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01),
            rate_limit_per_minute=0,
        )
        options = CollectOptions(
            query=DEFAULT_QUERY,
            checkpoint_path=self.tmp_path / "checkpoint.json",
            full_interval_ms=FULL_INTERVAL,
            clock_ms=lambda: self.now,
        )
        self.collector = Collector(client, self.out, options)
        for _ in range(40):  # entities that exist before the first collection, some unchanged for days
            self.now += self.rng.randint(1, 100) * 60_000
            self.create()

    # -- J1 changes -------------------------------------------------------------------

    def create(self) -> None:
        item = make_entity(self.next_index)
        item["properties"]["revision"] = 1
        self.sim.upsert(item)
        self.next_index += 1

    def live_ids(self) -> list[str]:
        return [item["id"] for item in self.sim.entities if not item["entity"]["_deleted"]]

    def change_during_the_hour(self, collection_at: int) -> None:
        moments = sorted(self.rng.randint(collection_at - HOUR + 1, collection_at - 1) for _ in range(6))
        for moment in moments:
            self.now = moment
            roll = self.rng.random()
            live = self.live_ids()
            if roll < 0.3 or len(live) < 10:
                self.create()
            elif roll < 0.85:
                target = self.rng.choice(live[: max(1, len(live) * 2 // 3)])  # the newest third rests
                item = next(i for i in self.sim.entities if i["id"] == target)
                self.sim.update(target, {"revision": item["properties"]["revision"] + 1})
            else:
                self.sim.delete(self.rng.choice(live), new_version=self.rng.random() < 0.5)
        self.now = collection_at

    # -- the pipeline -----------------------------------------------------------------

    def collected_documents(self) -> list[dict[str, Any]]:
        """One collection, `collect | j1filter` as the shipped pipeline runs it: its documents."""
        summary = self.collector.collect_once()
        self.kinds[summary.kind] += 1
        lines = self.out.getvalue()
        self.out.seek(0)
        self.out.truncate()
        mapped = io.BytesIO()
        stats = filter_stream(io.BytesIO(lines), mapped, self.mapper, line_buffered=True)
        assert not stats.errors, stats.summary()
        return [orjson.loads(line) for line in mapped.getvalue().splitlines()]

    def collect(self) -> None:
        for doc in self.collected_documents():
            if self.stream.create(doc):
                self.transform.ingest(doc)

    def latest_view(self) -> dict[str, dict[str, Any]]:
        view = self.transform.view(self.now)
        per_entity = Counter(key[-1] for key in view)
        assert max(per_entity.values(), default=1) == 1, "an entity more than once in the latest view"
        return {key[-1]: doc for key, doc in view.items()}


def check(world: World) -> None:
    """The guarantees, at `world.now`, just after a collection."""
    now, view = world.now, world.latest_view()
    known = {item["id"] for item in world.sim.entities}
    assert set(view) <= known, "the view holds an entity J1 never had"
    for item in world.sim.entities:
        entity, doc = item["entity"], view.get(item["id"])
        where = f"at {(now - START) / HOUR:.0f} h, entity {item['id'][-4:]}"
        if not entity["_deleted"]:
            assert doc is not None, f"{where}: exists in J1, missing from the latest view"
            assert field_value(doc, "jupiter_one.asset.entity._version") == str(entity["_version"]), (
                f"{where}: not the newest version one interval after the change"
            )
            assert field_value(doc, "jupiter_one.asset.properties.revision") == item["properties"]["revision"]
            assert now - _ms(doc["@timestamp"]) < FULL_INTERVAL, f"{where}: dated {doc['@timestamp']}"
            assert field_value(doc, "jupiter_one.asset.entity._deleted") is not True
            continue
        deleted_for = now - (timestamp_ms(entity["_endOn"]) or 0)
        shown_deleted = doc is not None and field_value(doc, "jupiter_one.asset.entity._deleted") is True
        if doc is not None and not shown_deleted:
            assert deleted_for < FULL_INTERVAL + INTERVAL, (
                f"{where}: deleted {deleted_for / HOUR:.1f} h ago, still live"
            )
        if deleted_for > DELETED_RETENTION_MS + world.transform.max_age_ms:
            assert doc is None, (
                f"{where}: forgotten by J1 {deleted_for / DAY:.1f} days after deletion, still shown"
            )


@pytest.mark.parametrize(("seed", "days"), CASES)
def test_the_latest_view_follows_j1_over_simulated_days(tmp_path: Path, seed: int, days: int) -> None:
    # the checkpoint is fsync'd 240 times: on tmpfs where there is one, the disk is not the point here
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else tmp_path) as state_dir:
        _simulate(World(Path(state_dir), seed), days)


def _simulate(world: World, days: int) -> None:
    world.start()
    try:
        for hour in range(1, days * 24 + 1):
            world.change_during_the_hour(START + hour * HOUR)
            world.collect()
            check(world)
    finally:
        world.sim.stop()
    # the schedule itself: a full collection a day, incremental ones in between
    assert world.kinds == {"full": days, "incremental": days * 23}
    deleted = [item for item in world.sim.entities if item["entity"]["_deleted"]]
    forgotten = [
        i for i in deleted if world.now - (timestamp_ms(i["entity"]["_endOn"]) or 0) > DELETED_RETENTION_MS
    ]
    assert forgotten and len(deleted) > len(forgotten), "the run must cover recent and long-gone deletions"
    assert world.stream.conflicts > 0, "incremental re-collections must be idempotent (409)"
