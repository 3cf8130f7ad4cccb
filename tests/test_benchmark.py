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
