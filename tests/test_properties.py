"""Property-based: no JSON input makes the filter raise, and every line gives a document."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from j1filter import Mapper, Options, compile_mappings
from j1filter.protocol import map_line
from j1filter.stream import run

from .conftest import FIXED_TIME, SAMPLES

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
names = st.sampled_from(
    [
        "_class",
        "_type",
        "_createdOn",
        "_beginOn",
        "_endOn",
        "_version",
        "_deleted",
        "_integrationType",
        "description",
        "webLink",
        "deviceLocalIp",
        "numericSeverity",
        "score",
        "open",
        "cveId",
        "tag.Production",
        "tag",
        "level",
        "approvers",
        "vector",
        "cmdline",
        "qid",
        "cveIds",
        "targets",
        "lastSeenOn",
        "severity",
    ]
)
entity_like = st.fixed_dictionaries(
    {
        "id": json_scalars,
        "entity": st.dictionaries(names, json_values, max_size=8),
        "properties": st.dictionaries(names | st.text(max_size=10), json_values, max_size=10),
    }
)


def check_line(mapper, line: bytes) -> None:
    results = map_line(mapper, line, "line 1")
    assert results or b'"queryV1"' in line  # only an empty page yields nothing
    for result in results:
        orjson.dumps(result.doc)  # serialisable
        assert result.doc["ecs"]["version"] and "original" in result.doc["event"]
        if result.error_kind:
            assert result.doc["event"]["kind"] == "pipeline_error" and result.doc["error"]["message"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_any_json_value_maps_without_raising(mapper, value):
    check_line(mapper, json.dumps(value).encode())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entity=entity_like)
def test_entity_shaped_input_maps_without_raising(mapper, entity):
    check_line(mapper, json.dumps(entity).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_any_bytes_keep_the_stream_going(mapper, data):
    out = io.BytesIO()
    stats = run(io.BytesIO(data + b"\n{}\n"), out, mapper)
    docs = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert len(docs) == stats.documents
    # Whatever came before, the stream reached the last line and mapped it.
    assert docs[-1]["event"]["original"] == "{}"
    assert docs[-1]["event"]["kind"] == "pipeline_error"


@settings(max_examples=500, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
    )
)
def test_any_aware_datetime_normalises_to_the_same_instant(moment):
    from j1filter.convert.dates import normalize_date, parse_normalized

    try:
        offset = moment.utcoffset()
    except (OverflowError, ValueError):
        return
    if offset is None or abs(offset.total_seconds()) > 18 * 3600 or offset.seconds % 60:
        return  # outside what an ISO offset can say
    text = moment.isoformat()
    truncated = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    try:
        normalised = normalize_date(text)
    except Exception:  # noqa: BLE001 - years out of range once in UTC are refused, not crashed on
        assert not 1 <= (moment - offset).year <= 9999
        return
    assert len(normalised) == 24 and normalised.endswith("Z")
    assert parse_normalized(normalised) == truncated.astimezone(UTC)
    epoch_ms = (parse_normalized(normalised) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert normalize_date(epoch_ms) == normalised  # the same instant given as epoch milliseconds


@given(key=st.text(max_size=30))
def test_snake_case_is_idempotent(key):
    from j1filter.convert.casing import snake_case

    once = snake_case(key)
    assert snake_case(once) == once


# --- pages, envelopes and messages: the same promise on every path ---------------------------

# Text with anything in it, unpaired surrogates included (hypothesis leaves them out by default).
wild_text = st.text(st.characters(blacklist_categories=()), max_size=12)
wild_scalars = json_scalars | wild_text
wild_values = st.recursive(
    wild_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(wild_text, children, max_size=5),
    max_leaves=25,
)
wild_entity = st.fixed_dictionaries(
    {
        "id": wild_scalars,
        "entity": st.dictionaries(names, wild_values, max_size=8),
        "properties": st.dictionaries(names | wild_text, wild_values, max_size=10),
    }
)


def stream_lines(mapper, lines: list[bytes]) -> list[dict]:
    """Run ``lines`` through the filter; every output line must be strict UTF-8 JSON."""
    out = io.BytesIO()
    stats = run(io.BytesIO(b"".join(line + b"\n" for line in lines)), out, mapper)
    docs = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert stats.lines == len(lines) and stats.documents == len(docs)
    for doc in docs:
        assert doc["ecs"]["version"] and isinstance(doc["event"]["original"], str)
        if "error" in doc:
            assert doc["event"]["kind"] == "pipeline_error" and doc["error"]["message"]
    return docs


def ascii_json(value) -> bytes:
    return json.dumps(value).encode()  # surrogates as \u escapes, as a producer may write them


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entities=st.lists(wild_entity | wild_values, max_size=4), extra=wild_values)
def test_any_page_gives_one_document_per_entity(mapper, entities, extra):
    page = {"data": {"queryV1": {"type": "list", "data": entities, "cursor": extra}}}
    docs = stream_lines(mapper, [ascii_json(page), b"{}"])
    assert len(docs) == len(entities) + 1  # then the next line, as usual
    assert docs[-1]["event"]["original"] == "{}"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entity=wild_entity, tags=wild_values, stamp=wild_values)
def test_any_entity_in_a_logstash_envelope_gives_one_document(mapper, entity, tags, stamp):
    event = dict(entity, **{"@timestamp": stamp, "@version": "1", "tags": tags})
    docs = stream_lines(mapper, [ascii_json(event), b"{}"])
    assert len(docs) == 2 and docs[-1]["event"]["original"] == "{}"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entity=wild_entity | wild_values,
    tags=wild_values,
    ascii_only=st.booleans(),
    lone=st.sampled_from(["", "\ud800", "a\udfffb"]),
)
def test_any_text_in_a_message_gives_one_document(mapper, entity, tags, ascii_only, lone):
    if lone and isinstance(entity, dict):
        entity["id"] = lone  # often a surrogate, which hypothesis seldom draws by itself
    text = json.dumps(entity, ensure_ascii=ascii_only)  # raw surrogates in the text when not
    docs = stream_lines(mapper, [ascii_json({"message": text, "tags": tags}), b"{}"])
    assert len(docs) == 2 and docs[-1]["event"]["original"] == "{}"
    assert json.loads(docs[0]["event"]["original"]) == entity  # nothing lost, surrogates escaped


# -- shape-specialised programs against the generic program ---------------------------------


def _generic_mapper() -> Mapper:
    """A mapper whose every entity is prepared generically and runs the generic program of
    its kind: no shape, so no rule or test left out because the entity's keys prove it
    cannot matter."""
    mapper = Mapper(compile_mappings(), Options(clock=lambda: FIXED_TIME))
    mapper.runtime.specialise = False
    return mapper


GENERIC = _generic_mapper()
#: Texts that coercions convert (or refuse), so that converted and removed keys come up.
COERCIBLE = st.sampled_from(
    ["true", "FALSE", "yes", "2024-01-01", "1700000000000", "10.0.0.1", "7", 7.5, "high"]
)
SAMPLE_ENTITIES = [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines()]


def _same_documents(mapper: Mapper, entity: object) -> None:
    text = json.dumps(entity)
    for _ in range(2):  # the first entity of a raw key shape is prepared generically, the next not
        specialised = mapper.map_entity(orjson.loads(text), text)
    generic = GENERIC.map_entity(orjson.loads(text), text)
    for doc in (specialised, generic):  # raw fields are converted in another order: same messages
        if "error" in doc:
            doc["error"]["message"].sort()
    assert specialised == generic


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entity=entity_like)
def test_a_shape_specialised_program_writes_what_the_generic_one_writes(mapper, entity):
    _same_documents(mapper, entity)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sample=st.sampled_from(SAMPLE_ENTITIES),
    drop=st.lists(
        st.sampled_from(sorted({key for sample in SAMPLE_ENTITIES for key in sample["properties"]})),
        max_size=6,
    ),
    bad=st.dictionaries(names, COERCIBLE | json_values, max_size=3),
)
def test_specialised_and_generic_programs_agree_on_varied_samples(mapper, sample, drop, bad):
    """The sample entities with keys dropped and hostile values put in (failed coercions
    remove keys, which a specialised program must not take as present)."""
    entity = json.loads(json.dumps(sample))
    for key in drop:
        entity["properties"].pop(key, None)
    entity["properties"].update(bad)
    _same_documents(mapper, entity)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sample=st.sampled_from(SAMPLE_ENTITIES),
    addresses=st.dictionaries(
        st.sampled_from(["targets", "privateIp", "ipAddress", "srcIp", "publicIpAddresses", "ipv6"]),
        st.none() | COERCIBLE | st.lists(COERCIBLE | st.none(), max_size=3) | json_values,
        max_size=4,
    ),
    first=st.booleans(),
)
def test_by_key_rules_agree_whatever_address_keys_an_entity_has(mapper, sample, addresses, first):
    """A specialised program resolves by_key from the key shape (no matching key: the rule
    is left out; one: its value read directly; more: searched in key order)."""
    entity = json.loads(json.dumps(sample))
    for key in ("targets", "deviceLocalIp", "deviceExternalIp", "ipAddress"):
        entity["properties"].pop(key, None)
    entity["properties"] = (
        {**addresses, **entity["properties"]} if first else {**entity["properties"], **addresses}
    )
    _same_documents(mapper, entity)


def test_a_by_key_rule_with_one_matching_key_reads_it_without_a_search(mapper):
    entity = json.loads(json.dumps(SAMPLE_ENTITIES[0]))
    for key in [k for k in entity["properties"] if "ip" in k.lower() or k == "targets"]:
        del entity["properties"][key]
    entity["properties"]["targets"] = ["10.0.0.1", "host-1"]
    _same_documents(mapper, entity)
    text = json.dumps(entity)
    doc = mapper.map_entity(orjson.loads(text), text)
    assert doc["host"]["ip"] == ["10.0.0.1"] and doc["related"]["ip"] == ["10.0.0.1"]
    program = mapper.runtime.cached_programs()[-1]
    assert "keys_values(v, ('targets',))" in program.source
