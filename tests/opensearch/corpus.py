"""Generated J1 entities over every mapped source, in-process and fast.

Two kinds, interleaved:
- the bundled samples, varied (fresh ids, shifted times in ISO and epoch-ms renderings, IPs,
  severities), as `bench/benchmark.py` does;
- one synthetic entity shape per mapping file, selected by that file's own `when:` and carrying
  a value for every raw path its rules read, typed by the rule's target (ECS) or the path's
  coercion: so every source, including those no sample covers (GitHub, Lacework, WhiteHat), and
  every rule's output field reach the engine.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import orjson

from j1filter.assets.fieldtypes import coercion_types
from j1filter.ecs import ecs_fields
from j1filter.language.loader import load_mappings
from j1filter.language.spec import Expression, MappingSpec
from tests.conftest import SAMPLES

BASE_MS = 1_700_000_000_000
CLASSES = ("Finding", "Vulnerability", "Alert")


def iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    from time import gmtime, strftime

    return strftime("%Y-%m-%dT%H:%M:%S", gmtime(seconds)) + f".{millis:03d}Z"


def _value(kind: str, rng: random.Random, n: int) -> Any:
    if kind == "date":
        ms = BASE_MS + rng.randrange(0, 90 * 86_400_000)
        return ms if rng.random() < 0.3 else iso(ms)
    if kind in ("long", "integer", "short", "byte"):
        return rng.randrange(0, 65_536)
    if kind in ("double", "float", "scaled_float", "half_float"):
        return round(rng.uniform(0, 10), 2)
    if kind == "ip":
        return f"198.51.100.{rng.randrange(1, 255)}" if rng.random() < 0.8 else f"2001:db8::{n % 65_536:x}"
    if kind == "boolean":
        return rng.random() < 0.5
    return rng.choice(
        ["critical", "high", "open", "/usr/bin/python3", "https://example.com/a/b", f"text {n}"]
    )


def _set(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        nxt = target.setdefault(part, {})
        if not isinstance(nxt, dict):
            return  # another rule already put a scalar here
        target = nxt
    target.setdefault(path[-1], value)


class Corpus:
    def __init__(self, specs: list[MappingSpec] | None = None) -> None:
        self.specs = load_mappings() if specs is None else specs
        self.samples = [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines() if line.strip()]
        self.coercions = coercion_types(self.specs)
        self.ecs = ecs_fields()
        # (spec name, [(raw path, kind)]) for each mapping file that selects entities itself
        self.shapes = [(spec, self._paths(spec)) for spec in self.specs]

    def _paths(self, spec: MappingSpec) -> list[tuple[tuple[str, ...], str]]:
        out = []
        for rule in spec.rules:
            target = self.ecs.get(".".join(rule.to), {}).get("type", "keyword")
            for source in rule.sources:
                if isinstance(source, Expression) or len(source) < 2:
                    continue
                kind = self.coercions.get(".".join(source), target)
                out.append((tuple(source), kind))
        return out

    def _synthetic(
        self, spec: MappingSpec, paths: list[tuple[tuple[str, ...], str]], rng: random.Random, n: int
    ) -> dict:
        when = spec.when
        classes = sorted(when.classes) or [rng.choice(CLASSES)]
        entity_id = str(uuid.UUID(int=rng.getrandbits(128)))
        meta: dict[str, Any] = {
            "_id": entity_id,
            "_key": f"{spec.name}:{n}",
            "_type": sorted(when.types)[n % len(when.types)] if when.types else f"{spec.name}_finding",
            "_class": [classes[n % len(classes)]],
            "_integrationType": sorted(when.integration_types)[0] if when.integration_types else spec.name,
            "_integrationName": spec.name,
            "_integrationInstanceId": "instance-1",
            "_accountId": "j1-example-acct",
            "_source": "integration-managed",
            "_version": rng.randrange(1, 50),
            "_deleted": False,
            "_createdOn": iso(BASE_MS + rng.randrange(0, 86_400_000)),
            "_beginOn": iso(BASE_MS + rng.randrange(86_400_000, 2 * 86_400_000)),
            "displayName": f"{spec.name} finding {n}",
        }
        raw: dict[str, Any] = {"id": entity_id, "entity": meta, "properties": {}}
        for path, kind in paths:
            if path[0] == "properties":
                _set(raw, path, _value(kind, rng, n))
        for path in when.has:
            _set(raw, tuple(path), _value("keyword", rng, n))
        return raw

    def _varied(self, template: dict, rng: random.Random) -> dict:
        entity = orjson.loads(orjson.dumps(template))
        new_id = str(uuid.UUID(int=rng.getrandbits(128)))
        entity["id"] = entity["entity"]["_id"] = new_id
        base_ms = BASE_MS + rng.randrange(0, 60 * 86_400_000)
        epoch = rng.random() < 0.3
        for key in ("_createdOn", "_beginOn"):
            if key in entity["entity"]:
                ms = base_ms + rng.randrange(0, 86_400_000)
                entity["entity"][key] = ms if epoch else iso(ms)
        props = entity.get("properties", {})
        for key in list(props):
            if key.endswith("On") and isinstance(props[key], (str, int)):
                ms = base_ms + rng.randrange(0, 86_400_000)
                props[key] = ms if epoch else iso(ms)
        if isinstance(props.get("numericSeverity"), int):
            props["numericSeverity"] = rng.randrange(0, 11)
        return entity

    def entities(self, count: int, seed: int) -> Iterator[dict]:
        """`count` entities: half varied samples, half synthetic shapes, every shape in turn."""
        rng = random.Random(seed)
        for n in range(count):
            if n % 2:
                spec, paths = self.shapes[(n // 2) % len(self.shapes)]
                yield self._synthetic(spec, paths, rng, n)
            else:
                yield self._varied(self.samples[(n // 2) % len(self.samples)], rng)

    def lines(self, count: int, seed: int) -> bytes:
        return b"".join(orjson.dumps(e) + b"\n" for e in self.entities(count, seed))
