"""The filter side of `_collection` (the metadata `collect` adds to every raw line)."""

from __future__ import annotations

import io
import json

import orjson
import pytest
from collect_helpers import make_entity

from j1filter.runtime.compiler import compile_mappings
from j1filter.runtime.mapper import Mapper, Options
from j1filter.stream import run

SEEN_AT = "2030-01-01T00:00:00.000Z"
COLLECTION = {
    "started": "2026-12-01T09:00:00.000Z",
    "kind": "incremental",
    "snapshot": "2026-12-01T00:00:00.000Z",
}


def filter_lines(*lines: bytes) -> list[dict]:
    out = io.BytesIO()
    run(
        io.BytesIO(b"\n".join(lines) + b"\n"), out, Mapper(compile_mappings(), Options(clock=lambda: SEEN_AT))
    )
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_collection_time_and_cycle_are_taken_and_the_entity_is_left_alone() -> None:
    item = make_entity(1)
    line = orjson.dumps({**item, "_collection": COLLECTION})
    (doc,) = filter_lines(line)
    (plain,) = filter_lines(orjson.dumps(item))
    assert doc["@timestamp"] == COLLECTION["started"]
    assert doc["jupiter_one"]["collection"] == {"kind": "incremental", "snapshot": COLLECTION["snapshot"]}
    assert doc["event"]["original"] == line.decode()  # the line as received, byte for byte
    assert doc["jupiter_one"]["asset"] == plain["jupiter_one"]["asset"]  # `_collection` is not the entity's
    assert "error" not in doc
    assert plain["@timestamp"] == SEEN_AT and "collection" not in plain["jupiter_one"]


@pytest.mark.parametrize(
    "collection",
    [
        "yesterday",
        {**COLLECTION, "kind": "partial"},
        {**COLLECTION, "started": "2026-12-01"},
        {**COLLECTION, "started": "2026-13-01T09:00:00.000Z"},
        {**COLLECTION, "snapshot": 1764547200000},
        {"started": COLLECTION["started"]},
    ],
)
def test_a_bad_collection_is_reported_and_the_document_kept(collection: object) -> None:
    (doc,) = filter_lines(orjson.dumps({**make_entity(1), "_collection": collection}))
    assert doc["@timestamp"] == SEEN_AT
    assert any(message.startswith("line 1: _collection: expected") for message in doc["error"]["message"])
    assert doc["jupiter_one"]["asset"]["entity"]["_id"] == make_entity(1)["id"]
