"""Rules that read the same source through the same first step (a built-in transform with the
same parameters) share that step's value: it is computed once per entity, and each rule still
gets a value of its own to write, append to or transform further."""

from __future__ import annotations

from j1filter.convert import transforms
from j1filter.convert.registry import builtin_transforms
from j1filter.language.loader import load_mappings
from j1filter.runtime.compiler import compile_mappings
from j1filter.runtime.mapper import Mapper, Options

SHARED = """\
version: 1
name: shared
rules:
  - {id: hosts, to: related.hosts, from: properties.names, transform: lowercase}
  - {id: more-hosts, to: related.hosts, from: properties.extra, mode: append}
  - {id: users, to: related.user, from: properties.names, transform: lowercase}
  - {id: first-user, to: user.name, from: properties.names, transform: [lowercase, first]}
  - {id: upper, to: user.id, from: properties.names, transform: [uppercase, first]}
"""


def mapper(tmp_path, text: str, registry=None) -> Mapper:
    path = tmp_path / "shared.yml"
    path.write_text(text)
    compiled = compile_mappings(load_mappings([path], shipped=False), transforms=registry)
    return Mapper(compiled, Options(clock=lambda: "T"))


def entity(**properties):
    return {"id": "1", "entity": {"_class": "Finding", "_type": "t"}, "properties": properties}


def test_a_shared_first_step_runs_once_and_every_rule_gets_its_own_value(tmp_path, monkeypatch):
    calls = []

    def counted(value):
        calls.append(value)
        return value if value.__class__ is str else str(value)

    # What lowercase and uppercase call for a value that is not text (numbers here).
    monkeypatch.setattr(transforms, "java_string", counted)
    m = mapper(tmp_path, SHARED)
    raw = entity(names=[101, 202], extra="mail-03")
    for _ in range(2):  # the generic program, then the one specialised to the entity's shape
        calls.clear()
        doc = m.map_entity(raw, "{}")
        # lowercase once for three rules (once per item), uppercase once for its rule
        assert calls == [101, 202, 101, 202]
        # the append to related.hosts changes neither the shared value nor related.user
        assert doc["related"] == {"hosts": ["101", "202", "mail-03"], "user": ["101", "202"]}
        assert doc["user"] == {"name": "101", "id": "101"}
    source = m.runtime.cached_programs()[-1].source
    assert source.count("if m0 is UNSET: m0 = ") == 3 and "m1" not in source


def test_a_custom_transform_is_never_shared(tmp_path):
    """Its purity is unknown: each rule calls it."""
    calls = []

    def factory():
        def tag(value):
            calls.append(value)
            return f"{value}-{len(calls)}"

        return tag

    registry = builtin_transforms()
    registry.register("tag", factory, result="keyword")
    m = mapper(
        tmp_path,
        SHARED.replace("transform: lowercase}", "transform: tag}").replace("[lowercase, first]", "tag"),
        registry,
    )
    doc = m.map_entity(entity(names="web", extra="mail"), "{}")
    assert calls == ["web", "web", "web"]
    assert doc["related"] == {"hosts": ["web-1", "mail"], "user": "web-2"}
    assert doc["user"]["name"] == "web-3"


def test_a_failing_shared_step_fails_every_rule_that_reads_it(tmp_path):
    """The value is not kept when the step raises: the next rule runs it again and reports
    its own error."""
    text = """\
version: 1
name: shared
rules:
  - {id: first, to: event.duration, from: properties.spent, transform: long}
  - {id: second, to: event.sequence, from: properties.spent, transform: long}
"""
    doc = mapper(tmp_path, text).map_entity(entity(spent="soon"), "{}")
    where = tmp_path / "shared.yml"
    assert doc["error"]["message"] == [
        f"{where}:4 first: unable to convert [soon] to long",
        f"{where}:5 second: unable to convert [soon] to long",
    ]
