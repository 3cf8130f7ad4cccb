"""The install commands of logstash/README.md, run as written.

Every shell block marked `<!-- doc-test: install -->` is extracted and run by /bin/sh in a
temporary directory. Only the absolute install locations are moved into it (/opt/j1filter,
/usr/local/bin) and the wheel directory; the commands are otherwise the documented ones, so the
wheel is really built from this checkout and really installed into a fresh virtual environment
(its dependencies come from PyPI or pip's cache). The installed command must then render the
same bundle as the checkout: the wheel carries the mappings, the ECS facts and install.sh.
Slow (a wheel build and an install): runs when J1FILTER_DOC_TESTS=1 or in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from ls_helpers import LOGSTASH, REPO

from j1filter.assets import render

MARKER = re.compile(r"<!-- doc-test: (\w+) -->\n```sh\n(.*?)```", re.S)


def doc_blocks(path: Path, name: str) -> list[str]:
    return [body for tag, body in MARKER.findall(path.read_text()) if tag == name]


def test_install_block_is_marked_and_uses_no_package_index_name():
    blocks = doc_blocks(LOGSTASH / "README.md", "install")
    assert len(blocks) == 1, "logstash/README.md must mark its install commands"
    # j1filter is on no package index: `pip install j1filter` can only fail
    assert not re.search(r"pip install j1filter\b", "\n".join(blocks))
    text = (LOGSTASH / "README.md").read_text() + (REPO / "README.md").read_text()
    assert not re.search(r"pip install j1filter\s*$", text, re.M)


@pytest.mark.skipif(
    not (os.environ.get("J1FILTER_DOC_TESTS") or os.environ.get("CI")),
    reason="slow: set J1FILTER_DOC_TESTS=1 (always on in CI)",
)
def test_install_commands_work_as_written(tmp_path):
    if shutil.which("python3") is None:
        pytest.fail("python3 is what the documentation uses")
    [block] = doc_blocks(LOGSTASH / "README.md", "install")
    script = (
        block.replace("/opt/j1filter", str(tmp_path / "opt" / "j1filter"))
        .replace("/usr/local/bin", str(tmp_path / "bin"))
        .replace("dist", str(tmp_path / "dist"))
    )
    (tmp_path / "bin").mkdir()
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(
        ["sh", "-eu", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, (
        f"{script}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    )
    assert re.search(r"j1filter \d+\.\d+", proc.stdout), proc.stdout
    installed = tmp_path / "bin" / "j1filter"
    out = tmp_path / "bundle"
    run = subprocess.run(
        [str(installed), "assets", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    for rel, data in render().items():
        assert (out / rel).read_bytes() == data, f"the installed j1filter renders {rel} differently"
