"""The API token never shows up: not on stdout, stderr, in logs, reprs or exception text,
even when the server quotes it back."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from collect_helpers import ACCOUNT_ID, FAST_OPTIONS, TOKEN, Collect
from faults import Fault, Simulator

from j1filter.collect.client import ConnectionSettings, J1Client, RetryPolicy, Secret
from j1filter.errors import CollectError

REPO_ROOT = Path(__file__).resolve().parents[2]

SCENARIOS: dict[str, list[Fault]] = {
    "success": [],
    "retried": [Fault.http(429, retry_after="1"), Fault.disconnect(), Fault.http(503)],
    "refused": [Fault.http(401)],
    "echoed-in-graphql-error": [Fault.graphql_error(f"Invalid token {TOKEN}")],
    "echoed-in-deferred-failure": [Fault.deferred_failed(f"bad key Bearer {TOKEN}")],
    "echoed-in-rate-limit-error": [Fault.graphql_error(f"429 for {TOKEN}")] * 5,
    "malformed": [Fault.malformed()],
}


@pytest.mark.parametrize("faults", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_the_token_never_reaches_stdout_stderr_or_logs(
    collect: Collect, simulator: Simulator, faults: list[Fault], caplog: pytest.LogCaptureFixture
) -> None:
    for position, fault in enumerate(faults):
        simulator.add_fault(fault, after=1 if position == 0 else 0)  # page 1 goes through first
    with caplog.at_level(logging.DEBUG):
        result = collect("--endpoint", simulator.url, "--deferred")
    captured = result.stdout.decode() + result.stderr + caplog.text + repr(simulator.requests)
    assert TOKEN not in captured
    if any(TOKEN in fault.message for fault in faults):
        assert "***" in result.stderr  # the server's quote was scrubbed, not dropped


def test_exceptions_and_reprs_do_not_carry_the_token(simulator: Simulator) -> None:
    simulator.add_fault(Fault.graphql_error(f"token {TOKEN} is not valid for this account"))
    client = J1Client(
        ConnectionSettings(simulator.url, timeout=5),
        Secret(TOKEN),
        ACCOUNT_ID,
        rate_limit_per_minute=0,
        retry=RetryPolicy(max_attempts=1),
    )
    with pytest.raises(CollectError) as raised:
        list(client.pages("FIND Finding"))
    texts = [
        str(raised.value),
        repr(raised.value),
        "".join(traceback.format_exception(raised.value)),
        repr(client),
        str(Secret(TOKEN)),
    ]
    assert not [text for text in texts if TOKEN in text]
    assert "token *** is not valid" in str(raised.value)


def test_the_token_never_leaves_a_child_process(simulator: Simulator, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    simulator.add_fault(Fault.http(502), after=2)
    simulator.add_fault(Fault.graphql_error(f"bad token {TOKEN}"), after=3)
    environment = {key: value for key, value in os.environ.items() if key != "J1_API_TOKEN"}
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "j1filter",
            "collect",
            *FAST_OPTIONS,
            "--endpoint",
            simulator.url,
            "--token-file",
            str(token_file),
        ],
        cwd=REPO_ROOT,
        env={**environment, "J1_ACCOUNT_ID": ACCOUNT_ID},
        capture_output=True,
        timeout=30,
    )
    assert process.returncode == 1
    assert b"bad token ***" in process.stderr
    assert TOKEN.encode() not in process.stdout + process.stderr
