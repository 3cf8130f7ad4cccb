"""The bundled sample entities against reviewed golden output, field for field.

The golden file holds one field per line (``name = JSON value``, list items as
``name[0]``), documents in sample order, so that a change reads as a small diff. Each
document's ``event.original`` is the sample line itself: checked as such, and stored as
``<the sample line>``. Regenerate after an intended change with ``J1FILTER_UPDATE_GOLDEN=1
./dev test tests/test_golden_samples.py`` and review the diff of tests/golden/ before committing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from j1filter.protocol import map_line

from .conftest import REPO, SAMPLES

GOLDEN = REPO / "tests" / "golden" / "samples.expected.txt"
ORIGINAL = "<the sample line>"


def field_lines(value: Any, name: str = "") -> Iterator[str]:
    """``name = value`` for every leaf, in key order; empty objects and lists as ``{}``/``[]``."""
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from field_lines(value[key], f"{name}.{key}" if name else key)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from field_lines(item, f"{name}[{index}]")
    else:
        yield f"{name} = {json.dumps(value, ensure_ascii=False)}"


def render(docs: list[dict[str, Any]]) -> str:
    blocks = [
        f"# sample line {n}: {doc['event'].get('id')}\n" + "\n".join(field_lines(doc)) + "\n"
        for n, doc in enumerate(docs, 1)
    ]
    return "\n".join(blocks)


def parse(text: str) -> list[dict[str, str]]:
    """The golden text as one {field: value text} per document."""
    docs: list[dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith("# sample line"):
            docs.append({})
        elif line:
            name, _, value = line.partition(" = ")
            docs[-1][name] = value
    return docs


def differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    lines = [f"- missing  {k} = {v}" for k, v in expected.items() if k not in actual]
    lines += [
        f"~ differs  {k}\n    expected {v}\n    actual   {actual[k]}"
        for k, v in expected.items()
        if k in actual and actual[k] != v
    ]
    lines += [f"+ extra    {k} = {v}" for k, v in actual.items() if k not in expected]
    return lines


def test_samples_match_golden_output(mapper):
    lines = SAMPLES.read_bytes().splitlines()
    docs = [map_line(mapper, line, f"line {n}")[0].doc for n, line in enumerate(lines, 1)]
    for line, doc in zip(lines, docs):
        assert doc["event"]["original"] == line.decode(), "event.original is not the input line"
        doc["event"]["original"] = ORIGINAL
    actual_text = render(docs)
    if os.environ.get("J1FILTER_UPDATE_GOLDEN"):
        GOLDEN.write_text(actual_text)
    expected, actual = parse(GOLDEN.read_text()), parse(actual_text)
    assert len(expected) == len(actual), "sample count changed: regenerate the golden file"
    report = []
    for n, (want, got) in enumerate(zip(expected, actual), 1):
        diff = differences(want, got)
        if diff:
            report.append(f"sample line {n}:\n" + "\n".join(diff))
    assert not report, "\n\n".join(report)


def test_the_golden_form_reads_back_and_shows_differences():
    doc = {"a": {"b": [1, {"c": "x"}], "e": []}, "f": None}
    lines = list(field_lines(doc))
    assert lines == ["a.b[0] = 1", 'a.b[1].c = "x"', "a.e = []", "f = null"]
    (parsed,) = parse("# sample line 1: x\n" + "\n".join(lines) + "\n")
    changed = dict(parsed, **{"a.b[0]": "2"})
    del changed["f"]
    assert differences(parsed, changed) == [
        "- missing  f = null",
        "~ differs  a.b[0]\n    expected 1\n    actual   2",
    ]
