"""Every rule runs under one guard: whatever fails becomes a located error entry on that
document (``file:line rule-id: what``), and the other rules still run. Only a failure in a
file marked ``parity: true`` (one that reproduces Elastic's pipeline) makes the document a
pipeline_error; any other keeps its event.kind."""

from __future__ import annotations

import linecache
import traceback

import orjson
import pytest

from j1filter.language.loader import load_mappings
from j1filter.runtime.compiler import compile_mappings
from j1filter.runtime.mapper import Mapper, Options

MAPPING = """\
version: 1
name: guarded
rules:
  - {to: event.risk_score, from: 'abs(properties.description)', id: abs-of-text}
  - {to: event.duration, from: properties.spent, transform: long, id: spent}
  - {to: event.severity, from: properties.level, id: level}
  - {to: host.ip, from: properties.address}
  - {to: related.hosts, from: properties.nested, mode: append, id: hosts}
  - {to: message, from: properties.description, id: still-runs}
"""


def mapper(tmp_path, text=MAPPING) -> Mapper:
    path = tmp_path / "guarded.yml"
    path.write_text(text)
    return Mapper(compile_mappings(load_mappings([path], shipped=False)), Options(clock=lambda: "T"))


def entity(**properties):
    return {"id": "1", "entity": {"_class": "Finding", "_type": "t"}, "properties": properties}


@pytest.mark.parametrize("parity", [True, False])
def test_a_failing_expression_a_transform_and_writes_are_located(tmp_path, parity):
    m = mapper(
        tmp_path, MAPPING.replace("name: guarded\n", f"name: guarded\nparity: {str(parity).lower()}\n")
    )
    line = 5  # of the first rule
    where = f"{tmp_path / 'guarded.yml'}"
    doc = m.map_entity(
        entity(description="text", spent="soon", level="7x", address="not-an-ip", nested=[{"a": 1}]), "{}"
    )
    messages = doc["error"]["message"]
    assert messages[0].startswith(f"{where}:{line} abs-of-text: expression failed: In function abs()"), (
        messages
    )
    assert messages[1] == f"{where}:{line + 1} spent: unable to convert [soon] to long"
    assert messages[2] == f"{where}:{line + 2} level: unable to convert [7x] to long"
    assert messages[3] == (
        f"{where}:{line + 3} properties.address -> host.ip: 'not-an-ip' is not an IP string literal."
    )
    assert messages[4] == f"{where}:{line + 4} hosts: an object cannot go into a text field"
    assert len(messages) == 5
    assert doc["message"] == "text"  # the last rule still ran
    for field in ("risk_score", "duration", "severity"):
        assert field not in doc["event"]
    assert "host" not in doc and "related" not in doc  # nothing half-written
    if parity:
        assert doc["event"]["kind"] == "pipeline_error"
        assert doc["tags"] == ["preserve_original_event"]
    else:  # an enrichment: recorded, the document is not demoted
        assert "kind" not in doc["event"]
        assert "tags" not in doc


def test_values_are_coerced_to_the_target_type(tmp_path):
    doc = mapper(tmp_path).map_entity(
        entity(level="7", address="2001:DB8::1", spent=3.0, description=-2.5), "{}"
    )
    assert doc["event"]["severity"] == 7
    assert doc["event"]["duration"] == 3
    assert doc["host"]["ip"] == "2001:db8::1"
    assert doc["event"]["risk_score"] == 2.5
    assert "error" not in doc


def test_generated_code_shows_in_tracebacks(tmp_path):
    m = mapper(tmp_path)
    m.map_entity(entity(level="1"), "{}")
    program = m.runtime.cached_programs()[0]
    assert linecache.getline(program.filename, 1).startswith("def apply_rules(A, doc, errors, notes=None):")
    try:
        program.apply_rules(None, {}, [])
    except AttributeError as exc:
        text = "".join(traceback.format_exception(exc))
    assert "P = A.get('properties')" in text  # the line itself, not only its number


def test_the_program_cache_is_bounded(tmp_path):
    path = tmp_path / "guarded.yml"
    path.write_text(MAPPING)
    m = Mapper(compile_mappings(load_mappings([path], shipped=False)), Options(program_cache_size=8))
    for n in range(50):
        doc = m.map_entity(
            {"entity": {"_class": "Finding", "_type": f"type{n}"}, "properties": {"level": n, f"key{n}": 1}},
            "{}",
        )
        assert doc["event"]["severity"] == n
    assert len(m.runtime.cached_programs()) == 1  # one selection and one relevant shape: shared
    assert orjson.dumps(doc)


def test_the_program_cache_keeps_the_most_recently_used(tmp_path):
    """Fifty kinds with a program each (a rule per type) through a cache of eight: the eight
    used last stay, in the order they were used."""
    path = tmp_path / "per_type.yml"
    path.write_text(
        "version: 1\nname: per-type\nrules:\n"
        + "".join(f"  - {{to: labels.t{n}, value: x, when: {{type: type{n}}}}}\n" for n in range(50))
    )
    m = Mapper(compile_mappings(load_mappings([path], shipped=False)), Options(program_cache_size=8))
    for n in [*range(50), 45]:
        doc = m.map_entity({"entity": {"_class": "Finding", "_type": f"type{n}"}}, "{}")
        assert doc["labels"] == {f"t{n}": "x"}
    written = []
    for program in m.runtime.cached_programs():  # what each kept program writes, run alone
        doc: dict = {}
        program.apply_rules({"entity": {}}, doc, [])
        written.extend(doc["labels"])
    assert written == ["t42", "t43", "t44", "t46", "t47", "t48", "t49", "t45"]


def test_a_key_a_coercion_may_remove_is_not_taken_as_present(tmp_path):
    """Shape-specialised programs leave out the tests of keys the entity certainly has, but
    not of keys a coercion can still remove: a failed coercion of the only key of
    `properties.box` empties and removes `properties.box` itself, and of `properties.flag`
    removes that key."""
    m = mapper(
        tmp_path,
        """\
version: 1
name: volatile
fields:
  properties.box.flag: boolean
  properties.flag: boolean
rules:
  - {to: labels.has_box, value: 'yes', when: {has: [properties.box]}}
  - {to: labels.no_flag, value: 'yes', when: {missing: [properties.flag]}}
  - {to: labels.box_text, from: properties.note, when: {has: [properties.note]}}
""",
    )
    kept = m.map_entity(entity(box={"flag": True}, flag=False, note="n"), "{}")
    assert kept["labels"] == {"has_box": "yes", "box_text": "n"}
    removed = m.map_entity(entity(box={"flag": "maybe"}, flag="maybe", note="n"), "{}")
    assert removed["jupiter_one"]["asset"]["properties"] == {"note": "n"}
    assert removed["labels"] == {"no_flag": "yes", "box_text": "n"}
    assert len(removed["error"]["message"]) == 2


COERCIONS = """\
version: 1
name: coerced
fields:
  properties.kept: {transform: long, on_error: keep}
  properties.text: {transform: double, on_error: keep}
  properties.removed: long
  properties.deep.kept: {transform: date, on_error: keep}
rules:
  - {to: message, from: properties.name}
  - {to: labels.text, from: properties.text}
"""


@pytest.mark.parametrize("specialise", [True, False])
def test_an_object_under_a_scalar_coercion_is_kept_or_reported_by_on_error(tmp_path, specialise):
    """``on_error: keep`` leaves an object, or a text it refused before, as it is without
    calling the conversion again (the program tests that first); without keep, the refusal
    is still reported; and every entity gets the same document as the first."""
    m = mapper(tmp_path, COERCIONS)
    m.runtime.specialise = specialise
    raw = entity(
        name="n", kept={"port": 443}, text="Prose", removed={"port": 443}, deep={"kept": {"a": 1}}, other=7
    )
    docs = [m.map_entity(orjson.loads(orjson.dumps(raw)), "{}") for _ in range(4)]
    assert docs[1:] == docs[:-1]  # the first of a key shape is prepared generically, the next not
    doc = docs[-1]
    properties = doc["jupiter_one"]["asset"]["properties"]
    assert properties["kept"] == {"port": 443} and properties["deep"] == {"kept": {"a": 1}}
    assert properties["text"] == "Prose" and doc["labels"] == {"text": "Prose"}
    assert "removed" not in properties
    assert doc["error"]["message"] == [
        "jupiter_one.asset.properties.removed: unable to convert [{'port': 443}] to long"
    ]
    if specialise:  # (the generic mode builds its selections anew for each entity)
        (coercion,) = [c for c in _coercions(m) if c.compiled.field.path == "properties.text"]
        assert coercion.refused == {"Prose"}  # kept after the first refusal, without a call
        (program,) = m.runtime.cached_programs()
        assert "v.__class__ is not dict" in program.source.split("'properties.kept'")[1].split("#")[0]
        assert "v.__class__ is not dict" not in program.source.split("'properties.removed'")[1].split("#")[0]


COLLECTED = """\
version: 1
name: collected
rules:
  - {to: related.hosts, collect: [properties.a], mode: append, id: one-source}
  - {to: related.user, collect: [properties.a, properties.never], mode: append, id: two-sources}
"""


@pytest.mark.parametrize(
    "value", ["x", ["x", "y", "x"], 5, 5.5, True, ["x", 7, None], {"o": 1}, [["nested"]], [{"o": 1}]]
)
def test_a_collect_rule_with_one_source_appends_what_collecting_it_would(tmp_path, value):
    """One source collected into an append rule takes a shortcut for a text (no list built
    for it): it must append what the general path (two sources, one never present) does."""
    m = mapper(tmp_path, COLLECTED)
    m.runtime.specialise = False  # every rule as written: two-sources reads both
    doc = m.map_entity(entity(a=value), "{}")
    related = doc.get("related", {})
    assert related.get("hosts") == related.get("user")
    messages = [message.split(": ", 1)[1] for message in doc.get("error", {}).get("message", [])]
    assert messages[0::2] == messages[1::2]  # each failure reported alike by both rules


def _coercions(m: Mapper) -> list:
    """Every coercion of the mapper's selections."""
    return [
        c
        for selection in m.runtime._selections.values()
        for table in selection.tables.values()
        for c in table.exact.values()
    ]
