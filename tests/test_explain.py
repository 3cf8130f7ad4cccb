"""`j1filter explain`: every output field with the rule that set it, one golden file per source."""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys

import orjson
import pytest

from j1filter.cli.explain import explain_entity, render_text
from j1filter.language.loader import load_mappings
from j1filter.runtime.compiler import compile_mappings
from j1filter.runtime.mapper import Mapper, Options

from .conftest import FIXED_TIME, REPO, SAMPLES

GOLDEN = REPO / "tests" / "golden" / "explain"
#: One sample entity per source: golden file name -> the sample's _type.
SOURCES = {
    "jupiterone": "jupiterone_rule_alert",
    "crowdstrike": "crowdstrike_alert",
    "qualys": "qualys_host_finding",
    "tenable": "tenable_vulnerability_finding",
    "snyk": "snyk_finding",
    "rapid7": "insightvm_finding",
    "generic": "pentest_finding",
}


def sample(entity_type: str) -> dict:
    for line in SAMPLES.read_text().splitlines():
        entity = json.loads(line)
        found = entity["entity"]["_type"]
        if entity_type in (found if isinstance(found, list) else [found]):
            return entity
    raise LookupError(entity_type)


def without_line_numbers(text: str) -> str:
    """``mappings/00-base.yml:29 id`` -> ``mappings/00-base.yml id``: a rule moved within its
    file does not change the golden files of the sources it has nothing to do with."""
    return re.sub(r"(\.yml):\d+\b", r"\1", text)


def test_line_numbers_are_left_out_of_goldens_only():
    assert (
        without_line_numbers("x  mappings/00-base.yml:29 id -> event.id")
        == "x  mappings/00-base.yml id -> event.id"
    )
    assert without_line_numbers("line 12: port 8080") == "line 12: port 8080"


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_explain_matches_golden(source, mapper):
    text = without_line_numbers(render_text(explain_entity(mapper, sample(SOURCES[source])), show_all=True))
    path = GOLDEN / f"{source}.txt"
    if os.environ.get("J1FILTER_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    expected = path.read_text()
    diff = "\n".join(
        difflib.unified_diff(expected.splitlines(), text.splitlines(), "golden", "now", lineterm="")
    )
    assert not diff, f"explain output for {source} changed (J1FILTER_UPDATE_GOLDEN=1 to accept):\n{diff}"


def test_every_field_of_the_document_is_explained(mapper):
    for entity_type in SOURCES.values():
        explanation = explain_entity(mapper, sample(entity_type))
        assert all(by != "?" for _, _, by in explanation.fields), explanation.fields
        written = {field for field, _, _ in explanation.fields}
        assert "event.original" in written and "@timestamp" in written


def test_a_failing_rule_shows_as_error_with_its_location(tmp_path):
    extra = tmp_path / "extra.yml"
    extra.write_text(
        "version: 1\nname: extra\nrules:\n"
        "  - {to: event.risk_score, from: 'abs(properties.name)', id: abs-name}\n"
    )
    mapper = Mapper(compile_mappings(load_mappings([extra])), Options(clock=lambda: FIXED_TIME))
    explanation = explain_entity(mapper, sample("qualys_host_finding"))
    errors = [(r.label, detail) for r, outcome, detail in explanation.outcomes if outcome == "error"]
    assert errors == [
        (
            f"{extra}:4 abs-name",
            f"{extra}:4 abs-name: expression failed: In function abs(), "
            "invalid type for value: QID 38657, expected one of: ['number'], received: \"string\"",
        )
    ]
    # A user file is an enrichment (no `parity: true`): the finding stays an alert.
    kind = [(value, by) for field, value, by in explanation.fields if field == "event.kind"]
    assert kind == [("alert", kind[0][1])] and kind[0][1].endswith("10-risks.yml:53 value -> event.kind")
    assert "error.message" in {field for field, _, _ in explanation.fields}


def run_cli(*args: str, stdin: bytes) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "j1filter", "explain", *args],
        input=stdin,
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    return proc.stdout.decode()


def test_cli_json_and_code():
    line = orjson.dumps(sample("snyk_finding"))
    record = json.loads(run_cli("--json", stdin=line + b"\n"))
    by_field = {f["field"]: f for f in record["fields"]}
    assert by_field["vulnerability.scanner.vendor"]["set_by"].startswith("mappings/50-snyk.yml:")
    (rule,) = by_field["vulnerability.scanner.vendor"]["rules"]
    assert rule["file"] == "mappings/50-snyk.yml" and isinstance(rule["line"], int)
    assert by_field["@timestamp"] == {
        "field": "@timestamp",
        "value": by_field["@timestamp"]["value"],
        "set_by": "j1filter",
        "rules": [],
    }
    assert {r["outcome"] for r in record["rules"]} >= {"fired", "condition false"}
    code = run_cli("--code", stdin=line)
    assert code.startswith("# <j1filter program") and "def apply_rules(A, doc, errors, notes=None):" in code
    compile(code, "listing", "exec")  # the listing is the real, valid source
