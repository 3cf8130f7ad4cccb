"""Source-aware mappings: one invented entity per case, the ECS fields it must give, and the
fields it must not give (no invented CVE, no vulnerability fields on rule alerts, ...)."""

from __future__ import annotations

import orjson
import pytest

from j1filter.protocol import map_line

from .conftest import field_problems


def entity(type_, classes, integration, **properties):
    meta = {
        "_id": f"id-{type_}",
        "_type": type_,
        "_class": classes,
        "_version": 1,
        "_createdOn": 1761980400000,
        "_beginOn": "2025-11-01T07:00:00Z",
    }
    if integration:
        meta["_integrationType"] = integration
    return {"id": f"id-{type_}", "entity": meta, "properties": properties}


CASES = [
    pytest.param(
        entity(
            "qualys_host_finding",
            ["Finding"],
            "qualys",
            qid=91234,
            severity="high",
            numericSeverity=8,
            port=3389,
            protocol="TCP",
            hostId=555,
            fqdn="db-9.example.net",
            targets=["555", "192.0.2.99", "arn:aws:ec2:eu-west-1:111122223333:instance/i-0123abcd"],
            ec2InstanceArn="arn:aws:ec2:eu-west-1:111122223333:instance/i-0123abcd",
            lastFoundOn=1762070400000,
        ),
        {
            "vulnerability.id": "91234",
            "vulnerability.enumeration": "QID",
            "vulnerability.scanner.vendor": "Qualys",
            "vulnerability.severity": "high",
            "event.severity": 8,
            "event.category": ["vulnerability"],
            "host.ip": ["192.0.2.99"],
            "host.name": "db-9.example.net",
            "host.id": "555",
            "destination.port": 3389,
            "network.transport": "tcp",
            "cloud.provider": "aws",
            "cloud.region": "eu-west-1",
            "cloud.account.id": "111122223333",
            "cloud.instance.id": "i-0123abcd",
            "jupiter_one.asset.properties.last_found_on": "2025-11-02T08:00:00.000Z",
        },
        ["vulnerability.classification"],
        id="qualys host finding: QID, never a CVE",
    ),
    pytest.param(
        entity(
            "qualys_web_app_finding",
            ["Finding"],
            "qualys",
            qid=150012,
            severity="medium",
            name="SQL Injection",
            targets=["shop-frontend"],
        ),
        {"vulnerability.id": "150012", "vulnerability.enumeration": "QID", "message": "SQL Injection"},
        ["host.ip", "url.original"],
        id="qualys web app finding",
    ),
    pytest.param(
        entity(
            "qualys_vuln",
            ["Vulnerability"],
            None,
            qid=38657,
            cveIds=["CVE-2016-2183"],
            cvssScoreV3=7.5,
            cvssScore=5.0,
            severityLevel=3,
            category="General remote services",
            webLink="https://qualysguard.example.com/kb?id=38657",
        ),
        {
            "vulnerability.id": ["CVE-2016-2183"],
            "vulnerability.enumeration": "CVE",
            "vulnerability.score.base": 7.5,
            "vulnerability.classification": "CVSS",
            "vulnerability.severity": "medium",
            "event.severity": 6,
            "vulnerability.category": ["General remote services"],
            "vulnerability.reference": "https://qualysguard.example.com/kb?id=38657",
        },
        [],
        id="qualys_vuln with CVEs",
    ),
    pytest.param(
        entity("qualys_vuln", ["Vulnerability"], None, qid=105632, cveIds=[], severityLevel=5),
        {
            "vulnerability.id": "105632",
            "vulnerability.enumeration": "QID",
            "vulnerability.severity": "critical",
            "event.severity": 10,
        },
        [],
        id="qualys_vuln without CVE",
    ),
    pytest.param(
        entity(
            "crowdstrike_alert",
            ["Finding"],
            "crowdstrike",
            name="MaliciousDocument",
            severity="Critical",
            numericSeverity=90,
            deviceLocalIp="2001:DB8::10",
            deviceMacAddress="aa:bb:cc:00:11:22",
            cmdline="winword.exe /n C:\\Users\\a\\x.docm",
            techniqueId="T1204.002",
            tacticId="TA0002",
            falconHostLink="https://falcon.example.com/d/1",
        ),
        {
            "rule.name": "MaliciousDocument",
            "event.risk_score": 90.0,
            "event.severity": 10,
            "host.ip": ["2001:db8::10"],
            "related.ip": ["2001:db8::10"],
            "host.mac": ["AA-BB-CC-00-11-22"],
            "process.name": "winword.exe",
            "process.args": ["winword.exe", "/n", "C:\\Users\\a\\x.docm"],
            "threat.framework": "MITRE ATT&CK",
            "threat.technique.subtechnique.id": ["T1204.002"],
            "event.url": "https://falcon.example.com/d/1",
            "event.category": ["intrusion_detection", "malware"],
        },
        # A detection (ATT&CK ids) is not a vulnerability: no data-model vulnerability fields.
        ["vulnerability.id", "vulnerability.severity", "vulnerability.description"],
        id="crowdstrike detection",
    ),
    pytest.param(
        entity(
            "crowdstrike_vulnerability",
            ["Finding", "Vulnerability"],
            "crowdstrike",
            cveId="CVE-2024-3094",
            score="10.0",
            vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
            severity="critical",
            aid="abc123",
            references=["https://nvd.nist.gov/vuln/detail/CVE-2024-3094", "see advisory"],
        ),
        {
            "vulnerability.id": "CVE-2024-3094",
            "vulnerability.enumeration": "CVE",
            "vulnerability.score.base": 10.0,
            "vulnerability.score.version": "3.1",
            "host.id": "abc123",
            "vulnerability.reference": ["https://nvd.nist.gov/vuln/detail/CVE-2024-3094"],
        },
        [],
        id="crowdstrike vulnerability, numeric string score",
    ),
    pytest.param(
        entity(
            "tenable_vulnerability_finding",
            ["Finding"],
            "tenable_io",
            **{
                "plugin.id": 11219,
                "severity": "low",
                "numericSeverity": 3.1,
                "impact": "Synopsis text",
                "port.port": 8443,
                "port.protocol": "TCP",
                "assetHostname": "edge-1.example.com",
                "targets": ["edge-1.example.com", "203.0.113.5", "00:50:56:aa:bb:cc"],
                "vprScore": 2.2,
                "cvssVector": "AV:N/AC:L/Au:N/C:N/I:N/A:P",
                "cvssBaseScore": 5.0,
            },
        ),
        {
            "vulnerability.id": "11219",
            "vulnerability.enumeration": "TENABLE_PLUGIN",
            "vulnerability.score.base": 5.0,
            "vulnerability.score.version": "2.0",
            "host.ip": ["203.0.113.5"],
            "destination.port": 8443,
            "network.transport": "tcp",
            "event.risk_score": 2.2,
            "jupiter_one.asset.properties.numeric_severity": 3.1,
            "jupiter_one.asset.properties.impact": "Synopsis text",
        },
        ["error.message", "vulnerability.classification_missing"],
        id="tenable plugin finding: fractional severity and text impact are no error",
    ),
    pytest.param(
        entity(
            "snyk_finding",
            ["Finding"],
            "snyk",
            id="SNYK-PYTHON-DJANGO-1234567",
            cve=[],
            severity="high",
            cvssScore="8.1",
            pkgName="django",
            pkgVersions=["3.2.1", "3.2.2"],
            webLink="https://snyk.io/vuln/SNYK-PYTHON-DJANGO-1234567",
        ),
        {
            "vulnerability.id": "SNYK-PYTHON-DJANGO-1234567",
            "vulnerability.enumeration": "SNYK",
            "vulnerability.score.base": 8.1,
            "package.name": "django",
            "package.version": "3.2.1",
        },
        [],
        id="snyk finding without CVE",
    ),
    pytest.param(
        entity("insightvm_finding", ["Finding"], "rapid7", id="openssl-cve-2022-3602", severity="Severe"),
        {"vulnerability.id": "CVE-2022-3602", "vulnerability.enumeration": "CVE", "event.severity": 8},
        [],
        id="insightvm finding naming its CVE",
    ),
    pytest.param(
        entity("insightvm_finding", ["Finding"], "rapid7", id="ssh-weak-kex", severity="Moderate"),
        {"vulnerability.id": "ssh-weak-kex", "vulnerability.enumeration": "INSIGHTVM", "event.severity": 6},
        [],
        id="insightvm finding without CVE",
    ),
    pytest.param(
        entity(
            "insight_app_sec_finding",
            ["Finding"],
            "rapid7_insight",
            id="u-1",
            severity="HIGH",
            rootCauseUrl="https://app.example.com/login?next=%2F",
            rootCauseMethod="post",
        ),
        {
            "url.domain": "app.example.com",
            "url.query": "next=/",
            "http.request.method": "POST",
            "vulnerability.enumeration": "INSIGHTAPPSEC",
        },
        [],
        id="insightappsec finding",
    ),
    pytest.param(
        entity(
            "jupiterone_rule_alert",
            ["Alert"],
            "jupiterone",
            name="Unencrypted volumes",
            description="EBS volumes without encryption",
            level="MEDIUM",
            severity="MEDIUM",
        ),
        {
            "rule.name": "Unencrypted volumes",
            "event.category": ["configuration"],
            "event.type": ["info"],
            "log.level": "medium",
            "event.severity": 6,
            "event.kind": "alert",
        },
        ["vulnerability.severity", "vulnerability.scanner.vendor"],
        id="J1 rule alert",
    ),
    pytest.param(
        entity("custom_finding", ["Finding"], None, cveId="GHSA-jfh8-c2jp-5v3q", severity="low"),
        {"vulnerability.id": "GHSA-jfh8-c2jp-5v3q", "vulnerability.enumeration": "GHSA"},
        [],
        id="a GHSA id is not called a CVE",
    ),
]


@pytest.mark.parametrize("raw,expected,absent", CASES)
def test_source_mapping(mapper, raw, expected, absent):
    (result,) = map_line(mapper, orjson.dumps(raw), "line 1")
    problems = field_problems(result.doc, expected, absent, errors_allowed="error.message" in absent)
    assert not problems, "\n".join(problems)
