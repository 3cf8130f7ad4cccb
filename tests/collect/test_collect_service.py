"""The collector as a service at the command line: start-up checks before any request, locks,
safe spool files, --check, the status file, and the small messages that say what to do."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from collect_helpers import Collect
from faults import Fault, Simulator

from j1filter.collect.files import StateLock, create_new, try_lock
from j1filter.collect.spool import remove_stale_parts
from j1filter.collect.status import status_path_for

REPO_ROOT = Path(__file__).resolve().parents[2]


def no_requests(sim: Simulator) -> bool:
    return sim.requests == []


@pytest.mark.parametrize(
    ("option", "make", "expected"),
    [
        ("--checkpoint", lambda tmp: tmp / "missing" / "checkpoint.json", "does not exist; create it"),
        ("--spool", lambda tmp: tmp / "missing-spool", "does not exist; create it"),
        ("--spool", lambda tmp: (tmp / "file").write_text("") or tmp / "file", "is not a directory"),
        ("--status", lambda tmp: tmp / "nowhere" / "status.json", "does not exist; create it"),
        ("--token-file", lambda tmp: tmp / "no-token", "cannot read --token-file"),
    ],
)
def test_configuration_errors_are_found_before_any_request(
    collect: Collect,
    simulator: Simulator,
    tmp_path: Path,
    option: str,
    make,
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    result = collect("--endpoint", simulator.url, "--interval", "1h", option, str(make(tmp_path)))
    assert result.code == 2, result.stderr
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert no_requests(simulator), "a configuration error must be found before any request"


@pytest.mark.parametrize("endpoint", ["http://[::1/", "ftp://x/", "https://bad host/", "http://example.com/"])
def test_a_bad_endpoint_is_a_configuration_error(collect: Collect, endpoint: str) -> None:
    result = collect("--endpoint", endpoint, "--interval", "1h")
    assert result.code == 2 and "--endpoint" in result.stderr and "Traceback" not in result.stderr


def test_a_second_collector_on_the_same_state_is_refused_with_the_pid(
    collect: Collect, simulator: Simulator, tmp_path: Path
) -> None:
    checkpoint, spool = tmp_path / "checkpoint.json", tmp_path / "spool"
    spool.mkdir()
    held = StateLock(checkpoint.with_name("checkpoint.json.lock"), "test")
    try:
        result = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
    finally:
        held.release()
    assert result.code == 2 and f"is in use by pid {os.getpid()}" in result.stderr, result.stderr
    held = StateLock(spool / ".j1filter-spool.lock", "test")
    try:
        result = collect("--endpoint", simulator.url, "--spool", str(spool))
    finally:
        held.release()
    assert result.code == 2 and f"--spool {spool} is in use by pid {os.getpid()}" in result.stderr
    assert no_requests(simulator)
    assert collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint)).code == 0  # released


def test_spool_files_are_new_private_files_and_a_live_part_is_never_removed(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep me")
    link = tmp_path / ".j1-x.ndjson.part"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):
        create_new(link)  # never follows a symlink, never reuses a name
    assert target.read_text() == "keep me"
    live = create_new(tmp_path / ".j1-live.ndjson.part")
    assert try_lock(live.fileno())
    assert stat.S_IMODE(os.fstat(live.fileno()).st_mode) == 0o600
    dead = create_new(tmp_path / ".j1-dead.ndjson.part")
    dead.close()
    assert remove_stale_parts(tmp_path) == 2  # the dead part and the planted symlink (its name only)
    assert (tmp_path / ".j1-live.ndjson.part").exists() and target.read_text() == "keep me"
    live.close()


@pytest.mark.parametrize("mode", [None, "0640"])
def test_spool_and_state_files_are_owner_only_unless_a_group_mode_is_asked(
    collect: Collect, simulator: Simulator, tmp_path: Path, mode: str | None
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    checkpoint = tmp_path / "checkpoint.json"
    extra = ["--file-mode", mode] if mode else []
    result = collect(
        "--endpoint", simulator.url, "--spool", str(spool), "--checkpoint", str(checkpoint), *extra
    )
    assert result.code == 0, result.stderr
    (written,) = spool.glob("j1-*.ndjson")
    expected = int(mode, 8) if mode else 0o600
    assert stat.S_IMODE(written.stat().st_mode) == expected
    assert stat.S_IMODE(status_path_for(checkpoint).stat().st_mode) == expected
    assert stat.S_IMODE(checkpoint.stat().st_mode) == 0o600


def test_the_status_file_says_what_a_monitor_needs(
    collect: Collect, simulator: Simulator, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    assert collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint)).code == 0
    status = json.loads(status_path_for(checkpoint).read_text())
    assert status["state"] == "idle" and status["last_success_kind"] == "full"
    assert status["last_counts"]["written"] == 25 and status["consecutive_failures"] == 0
    simulator.add_fault(Fault.graphql_error("boom\n\x1b[31mforged line"))
    failed = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
    assert failed.code == 1
    status = json.loads(status_path_for(checkpoint).read_text())
    assert status["state"] == "failing" and status["consecutive_failures"] == 1
    assert status["last_error"]["message"] == "J1 returned GraphQL errors: boom\\x0a\\x1b[31mforged line"
    assert status["last_success"] is not None
    assert "\x1b" not in failed.stderr and failed.stderr.count("\n") == failed.stderr.count(
        "j1filter collect:"
    )


def test_check_tries_every_piece_and_says_what_is_wrong(
    collect: Collect, simulator: Simulator, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    argv = [
        "--endpoint",
        simulator.url,
        "--check",
        "--checkpoint",
        str(tmp_path / "c.json"),
        "--spool",
        str(spool),
    ]
    good = collect(*argv)
    assert good.code == 0, good.stderr
    out = good.stdout.decode()
    assert "ok    checkpoint:" in out and "ok    spool:" in out and "ok    endpoint:" in out
    assert not (tmp_path / "c.json").exists() and list(spool.glob("j1-*")) == []  # it collects nothing
    bad = collect(*argv, token="wrong-token")
    assert bad.code == 1 and "FAIL  endpoint:" in bad.stdout.decode() and "HTTP 401" in bad.stdout.decode()


def test_network_errors_name_the_host_and_say_what_to_do(collect: Collect) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = collect("--endpoint", f"http://127.0.0.1:{port}/graphql", "--max-retries", "0")
    assert result.code == 1
    assert f"network error talking to 127.0.0.1:{port}" in result.stderr
    assert "nothing listens there: check --endpoint" in result.stderr


def test_a_token_on_the_command_line_points_to_the_right_places(collect: Collect) -> None:
    result = collect("--token", "SECRET-VALUE-1")
    assert result.code == 2 and "J1_API_TOKEN or --token-file" in result.stderr
    assert "SECRET-VALUE-1" not in result.stderr


def test_simulate_on_a_busy_port_says_what_to_do() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "j1filter", "simulate", "--port", str(port)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use: pass --port 0" in result.stderr
    assert "Errno" not in result.stderr


@pytest.mark.parametrize("mapped", [False, True], ids=["raw", "mapped"])
def test_one_hostile_entity_becomes_one_error_document_and_its_page_goes_on(
    collect: Collect, mapped: bool
) -> None:
    from collect_helpers import make_entities
    from scripted_server import ScriptedServer

    from j1filter.io.jsontext import json_bytes

    deep: object = "x"
    for _ in range(990):
        deep = [deep]
    items = make_entities(3)
    items[1]["properties"]["x"] = deep
    body = json_bytes({"data": {"queryV1": {"type": "list", "data": items, "cursor": None}}})
    with ScriptedServer(lambda request: (200, body)) as server:
        result = collect("--endpoint", server.url, "--no-deferred", *(["--map"] if mapped else []))
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and "Traceback" not in result.stderr
    assert lines[1].count(b"[") >= 990 or b'"error"' in lines[1]  # kept whole, or an error document
    if mapped:
        error_doc = json.loads(lines[1])
        assert error_doc["error"]["message"] and error_doc["event"]["kind"] == "pipeline_error"
        assert json.loads(lines[2])["event"]["id"]
