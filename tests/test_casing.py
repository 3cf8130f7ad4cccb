import pytest

from j1filter.convert.casing import snake_case
from j1filter.runtime.paths import snake_clean


@pytest.mark.parametrize(
    "raw,expected",
    [
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
        ("a\U0001f600B", "a\U0001f600b"),  # astral characters are neither upper nor lower
        ("lastDiscofirstDiscoveredvered", "last_discofirst_discoveredvered"),
    ],
)
def test_elastic_snake_case_rule(raw, expected):
    assert snake_case(raw) == expected


def test_idempotent_on_its_output():
    for key in ("deviceMACAddress", "tag.AccountName", "XMLHttpRequest"):
        once = snake_case(key)
        assert snake_case(once) == once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"fooBar": 1, "foo_bar": 2}, {"foo_bar": 2}),  # the key already in snake_case wins
        ({"foo_bar": 2, "fooBar": 1}, {"foo_bar": 2}),
        ({"foo_bar": "", "fooBar": 1}, {"foo_bar": 1}),  # ... when it has a value
        ({"FooBar": 3, "fooBar": 1}, {"foo_bar": 3}),  # else the first
        ({"aB": {"cD": None, "eF": [None, "", {}, {"gH": 1}]}, "i": []}, {"a_b": {"e_f": [{"g_h": 1}]}}),
    ],
)
def test_snake_clean_renames_drops_empties_and_settles_collisions(raw, expected):
    assert snake_clean(raw) == expected


def test_snake_clean_gives_every_object_of_a_key_set_its_own_values():
    """Names are remembered per key set; values never are."""
    first = snake_clean({f"{chr(97 + n)}Key": n for n in range(10)})
    second = snake_clean({f"{chr(97 + n)}Key": n + 100 for n in range(10)})
    assert first == {f"{chr(97 + n)}_key": n for n in range(10)}
    assert second == {f"{chr(97 + n)}_key": n + 100 for n in range(10)}
