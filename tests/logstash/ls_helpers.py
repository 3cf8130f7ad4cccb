"""Shared helpers (and fixtures, re-exported by conftest.py) for the tests of the
Logstash / Filebeat / Elasticsearch bundle.

The Logstash configs are parsed with logstash-pipeline-parser (a PEG port of
Logstash's own treetop grammar, a test dependency); its nested-list output is
turned into small Python objects here so the tests can look options up by name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
LOGSTASH = REPO / "logstash"
ES_ASSETS = LOGSTASH / "elasticsearch"
DATA = Path(__file__).resolve().parent / "data"

DATA_STREAM = "logs-jupiter_one.risks_and_alerts-default"
# Logstash's own placeholder pattern (logstash-core substitution_variables.rb)
PLACEHOLDER = re.compile(r"\$\{([a-zA-Z_.][a-zA-Z0-9_.]*)(:[^}]*)?\}")


# --------------------------------------------------------------------------
# Logstash config parsing
# --------------------------------------------------------------------------


@dataclass
class Codec:
    """A plugin used as an option value: `codec => json { target => "[j1]" }`."""

    name: str
    options: dict[str, Any]


@dataclass
class PluginRef:
    section: str  # input | filter | output
    name: str
    options: dict[str, Any]
    conditions: list[str] = field(default_factory=list)  # enclosing if/else conditions

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


def _is_attr(node: Any) -> bool:
    return (
        isinstance(node, list)
        and len(node) == 2
        and isinstance(node[0], (str, int, float))
        and not isinstance(node[0], bool)
        and isinstance(node[1], list)
        and len(node[1]) == 1
    )


def _norm(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    # `name { attrs }` used as a value (codec with options)
    if (
        len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], list)
        and all(_is_attr(a) for a in value[1])
        and value[1]
    ):
        return Codec(value[0], {str(k): _norm(v[0]) for k, v in value[1]})
    # hash: a list of `key => value` entries
    if value and all(_is_attr(a) for a in value):
        return {k: _norm(v[0]) for k, v in value}
    return [_norm(v) for v in value]


def _render_condition(tokens: Any) -> str:
    if isinstance(tokens, list):
        return "(" + " ".join(_render_condition(t) for t in tokens) + ")"
    return str(tokens)


def _walk(section: str, items: list, conditions: list[str], out: list[PluginRef]) -> None:
    negated: list[str] = []  # conditions of the preceding if / else-if branches
    for item in items:
        head = item[0]
        if head == "if" or head == "else if":
            parts = item[1]
            cond = _render_condition(parts[:-1])
            body = parts[-1][0]
            if head == "if":
                negated = []
            _walk(section, body, conditions + [*(f"NOT {c}" for c in negated), cond], out)
            negated.append(cond)
        elif head == "else":
            _walk(section, item[1], conditions + [f"NOT {c}" for c in negated], out)
            negated = []
        else:
            name, attrs = item
            options = {}
            for key, value in attrs:
                assert key not in options, f"{section} {name}: option {key!r} given twice"
                options[key] = _norm(value[0]) if len(value) == 1 else _norm(value)
            out.append(PluginRef(section, name, options, conditions))


def parse_conf_tree(text: str) -> list:
    Pipeline = pytest.importorskip(
        "logstash_pipeline_parser",
        reason="logstash-pipeline-parser (test extra, Python 3.11-3.13) is not installed",
    ).Pipeline

    pipeline = Pipeline(text)
    # Keep every value a plain string: no IPv4Address / Path conversions.
    for name in list(pipeline.get_types()):
        pipeline.remove_type(name)
    return pipeline.parse()


def plugins_of(text: str) -> list[PluginRef]:
    out: list[PluginRef] = []
    for section, items in parse_conf_tree(text):
        _walk(section, items, [], out)
    return out


def find(plugins: list[PluginRef], section: str, name: str) -> list[PluginRef]:
    return [p for p in plugins if p.section == section and p.name == name]


def conf_files() -> list[Path]:
    return sorted(LOGSTASH.glob("*.conf"))


@pytest.fixture(scope="session")
def confs() -> dict[str, list[PluginRef]]:
    return {p.name: plugins_of(p.read_text()) for p in conf_files()}


# --------------------------------------------------------------------------
# Elasticsearch assets
# --------------------------------------------------------------------------


def load_asset(name: str) -> dict:
    return json.loads((ES_ASSETS / name).read_text())


# --------------------------------------------------------------------------
# Running j1filter
# --------------------------------------------------------------------------


def j1filter_runnable() -> bool:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "j1filter"],
            input=b"{}\n",
            capture_output=True,
            cwd=REPO,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and proc.stdout.strip().startswith(b"{")


def run_j1filter(lines: bytes, *args: str, timeout: float = 120) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "j1filter", *args],
        input=lines,
        capture_output=True,
        cwd=REPO,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"j1filter failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}"
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def require_j1filter() -> None:
    if not j1filter_runnable():
        pytest.skip("`python -m j1filter` is not runnable yet in this checkout")


@pytest.fixture()
def j1filter_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `j1filter` command on PATH that runs this checkout with this interpreter,
    so commands copied verbatim from the configs can be executed by /bin/sh."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "j1filter"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m j1filter "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("PYTHONPATH", f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return bindir


def have_sh() -> bool:
    return shutil.which("sh") is not None
