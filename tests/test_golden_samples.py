"""The bundled sample entities against reviewed golden output, field for field.

Regenerate after an intended change with ``J1FILTER_UPDATE_GOLDEN=1 ./dev test
tests/test_golden_samples.py`` and review the diff of tests/golden/ before committing.
"""

from __future__ import annotations

import json
import os

import orjson

from j1filter.protocol import map_line

from .conftest import REPO, SAMPLES, field_diff

GOLDEN = REPO / "tests" / "golden" / "samples.expected.ndjson"


def test_samples_match_golden_output(mapper):
    lines = SAMPLES.read_bytes().splitlines()
    actual = [map_line(mapper, line, f"line {n}")[0].doc for n, line in enumerate(lines, 1)]
    if os.environ.get("J1FILTER_UPDATE_GOLDEN"):
        GOLDEN.write_bytes(b"".join(orjson.dumps(d, option=orjson.OPT_SORT_KEYS) + b"\n" for d in actual))
    expected = [json.loads(line) for line in GOLDEN.read_text().splitlines()]
    assert len(expected) == len(actual), "sample count changed: regenerate the golden file"
    report = []
    for n, (want, got) in enumerate(zip(expected, actual), 1):
        diff = field_diff(want, got, allow_extra=False)
        if diff:
            report.append(f"sample line {n} ({want['event']['id']}):\n{diff}")
    assert not report, "\n\n".join(report)
