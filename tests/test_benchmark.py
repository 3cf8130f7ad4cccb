"""The benchmark runs, and compares this checkout with a git commit on the same corpus."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from .conftest import REPO

BENCH = REPO / "bench" / "benchmark.py"


def _in_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    probe = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _in_git_checkout(), reason="needs git and a git checkout")
def test_bench_compares_with_a_commit_on_the_same_corpus():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--entities", "300", "--no-memory", "--against", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"^ratio j1filter/orjson   : \d\.\d\d$", out, re.M), out
    assert re.search(
        r"^j1filter at [0-9a-f]{7,} *: +[\d,]+ docs/s  \([\d.]+ s\), ratio \d\.\d\d$", out, re.M
    ), out
    assert re.search(r"^CPU time this / [0-9a-f]{7,} *: \d+\.\d\d ", out, re.M), out


def test_bench_refuses_an_unknown_commit():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--entities", "50", "--no-memory", "--against", "no-such-ref-anywhere"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "--against no-such-ref-anywhere: not a commit of this repository" in proc.stderr + proc.stdout


def test_hand_written_reference_mappers_write_what_j1filter_writes(tmp_path, mapper):
    """bench/handwritten.py's mappers are only a fair yardstick while their output is
    j1filter's, byte for byte, on the benchmark corpus."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from benchmark import make_corpus
        from handwritten import MAPPERS
    finally:
        sys.path.remove(str(REPO / "bench"))
    from j1filter.protocol import encode_line

    from .conftest import FIXED_TIME

    corpus = tmp_path / "corpus.ndjson"
    make_corpus(corpus, 6000, seed=7)
    compared = dict.fromkeys(MAPPERS, 0)
    for number, line in enumerate(corpus.read_bytes().splitlines(), 1):
        kind = next((k for k in MAPPERS if f'"{k}"'.encode() in line), None)
        if kind is None:
            continue
        ((expected, _),) = encode_line(mapper, line, f"line {number}")
        assert MAPPERS[kind](line, FIXED_TIME) == expected, f"{kind}, line {number}"
        compared[kind] += 1
    assert all(count > 300 for count in compared.values()), compared
