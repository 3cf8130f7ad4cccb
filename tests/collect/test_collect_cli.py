"""The command line: configuration errors, schedules, stdout handling and `simulate`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from collect_helpers import ACCOUNT_ID, FAST_OPTIONS, TOKEN, Collect, make_entities
from faults import Fault, Simulator

from j1filter.cli.collect import collect_main, parse_duration
from j1filter.collect.client import ClientStats
from j1filter.collect.collector import CollectionSummary, Progress

REPO_ROOT = Path(__file__).resolve().parents[2]


def start_cli(*argv: str, env: dict[str, str] | None = None, **popen: object) -> subprocess.Popen[bytes]:
    """`python -m j1filter ...` as a child process, with the test credentials unless `env` is given."""
    environment = {**os.environ, "J1_API_TOKEN": TOKEN, "J1_ACCOUNT_ID": ACCOUNT_ID} if env is None else env
    return subprocess.Popen(
        [sys.executable, "-m", "j1filter", *argv],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,  # type: ignore[call-overload]
    )


def read_lines(stream: object, count: int, timeout: float) -> list[bytes]:
    lines: list[bytes] = []

    def reader() -> None:
        while len(lines) < count and (line := stream.readline()):  # type: ignore[attr-defined]
            lines.append(line)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout)
    return lines


# -- configuration ---------------------------------------------------------------------


def test_a_missing_token_is_a_usage_error(collect: Collect, simulator: Simulator) -> None:
    result = collect("--endpoint", simulator.url, token=None)
    assert result.code == 2
    assert (
        result.stderr == "j1filter collect: error: no API token: set J1_API_TOKEN or pass --token-file FILE\n"
    )
    assert simulator.requests == []


def test_a_missing_account_is_a_usage_error(collect: Collect, simulator: Simulator) -> None:
    result = collect("--endpoint", simulator.url, account_id=None)
    assert result.code == 2 and "J1_ACCOUNT_ID" in result.stderr


def test_the_token_cannot_be_given_on_the_command_line(collect: Collect, simulator: Simulator) -> None:
    assert collect("--endpoint", simulator.url, "--token", "abc", token=None).code == 2


def test_the_token_can_come_from_a_file(collect: Collect, simulator: Simulator, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    result = collect("--endpoint", simulator.url, "--token-file", str(token_file), token=None)
    assert result.code == 0 and len(result.ids) == 25


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--token-file", "/nonexistent/token"], "cannot read --token-file /nonexistent/token"),
        (["--endpoint", "http://graphql.example.com/"], "plain http is allowed only for loopback endpoints"),
        (["--endpoint", "mars"], "endpoint must be 'us', 'eu' or an http(s) URL"),
        (
            ["--checkpoint", "state.json", "--query", "FIND Finding THAT HAS Host"],
            "--checkpoint needs a query",
        ),
        (["--ca-bundle", "/nonexistent/ca.pem"], "cannot use --ca-bundle /nonexistent/ca.pem"),
        (["--interval", "soon"], "invalid duration 'soon'"),
        (["--interval", "0s"], "duration must be above zero"),
        (["--once", "--interval", "1m"], "not allowed with argument"),
    ],
)
def test_configuration_errors_exit_2_with_one_clear_line(
    collect: Collect, argv: list[str], message: str
) -> None:
    result = collect(*argv)
    assert result.code == 2
    assert message in result.stderr


def test_a_token_with_control_characters_is_refused(collect: Collect) -> None:
    result = collect(token="abc\x07def")
    assert result.code == 2 and "control or non-ASCII characters" in result.stderr


def test_a_corrupt_checkpoint_is_a_usage_error(
    collect: Collect, simulator: Simulator, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "state.json"
    checkpoint.write_text("not json")
    result = collect("--endpoint", simulator.url, "--checkpoint", str(checkpoint))
    assert result.code == 2 and "delete it to start over with a full collection" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert simulator.requests == []


def test_the_endpoint_can_come_from_the_environment(
    collect: Collect, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("J1_API_TOKEN", TOKEN)
    monkeypatch.setenv("J1_ACCOUNT_ID", ACCOUNT_ID)
    monkeypatch.setenv("J1_ENDPOINT", simulator.url)
    assert collect_main([*FAST_OPTIONS]) == 0
    assert len(simulator.graphql_requests()) == 13


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("1d", 86400), ("250ms", 0.25), ("45", 45), ("1.5h", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_help_exits_0(collect: Collect) -> None:
    result = collect("--help")
    assert result.code == 0 and b"--checkpoint" in result.stdout


# -- progress --------------------------------------------------------------------------


def test_quiet_prints_nothing_on_success(collect: Collect, simulator: Simulator) -> None:
    result = collect("--endpoint", simulator.url, "--quiet")
    assert (result.code, result.stderr) == (0, "")


def test_progress_reports_at_most_once_per_period(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    progress = Progress(ClientStats(retries=2), every=10, clock=lambda: now[0])
    summary = CollectionSummary(pages=0, written=0)
    with caplog.at_level("INFO", logger="j1filter.collect"):
        for _ in range(30):
            now[0] += 1
            summary.pages += 1
            summary.written += 100
            progress.page(summary)
    assert [record.getMessage() for record in caplog.records] == [
        "page 10: 1,000 entities written (100/s) of which 0 deletions, 0 repeats dropped, 2 retries, 10.0 s",
        "page 20: 2,000 entities written (100/s) of which 0 deletions, 0 repeats dropped, 2 retries, 20.0 s",
        "page 30: 3,000 entities written (100/s) of which 0 deletions, 0 repeats dropped, 2 retries, 30.0 s",
    ]


# -- as a child process -----------------------------------------------------------------


def test_pipeline_end_to_end(simulator: Simulator) -> None:
    process = start_cli("collect", *FAST_OPTIONS, "--once", "--endpoint", simulator.url)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [{k: v for k, v in line.items() if k != "_collection"} for line in lines] == make_entities(25)
    assert {line["_collection"]["kind"] for line in lines} == {"full"}


def test_interval_mode_collects_again_and_again(simulator: Simulator) -> None:
    # every collection a full one: the invented entities are older than any incremental base
    process = start_cli(
        "collect", *FAST_OPTIONS, "--interval", "0.2s", "--full-interval", "0.1s", "--endpoint", simulator.url
    )
    try:
        lines = read_lines(process.stdout, count=75, timeout=20)
    finally:
        process.kill()
        process.communicate(timeout=10)
    assert len(lines) == 75  # three complete collections
    assert len(simulator.graphql_requests()) >= 39


def test_interval_mode_survives_a_failed_collection(simulator: Simulator) -> None:
    simulator.add_fault(Fault.graphql_error("Internal error"), after=1)
    process = start_cli("collect", *FAST_OPTIONS, "--interval", "0.2s", "--endpoint", simulator.url)
    try:
        lines = read_lines(process.stdout, count=2 + 25, timeout=20)
    finally:
        process.kill()
        _, stderr = process.communicate(timeout=10)
    assert len(lines) == 27  # page 1 of the failed run, then a whole collection
    assert (
        b"collection failed, the checkpoint did not move; next collection in 0.2 s:"
        b" J1 returned GraphQL errors: Internal error"
    ) in stderr


def test_a_closed_stdout_ends_the_run_quietly(simulator: Simulator) -> None:
    simulator.add_fault(Fault.slow(0.5), after=1)
    process = start_cli("collect", *FAST_OPTIONS, "--quiet", "--endpoint", simulator.url)
    assert len(read_lines(process.stdout, count=1, timeout=10)) == 1
    process.stdout.close()  # type: ignore[union-attr]  # the reader goes away while page 2 is slow
    process.wait(timeout=20)
    stderr = process.stderr.read()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    assert process.returncode == 0
    assert stderr == b""


def test_simulate_serves_until_interrupted(tmp_path: Path, collect: Collect) -> None:
    entities_file = tmp_path / "entities.ndjson"
    entities_file.write_text("".join(json.dumps(item) + "\n" for item in make_entities(5)))
    process = start_cli("simulate", "--port", "0", "--entities", str(entities_file), "--page-size", "3")
    try:
        banner = read_lines(process.stdout, count=4, timeout=10)
        assert len(banner) == 4, "the simulator did not start"
        url = banner[0].split()[4].decode().rstrip(":")
        assert b"will write 5 entities (3 a page)" in banner[0]
        assert b"J1_API_TOKEN=demo-token" in banner[2]
        assert f"j1filter collect --endpoint {url} --rate-limit 0 | j1filter".encode() in banner[3]
        result = collect("--endpoint", url, token="demo-token", account_id="demo-account")
        assert result.code == 0 and result.items == make_entities(5)
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 130 and b"Traceback" not in stderr


def test_simulate_does_not_print_a_custom_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    entities_file = tmp_path / "entities.ndjson"
    entities_file.write_text(json.dumps(make_entities(1)[0]) + "\n")
    process = start_cli(
        "simulate", "--port", "0", "--entities", str(entities_file), "--token-file", str(token_file)
    )
    try:
        banner = b"".join(read_lines(process.stdout, count=3, timeout=10))
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    assert f"J1_API_TOKEN=$(cat {token_file})".encode() in banner
    assert TOKEN.encode() not in banner + stdout + stderr
