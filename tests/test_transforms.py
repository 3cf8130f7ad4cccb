"""Parametrised tables for every transform in the registry, plus the registry's own rules."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from j1filter.convert.transforms import TRANSFORMS
from j1filter.errors import ParameterError, TransformError

from .conftest import REPO

ERR = TransformError


def run(name, value, **params):
    return TRANSFORMS[name].factory(**params)(value)


CASES = {
    "date": [
        ("2025-07-08T07:00:00Z", "2025-07-08T07:00:00.000Z"),
        ("2025-07-08T09:00:00.123456+02:00", "2025-07-08T07:00:00.123Z"),
        ("2025-07-08T07:00:00.999999Z", "2025-07-08T07:00:00.999Z"),  # truncated, not rounded
        ("2025-07-08", "2025-07-08T00:00:00.000Z"),
        ("2025", "2025-01-01T00:00:00.000Z"),  # Elastic's ISO year oddity, kept
        ("2025-07-08T07", "2025-07-08T07:00:00.000Z"),
        ("2025-07-08T07:00:00,5Z", "2025-07-08T07:00:00.500Z"),
        ("2025-07-08T03:00:00-0400", "2025-07-08T07:00:00.000Z"),
        ("2025-07-08T09:00:00Europe/Paris", "2025-07-08T07:00:00.000Z"),
        (1751958000000, "2025-07-08T07:00:00.000Z"),  # epoch ms number
        ("1751958000123", "2025-07-08T07:00:00.123Z"),  # epoch ms string
        (1751958000123.9, "2025-07-08T07:00:00.123Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        (1751932799999, "2025-07-07T23:59:59.999Z"),  # every part of the time at its highest
        (-1, "1969-12-31T23:59:59.999Z"),
        (36_061_001, "1970-01-01T10:01:01.001Z"),
        ("2025-07-08 07:00:00", "2025-07-08T07:00:00.000Z"),  # space separator: clear meaning
        ("2025-07-08t07:00:00z", "2025-07-08T07:00:00.000Z"),
        ("20250708T070000Z", "2025-07-08T07:00:00.000Z"),
        ("Tue, 08 Jul 2025 07:00:00 GMT", "2025-07-08T07:00:00.000Z"),
        ("2025-07-08T24:00:00Z", "2025-07-09T00:00:00.000Z"),  # ISO 8601 end of day
        ("2024-02-29T12:00:00.000Z", "2024-02-29T12:00:00.000Z"),  # canonical fast path: leap day
        # 24 characters, yet not the output form: converted, never passed through
        ("2024-W17-1T23:48:55.123Z", "2024-04-22T23:48:55.123Z"),  # an ISO week date
        ("2024-04-29T24:00:00.000Z", "2024-04-30T00:00:00.000Z"),
        ("2024-04-29T23:48:55.1234", "2024-04-29T23:48:55.123Z"),
        ("2024-04-29T23:48:55,123Z", "2024-04-29T23:48:55.123Z"),
        ("2024-04-29T23:60:55.123Z", ERR),
        ("2023-02-29T12:00:00.000Z", ERR),
        ("1900-02-29T00:00:00.000Z", ERR),
        ("0000-01-01T00:00:00.000Z", ERR),
        ("2025-04-31T00:00:00.000Z", ERR),
        ("2025-07-08T07:00:00.000+00:00", "2025-07-08T07:00:00.000Z"),
        ("2025-02-30", ERR),
        ("2025-07-08T25:00:00Z", ERR),
        ("yesterday", ERR),
        ("", ERR),
        (True, ERR),
        (1e20, ERR),
        ({"a": 1}, ERR),
        ("2025-07-08T07:00:00+19:00", ERR),
    ],
    "cve_ids": [
        # Values made of CVE ids only, under any key and at any depth; prose is no CVE value.
        (
            {"identifiers": ["cve-2021-44228", "GHSA-jfh8-c2jp-5v3q"], "issue_id": " CVE-2022-3602 "},
            ["CVE-2021-44228", "CVE-2022-3602"],
        ),
        (
            {"a": {"b": [{"c": "CVE-2020-8203, CVE-2021-23337"}]}, "d": "CVE-2020-8203"},
            ["CVE-2020-8203", "CVE-2021-23337"],
        ),
        ({"description": "Unlike CVE-2014-0160, this one is local."}, None),
        ({"id": "CVE-2021-4", "n": 2021}, None),
        ("CVE-2023-4863", "CVE-2023-4863"),  # one id as text
        (7, None),
        ({"x": "\tcVe-2021-44228\n", "n": 1}, "CVE-2021-44228"),  # any case, blanks JSON escapes
        # Values that are not JSON as they are (the quick check cannot write them) are walked.
        ({"x": "CVE-2021-44228", "text": "\ud800"}, "CVE-2021-44228"),
        ({"x": ["CVE-2021-44228"], "n": 2**70}, "CVE-2021-44228"),
    ],
    "capitalize": [("sonarqube", "Sonarqube"), ("x", "X"), ("", None), (7, "7")],
    "long": [
        (7, 7),
        ("7", 7),
        ("+7", 7),
        ("-12", -12),
        (7.0, 7),
        ("7.0", 7),
        ("0x1F", 31),
        ("-0x10", -16),
        (7.5, ERR),
        ("7.5", ERR),
        (" 7", ERR),
        (True, ERR),
        ("seven", ERR),
        (2**63, ERR),
        (float("nan"), ERR),
    ],
    "double": [
        (7.8, 7.8),
        (7, 7.0),
        ("7.5", 7.5),
        (" 1e2 ", 100.0),
        ("1.5d", 1.5),
        (".5", 0.5),
        ("NaN", ERR),
        ("Infinity", ERR),
        ("inf", ERR),
        ("1_0", ERR),
        (False, ERR),
        ("x", ERR),
    ],
    "boolean": [
        (True, True),
        (False, False),
        ("true", True),
        ("FALSE", False),
        ("True", True),
        (1, True),
        (0, False),
        ("yes", ERR),
        ("1", ERR),
        (2, ERR),
        (None, ERR),
    ],
    "ip": [
        ("198.51.100.1", "198.51.100.1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("10.0.0.300", ERR),
        ("010.0.0.1", ERR),
        ("host.example.com", ERR),
        (3232235777, ERR),
        # The longest text that is an address; one more character is none, without a parse.
        ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("0ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", ERR),
        (" 2001:db8::1%" + "a" * 80, "2001:db8::1"),  # a long zone id is dropped first
    ],
    "only_ips": [
        ("192.0.2.7", "192.0.2.7"),
        ("web-01.example.com", None),
        ("2001:db8::7", "2001:db8::7"),
        (12, None),
        ("arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60718", None),
    ],
    "string": [(1, "1"), (1.0, "1.0"), (1e10, "1.0E10"), (True, "true"), ("x", "x"), (1.5e-5, "1.5E-5")],
    "lowercase": [("INFO", "info"), (True, "true")],
    "uppercase": [("get", "GET"), ("Mixed", "MIXED")],
    "trim": [("  a  ", "a"), ("   ", None)],
    "mac": [
        ("42-53-45-41-56-43", "42-53-45-41-56-43"),
        ("0a:1b:2c:3d:4e:5f", "0A-1B-2C-3D-4E-5F"),
        ("0a1b.2c3d.4e5f", "0A-1B-2C-3D-4E-5F"),
        ("0a1b2c3d4e5f6a7b", "0A-1B-2C-3D-4E-5F-6A-7B"),
        ("not a mac", "not a mac"),
        (12, 12),
    ],
    "basename": [
        ("C:\\Windows\\System32\\cmd.exe", "cmd.exe"),
        ("/usr/bin/python3", "python3"),
        ("dir/", None),
    ],
    "first": [(["a", "b"], "a"), ("a", "a"), ([], None)],
    "to_list": [("a", ["a"]), (["a"], ["a"])],
    "url_parts": [
        (
            "https://apps.us.jupiterone.io/alerts?alertId=ruleAlert:c97",
            {
                "original": "https://apps.us.jupiterone.io/alerts?alertId=ruleAlert:c97",
                "scheme": "https",
                "domain": "apps.us.jupiterone.io",
                "path": "/alerts",
                "query": "alertId=ruleAlert:c97",
            },
        ),
        (
            "http://u:p@example.com:8080/a%20b/f.tar.gz?x=%41#top",
            {
                "original": "http://u:p@example.com:8080/a%20b/f.tar.gz?x=%41#top",
                "scheme": "http",
                "domain": "example.com",
                "port": 8080,
                "path": "/a b/f.tar.gz",
                "extension": "gz",
                "query": "x=A",
                "fragment": "top",
                "user_info": "u:p",
                "username": "u",
                "password": "p",
            },
        ),
        ("https://my_host/x", {"original": "https://my_host/x", "scheme": "https", "path": "/x"}),
        (
            "https://example.com/a b",
            {
                "original": "https://example.com/a b",
                "scheme": "https",
                "domain": "example.com",
                "path": "/a b",
            },
        ),  # URL fallback, raw
        ("mailto:a b", ERR),
        (42, ERR),
    ],
    "duration_ns": [
        (("2025-11-04T06:48:22.119Z", "2025-11-06T06:48:22.119Z"), 172800000000000),
        ((1751958000000, 1751958000001), 1_000_000),
        (("2025-11-06T00:00:00Z", "2025-11-04T00:00:00Z"), None),  # end before start
        (("2025-11-06", "garbage"), ERR),
    ],
    "cvss_version": [
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "3.1"),
        ("CVSS:4.0/AV:N/AC:L", "4.0"),
        ("AV:N/AC:L/Au:N/C:P/I:P/A:P", "2.0"),
        ("(AV:N/AC:M/Au:N/C:N/I:P/A:N)", "2.0"),
        ("AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", None),
        ("high", None),
        (3, None),
    ],
    "cvss_classification": [("CVSS:3.0/AV:N", "CVSS"), ("AV:N/AC:L/Au:N/C:P/I:P/A:P", "CVSS"), ("x", None)],
    "id_scheme": [
        ("CVE-2025-49693", "CVE"),
        ("cve-2021-44228", "CVE"),
        (["CVE-2016-2183", "CVE-2016-6329"], "CVE"),
        ("GHSA-jfh8-c2jp-5v3q", "GHSA"),
        ("SNYK-JS-LODASH-567746", "SNYK"),
        ("CWE-79", "CWE"),
        ("38657", None),
        ("CVE-25-1", None),
        ([], None),
    ],
    "command_line_args": [
        (
            '"C:\\Program Files\\A B\\x.exe" -y "two words"',
            ["C:\\Program Files\\A B\\x.exe", "-y", "two words"],
        ),
        ('C:\\x.exe a\\\\\\"b c', ["C:\\x.exe", 'a\\"b', "c"]),
        ("/bin/sh -c 'echo hi'", ["/bin/sh", "-c", "echo hi"]),
        ("/bin/sh -c 'unbalanced", None),
        ("   ", None),
    ],
    "executable_name": [('"C:\\a b\\x.exe" -y', "x.exe"), ("/usr/bin/curl -s x", "curl"), ("", None)],
}

PARAM_CASES = {
    "lookup": [
        ({"table": {"high": 8, "low": 4}}, "HIGH", 8),
        ({"table": {"high": 8}, "ignore_case": False}, "HIGH", None),
        ({"table": {1: "informational"}}, 1, "informational"),
        ({"table": {"a": 1}, "default": 0}, "zzz", 0),
        ({"table": {"a": 1}}, ["a"], None),
    ],
    "extract": [
        ({"pattern": r"instance/(i-[0-9a-f]+)"}, "arn:aws:ec2:us-east-1:123:instance/i-0abc", "i-0abc"),
        ({"pattern": r"(\d+)-(\d+)", "group": 2}, "10-20", "20"),
        ({"pattern": r"x(\d)"}, "none here", None),
        ({"pattern": r"(\d+)"}, {"port": 443}, None),  # an object: no text of its own to search
        ({"pattern": r"(\d+)"}, 8443, "8443"),
    ],
    "split": [
        ({}, "a, b,,c", ["a", "b", "c"]),
        ({"separator": ";"}, "a;b", ["a", "b"]),
        ({}, ["already", "a list"], ["already", "a list"]),
    ],
    "only_urls": [({}, "https://example.com/x", "https://example.com/x"), ({}, "## References\n- x", None)],
    "by_key": [
        (
            {"pattern": r"(?:\A|_)ip\Z"},
            {"private_ip": "10.0.0.1", "zip": "75001", "public_ip": ["203.0.113.9"], "ip": None},
            ["10.0.0.1", "203.0.113.9"],
        ),
        ({"pattern": "ip"}, {"name": "x"}, None),
        ({"pattern": "ip"}, "not an object", None),
    ],
}


@pytest.mark.parametrize(
    "name,value,expected",
    [(name, value, expected) for name, rows in CASES.items() for value, expected in rows],
    ids=lambda v: repr(v)[:40],
)
def test_transform_table(name, value, expected):
    if expected is ERR:
        with pytest.raises(TransformError):
            run(name, value)
    else:
        assert run(name, value) == expected


@pytest.mark.parametrize(
    "name,params,value,expected",
    [(name, p, v, e) for name, rows in PARAM_CASES.items() for p, v, e in rows],
    ids=lambda v: repr(v)[:40],
)
def test_parameterised_transform_table(name, params, value, expected):
    assert run(name, value, **params) == expected


@pytest.mark.parametrize(
    "name,params,message",
    [
        ("lookup", {"table": {}}, "non-empty"),
        ("extract", {"pattern": "("}, "invalid pattern"),
        ("extract", {"pattern": "(a)", "group": 2}, "group 2"),
        ("split", {"separator": ""}, "non-empty"),
    ],
)
def test_bad_parameters_fail_at_compile_time(name, params, message):
    with pytest.raises(ParameterError, match=message):
        TRANSFORMS[name].factory(**params)


def test_every_transform_is_tested_and_documented():
    tested = set(CASES) | set(PARAM_CASES)
    assert set(TRANSFORMS) == tested, f"untested: {set(TRANSFORMS) - tested}"
    table = (REPO / "docs" / "mappings.md").read_text()
    for name, entry in TRANSFORMS.items():
        assert entry.doc, f"transform {name} has no docstring"
        assert re.search(rf"^\| `{name}` \|", table, re.M), f"transform {name} missing from docs/mappings.md"


# --- transforms that refuse every object ---------------------------------------------------------

_OBJECT_KEYS = st.text(max_size=8)
_OBJECT_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_OBJECT_KEYS, children, max_size=3),
    max_leaves=8,
)


@pytest.mark.parametrize("name", sorted(n for n, t in TRANSFORMS.items() if t.refuses_objects))
@settings(max_examples=150, deadline=None)
@given(value=st.dictionaries(_OBJECT_KEYS, _OBJECT_VALUES, max_size=4))
def test_a_transform_said_to_refuse_objects_raises_for_every_object(name, value):
    """What lets an ``on_error: keep`` coercion leave an object alone without calling it
    (program.Coercion.refused): the call would raise, and keep would keep it."""
    with pytest.raises(TransformError):
        run(name, value)


def test_the_scalar_conversions_are_the_transforms_that_refuse_objects():
    refusing = {name for name, t in TRANSFORMS.items() if t.refuses_objects}
    assert refusing == {"boolean", "date", "double", "ip", "long"}
