"""Elastic's own golden pipeline test: every expected field, with an equal value."""

from __future__ import annotations

import json

import pytest

from j1filter.protocol import map_line

from .conftest import ELASTIC_FIXTURES, field_diff, needs_shared

# Elastic's list of raw fields removed unless preserve_duplicate_custom_fields (its §2.9).
DUPLICATES = [
    "jupiter_one.asset.id",
    "jupiter_one.asset.entity._created_on",
    "jupiter_one.asset.entity._end_on",
    "jupiter_one.asset.entity._begin_on",
    *(
        f"jupiter_one.asset.properties.{name}"
        for name in (
            "web_link",
            "level",
            "device_id",
            "user_id",
            "device_mac_address",
            "device_os_version",
            "device_hostname",
            "device_platform_name",
            "user_name",
        )
    ),
]


def golden_pairs():
    log = needs_shared(ELASTIC_FIXTURES / "test-asset.log")
    expected = json.loads((ELASTIC_FIXTURES / "test-asset.log-expected.json").read_text())["expected"]
    lines = log.read_bytes().splitlines()
    assert len(lines) == len(expected) == 3
    return list(zip(lines, expected))


@pytest.mark.parametrize("index", range(3))
def test_every_expected_field_is_produced(preserving_mapper, index):
    line, expected = golden_pairs()[index]
    (result,) = map_line(preserving_mapper, line, "line 1")
    diff = field_diff(expected, result.doc, allow_extra=True)
    assert not diff, f"document {index + 1} differs from Elastic's:\n{diff}"
    assert result.doc["event"]["original"] == line.decode()  # byte-exact
    assert "error" not in result.doc


@pytest.mark.parametrize("index", range(3))
def test_duplicates_removed_by_default(mapper, index):
    from .conftest import flatten

    line, expected = golden_pairs()[index]
    (result,) = map_line(mapper, line, "line 1")
    actual = flatten(result.doc)
    wanted = {k: v for k, v in flatten(expected).items() if k not in DUPLICATES and k != "tags"}
    present = [k for k in DUPLICATES if k in flatten(expected)]
    assert present, "the fixture should carry some of the duplicate fields"
    assert not [k for k in present if k in actual], "duplicate custom fields must be removed"
    diff = field_diff(wanted, result.doc, allow_extra=True)
    assert not diff, diff
    assert "tags" not in result.doc


def test_extra_ecs_fields_on_the_crowdstrike_detection(mapper):
    line, _ = golden_pairs()[2]
    doc = map_line(mapper, line, "line 3")[0].doc
    assert doc["host"]["ip"] == ["198.51.100.1", "81.2.69.192"]
    assert doc["threat"]["framework"] == "MITRE ATT&CK"
    assert doc["process"]["command_line"].startswith('"C:\\Program Files\\MySQL')
    assert doc["process"]["args"][0] == "C:\\Program Files\\MySQL\\MySQL Workbench 8.0 CE\\python.exe"
    assert doc["process"]["parent"]["name"] == "rundll32.exe"
    assert doc["event"]["category"] == ["intrusion_detection", "malware"]
    assert doc["event"]["severity"] == 8  # "High" on the common 0-10 scale
    assert doc["event"]["url"].startswith("https://falcon.us-2.crowdstrike.com/")


def test_extra_ecs_fields_on_the_crowdstrike_vulnerability(mapper):
    line, _ = golden_pairs()[1]
    vulnerability = map_line(mapper, line, "line 2")[0].doc["vulnerability"]
    assert vulnerability["score"] == {"base": 7.8, "version": "3.1"}
    assert vulnerability["classification"] == "CVSS"
    assert vulnerability["scanner"] == {"vendor": "CrowdStrike"}
    assert len(vulnerability["reference"]) == 2
