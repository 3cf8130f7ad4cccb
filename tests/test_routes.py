"""One entity, the same output bytes by every route: the filter's stream, `collect --map`'s
hand-off (a parsed item, never written and parsed again) and the library's encode_value.
Hostile values included: unpaired surrogates, deep nesting, huge numbers, bad dates."""

from __future__ import annotations

import io

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from j1filter import Mapper, Options, compile_mappings
from j1filter.collect.checkpoint import CollectionPlan
from j1filter.collect.collector import _Renderer
from j1filter.io.jsontext import json_bytes
from j1filter.protocol import encode_value
from j1filter.stream import run

from .conftest import FIXED_TIME

MAPPER = Mapper(compile_mappings(), Options(clock=lambda: FIXED_TIME))
PLAN = CollectionPlan("incremental", 1_764_576_000_000, 1_764_547_200_000, "FIND Finding", "test")
COLLECTION = {
    "started": "2025-12-01T08:00:00.000Z",
    "kind": "incremental",
    "snapshot": "2025-12-01T00:00:00.000Z",
}

text = st.text(st.characters(blacklist_categories=()), max_size=10)  # surrogates included
# Finite numbers only: JSON has no NaN or Infinity (orjson would write them as null).
dates = st.sampled_from(
    ["2024-02-30", "2024-13-01T00:00:00Z", "1700000000000", "soon", "2024-01-01T10:00:00+02:00"]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
    | dates
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=12,
)
names = st.sampled_from(
    ["_class", "_type", "_createdOn", "_beginOn", "_version", "_deleted", "_integrationType", "displayName"]
)
property_names = st.sampled_from(
    [
        "numericSeverity",
        "severity",
        "targets",
        "qid",
        "firstFoundOn",
        "open",
        "tag.Env",
        "cveIds",
        "port",
        "fqdn",
    ]
)


def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


entities = st.fixed_dictionaries(
    {
        "id": scalars,
        "entity": st.dictionaries(names, values, max_size=6).map(lambda e: {"_class": "Finding", **e}),
        "properties": st.dictionaries(
            property_names | text, values | st.builds(nested, st.integers(60, 300))
        ),
    }
)


def by_filter(item: dict) -> bytes:
    out = io.BytesIO()
    run(io.BytesIO(json_bytes(item) + b"\n"), out, MAPPER)
    return out.getvalue()


def by_library(item: dict) -> bytes:
    return b"".join(line + b"\n" for line, _ in encode_value(MAPPER, item, "line 1"))


def by_collect_map(item: dict) -> bytes:
    return _Renderer(PLAN, MAPPER).line(item, "line 1")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entity=entities)
def test_one_entity_gives_the_same_bytes_by_every_route(entity):
    item = {**entity, "_collection": COLLECTION}
    expected = by_filter(item)
    assert by_library(item) == expected
    assert by_collect_map(entity) == expected  # the collector adds the same _collection
    assert by_filter(item) == expected  # and again, now with the shape's own preparation


def test_an_unpaired_surrogate_is_escaped_and_flagged_by_collect_map_too():
    entity = {
        "id": "s-1",
        "entity": {"_class": "Finding", "_type": "x"},
        "properties": {"description": "a\ud800b"},
    }
    lines = by_collect_map(entity).splitlines()
    assert len(lines) == 1 and b'"message":"a\\\\ud800b"' in lines[0]  # still mapped
    assert b"unpaired UTF-16 surrogates" in lines[0] and b"cannot serialise" not in lines[0]
    assert by_collect_map(entity) == by_filter({**entity, "_collection": COLLECTION})


def test_already_mapped_output_fed_back_says_so():
    entity = {"id": "e-1", "entity": {"_class": "Finding", "_type": "x"}, "properties": {"name": "n"}}
    mapped = by_collect_map(entity)
    again = by_filter(orjson.loads(mapped))
    assert b"input is already an ECS document from j1filter" in again
    assert b"invalid JSON" not in again
