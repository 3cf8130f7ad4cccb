"""The service install: the documented commands create what the collector needs (run as
written, in a scratch directory), and the systemd unit passes `systemd-analyze verify` where the
tool exists and runs only real `collect` options."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from collect_helpers import ACCOUNT_ID, TOKEN
from faults import Simulator

from j1filter.cli.collect import build_collect_parser

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "collector-service.md"
UNIT = REPO / "logstash" / "systemd" / "j1filter-collector.service"
MARKER = re.compile(r"<!-- not run: [^>]*\(service-dirs\) -->\n```sh\n(.*?)```", re.S)


def unit_value(key: str) -> str:
    text = UNIT.read_text().replace("\\\n", " ")
    (value,) = re.findall(rf"^{key}=(.*)$", text, re.M)
    return value.strip()


def moved(text: str, root: Path) -> str:
    for path in ("/var/lib/j1filter", "/var/spool/j1filter", "/etc/j1filter"):
        text = text.replace(path, str(root / path.strip("/").replace("/", "-")))
    return text


def test_the_documented_commands_create_what_the_collector_needs(tmp_path: Path) -> None:
    (block,) = MARKER.findall(DOC.read_text())
    script = moved(block, tmp_path).replace(
        "COLLECTOR_USER=j1filter SHIPPER_GROUP=filebeat", "COLLECTOR_USER=root SHIPPER_GROUP=root"
    )
    if os.geteuid() != 0:
        pytest.skip("install -o needs root")
    done = subprocess.run(["sh", "-eu", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    state, spool, etc = (
        tmp_path / name for name in ("var-lib-j1filter", "var-spool-j1filter", "etc-j1filter")
    )
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE(spool.stat().st_mode) == 0o2770
    assert stat.S_IMODE((etc / "api-token").stat().st_mode) == 0o600
    assert "J1_ACCOUNT_ID=" in (etc / "collector.env").read_text()
    (etc / "api-token").write_text(TOKEN)
    with Simulator(token=TOKEN, account_id=ACCOUNT_ID) as sim:
        check = subprocess.run(
            [
                sys.executable,
                "-m",
                "j1filter",
                "collect",
                "--check",
                "--map",
                "--endpoint",
                sim.url,
                "--checkpoint",
                str(state / "checkpoint.json"),
                "--spool",
                str(spool),
                "--token-file",
                str(etc / "api-token"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env={**os.environ, "J1_ACCOUNT_ID": ACCOUNT_ID},
        )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok    token, account, endpoint, checkpoint and spool: ready" in check.stdout


def test_the_logstash_state_directory_step_creates_a_private_directory(tmp_path: Path) -> None:
    readme = (REPO / "logstash" / "README.md").read_text()
    (block,) = re.findall(r"<!-- doc-test: state-dir -->\n\s*```sh\n(.*?)```", readme, re.S)
    if os.geteuid() != 0:
        pytest.skip("install -o needs root")
    script = moved(block, tmp_path).replace("-o logstash -g logstash", "-o root -g root")
    done = subprocess.run(["sh", "-eu", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE((tmp_path / "var-lib-j1filter").stat().st_mode) == 0o700


def test_the_unit_runs_real_options_on_the_documented_directories() -> None:
    command = shlex.split(unit_value("ExecStart").replace("${CREDENTIALS_DIRECTORY}", "/run/credentials/x"))
    assert command[:2] == ["/usr/local/bin/j1filter", "collect"]
    args = build_collect_parser().parse_args(command[2:])
    assert args.interval and args.map and args.token_file
    writable = set(unit_value("ReadWritePaths").split())
    assert {str(args.checkpoint.parent), str(args.spool)} == writable
    (block,) = MARKER.findall(DOC.read_text())
    assert all(path in block for path in writable), "the docs create every directory the unit writes"
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "UMask=0077"):
        assert re.search(rf"^{setting}$", UNIT.read_text(), re.M), setting
    assert "LoadCredential=j1-api-token:" in UNIT.read_text() and "J1_API_TOKEN" not in UNIT.read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    j1filter = shutil.which("j1filter") or str(Path(sys.executable).with_name("j1filter"))
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/j1filter", j1filter))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{unit.name}:" not in done.stderr, done.stderr  # no warning about the unit itself
