"""Fixtures for the collect tests: a simulator on loopback and an in-process `collect` runner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from collect_helpers import ACCOUNT_ID, FAST_OPTIONS, TOKEN, Collect, CollectResult, make_entities
from faults import Simulator

from j1filter.cli.collect import collect_main


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with Simulator(make_entities(25), token=TOKEN, account_id=ACCOUNT_ID, page_size=2) as sim:
        yield sim


@pytest.fixture
def collect(capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch) -> Collect:
    """Run `collect_main` in-process with test credentials; returns exit code and captured output."""

    def run(*argv: str, token: str | None = TOKEN, account_id: str | None = ACCOUNT_ID) -> CollectResult:
        for name, value in (("J1_API_TOKEN", token), ("J1_ACCOUNT_ID", account_id)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        monkeypatch.delenv("J1_ENDPOINT", raising=False)
        code = collect_main([*FAST_OPTIONS, *argv])
        captured = capsysbinary.readouterr()
        return CollectResult(code, captured.out, captured.err.decode())

    return run
