"""One compile-time path (parse, check, bind), every problem of every stage reported in one
run, compiled mappings as the runtime's only input, and one exit-code table for every
subcommand."""

from __future__ import annotations

import subprocess
import sys

import pytest

import j1filter
from j1filter.cli.main import EXIT_CODES, error_message, exit_code
from j1filter.errors import (
    AuthError,
    CheckpointError,
    ConfigurationError,
    J1FilterError,
    MappingError,
    ParameterError,
    TransformError,
    UsageError,
)
from j1filter.language.check import check_mappings
from j1filter.language.loader import load_mappings
from j1filter.language.parser import parse_mapping_text
from j1filter.runtime.compiler import CompiledMappings, compile_files

from .conftest import REPO

#: A camelCase path (parse), a wrong type and an unknown ECS field (check), in one file.
THREE_MISTAKES = """\
version: 1
name: three
rules:
  - {to: cloud.instance.id, from: properties.ec2InstanceArn}
  - {to: event.severity, from: properties.level, transform: lowercase}
  - {to: organization.nmae, from: properties.org}
"""
THE_THREE = (
    "three.yml:4:35: rules[0].from: 'properties.ec2InstanceArn' can never match",
    "three.yml:5:61: rule 'properties.level -> event.severity'.transform: transform 'lowercase' "
    "returns keyword, which cannot go into 'event.severity' (long)",
    "three.yml:6:5: rule 'properties.org -> organization.nmae'.to: 'organization.nmae' is not an "
    "ECS 9.2.0 field (did you mean 'organization.name'?)",
)


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "j1filter", *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_check_reports_the_problems_of_every_stage_in_one_run(tmp_path):
    (tmp_path / "three.yml").write_text(THREE_MISTAKES)
    proc = run("check", str(tmp_path / "three.yml"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "j1filter check: invalid mapping"
    assert len(lines) == 4, proc.stderr
    for line, expected in zip(lines[1:], THE_THREE):
        assert line.startswith(f"{tmp_path}/{expected}"), f"\n got: {line}\nwant: {expected}"


@pytest.mark.parametrize("command", [[], ["explain"], ["fields"]])
def test_every_command_that_maps_reports_every_problem_too(tmp_path, command):
    (tmp_path / "three.yml").write_text(THREE_MISTAKES)
    proc = run(*command, "-m", str(tmp_path / "three.yml"))
    assert proc.returncode == 2
    assert all(expected.split(":", 3)[3] in proc.stderr for expected in THE_THREE), proc.stderr


def test_a_file_that_cannot_be_parsed_says_why_it_was_not_checked_further(tmp_path):
    (tmp_path / "broken.yml").write_text("version: 1\nname: [x\n")
    (tmp_path / "three.yml").write_text(THREE_MISTAKES)
    with pytest.raises(MappingError) as caught:
        compile_files([tmp_path], shipped=False)
    text = str(caught.value)
    assert f"{tmp_path}/broken.yml:3:1: yaml: " in text
    assert (
        f"{tmp_path}/broken.yml:1:1: file: transforms, targets and types not checked: the file "
        "could not be read as a mapping (fix the problem above first)"
    ) in text
    assert len(caught.value.problems) == 2 + 3


def test_parse_keeps_what_it_can_read_for_the_check_but_never_compiles_it(tmp_path):
    parsed = parse_mapping_text(THREE_MISTAKES, "three.yml")
    assert parsed.spec is not None and len(parsed.problems) == 1
    assert [".".join(rule.to) for rule in parsed.spec.rules] == [
        "cloud.instance.id",
        "event.severity",
        "organization.nmae",
    ]
    assert parsed.spec.rules[0].sources == ()  # the path that can never match is not kept
    (tmp_path / "three.yml").write_text(THREE_MISTAKES)
    with pytest.raises(MappingError) as caught:  # a spec with problems never reaches the runtime
        j1filter.load_mappings([tmp_path / "three.yml"], shipped=False)
    assert len(caught.value.problems) == 1  # parse problems only: the check needs the registry


def test_the_stages_in_order_and_the_one_call(tmp_path):
    path = tmp_path / "ok.yml"
    path.write_text("version: 1\nname: ok\nrules:\n  - {to: event.severity, value: '7'}\n")
    specs = load_mappings([path], shipped=False)  # parse
    checked = check_mappings(specs)  # check: types decided once
    assert [(r.target, r.result) for r in checked.rules[0]] == [("long", "long")]
    compiled = CompiledMappings(checked)  # bind: the constant coerced to its field's type
    assert compiled.rules[0].value == 7
    assert j1filter.compile_mappings(specs).rules[0].value == 7
    shipped = j1filter.compile_mappings()  # the one-call default: the shipped mappings
    assert {s.name for s in shipped.specs} >= {"base", "qualys"}


def test_a_factory_refusing_its_parameters_is_a_located_mapping_problem(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text(
        "version: 1\nname: bad\nrules:\n"
        "  - {to: labels.x, from: properties.a, transform: {name: extract, pattern: '('}}\n"
    )
    with pytest.raises(MappingError) as caught:
        compile_files([path], shipped=False)
    (problem,) = caught.value.problems
    assert (problem.line, problem.what.split(":")[0]) == (4, "transform 'extract'")
    assert issubclass(ParameterError, ConfigurationError) and not issubclass(ParameterError, ValueError)


def test_the_mapper_takes_compiled_mappings_only():
    specs = load_mappings()
    with pytest.raises(TypeError, match="compile_mappings"):
        j1filter.Mapper(specs)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        j1filter.Mapper()  # type: ignore[call-arg]
    assert j1filter.Mapper(j1filter.compile_mappings(specs)).mappings.specs == tuple(specs)


@pytest.mark.parametrize(
    "error, code",
    [
        (MappingError([]), 2),
        (UsageError("x"), 2),
        (CheckpointError("x"), 2),
        (ParameterError("x"), 2),
        (AuthError("x"), 1),
        (TransformError("x"), 1),
        (J1FilterError("x"), 1),
        (FileNotFoundError(2, "No such file or directory", "x"), 1),
        (OSError(28, "No space left on device"), 1),
        (ValueError("a bug"), None),
    ],
)
def test_one_exit_code_table(error, code):
    assert exit_code(error) == code
    if code is not None:
        assert "Errno" not in error_message("j1filter", error)
    assert all(not issubclass(kind, ValueError) for kind, _ in EXIT_CODES if kind is not OSError)


def test_subcommands_raise_and_the_table_decides(tmp_path):
    missing = str(tmp_path / "nosuch.ndjson")
    for args in (["explain", missing], [missing]):
        proc = run(*args)
        assert proc.returncode == 1
        prog = "j1filter explain" if args[0] == "explain" else "j1filter"
        assert proc.stderr.startswith(f"{prog}: cannot open '{missing}': No such file or directory ("), (
            proc.stderr
        )
        assert "Errno" not in proc.stderr
    proc = run("--namespace", "Bad-One", stdin=b"{}\n")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "j1filter: error: --namespace 'Bad-One': must be lowercase",
        "j1filter: error: --namespace 'Bad-One': must not contain '-' (it separates type, dataset and namespace)",
    ]


def test_a_rule_without_a_target_says_what_was_not_checked(tmp_path):
    path = tmp_path / "no_target.yml"
    path.write_text("version: 1\nname: nt\nrules:\n  - {from: properties.x, transform: lowercse}\n")
    with pytest.raises(MappingError) as caught:
        compile_files([path], shipped=False)
    assert [p.what for p in caught.value.problems] == [
        "missing required key 'to'",
        "its transforms are not checked: the rule has no valid 'to'",
    ]
