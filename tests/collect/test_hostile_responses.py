"""Hostile answers from the J1 side: every field of a page, of a GraphQL error and of a deferred
status, mutated with the hostile values the filter survives (tests/test_hostile_input.py).

For each mutation, one `--interval` collection on simulated time meets it: no exception leaves
the loop, every log line is one escaped line, and the next collection (a clean answer) writes
every entity. CI runs a seeded sample; ``J1FILTER_FULL_SWEEP=1`` runs all of them.
"""

from __future__ import annotations

import copy
import logging
import os
import random
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import orjson
import pytest
from collect_helpers import ACCOUNT_ID, TOKEN, make_entities
from simulated_time import simulated, simulated_client

from j1filter.collect.client import ConnectionSettings, J1Client
from j1filter.collect.collector import CollectOptions, Collector, _RecentIds
from j1filter.collect.pacing import RetryPolicy
from j1filter.collect.secrets import Secret
from j1filter.collect.service import Clock, collect_forever
from j1filter.collect.transport import Request, Response
from j1filter.io.jsontext import json_bytes
from tests.test_hostile_input import HOSTILE

FULL_SWEEP = os.environ.get("J1FILTER_FULL_SWEEP") == "1"
SAMPLE = 250
Path = tuple[Any, ...]

PAGE_FIELDS: list[Path] = [
    ("data",),
    ("data", "queryV1"),
    *[("data", "queryV1", key) for key in ("type", "data", "url", "cursor", "totalCount", "correlationId")],
    ("data", "queryV1", "data", 0),
    *[("data", "queryV1", "data", 0, key) for key in ("id", "entity", "properties")],
    *[
        ("data", "queryV1", "data", 0, "entity", key)
        for key in ("_id", "_version", "_deleted", "_beginOn", "_class", "_type", "_key", "displayName")
    ],
    ("data", "queryV1", "data", 0, "properties", "severity"),
    ("errors",),
]
ERROR = {"errors": [{"message": "m", "extensions": {"code": "C"}, "locations": [{"line": 1}], "path": ["q"]}]}
ERROR_FIELDS: list[Path] = [
    ("errors",),
    ("errors", 0),
    *[("errors", 0, key) for key in ("message", "extensions", "locations", "path")],
    ("errors", 0, "extensions", "code"),
    ("data",),
]
STATUS_FIELDS: list[Path] = [(key,) for key in ("status", "url", "error", "data", "cursor", "correlationId")]
DEFERRED_ANSWER_FIELDS: list[Path] = [("data", "queryV1", key) for key in ("type", "url", "data")]


@dataclass(frozen=True)
class Mutation:
    target: str  # "page", "error", "status" (a deferred state document), "deferred" (the POST answer)
    path: Path
    value: str  # a HOSTILE name


def mutations() -> list[Mutation]:
    every = [
        Mutation(target, path, name)
        for target, paths in (
            ("page", PAGE_FIELDS),
            ("error", ERROR_FIELDS),
            ("status", STATUS_FIELDS),
            ("deferred", DEFERRED_ANSWER_FIELDS),
        )
        for path in paths
        for name in HOSTILE
    ]
    return every if FULL_SWEEP else random.Random(13).sample(every, SAMPLE)


def set_at(document: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    *parents, last = path
    node = document
    for key in parents:
        node = node[key]
    node[last] = value
    return document


class MutatingTransport:
    """The simulator's in-process transport, with the first answer of one kind mutated."""

    def __init__(self, inner: Any, mutation: Mutation) -> None:
        self._inner = inner
        self._mutation = mutation
        self.done = False

    def send(self, request: Request) -> Response:
        response = self._inner.send(request)
        target = self._mutation.target
        kind = (
            "status"
            if request.url.endswith("state.json")
            else "post"
            if request.method == "POST"
            else "other"
        )
        if self.done or (target == "status") != (kind == "status") or kind == "other":
            return response
        document = orjson.loads(response.body)
        if target == "page" and document.get("data", {}).get("queryV1", {}).get("type") == "deferred":
            return response  # the page itself comes with the state document; mutate the inline one below
        if target == "error":
            document = copy.deepcopy(ERROR)
        if target == "deferred" and kind != "post":
            return response
        self.done = True
        mutated = set_at(document, self._mutation.path, copy.deepcopy(HOSTILE[self._mutation.value]))
        return replace(response, body=json_bytes(mutated))


@pytest.fixture
def one_line_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="j1filter.collect")
    yield caplog
    for record in caplog.records:
        text = record.getMessage()
        assert "\n" not in text and "\x1b" not in text and "Traceback" not in text, text
        assert TOKEN not in text


@pytest.mark.parametrize(
    "mutation", mutations(), ids=lambda m: f"{m.target}:{'.'.join(map(str, m.path))}={m.value}"
)
def test_a_hostile_answer_is_one_log_line_and_the_next_collection_works(
    mutation: Mutation, one_line_logs: pytest.LogCaptureFixture
) -> None:
    fake, sim = simulated(make_entities(5), page_size=2)
    sim.deferred_inline = mutation.target != "page"  # page fields: the result document behind the url
    transport = MutatingTransport(sim.transport(), mutation)
    client = simulated_client(sim, fake, retry=RetryPolicy(max_attempts=2, base_delay=1, max_delay=1))
    client._transport = transport
    written: list[bytes] = []

    class Sink:
        def write(self, data: bytes) -> int:
            written.append(data)
            return len(data)

        def flush(self) -> None:
            pass

    collector = Collector(client, Sink(), CollectOptions(query="FIND Finding", clock_ms=fake.clock_ms))  # type: ignore[arg-type]
    collect_forever(collector, 60.0, clock=Clock(fake.clock_ms, fake.clock, fake.sleep), runs=2)
    lines = b"".join(written).splitlines()
    ids = {line.split(b'"id":"', 1)[1].split(b'"', 1)[0] for line in lines if b'"id":"' in line}
    assert {entity["id"].encode() for entity in sim.entities} <= ids, (
        "the clean collection after it lost entities"
    )


def test_the_dedupe_window_holds_digests_whatever_the_ids() -> None:
    import tracemalloc

    window = _RecentIds(100)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for page in range(40):  # 40 pages of 20 entities with 1 MB ids: 883 MB before digests
            for index in range(20):
                entity = {"_id": f"{page:03d}{index:03d}" + "i" * 1_000_000, "_version": 1}
                assert not window.repeat(entity)
                del entity
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= 100 * _RecentIds.ENTRY_BYTES, held


def _read_request(connection: socket.socket) -> bytes:
    """One HTTP request, headers and body (by its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_content_length_that_is_no_number_is_not_a_crash() -> None:
    """`²` is a digit to str.isdigit(), not to int(): the answer is read as if none was sent."""
    body = orjson.dumps({"data": {"queryV1": {"type": "list", "data": make_entities(1), "cursor": None}}})
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            _read_request(connection)  # all of it: closing on unread bytes would reset the connection
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\nConnection: close\r\n\r\n" + body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    client = J1Client(
        ConnectionSettings(f"http://127.0.0.1:{port}/graphql", timeout=5),
        Secret(TOKEN),
        ACCOUNT_ID,
        deferred=False,
        rate_limit_per_minute=0,
        retry=RetryPolicy(max_attempts=1),
    )
    (page,) = list(client.pages("FIND Finding"))
    thread.join(5)
    server.close()
    assert len(page.items) == 1
