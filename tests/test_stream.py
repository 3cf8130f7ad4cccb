"""Every input line yields documents or an error document; the stream never stops."""

from __future__ import annotations

import io
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from j1filter.stream import run

GOOD = {
    "id": "e-1",
    "entity": {
        "_id": "e-1",
        "_class": ["Finding"],
        "_type": "x_finding",
        "_version": 2,
        "_beginOn": 1751958000000,
    },
    "properties": {"description": "d", "numericSeverity": "7", "open": "true"},
}
GOOD_LINE = json.dumps(GOOD).encode()


def stream(mapper, data: bytes, source=None, **kwargs):
    out, errors = io.BytesIO(), io.BytesIO()
    stats = run(source or io.BytesIO(data), out, mapper, errors_sink=errors, **kwargs)
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    return stats, docs, errors.getvalue()


def assert_error_doc(doc, original_start: str, message_part: str):
    assert doc["event"]["kind"] == "pipeline_error"
    assert doc["event"]["original"].startswith(original_start)
    assert any(message_part in m for m in doc["error"]["message"]), doc["error"]["message"]
    assert "preserve_original_event" in doc["tags"]
    assert doc["data_stream"]["dataset"] == "jupiter_one.risks_and_alerts"


BAD_LINES = [
    # (name, line, start of event.original, part of error.message, error kind)
    ("malformed json", b'{"id": "x", ', '{"id": "x", ', "line 1: invalid JSON", "invalid_json"),
    ("trailing garbage", b'{"id": 1} x', '{"id": 1} x', "invalid JSON", "invalid_json"),
    ("NaN is not JSON", b'{"a": NaN}', '{"a": NaN}', "invalid JSON", "invalid_json"),
    (
        "invalid utf-8",
        b'{"id": "\xff\xfe"}',
        '{"id": "\\xff\\xfe"}',
        "invalid UTF-8 at byte 8",
        "invalid_utf8",
    ),
    (
        "json array",
        b"[1, 2]",
        "[1, 2]",
        "expected a JSON object (a J1 entity), found an array",
        "not_an_entity",
    ),
    ("json scalar", b"42", "42", "found a number", "not_an_entity"),
    (
        "missing entity",
        b'{"id": "x", "properties": {}}',
        '{"id": "x"',
        'expected the "entity" object',
        "not_an_entity",
    ),
    (
        "entity not an object",
        b'{"id": "x", "entity": "Finding"}',
        '{"id": "x"',
        "found a string",
        "field_error",
    ),
    (
        "_class of the wrong type",
        b'{"id": "x", "entity": {"_class": 5}}',
        '{"id": "x"',
        "entity._class: expected text or a list of text, found a number",
        "field_error",
    ),
    (
        "properties not an object",
        b'{"id": "x", "entity": {"_class": "Finding"}, "properties": [1]}',
        '{"id"',
        "properties: expected an object, found an array",
        "field_error",
    ),
    (
        "bad date",
        b'{"entity": {"_class": ["Alert"], "_createdOn": "soon"}}',
        '{"entity"',
        "jupiter_one.asset.entity._created_on: unable to parse date [soon]",
        "field_error",
    ),
    (
        "bad ip",
        b'{"entity": {"_class": ["Finding"]}, "properties": {"deviceLocalIp": "10.0.0.300"}}',
        '{"entity"',
        "jupiter_one.asset.properties.device_local_ip: '10.0.0.300' is not an IP string literal.",
        "field_error",
    ),
    (
        "graphql error page",
        b'{"data": null, "errors": [{"message": "Unauthorized"}]}',
        '{"data": null',
        "GraphQL error: Unauthorized",
        "graphql_error",
    ),
]


@pytest.mark.parametrize("name,line,original,message,kind", BAD_LINES, ids=[c[0] for c in BAD_LINES])
def test_bad_line_gives_an_error_document_and_the_stream_goes_on(mapper, name, line, original, message, kind):
    stats, docs, errors = stream(mapper, line + b"\n" + GOOD_LINE + b"\n")
    assert len(docs) == 2, "the bad line and the good one after it"
    assert_error_doc(docs[0], original, message)
    assert docs[1]["event"]["id"] == "e-1" and "error" not in docs[1]
    assert stats.errors == {kind: 1}
    assert orjson.loads(errors.splitlines()[0]) == docs[0]  # copied to the errors file


def test_invalid_ip_never_reaches_an_ecs_ip_field(mapper):
    line = b'{"id": "x", "entity": {"_class": ["Finding"]}, "properties": {"deviceLocalIp": "10.0.0.300", "deviceExternalIp": "203.0.113.9"}}'
    _, (doc,), _ = stream(mapper, line)
    assert doc["host"]["ip"] == ["203.0.113.9"]
    assert doc["related"]["ip"] == ["203.0.113.9"]
    assert "device_local_ip" not in doc["jupiter_one"]["asset"]["properties"]
    assert "10.0.0.300" in doc["event"]["original"]


def test_five_megabyte_lines(mapper):
    junk = b'{"id": "' + b"x" * (5 * 1024 * 1024)  # unterminated: invalid JSON
    big = dict(GOOD, properties={"description": "y" * (5 * 1024 * 1024)})
    _stats, docs, _ = stream(mapper, junk + b"\n" + orjson.dumps(big) + b"\n" + GOOD_LINE + b"\n")
    assert len(docs) == 3
    assert_error_doc(docs[0], '{"id": "xxxx', "invalid JSON")
    assert len(docs[0]["event"]["original"]) == len(junk)  # nothing lost
    assert docs[1]["message"] == "y" * (5 * 1024 * 1024) and "error" not in docs[1]
    assert docs[2]["event"]["id"] == "e-1"


def test_line_over_the_limit_is_cut_and_reported(mapper):
    stats, docs, _ = stream(mapper, b"a" * 5000 + b"\n" + GOOD_LINE + b"\n", max_line_bytes=1024)
    assert_error_doc(docs[0], "a" * 1024, "line of 5001 bytes is longer than the limit of 1024")
    assert len(docs[0]["event"]["original"]) == 1024
    assert docs[1]["event"]["id"] == "e-1"
    assert stats.errors == {"line_too_long": 1}


@pytest.mark.parametrize("depth", [100, 10_000])
def test_deep_nesting(mapper, depth):
    deep = (
        b'{"id": "d", "entity": {"_class": ["Finding"]}, "properties": {"x": '
        + b"[" * depth
        + b"]" * depth
        + b"}}"
    )
    _stats, docs, _ = stream(mapper, deep + b"\n" + GOOD_LINE + b"\n")
    assert len(docs) == 2
    assert docs[0]["event"]["kind"] == "pipeline_error"
    assert docs[0]["event"]["original"] == deep.decode()
    assert docs[1]["event"]["id"] == "e-1"


def test_blank_lines_are_skipped_and_counted(mapper):
    stats, docs, _ = stream(mapper, b"\n  \n" + GOOD_LINE + b"\r\n")
    assert len(docs) == 1 and stats.blank_lines == 2 and stats.lines == 3
    assert docs[0]["event"]["original"] == GOOD_LINE.decode()  # \r\n stripped


def test_no_trailing_newline_on_last_line(mapper):
    _, docs, _ = stream(mapper, GOOD_LINE)
    assert docs[0]["event"]["id"] == "e-1"


def test_query_page_expands_to_one_document_per_entity(mapper):
    second = dict(GOOD, id="e-2")
    page = {"data": {"queryV1": {"type": "list", "data": [GOOD, second], "cursor": None}}}
    stats, docs, _ = stream(mapper, orjson.dumps(page))
    assert [d["event"]["id"] for d in docs] == ["e-1", "e-2"]
    assert json.loads(docs[1]["event"]["original"]) == second
    assert stats.documents == 2 and not stats.errors


@pytest.mark.parametrize(
    "event",
    [
        {"message": GOOD_LINE.decode(), "@timestamp": "2026-01-01T00:00:00Z", "tags": ["from-logstash"]},
        {"event": {"original": GOOD_LINE.decode()}, "tags": ["from-logstash"]},
    ],
)
def test_logstash_or_beats_event_carrying_the_entity_text(mapper, event):
    _, (doc,), _ = stream(mapper, orjson.dumps(event))
    assert doc["event"]["id"] == "e-1"
    assert doc["event"]["original"] == GOOD_LINE.decode()
    assert doc["tags"] == ["from-logstash"]


def test_entity_as_the_event_itself_with_logstash_envelope(mapper):
    event = dict(
        GOOD,
        **{
            "@timestamp": "2026-01-01T00:00:00Z",
            "@version": "1",
            "tags": ["preserve_duplicate_custom_fields"],
        },
    )
    _, (doc,), _ = stream(mapper, orjson.dumps(event))
    assert json.loads(doc["event"]["original"]) == GOOD  # envelope not part of the entity
    assert doc["jupiter_one"]["asset"]["id"] == "e-1"  # the tag asks to keep duplicates, as Elastic
    assert doc["tags"] == ["preserve_duplicate_custom_fields"]


def test_values_with_a_clear_meaning_cause_no_error(mapper):
    _, (doc,), _ = stream(mapper, GOOD_LINE)
    properties = doc["jupiter_one"]["asset"]["properties"]
    assert properties["numeric_severity"] == 7 and properties["open"] is True
    assert doc["event"]["start"] == "2025-07-08T07:00:00.000Z"  # epoch ms
    assert doc["jupiter_one"]["asset"]["entity"]["_version"] == "2"
    assert "error" not in doc and doc["event"]["kind"] == "alert"


def test_string_class_and_type_are_accepted(mapper):
    line = b'{"id": "s", "entity": {"_class": "Vulnerability", "_type": ["qualys_vuln"]}, "properties": {"qid": 38657}}'
    _, (doc,), _ = stream(mapper, line)
    assert doc["event"]["category"] == ["vulnerability"]
    assert doc["vulnerability"]["id"] == "38657" and doc["vulnerability"]["enumeration"] == "QID"


def test_big_integers_survive(mapper):
    line = (
        b'{"id": "b", "entity": {"_class": ["Finding"]}, "properties": {"n": 123456789012345678901234567890}}'
    )
    _, (doc,), _ = stream(mapper, line)
    assert "error" not in doc
    assert doc["event"]["original"] == line.decode()


def test_dot_expansion_conflict_is_an_error_not_a_crash(mapper):
    line = b'{"id": "c", "entity": {"_class": ["Finding"]}, "properties": {"tag": "x", "tag.Owner": "me"}}'
    _, (doc,), _ = stream(mapper, line)
    assert doc["jupiter_one"]["asset"]["properties"]["tag"] == "x"
    assert any("cannot expand [tag.owner]" in m for m in doc["error"]["message"])


def test_dotted_keys_expand_alike_on_the_generic_and_the_generated_path(mapper):
    """The first entity of a key shape is prepared generically, the next ones by the code
    generated for the shape: the same expansions, merges and problems either way."""
    deep = ".".join(["d"] * 70)
    properties = {
        "tag": "x",
        "tag.Owner": "me",  # blocked: tag holds a value
        "a..b": 1,  # an empty segment
        deep: 2,  # deeper than an entity may be
        "port.port": 443,
        "port.protocol": "TCP",
        "list": [1],
        "x.y.z": 3,
    }
    entity = {"id": "d", "entity": {"_class": ["Finding"]}, "properties": properties}
    line = json.dumps(entity).encode()
    _, (first, second, third), _ = stream(mapper, line + b"\n" + line + b"\n" + line)
    for n, doc in enumerate((first, second, third), 1):
        doc.pop("@timestamp")
        doc["error"]["message"] = [m.removeprefix(f"line {n}: ") for m in doc["error"]["message"]]
    assert first == second == third
    asset = first["jupiter_one"]["asset"]["properties"]
    assert asset["tag"] == "x" and asset["port"] == {"port": 443, "protocol": "TCP"}
    assert asset["x"] == {"y": {"z": 3}}
    messages = " | ".join(first["error"]["message"])
    assert "cannot expand [tag.owner]" in messages
    assert "cannot expand [a..b], it has an empty path segment" in messages
    assert "cannot expand a key of 70 segments" in messages


def test_output_is_one_compact_json_per_line(mapper):
    out = io.BytesIO()
    run(io.BytesIO(GOOD_LINE + b"\n" + GOOD_LINE + b"\n"), out, mapper)
    lines = out.getvalue().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3
    assert all(b"\n" not in line for line in lines)


def test_page_with_errors_and_partial_data_keeps_the_entities(mapper):
    page = {"data": {"queryV1": {"data": [GOOD]}}, "errors": [{"message": "partial result"}]}
    stats, docs, _ = stream(mapper, orjson.dumps(page))
    assert_error_doc(docs[0], '{"data"', "GraphQL error: partial result")
    assert docs[1]["event"]["id"] == "e-1" and "error" not in docs[1]
    assert stats.errors == {"graphql_error": 1}


def test_page_without_a_data_list_is_an_error(mapper):
    _, (doc,), _ = stream(mapper, b'{"data": {"queryV1": {"data": "nope"}}}')
    assert_error_doc(doc, '{"data"', "queryV1 page without a data list")


# --- hostile values: each root cause that once stopped the stream -----------------------------

SAMPLE_PAGE_OTHER = dict(GOOD, id="e-2")


def _wrapped(entity: dict, how: str) -> bytes:
    """``entity`` as one input line: raw, in a queryV1 page (with a clean second entity), in a
    Logstash envelope, or as the text of a ``message``. JSON escapes keep surrogates."""
    if how == "page":
        value = {"data": {"queryV1": {"type": "list", "data": [entity, SAMPLE_PAGE_OTHER]}}}
    elif how == "envelope":
        value = dict(entity, **{"@timestamp": "2026-01-01T00:00:00Z", "tags": ["t"]})
    elif how == "message":
        value = {"message": json.dumps(entity, ensure_ascii=False), "tags": ["t"]}
    else:
        value = entity
    return json.dumps(value).encode()


def _with(container: str, key: str, value) -> dict:
    entity = json.loads(GOOD_LINE)
    entity[container][key] = value
    return entity


WRAPPINGS = ["raw", "page", "envelope", "message"]


def _first_docs(mapper, entity: dict, how: str):
    stats, docs, _ = stream(mapper, _wrapped(entity, how) + b"\n" + GOOD_LINE + b"\n")
    expected = 3 if how == "page" else 2
    assert len(docs) == stats.documents == expected, "one document per entity, and the stream goes on"
    assert docs[-1]["event"]["id"] == "e-1" and "error" not in docs[-1]
    if how == "page":
        assert docs[1]["event"]["id"] == "e-2" and "error" not in docs[1]
    return docs[0], stats


@pytest.mark.parametrize("how", WRAPPINGS)
def test_unpaired_surrogate_is_escaped_and_said(mapper, how):
    doc, stats = _first_docs(mapper, _with("properties", "description", "bad \ud800 text"), how)
    assert doc["message"] == "bad \\ud800 text"  # still mapped, the surrogate as escape text
    assert any("unpaired UTF-16 surrogates" in m for m in doc["error"]["message"])
    assert any(m.startswith("line 1: ") for m in doc["error"]["message"])
    assert json.loads(doc["event"]["original"])["properties"]["description"] == "bad \ud800 text"
    assert stats.errors == {"unpaired_surrogate": 1}


@pytest.mark.parametrize("how", WRAPPINGS)
@pytest.mark.parametrize("depth", [300, 900])
def test_deep_nesting_in_every_wrapping(mapper, how, depth):
    deep = "x"
    for _ in range(depth):
        deep = [deep]
    doc, _ = _first_docs(mapper, _with("properties", "description", deep), how)
    assert any(m.endswith(": entity: nesting deeper than 64 levels") for m in doc["error"]["message"])
    assert doc["event"]["original"].count("[") >= depth  # nothing lost


@pytest.mark.parametrize("how", WRAPPINGS)
def test_dotted_key_deeper_than_an_entity_may_be(mapper, how):
    doc, _ = _first_docs(mapper, _with("properties", "a." * 5000 + "b", 1), how)
    assert any("deeper than 64 levels" in m for m in doc["error"]["message"])


@pytest.mark.parametrize(
    "container,key,value,message",
    [
        ("entity", "_createdOn", "9" * 5000, "unable to parse date [9999"),
        ("entity", "_createdOn", "2025-01-01T00:00:00" + "A" * 300, "longer than 100 characters"),
        ("entity", "_createdOn", "2025-01-01T00:00:00" + "Zz" * 30, "unable to parse date"),
        ("properties", "numericSeverity", "9" * 5000, "longer than 1,000 characters"),
        ("properties", "numericSeverity", "\u0661\u0662", "unable to convert [\u0661\u0662] to double"),
        ("properties", "numericSeverity", "\uff11\uff17", "unable to convert [\uff11\uff17] to double"),
        ("entity", "_createdOn", "\uff11\uff17", "not ASCII text"),
        ("properties", "score", "1" * 20_000 + "x", "to double"),
        ("properties", "score", "\u0661.\u0662", "unable to convert [\u0661.\u0662] to double"),
    ],
)
def test_hostile_value_is_an_error_entry(mapper, container, key, value, message):
    import time

    start = time.perf_counter()
    doc, stats = _first_docs(mapper, _with(container, key, value), "raw")
    assert time.perf_counter() - start < 1  # the old double pattern took 12 s on 20,000 digits
    assert any(message in m for m in doc["error"]["message"]), doc["error"]["message"]
    assert stats.errors == {"field_error": 1}


@pytest.mark.parametrize("port", ["9" * 5000, "\u0661\u0662", "\u00b2", "99999999999"])
def test_url_port_that_is_no_int_gives_no_domain_and_no_port(mapper, port):
    doc, _ = _first_docs(mapper, _with("properties", "webLink", f"http://example.com:{port}/x"), "raw")
    assert "port" not in doc["url"] and "domain" not in doc["url"] and "error" not in doc
    assert doc["url"]["path"] == "/x"


def test_a_rule_failing_on_one_entity_costs_that_document_only(tmp_path):
    from j1filter.language.loader import load_mappings
    from j1filter.runtime.compiler import compile_mappings
    from j1filter.runtime.mapper import Mapper

    rule = tmp_path / "abs.yml"
    rule.write_text(
        "version: 1\nname: abs\nrules:\n  - {to: event.risk_score, from: abs(properties.description)}\n"
    )
    mapper = Mapper(compile_mappings(load_mappings([rule])))
    for how in WRAPPINGS:
        stats, docs, _ = stream(
            mapper,
            _wrapped(json.loads(GOOD_LINE), how)
            + b"\n"
            + orjson.dumps(dict(GOOD, properties={"description": -3}))
            + b"\n",
        )
        assert len(docs) == (3 if how == "page" else 2)
        # The rule's own guard locates the failure (file:line rule-id); the entity's other
        # fields are still mapped.
        message = docs[0]["error"]["message"][0]
        assert message.startswith("line 1") and "abs.yml:4 abs(properties.description) -> " in message
        assert "expression failed: In function abs()" in message
        # A user file is an enrichment (no `parity: true`): the finding stays an alert.
        assert docs[0]["event"]["id"] == "e-1" and docs[0]["event"]["kind"] == "alert"
        assert json.loads(docs[0]["event"]["original"])["id"] == "e-1"
        assert docs[-1]["event"]["risk_score"] == 3 and "error" not in docs[-1]
        assert stats.errors["enrichment_error"] == (2 if how == "page" else 1)


def test_any_exception_in_a_line_becomes_an_error_document(mapper, monkeypatch):
    """The last-resort guard does not depend on knowing what can go wrong."""
    import j1filter.protocol as protocol

    real = protocol.value_units

    def flaky(value, text, where, tags=()):
        if "boom" in text:
            raise RuntimeError("boom \ud800 " + "x" * 5000)
        return real(value, text, where, tags)

    monkeypatch.setattr(protocol, "value_units", flaky)
    stats, docs, _ = stream(mapper, b'{"boom": 1}\n' + GOOD_LINE + b"\n")
    assert len(docs) == 2 and docs[1]["event"]["id"] == "e-1"
    assert docs[0]["event"]["original"] == '{"boom": 1}'
    (message,) = docs[0]["error"]["message"]
    assert message.startswith("line 1: cannot map this line (RuntimeError: boom \\ud800 xxx")
    assert len(message) < 1200  # the exception text is cut
    assert stats.errors == {"unexpected_error": 1}


class RecordingSink(io.BytesIO):
    """A sink that remembers the size of each write."""

    def __init__(self):
        super().__init__()
        self.writes: list[int] = []

    def write(self, data) -> int:
        self.writes.append(len(data))
        return super().write(data)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)


def test_output_is_written_once_a_batch_reaches_its_byte_limit(mapper):
    big = orjson.dumps(dict(GOOD, properties={"description": "y" * 400_000}))
    data = b"\n".join([big] * 3 + [GOOD_LINE] * 3) + b"\n"
    out = RecordingSink()
    stats = run(io.BytesIO(data), out, mapper, batch_bytes=1_000_000)
    # Each big document is about 1.2 MB (original, message, asset): written as it comes (one
    # write with its newline), not held until 512 documents are pending; the small ones go
    # out together at the end.
    assert [w > 1_000_000 for w in out.writes] == [True, True, True, False]
    assert len(out.getvalue().splitlines()) == stats.documents == 6


def test_long_lists_are_deduplicated_in_linear_time(mapper):
    """`collect` and `append` rules drop duplicates with a set, not by scanning the list:
    100,000 distinct targets take well under a second that way, minutes when quadratic."""
    import time

    targets = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(100_000)]
    line = orjson.dumps(dict(GOOD, properties={"targets": targets + targets[:10]}))
    out = io.BytesIO()
    start = time.perf_counter()
    stats = run(io.BytesIO(line + b"\n"), out, mapper)
    elapsed = time.perf_counter() - start
    doc = json.loads(out.getvalue())
    assert stats.documents == 1 and "error" not in doc
    assert doc["related"]["ip"] == targets  # every distinct target once, in order
    assert elapsed < 20, f"{elapsed:.1f} s for 100,000 targets"


@pytest.mark.parametrize("size", [3, 40])  # below and above the length where a set takes over
def test_deduplication_keeps_first_occurrences_of_any_values(size):
    from j1filter.runtime.program import collect_values

    values = [f"v{i}" for i in range(size)]
    mixed = values + [{"a": 1}, 1, 1.0, True, {"a": 1}, [1], [1]] + values[::-1]
    assert collect_values((mixed, "v0", None)) == values + [{"a": 1}, 1, [1]]  # 1 == 1.0 == True


def test_workers_write_the_same_bytes_in_order_with_the_right_line_numbers(mapper):
    """Ordered worker processes: the same output and errors file, byte for byte, and the
    same counts as one process, over more lines than one job holds."""
    from j1filter.stream import JOB_BYTES

    lines = [GOOD_LINE, b"", b'{"id": "x", ', b"{", json.dumps(dict(GOOD, id="e-2")).encode(), b"[1]"]
    total = 3 * JOB_BYTES // 50 + 7  # more than three jobs
    data = b"\n".join(lines[n % len(lines)] for n in range(total)) + b"\n"
    one = stream(mapper, data)
    for workers in (2, 3):
        stats, docs, errors = stream(mapper, data, workers=workers)
        assert (docs, errors) == one[1:]
        assert stats == one[0]
    messages = [m for doc in one[1] for m in doc.get("error", {}).get("message", [])]
    last_bad = max(n for n in range(1, total + 1) if lines[(n - 1) % len(lines)] == lines[2])
    assert len(data) > 3 * JOB_BYTES and f"line {last_bad}: invalid JSON" in " ".join(messages)


@pytest.mark.parametrize(
    "input_room, output_room, expected",
    [
        (64, 64, {"job pipe", "result pipe"}),  # nothing fits
        (4096, 1 << 20, {"job slot", "job pipe", "result slot"}),  # jobs of long lines do not fit
        (1 << 20, 4096, {"job slot", "result slot", "result pipe"}),  # results of several lines do not fit
    ],
)
def test_workers_send_what_does_not_fit_in_its_slot_through_the_pipe(
    mapper, tmp_path, monkeypatch, input_room, output_room, expected
):
    """A job or a result larger than its slot of shared memory crosses the pipe instead; with
    slots of any size, the output is the same bytes as one process writes."""
    from j1filter import stream as stream_module

    log = tmp_path / "sends.log"
    real_send = stream_module._send

    def send(connection, room, message, data):
        with open(log, "a") as out:
            out.write(
                f"{'job' if len(message) == 3 else 'result'} {'slot' if len(data) <= len(room) else 'pipe'}\n"
            )
        real_send(connection, room, message, data)

    monkeypatch.setattr(stream_module, "_send", send)
    monkeypatch.setattr(stream_module, "SLOT_INPUT_BYTES", input_room)
    monkeypatch.setattr(stream_module, "SLOT_OUTPUT_BYTES", output_room)
    sizes = [0, 10, 3_000, 60_000, 0, 200_000, 10, 0, 5]
    lines = [
        json.dumps(dict(GOOD, id=f"e-{n}", properties={"description": "d" * size})).encode()
        for n, size in enumerate(sizes)
    ]
    data = b"\n".join(lines + [b"{", b"", b'{"id": "x", '] + lines[::-1]) + b"\n"
    source = TrickleSource(data, 2048)  # small jobs, and large ones for the long lines
    one = stream(mapper, data)
    assert stream(mapper, data, workers=2, source=source) == one
    sends = log.read_text().splitlines()
    assert set(sends) == expected, sends


def test_workers_give_a_file_object_bytes_it_may_keep(mapper):
    """The documents wait in shared memory that later jobs reuse: a sink without a file
    descriptor that keeps what it is given gets bytes of its own, not a view of that memory."""

    class KeepingSink:
        def __init__(self):
            self.kept = []

        def write(self, data):
            self.kept.append(data)
            return len(data)

        def flush(self):
            pass

    data = b"".join(json.dumps(dict(GOOD, id=f"e-{n}")).encode() + b"\n" for n in range(3000))
    one = io.BytesIO()
    run(io.BytesIO(data), one, mapper)
    sink = KeepingSink()
    run(TrickleSource(data, 4096), sink, mapper, workers=2)  # many small jobs
    assert len(sink.kept) > 2 * 4 * 2  # more blocks than the slots hold: slots were reused
    assert {type(block) for block in sink.kept} == {bytes}
    assert b"".join(sink.kept) == one.getvalue()


def test_workers_keep_whole_lines_when_the_reader_goes_away(mapper):
    class ClosingSink(io.BytesIO):
        def write(self, data):
            if self.tell() > 50_000:
                raise BrokenPipeError
            return super().write(data)

    sink = ClosingSink()
    stats = run(io.BytesIO((GOOD_LINE + b"\n") * 2000), sink, mapper, workers=2)
    assert stats.output_closed and sink.getvalue().endswith(b"\n")
    assert stats.documents == len(sink.getvalue().splitlines())


class TrickleSource(io.BytesIO):
    """A pipe that hands out at most ``most`` bytes per read."""

    def __init__(self, data: bytes, most: int):
        super().__init__(data)
        self.most = most

    def read1(self, size: int = -1) -> bytes:
        return super().read1(min(size, self.most) if size > 0 else self.most)


@given(
    data=st.lists(st.sampled_from([b"a", b"{}", b"\n", b"\r\n", b"\r", b" ", b"x" * 40]), max_size=60).map(
        b"".join
    ),
    most=st.integers(1, 70),
    limit=st.integers(1, 90),
)
@settings(max_examples=400, deadline=None)
def test_jobs_hold_exactly_the_lines_one_process_reads(data, most, limit):
    """The workers' jobs, split into lines, are the lines (and sizes, and line numbers) that
    one process reads, however the input arrives and however long its lines are; a line over
    the limit is held only up to the limit."""
    from j1filter.stream import job_lines, read_jobs, read_lines

    expected = list(read_lines(TrickleSource(data, most), limit))
    jobs = list(read_jobs(TrickleSource(data, most), limit, block_bytes=most))
    lines = []
    for n, job in enumerate(jobs):
        first, body, size = job
        assert first == len(lines) + 1
        if size:  # an over-long line alone, held only up to the limit
            assert len(body) == limit < size
        elif n < len(jobs) - 1:  # whole lines (the last may lack its line ending)
            assert body.endswith(b"\n")
        lines.extend(job_lines(job, limit))
    assert lines == expected


def test_workers_read_past_an_over_long_line_with_bounded_memory(mapper):
    """A 40 MB line with a 1 MB limit: one error document saying so, the lines around it
    mapped, and no job holds more than the limit and a block."""
    from j1filter.stream import JOB_BYTES, read_jobs

    huge = b'{"id": "' + b"x" * 40_000_000 + b'"}'
    data = GOOD_LINE + b"\n" + huge + b"\n" + GOOD_LINE + b"\n"
    assert (
        max(len(body) for _, body, _ in read_jobs(TrickleSource(data, 65536), 1 << 20))
        <= (1 << 20) + JOB_BYTES
    )
    one = stream(mapper, data, max_line_bytes=1 << 20)
    stats, docs, errors = stream(mapper, data, max_line_bytes=1 << 20, workers=2)
    assert (stats, docs, errors) == one
    assert [doc["event"]["kind"] for doc in docs] == ["alert", "pipeline_error", "alert"]
    assert any("line 2: line of 40000011 bytes" in m for m in docs[1]["error"]["message"]), docs[1]["error"]


def test_workers_widen_a_pipe_to_hold_a_whole_job(mapper, tmp_path):
    """Reads of a pipe return at most what it holds (64 KiB by default): the workers' parent
    widens its input pipe so that a job is a whole block, and maps it all the same."""
    import fcntl
    import subprocess

    from j1filter.stream import JOB_BYTES

    if not hasattr(fcntl, "F_GETPIPE_SZ"):
        pytest.skip("pipe sizes are Linux's")
    corpus = tmp_path / "corpus.ndjson"
    corpus.write_bytes((GOOD_LINE + b"\n") * 3000)
    with subprocess.Popen(["cat", str(corpus)], stdout=subprocess.PIPE) as cat:
        assert fcntl.fcntl(cat.stdout.fileno(), fcntl.F_GETPIPE_SZ) < JOB_BYTES
        out = io.BytesIO()
        stats = run(cat.stdout, out, mapper, workers=2)
        assert fcntl.fcntl(cat.stdout.fileno(), fcntl.F_GETPIPE_SZ) >= JOB_BYTES
    assert stats.documents == 3000 and out.getvalue().count(b"\n") == 3000


def test_workers_hand_more_jobs_to_a_worker_with_more_time(mapper, tmp_path, monkeypatch):
    """A worker on a busy core (here: one that sleeps per job) gets fewer jobs: results are
    taken back as they finish and each job goes to the worker with the fewest in hand, so
    the other is not held to the slower one's pace; the output is the same."""
    import multiprocessing
    import time

    from j1filter import stream as stream_module

    log = tmp_path / "jobs.log"
    real_map_job = stream_module.map_job

    def map_job(*args):
        name = multiprocessing.current_process().name
        if name.endswith("worker 1"):
            time.sleep(0.05)
        with open(log, "a") as out:
            out.write(name + "\n")
        return real_map_job(*args)

    monkeypatch.setattr(stream_module, "map_job", map_job)
    data = b"".join(json.dumps(dict(GOOD, id=f"e-{n}")).encode() + b"\n" for n in range(1200))
    one = stream(mapper, data)
    stats, docs, errors = stream(mapper, data, workers=2, source=TrickleSource(data, 4096))
    jobs = log.read_text().splitlines()
    assert (stats, docs, errors) == one
    assert len(jobs) > 40
    assert jobs.count("j1filter worker 2") > 2 * jobs.count("j1filter worker 1"), jobs
