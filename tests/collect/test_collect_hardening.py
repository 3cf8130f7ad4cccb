"""The collector always ends, keeps its secrets, stops on whole lines (issue 7, items 5-7)."""

from __future__ import annotations

import array
import base64
import fcntl
import html
import json
import os
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from collect_helpers import ACCOUNT_ID, FAST_OPTIONS, TOKEN, Collect, make_entities, make_entity
from faults import Fault, Simulator
from scripted_server import ScriptedServer, page

from j1filter.collect.client import Secret
from j1filter.collect.collector import _RecentIds
from j1filter.collect.simulator import load_sample_entities

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)  # Linux; named in Python 3.10+

REPO_ROOT = Path(__file__).resolve().parents[2]


# -- the collector always ends ----------------------------------------------------------


@pytest.mark.parametrize("cycle", [1, 2, 5])
def test_a_cursor_cycle_of_any_length_ends_the_collection(collect: Collect, cycle: int) -> None:
    def script(request: dict) -> tuple[int, bytes]:
        cursor = request["variables"]["cursor"]
        step = int(cursor) if cursor else 0
        return page([make_entity(step % cycle)], str((step + 1) % cycle))

    with ScriptedServer(script) as server:
        result = collect("--endpoint", server.url)
    assert result.code == 1
    assert "the cursor repeats an earlier one (a cursor cycle); stopping" in result.stderr
    assert len(server.requests) == cycle + 1


def test_endless_empty_pages_end_at_the_cap(collect: Collect) -> None:
    with ScriptedServer(lambda request: page([], os.urandom(8).hex())) as server:
        result = collect("--endpoint", server.url, "--max-empty-pages", "5")
    assert result.code == 1 and "5 empty pages in a row" in result.stderr
    assert len(server.requests) == 5


def test_endless_pages_end_at_the_page_cap(collect: Collect) -> None:
    counter = iter(range(10**6))
    with ScriptedServer(lambda request: page([make_entity(next(counter))], os.urandom(8).hex())) as server:
        result = collect("--endpoint", server.url, "--max-pages", "7")
    assert result.code == 1 and "stopped after 7 pages (--max-pages)" in result.stderr
    assert len(result.ids) == 7  # what arrived is out, as whole lines


def test_timeout_is_a_deadline_for_the_whole_request(collect: Collect, simulator: Simulator) -> None:
    simulator.add_fault(Fault.drip(0.05))  # a byte every 50 ms: no single read ever times out
    started = time.monotonic()
    result = collect("--endpoint", simulator.url, "--timeout", "0.5", "--max-retries", "0")
    elapsed = time.monotonic() - started
    assert result.code == 1
    assert (
        "page 1: gave up after 1 attempt; last error: no complete answer from"
        f" {simulator.url.split('/')[2]} within --timeout 0.5 s" in result.stderr
    )
    assert elapsed < 3, elapsed


def test_an_oversized_answer_is_refused_with_a_clear_error(collect: Collect, simulator: Simulator) -> None:
    result = collect("--endpoint", simulator.url, "--max-response-bytes", "1000")
    assert result.code == 1
    assert "is larger than --max-response-bytes 1,000; raise the limit if this is expected" in result.stderr
    assert len(simulator.graphql_requests()) == 1  # not retried


def test_the_in_run_dedupe_window_stays_bounded() -> None:
    window = _RecentIds(3)
    entities = [make_entity(index)["entity"] for index in range(1000)]
    assert not any(window.repeat(entity) for entity in entities)
    assert [window.repeat(entity) for entity in entities[-1:-4:-1]] == [True, True, True]  # the newest 3
    assert not window.repeat(entities[-4]) and not window.repeat(entities[0])  # older ones were forgotten


# -- secrets -----------------------------------------------------------------------------

ODD_TOKEN = "t0k\"en<&>'/+=?%x~y-TOKEN-SUFFIX-1234"


def echo_forms(token: str) -> dict[str, str]:
    return {
        "as is": token,
        "JSON-escaped": json.dumps(token)[1:-1],
        "HTML-escaped": html.escape(token),
        "URL-encoded": quote(token, safe=""),
        "URL-encoded, lower-case hex": quote(token, safe="").lower(),
        "base64 of the header": base64.b64encode(f"Bearer {token}".encode()).decode(),
    }


@pytest.mark.parametrize("form", list(echo_forms(ODD_TOKEN)))
def test_the_token_is_redacted_in_every_form_an_error_body_echoes(collect: Collect, form: str) -> None:
    echoed = echo_forms(ODD_TOKEN)[form]
    body = json.dumps({"error": "denied"})[:-1].encode() + f', "echo": "x{echoed}x"}}'.encode()
    with ScriptedServer(lambda request: (400, body)) as server:
        result = collect("--endpoint", server.url, token=ODD_TOKEN)
    assert result.code == 1 and "HTTP 400" in result.stderr
    base64_core = base64.b64encode(ODD_TOKEN.encode()).decode()[4:-8]
    for shown in [*echo_forms(ODD_TOKEN).values(), ODD_TOKEN[4:], base64_core]:
        assert shown not in result.stderr, (form, result.stderr)
    assert "***" in result.stderr


def test_redaction_leaves_other_text_alone() -> None:
    assert Secret(ODD_TOKEN).redact("nothing secret here, 42") == "nothing secret here, 42"


@pytest.mark.parametrize(
    "argv", [["--token", "SECRET-VALUE-1"], ["--token=SECRET-VALUE-1"], ["--tok", "SECRET-VALUE-1"]]
)
def test_an_abbreviated_token_option_is_an_error_that_does_not_echo_the_value(
    collect: Collect, argv: list[str]
) -> None:
    result = collect(*argv)
    assert result.code == 2
    assert "SECRET-VALUE-1" not in result.stderr
    assert "unrecognized arguments" in result.stderr and "(values not shown)" in result.stderr


def test_loopback_requests_never_go_through_an_explicit_proxy(collect: Collect, simulator: Simulator) -> None:
    with ScriptedServer(lambda request: (502, b"proxy")) as proxy:
        result = collect("--endpoint", simulator.url, "--proxy", proxy.url.removesuffix("/graphql"))
    assert result.code == 0 and len(result.ids) == 25
    assert proxy.raw_requests == []


def test_a_token_file_others_can_read_is_warned_about(
    collect: Collect, simulator: Simulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o644)
    warned = collect("--endpoint", simulator.url, "--token-file", str(token_file), token=None)
    assert warned.code == 0
    assert (
        f"--token-file {token_file} can be read by group or others (mode 644): run chmod 600" in warned.stderr
    )
    token_file.chmod(0o600)
    quiet = collect("--endpoint", simulator.url, "--token-file", str(token_file), token=None)
    assert "can be read by" not in quiet.stderr


@pytest.mark.parametrize(
    ("token", "account", "says"),
    [("tökén-1234", ACCOUNT_ID, "API token contains"), (TOKEN, "äccount", "J1_ACCOUNT_ID contains")],
)
def test_non_ascii_credentials_are_a_usage_error(
    collect: Collect, token: str, account: str, says: str
) -> None:
    result = collect(token=token, account_id=account)
    assert result.code == 2 and says in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


# -- stops: whole lines, documented codes, no checkpoint move --------------------------


def start_collect(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "j1filter", "collect", *FAST_OPTIONS, *argv],
        cwd=REPO_ROOT,
        env={**os.environ, "J1_API_TOKEN": TOKEN, "J1_ACCOUNT_ID": ACCOUNT_ID},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_requests(sim: Simulator, count: int) -> None:
    deadline = time.monotonic() + 20
    while len(sim.graphql_requests()) < count:
        assert time.monotonic() < deadline, "the collector did not get going"
        time.sleep(0.005)


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_a_stop_ends_on_whole_lines_with_its_code_and_keeps_the_checkpoint(
    tmp_path: Path, signum: int, code: int
) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    with Simulator(make_entities(200), token=TOKEN, account_id=ACCOUNT_ID, page_size=20) as sim:
        sim.page_delay = 0.05
        process = start_collect("--endpoint", sim.url, "--checkpoint", str(checkpoint), "--map")
        wait_for_requests(sim, 2)  # page 1 is out, page 2 is coming (mapped pages soon fill the pipe)
        process.send_signal(signum)
        out, stderr = process.communicate(timeout=20)
    assert process.returncode == code, stderr
    lines = out.splitlines(keepends=True)
    assert lines and all(line.endswith(b"}\n") for line in lines), "a line was cut"
    assert all(json.loads(line)["event"]["id"] for line in lines)
    assert len(lines) < 200
    assert b"Traceback" not in stderr and f"stopped by {signal.Signals(signum).name}".encode() in stderr
    assert not checkpoint.exists(), "an interrupted collection must not move the checkpoint"


def _pipe_is_full(pipe: Any) -> bool:
    """The collector's stdout holds a whole pipe's capacity: its next write is blocked."""
    waiting = array.array("i", [0])
    fcntl.ioctl(pipe.fileno(), termios.FIONREAD, waiting)
    return waiting[0] >= fcntl.fcntl(pipe.fileno(), F_GETPIPE_SZ)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_GETPIPE_SZ and FIONREAD on a pipe")
@pytest.mark.parametrize("mapped", [False, True], ids=["raw", "mapped"])
def test_a_stop_during_a_blocked_write_loses_no_byte(mapped: bool) -> None:
    """The signal lands while a page is half written into a full pipe. Python's buffered
    stdout dropped the unwritten part of its buffer here (4 KiB from the middle of a line);
    the output must be a gapless run of whole lines from the first entity on."""
    entities = make_entities(2000)  # raw lines are short: still more than a pipe holds
    with Simulator(entities, token=TOKEN, account_id=ACCOUNT_ID, page_size=250) as sim:
        process = start_collect("--endpoint", sim.url, *(["--map"] if mapped else []))
        assert process.stdout is not None
        deadline = time.monotonic() + 20
        while not _pipe_is_full(process.stdout):
            assert time.monotonic() < deadline and process.poll() is None, "the pipe never filled"
            time.sleep(0.01)
        time.sleep(0.05)  # well inside the blocked write(2)
        process.send_signal(signal.SIGTERM)
        out, stderr = process.communicate(timeout=20)
    assert process.returncode == 143, stderr
    assert out.endswith(b"\n"), f"a line was cut: ...{out[-120:]!r}"
    ids = [json.loads(line)["event"]["id"] if mapped else json.loads(line)["id"] for line in out.splitlines()]
    assert ids == [entity["id"] for entity in entities[: len(ids)]], "lines are missing in the middle"
    assert 0 < len(ids) < len(entities)


def test_a_stopped_spool_collection_leaves_no_spool_file(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    with Simulator(make_entities(100), token=TOKEN, account_id=ACCOUNT_ID, page_size=10) as sim:
        sim.page_delay = 0.05
        process = start_collect(
            "--endpoint", sim.url, "--spool", str(spool), "--checkpoint", str(tmp_path / "c")
        )
        wait_for_requests(sim, 3)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
    assert process.returncode == 143
    assert list(spool.glob("*j1-*")) == [] and not (tmp_path / "c").exists()


# -- spool and --map ---------------------------------------------------------------------


def test_the_spool_gets_one_complete_file_per_collection(
    collect: Collect, simulator: Simulator, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / ".j1-20260101T000000.000Z-full.ndjson.part").write_text('{"half": ')  # a killed run's leftover
    checkpoint = tmp_path / "checkpoint.json"
    first = collect("--endpoint", simulator.url, "--spool", str(spool), "--checkpoint", str(checkpoint))
    assert first.code == 0 and first.stdout == b""
    (written,) = spool.glob("*j1-*")
    started = json.loads(checkpoint.read_text())["full_started"]
    stamp = started.replace("-", "").replace(":", "")
    assert written.name == f"j1-{stamp}-full.ndjson"
    items = [json.loads(line) for line in written.read_bytes().splitlines()]
    assert [item["id"] for item in items] == [item["id"] for item in simulator.entities]
    assert {json.dumps(item["_collection"]) for item in items} == {
        json.dumps({"started": started, "kind": "full", "snapshot": started})
    }
    simulator.add_fault(Fault.graphql_error("boom"), after=1)
    before = checkpoint.read_bytes()
    failed = collect(
        "--endpoint", simulator.url, "--spool", str(spool), "--checkpoint", str(checkpoint), "--full"
    )
    assert failed.code == 1 and checkpoint.read_bytes() == before
    assert [path.name for path in spool.glob("*j1-*")] == [written.name], "a failed collection leaves no file"


def test_map_writes_what_collect_piped_into_the_filter_writes(simulator: Simulator, tmp_path: Path) -> None:
    simulator.entities[:] = load_sample_entities()
    raw = start_collect("--endpoint", simulator.url, "--quiet")
    mapped = subprocess.run(
        [sys.executable, "-m", "j1filter", "--quiet"],
        stdin=raw.stdout,
        capture_output=True,
        cwd=REPO_ROOT,
        check=True,
    )
    raw.wait(timeout=30)
    in_process = start_collect("--endpoint", simulator.url, "--quiet", "--map")
    out, _ = in_process.communicate(timeout=30)
    assert in_process.returncode == 0
    piped = [json.loads(line) for line in mapped.stdout.splitlines()]
    direct = [json.loads(line) for line in out.splitlines()]
    assert len(direct) == len(load_sample_entities())
    # the same documents, byte for byte but for the collection each run had of its own
    for a, b in zip(piped, direct, strict=True):
        a_collection, b_collection = (
            a.pop("jupiter_one").pop("collection"),
            b.pop("jupiter_one").pop("collection"),
        )
        assert a_collection["kind"] == b_collection["kind"] == "full"
        a.pop("@timestamp"), b.pop("@timestamp")
        a["event"].pop("original"), b["event"].pop("original")
        assert a == b


def test_map_takes_the_filter_mapping_options(collect: Collect, simulator: Simulator, tmp_path: Path) -> None:
    result = collect("--endpoint", simulator.url, "--map", "--namespace", "prod", "--dataset", "x.y")
    assert result.code == 0
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(d["data_stream"]["namespace"], d["data_stream"]["dataset"]) for d in docs} == {("prod", "x.y")}
    bad = tmp_path / "bad.yml"
    bad.write_text("not: [a mapping")
    refused = collect("--endpoint", simulator.url, "--map", "--mapping", str(bad))
    assert (
        refused.code == 2 and "invalid mapping" in refused.stderr and simulator.graphql_requests()[-1:] != []
    )


# -- the simulator honours the J1QL class --------------------------------------------------


@pytest.mark.parametrize(
    ("query", "classes"),
    [
        ("FIND Finding", {"Finding"}),
        ("FIND (Finding | Alert)", {"Finding", "Alert"}),
        ("FIND Alert WITH _beginOn > 0", {"Alert"}),
        ("FIND *", None),
    ],
)
def test_the_simulator_serves_only_the_asked_classes(query: str, classes: set[str] | None) -> None:
    samples = load_sample_entities()
    with Simulator(samples) as sim:
        served, _ = sim.count(query, include_deleted=True)
    expected = [s for s in samples if classes is None or set(s["entity"]["_class"]) & classes]
    assert served == len(expected) and 0 < served <= len(samples)


def test_the_simulator_honours_simple_equality_conditions() -> None:
    samples = load_sample_entities()
    with Simulator(samples) as sim:
        served, _ = sim.count('FIND Finding WITH _type = "qualys_host_finding"', include_deleted=False)
        severe, _ = sim.count("FIND Finding WITH numericSeverity = 7 AND open = true", include_deleted=True)
    assert served == sum(1 for s in samples if s["entity"]["_type"] == "qualys_host_finding") > 0
    assert severe == sum(
        1
        for s in samples
        if "Finding" in s["entity"]["_class"]
        and s["properties"].get("numericSeverity") == 7
        and s["properties"].get("open") is True
    )
