"""The API token never shows up: not on stdout, stderr, in logs, reprs or exception text,
even when the server quotes it back."""

from __future__ import annotations

import base64
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
from j1filter.collect.secrets import remote_text
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


# -- echo forms beyond the plain ones, and remote text on one line ---------------------------


def wrapped(text: str, width: int, joiner: str) -> str:
    return joiner.join(text[start : start + width] for start in range(0, len(text), width))


def echoes(token: str) -> dict[str, str]:
    raw = token.encode()
    forms = {
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "hex dump with spaces": " ".join(f"{byte:02x}" for byte in raw),
        "whitespace inside": " ".join(token),
        "line breaks inside": wrapped(token, 5, "\r\n"),
    }
    for shift in range(3):
        encoded = base64.b64encode(b"P" * shift + b"Bearer " + raw + b" tail").decode()
        forms[f"base64 at offset {shift}"] = encoded
        forms[f"base64 at offset {shift}, wrapped at 8 and joined with spaces"] = wrapped(encoded, 8, " ")
        forms[f"base64 at offset {shift}, wrapped at 76"] = wrapped(encoded, 76, "\n")
        forms[f"url-safe base64 at offset {shift}"] = base64.urlsafe_b64encode(b"x" * shift + raw).decode()
    return forms


@pytest.mark.parametrize("form", list(echoes(TOKEN)))
def test_the_token_is_redacted_in_encoded_and_wrapped_echoes(form: str) -> None:
    echoed = echoes(TOKEN)[form]
    shown = Secret(TOKEN).redact(f"error: you sent {echoed} which is wrong")
    squeezed = "".join(shown.split())
    assert "***" in shown
    for leak in (TOKEN, TOKEN.encode().hex(), TOKEN[6:20]):
        assert leak.lower() not in squeezed.lower(), shown
    for shift in range(3):  # no run of the token's own base64 survives either
        core = base64.b64encode(b"\0" * shift + TOKEN.encode()).decode()[4:-8]
        assert core not in squeezed, shown


def test_remote_text_is_one_line_without_control_characters() -> None:
    text = remote_text(
        "ok\n2026-01-01 j1filter collect: full collection complete\x1b[2J\u2028\ud800 end" * 30
    )
    assert "\n" not in text and "\x1b" not in text and "\u2028" not in text and "\ud800" not in text
    assert "\\x0a" in text and "\\x1b" in text and len(text) <= 300
    assert remote_text([[[[["deep"]]]]] * 2) == '[[[[["deep"]]]],[[[["deep"]]]]]'
    deep: object = "x"
    for _ in range(5000):
        deep = [deep]
    assert "too deep" in remote_text(deep)


@pytest.mark.parametrize("token", ["x", "ab", "abc", "abcd"])
def test_a_short_token_is_redacted_and_other_text_left_alone(token: str) -> None:
    text = Secret(token).redact(f"Name or service not known, token {token}.")
    assert text.startswith("Name or service not known") and text.endswith("token ***.")
