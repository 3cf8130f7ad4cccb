"""A simulated week of `collect --interval 1h` on one injected clock, every fault scheduled in:
the loop is alive at the end, every entity reached the spool at least once, and the checkpoint
only moved forward. Each guard removed on purpose makes this fail (tried: see the docs)."""

from __future__ import annotations

import errno
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from faults import Fault, Simulator
from simulated_time import simulated, simulated_client

from j1filter.collect import collector as collector_module
from j1filter.collect import spool as spool_module
from j1filter.collect.checkpoint import load_checkpoint
from j1filter.collect.collector import CollectOptions, Collector
from j1filter.collect.pacing import RetryPolicy
from j1filter.collect.service import Clock, collect_forever
from j1filter.collect.simulator import TIERS
from j1filter.collect.status import StatusFile

HOURS = 7 * 24
POISON = "poison-me"  # an entity whose handling raises (a stand-in for any bug in one entity)


def deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def item(index: int, **properties: Any) -> dict[str, Any]:
    return {
        "id": f"id-{index}",
        "entity": {
            "_id": f"id-{index}",
            "_class": ["Finding"],
            "_type": "t",
            "_key": f"k{index}",
            "_version": 1,
            "_beginOn": "2025-12-31T00:00:00.000Z",
        },
        "properties": {"severity": "high", **properties},
    }


class FlakyFiles:
    """Spool files that fail on schedule: the disk fills up, or the file vanishes mid-write."""

    def __init__(self) -> None:
        self.mode: str | None = None  # "enospc" | "vanish" for the next spool file

    def create(self, path: Path, mode: int) -> Any:
        real = collector_module_create_new(path, mode)
        fault, self.mode = self.mode, None
        if fault is None:
            return real
        owner = self

        class Failing:
            def __init__(self) -> None:
                self.writes = 0

            def write(self, data: bytes) -> int:
                self.writes += 1
                if fault == "enospc" and self.writes == 2:
                    raise OSError(errno.ENOSPC, "No space left on device")
                if fault == "vanish" and self.writes == 1:
                    path.unlink()
                return real.write(data)

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        del owner
        return Failing()


collector_module_create_new = spool_module.create_new


@pytest.mark.parametrize("seed", [1])
def test_a_week_of_collections_survives_every_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    entities = [item(i) for i in range(40)]
    entities.append(item(40, x=deep(990)))  # one hostile entity, in J1 for the whole week
    entities.append(item(41, poison=POISON))
    fake, sim = simulated(entities, page_size=7, kind=Simulator, tier=TIERS["freemium"])
    client = simulated_client(sim, fake, retry=RetryPolicy(max_attempts=4, base_delay=1, max_delay=30))
    spool, state = tmp_path / "spool", tmp_path / "state"
    spool.mkdir()
    state.mkdir()
    checkpoint = state / "checkpoint.json"
    options = CollectOptions(
        query="FIND Finding",
        checkpoint_path=checkpoint,
        spool_dir=spool,
        clock_ms=fake.clock_ms,
        full_interval_ms=24 * 3_600_000,
    )
    collector = Collector(client, open("/dev/null", "wb"), options)  # noqa: SIM115
    flaky = FlakyFiles()
    monkeypatch.setattr(spool_module, "create_new", flaky.create)

    real_line = collector_module._Renderer.line

    def line(self: Any, entity_item: Any, where: str) -> bytes:
        if POISON in str(entity_item.get("properties", {}).get("poison", "")):
            raise RuntimeError("a bug in one entity's handling")
        return real_line(self, entity_item, where)

    monkeypatch.setattr(collector_module._Renderer, "line", line)

    real_pages = client.pages
    bug_hours: set[int] = set()

    def pages(*args: Any, **kwargs: Any) -> Any:
        if hour in bug_hours:
            raise KeyError("a bug in one collection")
        return real_pages(*args, **kwargs)

    monkeypatch.setattr(client, "pages", pages)

    faults = [
        lambda: sim.add_fault(Fault.http(429, retry_after="5"), after=rng.randrange(5)),
        lambda: sim.add_fault(Fault.http(502), after=rng.randrange(5)),
        lambda: sim.add_fault(Fault.http(401), after=rng.randrange(5)),
        lambda: sim.add_fault(Fault.malformed(), after=rng.randrange(5)),
        lambda: sim.add_fault(Fault.disconnect(), after=rng.randrange(5)),
        lambda: sim.add_fault(Fault.empty_page(), after=rng.randrange(5)),
        lambda: sim.add_fault(
            Fault.deferred_failed("x\n\x1b[2Jfull collection complete"), after=rng.randrange(5)
        ),
        lambda: sim.add_fault(Fault.answer(200, {"errors": [{"message": deep(1000)}], "data": None})),
        lambda: sim.add_fault(
            Fault.answer(200, {"errors": [{"message": "m", "extensions": {"code": deep(1000)}}]})
        ),
        lambda: sim.add_fault(
            Fault.answer(200, {"data": {"queryV1": {"type": "deferred", "url": "http://[::1/"}}})
        ),
        lambda: sim.add_fault(
            Fault.answer(200, {"data": {"queryV1": {"type": "list", "data": "x", "cursor": 5}}})
        ),
        lambda: setattr(flaky, "mode", "enospc"),
        lambda: setattr(flaky, "mode", "vanish"),
        lambda: bug_hours.add(hour),
    ]
    seen_ids: set[str] = set()
    checkpoints: list[tuple[int, int]] = []
    status = StatusFile(state / "status.json")
    hour = 0

    def sleep(seconds: float) -> None:
        nonlocal hour
        fake.sleep(seconds)
        hour += 1
        if checkpoint.exists():
            saved = load_checkpoint(checkpoint, "FIND Finding")
            checkpoints.append((saved.full_started_ms or 0, saved.last_started_ms or 0))
        for path in spool.glob("j1-*.ndjson"):  # the shipper reads and removes finished files
            for raw in path.read_bytes().splitlines():
                found = re.match(rb'\{"id":"([^"]*)"', raw)  # a 990-deep line is beyond json.loads
                seen_ids.add(found.group(1).decode() if found else "")
            path.unlink()
        sim.update(f"id-{rng.randrange(40)}", {"seen": hour})  # J1 changes under us
        if hour % 3 == 0:
            rng.choice(faults)()

    clock = Clock(wall_ms=fake.clock_ms, monotonic=fake.clock, sleep=sleep)
    collect_forever(collector, 3600.0, status=status, clock=clock, runs=HOURS)

    assert hour == HOURS, "the loop ended early"
    assert {f"id-{i}" for i in range(42)} <= seen_ids, sorted({f"id-{i}" for i in range(42)} - seen_ids)
    assert checkpoints == sorted(checkpoints), "the checkpoint moved backwards"
    assert len(set(checkpoints)) > HOURS // 2, "the checkpoint hardly moved"
    document = json.loads(status.path.read_text())
    assert document["last_success"] is not None
