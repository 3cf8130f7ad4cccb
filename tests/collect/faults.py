"""Scripted misbehaviour for the J1 API simulator: test-only, the product never imports it.

    with Simulator(entities, page_size=2) as sim:
        sim.add_fault(Fault.http(429, retry_after="1"))      # the next request is throttled
        sim.add_fault(Fault.graphql_error("boom"), after=3)  # then 3 go through, then this

Faults hit GraphQL POSTs in order: `after` requests pass normally, then the fault is served
once. Kinds: an HTTP status with an optional ``Retry-After``; a GraphQL error in a 200; a
malformed JSON body; a slow answer; a body dripped byte by byte; a dropped connection; an
empty page that still has a cursor; a deferred job that ends ``FAILED``; any body at all.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from j1filter.collect import simulator as product
from j1filter.collect.simulator import JobFailed, RecordedRequest, Reply

FaultKind = Literal[
    "http",
    "graphql_error",
    "malformed",
    "slow",
    "drip",
    "disconnect",
    "empty_page",
    "deferred_failed",
    "body",
]


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour; build it with the class methods."""

    kind: FaultKind
    status: int = 200
    retry_after: str | None = None
    message: str = ""
    seconds: float = 0.0
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def http(cls, status: int, *, retry_after: str | None = None) -> Fault:
        """Answer with this HTTP status (429, 502, 401 ...) and an optional Retry-After header."""
        return cls("http", status=status, retry_after=retry_after)

    @classmethod
    def graphql_error(cls, message: str) -> Fault:
        """HTTP 200 with ``{"errors": [{"message": ...}], "data": null}``."""
        return cls("graphql_error", message=message)

    @classmethod
    def malformed(cls) -> Fault:
        """HTTP 200 with a truncated, unparsable JSON body."""
        return cls("malformed")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait `seconds` (real time), then answer normally."""
        return cls("slow", seconds=seconds)

    @classmethod
    def drip(cls, seconds_per_byte: float) -> Fault:
        """Answer normally, but send the body one byte every `seconds_per_byte`."""
        return cls("drip", seconds=seconds_per_byte)

    @classmethod
    def disconnect(cls) -> Fault:
        """Close the connection without answering."""
        return cls("disconnect")

    @classmethod
    def empty_page(cls) -> Fault:
        """An empty page whose cursor still points at the rest: not the end of the results."""
        return cls("empty_page")

    @classmethod
    def deferred_failed(cls, message: str) -> Fault:
        """In deferred mode, the job reports ``{"status": "FAILED", "error": message}``."""
        return cls("deferred_failed", message=message)

    @classmethod
    def answer(cls, status: int, body: bytes | object, headers: dict[str, str] | None = None) -> Fault:
        """Any answer at all: `body` as bytes, or a value sent as JSON (deep values through the stdlib)."""
        raw = body if isinstance(body, bytes) else _dumps(body)
        return cls("body", status=status, body=raw, headers=tuple((headers or {}).items()))


def _dumps(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        import json
        import sys

        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 10_000))
        try:
            return json.dumps(value).encode()
        finally:
            sys.setrecursionlimit(limit)


class Simulator(product.Simulator):
    """The product simulator plus a queue of scripted faults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._faults: deque[tuple[int, Fault]] = deque()
        self._fault_lock = threading.Lock()
        self._current = threading.local()

    def add_fault(self, fault: Fault, *, after: int = 0) -> None:
        """Queue `fault`: once the faults before it are served, let `after` GraphQL requests through, then serve it."""
        with self._fault_lock:
            self._faults.append((after, fault))

    def pending_faults(self) -> int:
        with self._fault_lock:
            return len(self._faults)

    def _next_fault(self) -> Fault | None:
        with self._fault_lock:
            if not self._faults:
                return None
            after, fault = self._faults[0]
            if after > 0:
                self._faults[0] = (after - 1, fault)
                return None
            self._faults.popleft()
            return fault

    def _scripted(self, record: RecordedRequest) -> Reply | None:
        fault = self._next_fault()
        self._current.fault = fault
        if fault is None:
            return None
        if fault.kind == "disconnect":
            return Reply(0, disconnect=True)
        if fault.kind == "http":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return Reply(fault.status, orjson.dumps({"error": f"HTTP {fault.status}"}), headers=headers)
        if fault.kind == "graphql_error":
            return product._json_reply(200, {"errors": [{"message": fault.message}], "data": None})
        if fault.kind == "malformed":
            return Reply(200, b'{"data": {"queryV1": {"type": "list", "data": [{"id": ')
        if fault.kind == "body":
            return Reply(fault.status, fault.body, headers=dict(fault.headers))
        if fault.kind == "slow":
            time.sleep(fault.seconds)
        if fault.kind == "drip":
            return Reply(**{**self._answer_query(record).__dict__, "drip": fault.seconds})
        return None

    def _result_for(self, record: RecordedRequest) -> dict[str, Any]:
        fault = getattr(self._current, "fault", None)
        if fault is not None and fault.kind == "deferred_failed":
            raise JobFailed(fault.message)
        empty = fault is not None and fault.kind == "empty_page"
        return self._page(record.j1ql or "", record.cursor, bool(record.include_deleted), empty)

    def _note(self, reply: Reply) -> str | None:
        fault = getattr(self._current, "fault", None)
        return fault.kind if fault is not None else None
