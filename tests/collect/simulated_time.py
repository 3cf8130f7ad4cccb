"""Collections on simulated time: the client, the collector and the simulator share one clock
that moves only when something sleeps, and talk in-process (`Simulator.transport()`).

`measure_snapshot(tier, entities)` runs one full snapshot against a rate-limited simulator and
returns entities a minute as a fraction of the tier's ceiling (requests a minute x page size).
Run this file to measure 1 million entities per tier (about a minute per tier):

    .venv/bin/python tests/collect/simulated_time.py [ENTITIES]
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from collect_helpers import ACCOUNT_ID, TOKEN

from j1filter.collect.client import ConnectionSettings, J1Client, RetryPolicy
from j1filter.collect.collector import CollectOptions, Collector
from j1filter.collect.secrets import Secret
from j1filter.collect.simulator import TIERS, RateTier, Simulator

START_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
PAGE_SIZE = 250  # J1's page without variableResultSize


class FakeTime:
    """One clock for everyone; it moves only when something sleeps."""

    def __init__(self, start: float = START_S) -> None:
        self.now = start
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def clock_ms(self) -> int:
        return int(self.now * 1000)

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        self.slept += max(0.0, seconds)


def tiny_entities(count: int) -> list[dict[str, Any]]:
    begin = "2025-12-01T00:00:00.000Z"
    return [
        {
            "id": f"e{index}",
            "entity": {"_id": f"e{index}", "_class": ["Finding"], "_beginOn": begin},
            "properties": {},
        }
        for index in range(count)
    ]


def simulated(
    items: list[dict[str, Any]], page_size: int = 10, kind: type[Simulator] = Simulator, **options: Any
) -> tuple[FakeTime, Simulator]:
    """A fresh clock and an in-process simulator (no socket) that lives on it."""
    fake = FakeTime()
    sim = kind(
        items,
        token=TOKEN,
        account_id=ACCOUNT_ID,
        page_size=page_size,
        clock_ms=fake.clock_ms,
        sleep=fake.sleep,
        listen=False,
        **options,
    )
    return fake, sim


def simulated_client(sim: Simulator, fake: FakeTime, **options: Any) -> J1Client:
    settings = ConnectionSettings(sim.url, timeout=60)
    defaults: dict[str, Any] = {"retry": RetryPolicy(max_attempts=10, base_delay=2, max_delay=60)}
    return J1Client(
        settings,
        Secret(TOKEN),
        ACCOUNT_ID,
        sleep=fake.sleep,
        clock=fake.clock,
        transport=sim.transport(),
        **{**defaults, **options},
    )


@dataclass(frozen=True)
class Measurement:
    tier: RateTier
    entities: int
    requests: int
    throttled: int
    simulated_seconds: float

    @property
    def per_minute(self) -> float:
        return self.entities / (self.simulated_seconds / 60.0)

    @property
    def fraction(self) -> float:
        """Entities a minute over the ceiling the limit allows: requests a minute x page size."""
        return self.per_minute / (self.tier.per_minute * PAGE_SIZE)


def measure_snapshot(tier: RateTier, count: int, query_seconds: float = 0.5) -> Measurement:
    """One full snapshot of `count` entities, pages of 250, J1 taking `query_seconds` a page."""
    fake, sim = simulated(tiny_entities(count), PAGE_SIZE, tier=tier)
    sim.query_seconds = query_seconds
    client = simulated_client(sim, fake)
    with open(os.devnull, "wb") as sink:
        collector = Collector(client, sink, CollectOptions(query="FIND Finding", clock_ms=fake.clock_ms))
        started = fake.now
        summary = collector.collect_once()
    assert summary.written == count, summary
    throttled = sum(1 for request in sim.requests if request.status == 429)
    return Measurement(tier, count, client.stats.requests, throttled, fake.now - started)


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv else 1_000_000
    print(f"full snapshot of {count:,} entities, pages of {PAGE_SIZE}, 0.5 s per query, simulated time")
    print("tier        limit/min  requests  429s  minutes  entities/min  fraction of ceiling")
    for tier in TIERS.values():
        result = measure_snapshot(tier, count)
        print(
            f"{tier.name:<11} {tier.per_minute:>9}  {result.requests:>8}  {result.throttled:>4}"
            f"  {result.simulated_seconds / 60:>7.1f}  {result.per_minute:>12,.0f}  {result.fraction:.4f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
