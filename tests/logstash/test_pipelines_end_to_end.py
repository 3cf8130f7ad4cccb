"""The Logstash pipelines' moving parts, run for real against the J1 API simulator.

* j1-http-poller.conf: the http_poller request (URL, method, headers, body, with
  Logstash's ${VAR:default} substitution) is replayed against the simulator; the
  answer goes through the config's own guard/split/message_format and then through
  the pipe-output command exactly as written (/bin/sh, j1filter, spool file).
* j1-collector.conf: the pipe-input command is run as written and must stream one
  JSON document per line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import select
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from ls_helpers import PLACEHOLDER, find, run_j1filter

simulator = pytest.importorskip(
    "j1filter.collect.simulator", reason="the J1 API simulator (j1filter.collect.simulator) is not importable"
)
from tests.collect.faults import Fault, Simulator  # noqa: E402 - the simulator with scripted faults (test-only)

TOKEN, ACCOUNT = "demo-token", "demo-account"
VOLATILE = ("@timestamp",)


def substitute(value, env: dict[str, str]):
    """Logstash ${NAME} / ${NAME:default} substitution (keystore/env first, else default)."""
    if isinstance(value, dict):
        return {k: substitute(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match) -> str:
        if m.group(1) in env:
            return env[m.group(1)]
        if m.group(2) is None:
            raise KeyError(f"Logstash would refuse to start: ${{{m.group(1)}}} is not set")
        return m.group(2)[1:]

    return PLACEHOLDER.sub(repl, value)


def field_ref(event: dict, ref: str):
    """Resolve a Logstash field reference like [j1][data][queryV1][data]."""
    parts = re.findall(r"\[([^\]]+)\]", ref)
    assert "".join(f"[{p}]" for p in parts) == ref, ref
    cur = event
    for p in parts:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def replay(request_spec: dict, env: dict[str, str]) -> tuple[int, dict]:
    spec = substitute(request_spec, env)
    req = urllib.request.Request(
        spec["url"], data=spec["body"].encode(), method=spec["method"].upper(), headers=spec["headers"]
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body or b"{}")
        except ValueError:
            return err.code, {"raw": body.decode(errors="replace")}


def poller_parts(confs):
    plugins = confs["j1-http-poller.conf"]
    (poller,) = find(plugins, "input", "http_poller")
    (split,) = find(plugins, "filter", "split")
    (pipe,) = find(plugins, "output", "pipe")
    return poller, split, pipe


def guard_passes(status: int, event: dict) -> bool:
    """The config's guard, in the order the filter section checks it."""
    return status == 200 and not field_ref(event, "[j1][errors]")


def strip(doc: dict) -> dict:
    d = json.loads(json.dumps(doc))
    for key in VOLATILE:
        d.pop(key, None)
    d.get("event", {}).pop("original", None)
    return d


@pytest.fixture()
def sim():
    with Simulator(entities=None, token=TOKEN, account_id=ACCOUNT, page_size=500) as s:
        yield s


def test_http_poller_request_gets_a_page_and_yields_the_expected_documents(
    confs, sim, require_j1filter, j1filter_on_path, tmp_path
):
    poller, split, pipe = poller_parts(confs)
    env = {"J1_ENDPOINT": sim.url, "J1_API_TOKEN": TOKEN, "J1_ACCOUNT_ID": ACCOUNT}
    status, page = replay(poller.get("urls")["j1"], env)
    assert status == 200, page
    assert "errors" not in page, page
    assert sim.requests, "the simulator saw no request"

    # codec => json { target => "[j1]" }, then the guard, then split
    event = {poller.get("codec").options["target"].strip("[]"): page}
    assert guard_passes(status, event)
    rows = field_ref(event, split.get("field"))
    assert isinstance(rows, list) and rows, f"nothing at {split.get('field')}: {json.dumps(page)[:500]}"
    assert all("id" in r and "entity" in r for r in rows)

    # message_format renders the split row (a Map) as compact JSON
    fmt = pipe.get("message_format")
    m = re.fullmatch(r"%\{(\[[^}]+\])\}", fmt)
    assert m and m.group(1) == split.get("field")
    lines = [
        json.dumps(
            field_ref(_with_row(event, split.get("field"), row), m.group(1)),
            separators=(",", ":"),
            ensure_ascii=False,
        )
        for row in rows
    ]

    # the pipe output's command, as written, with the spool directory moved to tmp
    command = list(pipe.get("command"))
    assert "/var/spool/j1filter/" in command[2]
    today = dt.datetime.now(dt.UTC)
    command[2] = (
        command[2]
        .replace("/var/spool/j1filter/", f"{tmp_path}/")
        .replace("%{+YYYY.MM.dd}", today.strftime("%Y.%m.%d"))
    )
    proc = subprocess.run(command, input=("\n".join(lines) + "\n").encode(), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout == b"", "the pipe output never reads the child's stdout: it must stay empty"
    spool_files = list(tmp_path.glob("j1-http-poller-*.ndjson"))
    assert len(spool_files) == 1, spool_files
    spooled = [json.loads(line) for line in spool_files[0].read_text().splitlines()]

    # expected: j1filter on the same entities as J1 returned them
    direct = run_j1filter("\n".join(json.dumps(r) for r in rows).encode() + b"\n")
    assert len(spooled) == len(rows) == len(direct)
    assert [d["event"]["id"] for d in spooled] == [r["id"] for r in rows]
    assert [strip(d) for d in spooled] == [strip(d) for d in direct]
    for doc, line in zip(spooled, lines):
        assert doc["event"]["original"] == line
        assert doc["data_stream"] == {
            "type": "logs",
            "dataset": "jupiter_one.risks_and_alerts",
            "namespace": "default",
        }
        assert doc["jupiter_one"]["asset"]["entity"]["_version"]
        assert doc["event"].get("kind") != "pipeline_error", doc.get("error")


def _with_row(event: dict, ref: str, row) -> dict:
    """split: a clone of the event holding one element at the same path."""
    parts = re.findall(r"\[([^\]]+)\]", ref)
    clone = json.loads(json.dumps(event))
    cur = clone
    for p in parts[:-1]:
        cur = cur[p]
    cur[parts[-1]] = row
    return clone


def test_http_poller_guard_stops_bad_answers(confs, sim):
    poller, _split, _ = poller_parts(confs)
    request = poller.get("urls")["j1"]
    # wrong token: J1 answers 401, which http_poller still counts as a "success"
    status, page = replay(
        request, {"J1_ENDPOINT": sim.url, "J1_API_TOKEN": "wrong", "J1_ACCOUNT_ID": ACCOUNT}
    )
    assert status == 401 and not guard_passes(status, {"j1": page})
    # GraphQL error inside an HTTP 200
    sim.add_fault(Fault.graphql_error("rate limit 429"))
    status, page = replay(request, {"J1_ENDPOINT": sim.url, "J1_API_TOKEN": TOKEN, "J1_ACCOUNT_ID": ACCOUNT})
    assert status == 200 and page.get("errors"), page
    assert not guard_passes(status, {"j1": page})
    # a missing variable without default makes Logstash refuse the config
    with pytest.raises(KeyError):
        substitute(request, {"J1_ENDPOINT": sim.url})


def test_collector_command_streams_json_lines(
    confs, sim, require_j1filter, j1filter_on_path, monkeypatch, tmp_path
):
    (pipe,) = find(confs["j1-collector.conf"], "input", "pipe")
    # the state directory the install steps create (collect refuses to start without it)
    command = pipe.get("command").replace("/var/lib/j1filter", str(tmp_path))
    assert command != pipe.get("command"), "the collector keeps its checkpoint in /var/lib/j1filter"
    monkeypatch.setenv("J1_ENDPOINT", sim.url)
    monkeypatch.setenv("J1_API_TOKEN", TOKEN)
    monkeypatch.setenv("J1_ACCOUNT_ID", ACCOUNT)
    # the pipe input runs the command through /bin/sh and reads stdout line by line
    proc = subprocess.Popen(
        ["/bin/sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    docs, buf = [], b""
    deadline, quiet_since = time.monotonic() + 90, None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                *complete, buf = buf.split(b"\n")
                docs += [json.loads(line) for line in complete if line.strip()]
                quiet_since = time.monotonic()
            elif docs and time.monotonic() - quiet_since > 3:
                break  # first collection done; the collector now sleeps for --interval
        alive = proc.poll() is None
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # what the pipe input does on shutdown
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    assert docs, f"no documents; stderr: {proc.stderr.read().decode()[-2000:]}"
    assert alive, "with --interval the command must keep running (the pipe input reruns it otherwise)"
    served = {e["id"] for e in sim.entities}
    assert {d["event"]["id"] for d in docs} <= served
    live = {e["id"] for e in sim.entities if not e.get("entity", {}).get("_deleted")}
    assert live <= {d["event"]["id"] for d in docs}
    for d in docs:
        assert (
            f"{d['data_stream']['type']}-{d['data_stream']['dataset']}-{d['data_stream']['namespace']}"
            == "logs-jupiter_one.risks_and_alerts-default"
        )
