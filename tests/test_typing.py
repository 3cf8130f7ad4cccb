"""The package is `mypy --strict` clean."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from .conftest import REPO

#: Checked with --strict. The collector (j1filter/collect) is converted in parallel; the
#: lead widens this to the whole package ("j1filter") once it is merged.
STRICT = ["j1filter"]


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy not installed (test extra)")
def test_mypy_strict():
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *STRICT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
