"""Shared fixtures. Reference material in ../shared is optional: tests that need it skip."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from j1filter.runtime.compiler import compile_mappings
from j1filter.runtime.mapper import Mapper, Options

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
ELASTIC_FIXTURES = SHARED / "fixtures" / "elastic"
SAMPLES = REPO / "j1filter" / "samples" / "entities.ndjson"
FIXED_TIME = "2026-01-01T00:00:00.000Z"


def needs_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference material not present: {path}")
    return path


@pytest.fixture(scope="session")
def mapper() -> Mapper:
    return Mapper(compile_mappings(), Options(clock=lambda: FIXED_TIME))


@pytest.fixture(scope="session")
def preserving_mapper() -> Mapper:
    return Mapper(
        compile_mappings(), Options(preserve_duplicate_custom_fields=True, clock=lambda: FIXED_TIME)
    )


def flatten(doc: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists are values."""
    flat = {}
    for key, value in doc.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def field_diff(expected: dict, actual: dict, *, allow_extra: bool) -> str:
    """A readable field-by-field difference; empty when they agree."""
    exp, act = flatten(expected), flatten(actual)
    lines = []
    for name in sorted(exp):
        if name not in act:
            lines.append(f"- missing  {name} = {json.dumps(exp[name])}")
        elif act[name] != exp[name]:
            lines.append(
                f"~ differs  {name}\n    expected {json.dumps(exp[name])}\n    actual   {json.dumps(act[name])}"
            )
    if not allow_extra:
        lines.extend(f"+ extra    {name} = {json.dumps(act[name])}" for name in sorted(set(act) - set(exp)))
    return "\n".join(lines)


def field_problems(doc: dict, expected: dict, absent=(), *, errors_allowed: bool = False) -> list[str]:
    """Each expected field whose value differs, compared as the JSON written (so 7 is not
    7.0), each field that should be absent, and each error message, one line apiece."""
    flat = flatten(doc)
    problems = [
        f"{k}: expected {json.dumps(v)}, got {json.dumps(flat[k]) if k in flat else '<missing>'}"
        for k, v in expected.items()
        if k not in flat or json.dumps(flat[k]) != json.dumps(v)
    ]
    problems += [f"{k} should be absent, got {flat[k]!r}" for k in absent if k in flat]
    if not errors_allowed:
        problems += [f"unexpected error: {m}" for m in flat.get("error.message", [])]
    return problems


def text_diff(expected: str, actual: str) -> str:
    return "\n".join(
        difflib.unified_diff(expected.splitlines(), actual.splitlines(), "expected", "actual", lineterm="")
    )
