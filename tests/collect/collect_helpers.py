"""Helpers for the collect tests: invented entities and captured results (fixtures are in conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from j1filter.collect._timestamps import iso_from_ms

TOKEN = "tok-7f3e-NOT-A-REAL-SECRET-91c4d2"
ACCOUNT_ID = "acct-test-0001"
BASE_BEGIN_MS = 1_714_600_000_000  # 2024-05-01T21:46:40Z

# Tiny waits keep the suite fast; a test overrides any of them by passing the option again.
FAST_OPTIONS = [
    "--rate-limit",
    "0",
    "--max-retry-wait",
    "0.01",
    "--poll-interval",
    "0.01",
    "--timeout",
    "5",
    "--max-retries",
    "4",
]


def make_entity(
    index: int, *, version: int = 1, begin_ms: int | None = None, deleted: bool = False
) -> dict[str, Any]:
    """One invented queryV1 list item; even indexes render `_beginOn` as ISO, odd ones as epoch ms."""
    entity_id = f"0d5e1c4a-0000-4000-8000-{index:012d}"
    begin_ms = BASE_BEGIN_MS + index * 60_000 if begin_ms is None else begin_ms
    begin_on: object = begin_ms if index % 2 else iso_from_ms(begin_ms)
    return {
        "id": entity_id,
        "entity": {
            "_id": entity_id,
            "_key": f"test-scanner-finding-{index:05d}",
            "_type": "test_scanner_finding",
            "_class": ["Finding"],
            "_version": version,
            "_deleted": deleted,
            "_beginOn": begin_on,
            "_createdOn": iso_from_ms(BASE_BEGIN_MS),
            "_source": "integration-managed",
            "_accountId": ACCOUNT_ID,
            "displayName": f"Invented finding {index}",
        },
        "properties": {
            "name": f"Invented finding {index}",
            "severity": "high",
            "numericSeverity": 7,
            "open": True,
        },
    }


def make_entities(count: int) -> list[dict[str, Any]]:
    return [make_entity(index) for index in range(count)]


@dataclass
class CollectResult:
    code: int
    stdout: bytes
    stderr: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        """Every output line as written, `_collection` included."""
        return [json.loads(line) for line in self.stdout.splitlines()]

    @property
    def items(self) -> list[dict[str, Any]]:
        """The queryV1 items as J1 served them (without the `_collection` collect adds)."""
        return [{key: value for key, value in line.items() if key != "_collection"} for line in self.lines]

    @property
    def collections(self) -> list[dict[str, Any]]:
        return [line["_collection"] for line in self.lines]

    @property
    def ids(self) -> list[str]:
        return [item["entity"]["_id"] for item in self.items]


Collect = Callable[..., CollectResult]
