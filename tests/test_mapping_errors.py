"""Invalid mapping files fail at load with file:line:col, what is wrong, and a hint."""

from __future__ import annotations

import pytest

from j1filter.errors import MappingError
from j1filter.language.loader import load_mappings
from j1filter.runtime.compiler import compile_mappings

from .conftest import REPO

BAD = REPO / "tests" / "bad_mappings"

# file -> the problems reported, in order (after "<path>:").
EXPECTED = {
    "unknown_key.yml": [
        "5:5: rules[0]: unknown key 'form' (did you mean 'from'?)",
        "4:5: rules[0]: a rule needs exactly one of: from, collect, args, value",
    ],
    "unknown_transform.yml": [
        "4:56: rule 'properties.level -> log.level'.transform: unknown transform 'lowercse' (did you mean 'lowercase'?)",
    ],
    # libyaml says "... not allowed in this context", the pure-Python parser "... not allowed here".
    "bad_yaml.yml": ["5:10: yaml: mapping values are not allowed "],
    "bad_parameter.yml": [
        "6:16: rule 'properties.severity -> event.severity'.transform: transform 'lookup': "
        "unknown parameter 'tabel' (did you mean 'table'?)",
    ],
    "wrong_version.yml": ["1:10: version: unsupported format version 2 (this release reads version: 1)"],
    "no_source.yml": ["4:5: rules[0]: a rule needs exactly one of: from, collect, args, value"],
    "target_conflict.yml": [
        "5:5: rule 'properties.device_local_ip -> host.ip'.to: 'host.ip' is inside 'host'"
    ],
    "reserved_target.yml": [
        "4:5: rule 'properties.description -> event.original'.to: 'event.original' is written by j1filter itself"
    ],
    "bad_condition.yml": ["6:12: rules[0].when: unknown key 'clas' (did you mean 'class'?)"],
    "bad_expression.yml": ["4:33: rules[0].from: invalid JMESPath expression 'properties.pkg_versions[0'"],
    "duplicate_key.yml": ["3:1: yaml: duplicate key 'name'"],
    "duplicate_after_merge.yml": ["7:5: yaml: duplicate key 'to'"],
    "alias_bomb.yml": [
        "11:10: yaml: aliases expand this value to 2,192,194 nodes and characters "
        "(the whole file to 22,196,031); the limit is 1,000,000 (use fewer or less nested aliases)"
    ],
    "not_a_mapping.yml": ["1:1: file: a mapping file must be a YAML mapping"],
    "camel_case_path.yml": [
        "4:35: rules[0].from: 'properties.ec2InstanceArn' can never match: entity keys are snake_cased "
        "first (write 'properties.ec2instance_arn')",
    ],
    "constant_wrong_type.yml": [
        "4:5: rule 'value -> event.severity'.value: 'high' cannot go into 'event.severity' (long): "
        "unable to convert [high] to long (give a whole number, or end the chain with the 'long' transform)",
    ],
    "constant_not_an_ip.yml": [
        "4:5: rule 'value -> host.ip'.value: 'not-an-ip' cannot go into 'host.ip' (ip): "
        "'not-an-ip' is not an IP string literal.",
    ],
    "transform_wrong_type.yml": [
        "4:61: rule 'properties.level -> event.severity'.transform: transform 'lowercase' returns "
        "keyword, which cannot go into 'event.severity' (long)",
    ],
    "lookup_wrong_type.yml": [
        "6:16: rule 'properties.level -> event.risk_score'.transform: transform 'lookup' returns "
        "keyword, which cannot go into 'event.risk_score' (float)",
    ],
    "transform_not_a_date.yml": [
        "4:59: rule 'properties.name -> event.created'.transform: transform 'trim' returns keyword, "
        "which cannot go into 'event.created' (date) (give a valid date, or end the chain with the 'date' transform)",
    ],
    "object_target.yml": [
        "4:53: rule 'properties.web_link -> url'.transform: transform 'lowercase' returns keyword, "
        "which cannot go into 'url' (object)",
    ],
    "unknown_ecs_field.yml": [
        "4:5: rule 'properties.score -> vulnerability.scroe.base'.to: 'vulnerability.scroe.base' is not "
        "an ECS 9.2.0 field (did you mean 'vulnerability.score.base'?)",
        "5:5: rule 'properties.team -> myorg.team'.to: 'myorg.team' is not an ECS 9.2.0 field "
        "(use labels.* or declare its namespace in custom_namespaces)",
    ],
    "bad_field_type.yml": [
        "4:51: fields.properties.score.on_error: unknown on_error 'ignore' (one of: remove, keep)",
        "5:3: fields.properties.*.x: invalid field path 'properties.*.x'",
    ],
}


def problems_of(path) -> list[str]:
    with pytest.raises(MappingError) as caught:
        compile_mappings(load_mappings([path], shipped=False))
    return str(caught.value).splitlines()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_mapping_reports_location_and_hint(name):
    path = BAD / name
    lines = problems_of(path)
    expected = [f"{path}:{text}" for text in EXPECTED[name]]
    assert len(lines) == len(expected), "\n".join(lines)
    for line, wanted in zip(lines, expected):
        assert line.startswith(wanted), f"\n  got:  {line}\n  want: {wanted}..."


def test_every_bad_mapping_file_has_an_expectation():
    assert sorted(p.name for p in BAD.glob("*.yml")) == sorted(EXPECTED)


def test_all_problems_of_all_files_are_reported_together():
    with pytest.raises(MappingError) as caught:
        load_mappings([BAD / "wrong_version.yml", BAD / "no_source.yml"], shipped=False)
    files = {p.file for p in caught.value.problems}
    assert files == {str(BAD / "wrong_version.yml"), str(BAD / "no_source.yml")}


def test_shipped_mappings_load_and_compile():
    specs = load_mappings()
    assert [s.name for s in specs][:3] == ["base", "risks", "ecs-extra"]
    assert {"qualys", "crowdstrike", "tenable", "snyk", "rapid7", "jupiterone"} <= {s.name for s in specs}
    compile_mappings(specs)


def test_a_user_file_with_a_shipped_name_replaces_it(tmp_path):
    override = tmp_path / "mine.yml"
    override.write_text(
        "version: 1\nname: jupiterone\norder: 50\nwhen: {type: jupiterone_rule_alert}\n"
        "rules:\n  - {to: rule.name, value: overridden}\n"
    )
    specs = load_mappings([override])
    replaced = [s for s in specs if s.name == "jupiterone"]
    assert len(replaced) == 1 and replaced[0].file == str(override)


def test_yaml_merge_keys_are_standard_yaml(tmp_path):
    """``<<: *anchor`` merges a mapping; the node's own keys override the merged ones."""
    path = tmp_path / "merge.yml"
    path.write_text(
        "version: 1\nname: merge\nrules:\n"
        "  - &base {to: labels.x, from: properties.description, mode: default}\n"
        "  - <<: *base\n    to: labels.y\n"
    )
    (first, second) = load_mappings([path], shipped=False)[0].rules
    assert first.to == ("labels", "x") and second.to == ("labels", "y")
    assert second.sources == first.sources == (("properties", "description"),)
    assert second.mode == "default"
    compile_mappings(load_mappings([path], shipped=False))


def test_alias_bomb_is_refused_quickly_without_expanding_it():
    import time

    start = time.perf_counter()
    problems_of(BAD / "alias_bomb.yml")
    assert time.perf_counter() - start < 2  # measured, never expanded (22 million nodes)


def test_aliases_of_reasonable_size_are_accepted(tmp_path):
    path = tmp_path / "aliases.yml"
    path.write_text(
        "version: 1\nname: aliases\nrules:\n"
        "  - {to: labels.a, value: &v [one, two, three]}\n"
        "  - {to: labels.b, value: *v}\n"
    )
    spec = load_mappings([path], shipped=False)[0]
    assert spec.rules[1].value == ["one", "two", "three"]


def test_custom_namespaces_and_labels_may_be_written(tmp_path):
    path = tmp_path / "custom.yml"
    path.write_text(
        "version: 1\nname: custom\ncustom_namespaces: [myorg]\nrules:\n"
        "  - {to: myorg.team, from: properties.team}\n"
        "  - {to: labels.owner, from: properties.owner}\n"
    )
    compiled = compile_mappings(load_mappings([path], shipped=False))
    assert [r.target for r in compiled.rules] == ["any", "keyword"]


def test_a_long_constant_given_as_text_is_coerced_at_load(tmp_path):
    path = tmp_path / "severity.yml"
    path.write_text("version: 1\nname: severity\nrules:\n  - {to: event.severity, value: '7'}\n")
    assert compile_mappings(load_mappings([path], shipped=False)).rules[0].value == 7


def test_field_types_of_the_shipped_mappings():
    from j1filter.runtime.compiler import field_types

    types = field_types(compile_mappings(load_mappings()))
    assert types["event.severity"] == "long" and types["host.ip"] == "ip"
    assert types["vulnerability.score.base"] == "float" and types["event.created"] == "date"
    assert types["url.domain"] == "keyword" and types["url.port"] == "long"  # url_parts writes an object
    assert types["jupiter_one.asset.properties.*_on"] == "keyword"  # a pattern; on_error keep: may stay text
    assert types["jupiter_one.asset.properties.created_on"] == "date"
    assert types["jupiter_one.asset.properties.numeric_severity"] == "double"  # long here, double there
    assert types["jupiter_one.asset.entity._deleted"] == "boolean"
    assert types["@timestamp"] == "date" and types["event.original"] == "keyword"
    assert all(kind not in ("any", "same", "object") for kind in types.values()), types
