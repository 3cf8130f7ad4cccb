"""One source of types: ECS facts for targets, results declared on each transform, one coercer per type."""

from __future__ import annotations

import pytest

from j1filter.convert.coerce import coercer
from j1filter.convert.registry import builtin_transforms
from j1filter.convert.types import fits, proven
from j1filter.errors import TransformError
from j1filter.language.check import target_type


def test_a_result_type_may_depend_on_the_parameters():
    lookup = builtin_transforms().get("lookup")
    assert lookup is not None
    assert lookup.result_type({"table": {"a": 1, "b": 2}}) == "long"
    assert lookup.result_type({"table": {"a": 1, "b": 2.5}}) == "double"
    assert lookup.result_type({"table": {"a": "x"}, "default": "y"}) == "keyword"


@pytest.mark.parametrize(
    "path, expected",
    [
        ("event.severity", "long"),
        ("host.ip", "ip"),
        ("url", "object"),
        ("labels.team", "keyword"),
        ("myorg.team", "any"),
        ("nothing.here", None),
        ("vulnerability.scroe.base", None),
    ],
)
def test_target_types(path, expected):
    assert target_type(path, frozenset({"myorg"})) == expected


@pytest.mark.parametrize(
    "result, target, fit, sure",
    [
        ("keyword", "keyword", True, True),
        ("long", "keyword", True, True),
        ("keyword", "long", False, False),
        ("long", "double", True, True),
        ("long", "float", True, False),  # a float field has a narrower range than a double
        ("double", "float", True, False),
        ("double", "long", False, False),
        ("date", "date", True, True),
        ("keyword", "date", False, False),
        ("ip", "ip", True, True),
        ("object", "keyword", False, False),
        ("object", "object", True, True),
        ("any", "long", True, False),
        ("long", "integer", True, False),
    ],
)
def test_fits_and_proven(result, target, fit, sure):
    assert fits(result, target) is fit
    assert proven(result, target) is sure


@pytest.mark.parametrize(
    "es_type, value, expected",
    [
        ("long", "7", 7),
        ("long", 7.0, 7),
        ("long", [1, "2"], [1, 2]),
        ("float", 3, 3),
        ("float", "2.5", 2.5),
        ("float", -3.4e38, -3.4e38),
        ("half_float", 65504, 65504),
        ("double", 1.7e308, 1.7e308),
        ("ip", "2001:DB8::1", "2001:db8::1"),
        ("boolean", "TRUE", True),
        ("keyword", 12, "12"),  # a keyword id is text, whatever JSON type its source wrote
        ("keyword", [1, True, 2.5], ["1", "true", "2.5"]),
        ("date", 0, "1970-01-01T00:00:00.000Z"),
        ("object", {"a": 1}, {"a": 1}),
    ],
)
def test_coercers_convert(es_type, value, expected):
    convert = coercer(es_type)
    assert convert is not None and convert(value) == expected


@pytest.mark.parametrize(
    "es_type, value",
    [
        ("long", "high"),
        ("long", 9.8),
        ("byte", 300),
        ("ip", "not-an-ip"),
        ("keyword", {"a": 1}),
        ("object", "text"),
        ("boolean", "maybe"),
        ("date", "soon"),
        # the engine rounds these to infinity and refuses the whole document
        ("float", 1.7e308),
        ("float", "-1e39"),
        ("float", 10**39),
        ("half_float", 65505),
    ],
)
def test_coercers_refuse(es_type, value):
    convert = coercer(es_type)
    assert convert is not None
    with pytest.raises(TransformError):
        convert(value)
