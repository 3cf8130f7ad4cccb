"""J1's data model in ECS, whatever the source (mappings/30-datamodel.yml).

Three kinds of input: the ten realistic entities of ../shared/fixtures (skipped when the
reference material is absent), synthetic entities from sources that have no mapping file of
their own (a custom integration, an API upload, a pentest report), and values the data model
allows where Elastic's conversions expect another type (decimal numericSeverity, text impact).
Every expectation is checked field by field, numbers with their JSON type (7 is not 7.0).
"""

from __future__ import annotations

import orjson
import pytest

from j1filter.language.loader import load_mappings
from j1filter.protocol import map_line

from .conftest import SHARED, field_problems, needs_shared

DATAMODEL_FIXTURES = SHARED / "fixtures" / "j1-datamodel-examples.ndjson"

# What a vulnerability finding gets from the data model, never a detection or a rule alert.
VULNERABILITY_FIELDS = [
    "vulnerability.id",
    "vulnerability.severity",
    "vulnerability.description",
    "vulnerability.score.base",
]

# One entry per fixture line, in order: (its _type, the ECS fields it must give, the fields
# it must not give). Values worked out from the entity by hand (README "Output").
FIXTURE_EXPECTATIONS = [
    (
        "snyk_finding",
        {
            "message": "[lodash](https://www.npmjs.com/package/lodash) is a modern JavaScript utility library "
            "delivering modularity, performance, & extras.\n\nAffected versions of this package are "
            "vulnerable to Prototype Pollution via zipObjectDeep.",
            "vulnerability.id": ["CVE-2020-8203"],
            "vulnerability.enumeration": "CVE",
            "vulnerability.severity": "high",
            "event.severity": 8,
            "vulnerability.score.base": 7.3,
            "vulnerability.classification": "CVSS",
            "event.risk_score": 7.0,
            "vulnerability.scanner.vendor": "Snyk",
            "vulnerability.reference": "https://snyk.io/vuln/SNYK-JS-LODASH-590103",
            "url.domain": "snyk.io",
            "event.url": "https://snyk.io/vuln/SNYK-JS-LODASH-590103",
            "package.name": "lodash",
            "package.version": "4.17.15",
            "jupiter_one.asset.properties.numeric_severity": 7.0,
            "jupiter_one.asset.properties.publication_time": "2020-07-15T17:27:37.331Z",
        },
        ["host.ip", "related.ip"],
    ),  # its targets are repositories, not hosts
    (
        "tenable_vulnerability_finding",
        {
            "message": "SSL Certificate Signed Using Weak Hashing Algorithm (Known CA)",
            "vulnerability.id": "95631",
            "vulnerability.enumeration": "TENABLE_PLUGIN",
            "vulnerability.severity": "None",
            "event.severity": 0,
            "event.risk_score": 4.4,
            "vulnerability.reference": [
                "https://tools.ietf.org/html/rfc3279",
                "http://www.nessus.org/u?9bb87bf2",
            ],
            "host.ip": ["104.131.67.167", "2604:a880:800:10::7a1:f001"],
            "related.ip": ["104.131.67.167", "2604:a880:800:10::7a1:f001"],
            "destination.port": 443,
            "network.transport": "tcp",
            "jupiter_one.asset.properties.scan.started_at": "2021-05-12T21:12:24.210Z",
            "jupiter_one.asset.properties.first_found": "2021-05-12T22:27:03.798Z",
        },
        ["vulnerability.score.base", "network.protocol", "jupiter_one.asset.properties.numeric_severity"],
    ),
    (
        "crowdstrike_vulnerability",
        {
            "vulnerability.id": "CVE-2023-4863",
            "vulnerability.enumeration": "CVE",
            "vulnerability.description": "Heap buffer overflow in libwebp in Google Chrome prior to 116.0.5845.187 "
            "allowed a remote attacker to perform an out of bounds memory write via a "
            "crafted HTML page.",
            "vulnerability.severity": "High",
            "event.severity": 8,
            "vulnerability.score.base": 8.8,
            "vulnerability.score.version": "3.1",
            "vulnerability.classification": "CVSS",
            "vulnerability.reference": [
                "https://nvd.nist.gov/vuln/detail/CVE-2023-4863",
                "https://chromereleases.googleblog.com/2023/09/stable-channel-update-for-desktop_11.html",
            ],
            "host.id": "feb241773b2c4d1e9f0a8c7d6e5f4a3b",
            "jupiter_one.asset.properties.impact": 5.9,
            "jupiter_one.asset.properties.exploitability": 2.8,
        },
        ["event.risk_score"],
    ),  # no numericSeverity in this converter
    (
        "['qualys_host_finding']",
        {
            "message": "QID 38170",
            "vulnerability.id": "38170",
            "vulnerability.enumeration": "QID",
            "vulnerability.severity": "low",
            "event.severity": 4,
            "event.risk_score": 4.0,
            "host.id": "6506432",
            "host.ip": ["10.10.10.11"],
            "related.ip": ["10.10.10.11"],
            "destination.port": 3389,
            "network.transport": "tcp",
            "jupiter_one.asset.properties.numeric_severity": 4.0,
        },
        ["vulnerability.classification", "host.name"],
    ),
    (
        "['github_finding']",
        {
            "vulnerability.id": "GHSA-xvch-5gv4-984h",
            "vulnerability.enumeration": "GHSA",
            "vulnerability.severity": "CRITICAL",
            "event.severity": 10,
            "vulnerability.score.base": 9.8,
            "vulnerability.score.version": "3.1",
            "vulnerability.classification": "CVSS",
            "event.risk_score": 9.8,
            "vulnerability.description": "Minimist <=1.2.5 is vulnerable to Prototype Pollution via file index.js, "
            "function setKey() (lines 69-95).",
            "url.path": "/acme/storefront-web/security/dependabot/17",
            "event.url": "https://github.com/acme/storefront-web/security/dependabot/17",
            "package.name": "minimist",
            "jupiter_one.asset.properties.numeric_severity": 9.8,
            "jupiter_one.asset.properties.impact": "Prototype Pollution in minimist",
        },
        [],
    ),
    (
        "whitehat_finding",
        {
            "message": "Cross Site Scripting",
            "vulnerability.severity": "4",
            "vulnerability.score.base": 6.1,
            "event.risk_score": 4.0,
            "vulnerability.scanner.vendor": "WhiteHat",
            "url.domain": "testasp.vulnweb.com",
            "url.scheme": "http",
            "jupiter_one.asset.properties.impact": 7.0,  # "7": a number written as text
            "jupiter_one.asset.properties.last_retested": "2022-04-29T15:26:13.000Z",
            "jupiter_one.asset.properties.first_opened": "2022-04-29T15:26:13.000Z",
        },
        ["vulnerability.description", "event.severity"],
    ),  # "4" is no label; its scale is WhiteHat's
    (
        "lacework_alert_finding",
        {
            "message": "91876",
            "event.category": ["intrusion_detection"],
            "event.kind": "alert",
            "event.action": "NewExternalServerDns",
            "host.id": "27",
            "host.name": "ip-10-0-4-17.ec2.internal",
            "user.name": "www-data",
            "related.user": ["www-data"],
            "process.executable": "/usr/bin/xmrig",
            "process.name": "xmrig",
            "destination.domain": "pool.minexmr.example",
            "related.hosts": ["ip-10-0-4-17.ec2.internal", "pool.minexmr.example"],
            "jupiter_one.asset.properties.started_on": "2023-01-09T10:00:00.000Z",
        },
        VULNERABILITY_FIELDS,
    ),
    (
        "cve",
        {
            "message": "CVE-2021-44906",
            "vulnerability.id": "CVE-2021-44906",
            "vulnerability.enumeration": "CVE",
            "vulnerability.score.base": 9.8,
            "vulnerability.classification": "CVSS",
            "vulnerability.reference": ["https://nvd.nist.gov/vuln/detail/cve-2021-44906"],
            "url.domain": "nvd.nist.gov",
        },
        ["vulnerability.severity", "vulnerability.scanner.vendor"],
    ),
    (
        "log4j_vulnerability",
        {
            "host.ip": ["10.0.4.17"],
            "related.ip": ["10.0.4.17"],
            "host.hostname": "ip-10-0-4-17",
            "host.name": "ip-10-0-4-17",
            "related.hosts": ["ip-10-0-4-17"],
            "event.category": ["vulnerability"],
        },
        ["message", "vulnerability.id", "vulnerability.scanner.vendor"],
    ),
    (
        "['snyk_finding']",
        {
            "message": "Prototype Pollution",
            "vulnerability.id": ["CVE-2020-7598"],
            "vulnerability.enumeration": "CVE",
            "vulnerability.severity": "medium",
            "vulnerability.score.base": 5.6,
            "event.risk_score": 5.0,
            "event.end": "2024-05-02T06:02:49.912Z",
            "jupiter_one.asset.entity._deleted": True,
        },
        ["vulnerability.description"],
    ),
]


def fixture_lines() -> list[bytes]:
    lines = needs_shared(DATAMODEL_FIXTURES).read_bytes().splitlines()
    assert len(lines) == len(FIXTURE_EXPECTATIONS)
    return lines


@pytest.mark.parametrize(
    "index",
    range(len(FIXTURE_EXPECTATIONS)),
    ids=[f"{n + 1}-{t.strip('[]')}" for n, (t, _, _) in enumerate(FIXTURE_EXPECTATIONS)],
)
def test_fixture_entity(preserving_mapper, index):
    line = fixture_lines()[index]
    type_, expected, absent = FIXTURE_EXPECTATIONS[index]
    (result,) = map_line(preserving_mapper, line, f"line {index + 1}")
    assert str(result.doc["jupiter_one"]["asset"]["entity"]["_type"]) == type_
    problems = field_problems(result.doc, expected, absent)
    assert result.doc["event"]["kind"] == "alert", result.doc.get("error")
    assert not problems, "\n".join(problems)


# --- sources with no mapping file of their own -----------------------------------------------


def entity(meta: dict, **properties) -> dict:
    base = {"_id": "e-1", "_key": "k-0000000001", "_version": 3, "_beginOn": "2025-11-01T07:00:00Z"}
    return {"id": "e-1", "entity": {**base, **meta}, "properties": properties}


UNKNOWN_SOURCES = [
    pytest.param(
        entity(
            {
                "_class": ["Finding"],
                "_type": "acme_scan_finding",
                "_integrationType": "acme_scanner",
                "_source": "integration-managed",
            },
            name="OpenSSL 3.0 buffer overflow",
            description="X.509 email address buffer overflow.",
            cveId="CVE-2022-3602",
            severity="High",
            numericSeverity=7.5,
            score="7.5",
            vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
            impact=3.6,
            exploitability=3.9,
            references=["https://www.openssl.org/news/secadv/20221101.txt", "see vendor notes"],
            targets=["10.1.2.3", "web-01.internal", "i-0abc"],
            port="8443",
            protocol="TCP",
            webLink="https://acme.example.com/findings/77",
        ),
        {
            "message": "X.509 email address buffer overflow.",
            "vulnerability.description": "X.509 email address buffer overflow.",
            "vulnerability.id": "CVE-2022-3602",
            "vulnerability.enumeration": "CVE",
            "vulnerability.severity": "High",
            "event.severity": 8,
            "vulnerability.score.base": 7.5,
            "vulnerability.score.version": "3.1",
            "vulnerability.classification": "CVSS",
            "event.risk_score": 7.5,
            "vulnerability.reference": ["https://www.openssl.org/news/secadv/20221101.txt"],
            "host.ip": ["10.1.2.3"],
            "related.ip": ["10.1.2.3"],
            "destination.port": 8443,
            "network.transport": "tcp",
            "url.domain": "acme.example.com",
            "event.url": "https://acme.example.com/findings/77",
            "event.provider": "acme_scanner",
            "vulnerability.scanner.vendor": "Acme",  # the integration type's first word (docs/coverage.md)
            "event.category": ["vulnerability"],
            "jupiter_one.asset.properties.impact": 3.6,
            "jupiter_one.asset.properties.score": 7.5,
            "jupiter_one.asset.properties.port": 8443,
        },
        ["network.protocol"],
        id="custom integration",
    ),
    pytest.param(
        entity(
            {
                "_class": ["Vulnerability"],
                "_type": "uploaded_vuln",
                "_source": "api",
                "_scope": "nightly-import",
            },
            name="cve-2021-44228",
            cvssScore="10.0",
            severity="critical",
            impact="Remote code execution",
            ipAddress="192.0.2.10",
            hostname="build-7",
            fqdn="build-7.corp.example",
            port=443.0,
            protocol="https",
        ),
        {
            "message": "cve-2021-44228",
            "vulnerability.id": "CVE-2021-44228",
            "vulnerability.enumeration": "CVE",
            "vulnerability.severity": "critical",
            "event.severity": 10,
            "vulnerability.score.base": 10.0,
            "vulnerability.classification": "CVSS",
            "vulnerability.description": "Remote code execution",
            "host.ip": ["192.0.2.10"],
            "host.name": "build-7.corp.example",
            "host.hostname": "build-7",
            "related.hosts": ["build-7.corp.example", "build-7"],
            "destination.port": 443,
            "network.protocol": "https",
            "event.category": ["vulnerability"],
            "jupiter_one.asset.properties.impact": "Remote code execution",
            "jupiter_one.asset.properties.cvss_score": 10.0,
            "jupiter_one.asset.properties.port": 443,
        },
        ["network.transport", "event.provider", "event.risk_score"],
        id="API upload (no integration)",
    ),
    pytest.param(
        entity(
            {"_class": ["Finding"], "_type": "pentest_finding", "_source": "api"},
            id="PT-2025-014",
            name="Stored XSS in profile page",
            summary="Stored XSS (profile)",
            severity="medium",
            numericSeverity="5",
            impact="Session theft of any visitor",
            targets=["https://portal.example.com/profile", "198.51.100.7", "2001:DB8::7"],
            reporter="carol@example.org",
            approvers=["dave@example.org"],
            open="true",
            reportedOn="2025-10-30T09:00:00+01:00",
            webLink="https://reports.example.org/PT-2025-014",
            port="443/tcp",
        ),
        {
            "message": "Stored XSS (profile)",
            "vulnerability.description": "Session theft of any visitor",
            "vulnerability.severity": "medium",
            "event.severity": 6,
            "event.risk_score": 5.0,
            "host.ip": ["198.51.100.7", "2001:db8::7"],
            "related.ip": ["198.51.100.7", "2001:db8::7"],
            "related.user": ["carol@example.org", "dave@example.org"],
            "url.path": "/PT-2025-014",
            "event.url": "https://reports.example.org/PT-2025-014",
            "jupiter_one.asset.properties.open": True,
            "jupiter_one.asset.properties.reported_on": "2025-10-30T08:00:00.000Z",
            "jupiter_one.asset.properties.numeric_severity": 5.0,
            "jupiter_one.asset.properties.port": "443/tcp",
        },  # not a number: kept, no error
        ["vulnerability.id", "vulnerability.enumeration", "vulnerability.score.base", "destination.port"],
        id="pentest report finding",
    ),
    pytest.param(
        entity(
            {"_class": ["Alert"], "_type": "siem_alert", "_integrationType": "custom_siem"},
            name="Impossible travel",
            description="Sign-in from two countries within 5 minutes",
            severity="HIGH",
            numericSeverity=80,
            ip="203.0.113.9",
        ),
        {
            "message": "Sign-in from two countries within 5 minutes",
            "event.severity": 8,
            "event.risk_score": 80.0,
            "event.category": ["intrusion_detection"],
            "host.ip": ["203.0.113.9"],
        },
        VULNERABILITY_FIELDS,
        id="custom alert: no vulnerability fields",
    ),
    pytest.param(
        entity(
            {"_class": ["Finding"], "_type": "edr_detection", "_integrationType": "custom_edr"},
            name="Credential dumping",
            description="LSASS memory read",
            severity="critical",
            score=9.1,
            techniqueId="T1003",
            tacticId="TA0006",
        ),
        {
            "message": "LSASS memory read",
            "event.severity": 10,
            "threat.technique.id": ["T1003"],
            "threat.framework": "MITRE ATT&CK",
        },
        VULNERABILITY_FIELDS,
        id="custom detection (ATT&CK): no vulnerability fields",
    ),
    pytest.param(
        entity(
            {"_class": ["Finding"], "_type": "dast_finding", "_integrationType": "custom_dast"},
            name="3f2b8c1e-9a4d-4e7f-8b21-0c5d6e7f8a90",
            severity="low",
            protocol="SSH",
            port=22,
        ),
        {"vulnerability.severity": "low", "network.protocol": "ssh", "destination.port": 22},
        ["message", "network.transport"],
        id="a bare UUID as name is no title",
    ),
    pytest.param(
        entity(
            {"_class": ["Finding"], "_type": "risk_finding", "_integrationType": "custom_risk"},
            name="Risky bucket",
            score=85,
            numericSeverity=85,
        ),
        {"event.risk_score": 85.0, "jupiter_one.asset.properties.score": 85.0},
        ["vulnerability.score.base"],
        id="a score outside CVSS's 0-10 is no CVSS score",
    ),
]


@pytest.mark.parametrize("raw,expected,absent", UNKNOWN_SOURCES)
def test_source_without_mapping_file(mapper, raw, expected, absent):
    (result,) = map_line(mapper, orjson.dumps(raw), "line 1")
    problems = field_problems(result.doc, expected, absent)
    assert not problems, "\n".join(problems)


# --- values of another type than Elastic expects ----------------------------------------------


def test_dependabot_decimal_severity_and_text_impact_are_kept(mapper):
    raw = entity(
        {"_class": ["Finding"], "_type": "github_finding", "_integrationType": "github"},
        name="Prototype Pollution in minimist",
        severity="CRITICAL",
        numericSeverity=9.8,
        score=9.8,
        impact="Prototype Pollution in minimist",
        ghsaId="GHSA-xvch-5gv4-984h",
    )
    (result,) = map_line(mapper, orjson.dumps(raw), "line 1")
    doc = result.doc
    assert "error" not in doc and doc["event"]["kind"] == "alert", doc.get("error")
    assert result.error_kind is None
    properties = doc["jupiter_one"]["asset"]["properties"]
    assert properties["numeric_severity"] == 9.8 and isinstance(properties["numeric_severity"], float)
    assert properties["impact"] == "Prototype Pollution in minimist"
    problems = field_problems(
        doc,
        {
            "event.risk_score": 9.8,
            "vulnerability.score.base": 9.8,
            "vulnerability.severity": "CRITICAL",
            "vulnerability.description": "Prototype Pollution in minimist",  # no description: the impact text
            "vulnerability.id": "GHSA-xvch-5gv4-984h",
            "vulnerability.enumeration": "GHSA",
        },
    )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "value,kept,description",
    [
        (9.8, 9.8, None),
        (7, 7.0, None),
        ("9.8", 9.8, None),
        ("7", 7.0, None),
        (" 4.5 ", 4.5, None),
        ("Prototype Pollution", "Prototype Pollution", "Prototype Pollution"),
        ("  Remote code execution\n", "  Remote code execution\n", "Remote code execution"),
        ("1e3 servers exposed", "1e3 servers exposed", "1e3 servers exposed"),
        (["high", "data loss"], ["high", "data loss"], None),  # a list is not a description
    ],
    ids=repr,
)
def test_impact_of_any_type_is_kept_without_error(mapper, value, kept, description):
    raw = entity({"_class": ["Finding"], "_type": "any_finding"}, impact=value, severity="low")
    (result,) = map_line(mapper, orjson.dumps(raw), "line 1")
    assert "error" not in result.doc, result.doc["error"]
    assert orjson.dumps(result.doc["jupiter_one"]["asset"]["properties"]["impact"]) == orjson.dumps(kept)
    assert result.doc.get("vulnerability", {}).get("description") == description


@pytest.mark.parametrize("value", [9.8, 0.5, 70, "9.8", 1e-3])
def test_numeric_severity_of_any_source_is_a_double(mapper, value):
    for integration in (None, "rapid7", "tenable_io", "crowdstrike", "snyk", "qualys", "github"):
        meta = {"_class": ["Finding"], "_type": f"{integration}_finding"}
        if integration:
            meta["_integrationType"] = integration
        (result,) = map_line(mapper, orjson.dumps(entity(meta, numericSeverity=value)), "line 1")
        assert "error" not in result.doc, (integration, result.doc["error"])
        kept = result.doc["jupiter_one"]["asset"]["properties"]["numeric_severity"]
        assert isinstance(kept, float) and kept == float(value), (integration, kept)


def test_a_tag_value_that_is_no_boolean_is_kept(mapper):
    raw = entity({"_class": ["Finding"], "_type": "any_finding"}, **{"tag.Production": "yes"})
    (result,) = map_line(mapper, orjson.dumps(raw), "line 1")
    assert "error" not in result.doc, result.doc["error"]
    assert result.doc["jupiter_one"]["asset"]["properties"]["tag"]["production"] == "yes"


def test_numeric_severity_is_declared_double_wherever_it_is_declared():
    declared = {
        (spec.file.rsplit("/", 1)[-1], tuple(t.name for t in ft.transforms))
        for spec in load_mappings()
        for ft in spec.fields
        if ft.path == "properties.numeric_severity"
    }
    assert declared, "some mapping must declare properties.numeric_severity"
    assert {transforms for _, transforms in declared} == {("double",)}, declared
