import pytest

from j1filter.convert.casing import snake_case


@pytest.mark.parametrize("raw,expected", [
    ("_createdOn", "_created_on"),
    ("displayName", "display_name"),
    ("totalNumberOfAffectedEntities", "total_number_of_affected_entities"),
    ("tag.AccountName", "tag.account_name"),
    ("raw_severity", "raw_severity"),
    ("cid", "cid"),
    ("IPAddress", "ipaddress"),
    ("deviceMACAddress", "device_macaddress"),
    ("cveID", "cve_id"),
    ("userID", "user_id"),
    ("XMLHttpRequest", "xmlhttp_request"),
    ("ipv4Address", "ipv4address"),
    ("sha256Hash", "sha256hash"),
    ("a_B", "a_b"),
    ("Tag.Foo", "tag.foo"),
    ("A", "a"),
    ("", ""),
    ("\u0130stanbulCity", "istanbul_city"),  # Java lowercases U+0130 to one character
    ("a\U0001F600B", "a\U0001F600b"),  # astral characters are neither upper nor lower
    ("lastDiscofirstDiscoveredvered", "last_discofirst_discoveredvered"),
])
def test_elastic_snake_case_rule(raw, expected):
    assert snake_case(raw) == expected


def test_idempotent_on_its_output():
    for key in ("deviceMACAddress", "tag.AccountName", "XMLHttpRequest"):
        once = snake_case(key)
        assert snake_case(once) == once
