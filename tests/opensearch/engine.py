"""Writing to the node as the shipped Logstash pipeline does, and reading its mappings back."""

from __future__ import annotations

import hashlib
import queue
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from node import REPO, Client

sys.path.insert(0, str(REPO / "tests" / "collect"))
from es_model import IdRule, field_value

OPENSEARCH_CONF = REPO / "logstash" / "opensearch" / "j1-collector-opensearch.conf"
CHUNK_BYTES = 4_000_000


MAX_ID_BYTES = 512


def capped(doc_id: str) -> str:
    """The pipeline's guard: an id past OpenSearch's 512 bytes becomes its SHA-256."""
    raw = doc_id.encode()
    return hashlib.sha256(raw).hexdigest() if len(raw) > MAX_ID_BYTES else doc_id


def document_id(rule: IdRule, doc: dict[str, Any]) -> str:
    """The pipeline's id: the rule, else a SHA-256 of event.original, else a random uuid."""
    found = rule.document_id(doc)
    if found is not None:
        return capped(found)
    original = field_value(doc, "event.original")
    if original is not None:
        return hashlib.sha256(str(original).encode()).hexdigest()
    return str(uuid.uuid4())


@dataclass
class BulkResult:
    created: int = 0
    conflicts: int = 0
    rejected: list[str] = field(default_factory=list)  # "<status> <type>: <reason> | <doc head>"
    seconds: float = 0.0
    bytes: int = 0
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def docs_per_second(self) -> float:
        return (self.created + self.conflicts + len(self.rejected)) / self.seconds if self.seconds else 0.0


def _chunks(lines: Iterable[bytes]) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        chunk.append(line)
        size += len(line)
        if size >= CHUNK_BYTES and len(chunk) % 2 == 0:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _record(result: BulkResult, chunk: list[bytes], status: int, answer: Any) -> None:
    assert status == 200, f"_bulk: HTTP {status}: {orjson.dumps(answer)[:2000]!r}"
    for n, item in enumerate(answer["items"]):
        ((_, outcome),) = item.items()
        result.statuses[outcome["status"]] += 1
        if outcome["status"] in (200, 201):
            result.created += 1
        elif outcome["status"] == 409:
            result.conflicts += 1
        else:
            error = outcome.get("error", {})
            cause = error.get("caused_by", {}).get("reason", "")
            result.rejected.append(
                f"{outcome['status']} {error.get('type')}: {error.get('reason', '')} {cause} "
                f"| {chunk[2 * n + 1][:300]!r}"
            )


def bulk(
    client: Client, actions: Iterable[tuple[dict[str, Any], dict[str, Any]]], workers: int = 2
) -> BulkResult:
    """`_bulk` in chunks of about 4 MB (Logstash's target_bulk_bytes is 20 MB; smaller suits the
    512 MB heap), `workers` requests at a time as Logstash's pipeline workers send them; every
    item's status counted, every rejection kept with its reason. `seconds` is wall time."""
    result = BulkResult()

    def lines() -> Iterator[bytes]:
        for action, doc in actions:
            yield orjson.dumps(action) + b"\n"
            yield orjson.dumps(doc) + b"\n"

    clients = [client] + [Client(client.port) for _ in range(workers - 1)]
    free: queue.Queue[Client] = queue.Queue()
    for c in clients:
        free.put(c)
    lock = threading.Lock()

    def send(chunk: list[bytes]) -> None:
        body = b"".join(chunk)
        conn = free.get()
        try:
            status, answer = conn.request("POST", "/_bulk", ndjson=body)
        finally:
            free.put(conn)
        with lock:
            result.bytes += len(body)
            _record(result, chunk, status, answer)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        pending = []
        for chunk in _chunks(lines()):
            pending.append(pool.submit(send, chunk))
            if len(pending) >= 2 * workers:  # bounded memory: wait for the oldest
                pending.pop(0).result()
        for future in pending:
            future.result()
    result.seconds = time.perf_counter() - started
    for extra in clients[1:]:
        extra.close()
    return result


def creates(index: str, docs: Iterable[dict[str, Any]], rule: IdRule) -> Iterator[tuple[dict, dict]]:
    """What logstash-output-opensearch sends for the history: `create` into the data stream."""
    for doc in docs:
        yield {"create": {"_index": index, "_id": document_id(rule, doc)}}, doc


# -- mappings -----------------------------------------------------------------------------


def leaf_types(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"a": {"properties": {"b": {"type": "long"}}}} -> {"a.b": "long"} (multi-fields too)."""
    out: dict[str, str] = {}
    for name, node in properties.items():
        path = f"{prefix}{name}"
        if "properties" in node and node.get("type") in (None, "object"):
            out.update(leaf_types(node["properties"], path + "."))
            continue
        out[path] = node.get("type", "object")
        for sub, sub_node in node.get("fields", {}).items():
            out[f"{path}.{sub}"] = sub_node["type"]
    return out


def mapped_types(client: Client, index: str) -> dict[str, str]:
    """GET <index>/_mapping, every backing index merged: path -> type (a conflict fails)."""
    merged: dict[str, str] = {}
    for name, body in client.ok("GET", f"/{index}/_mapping").items():
        for path, kind in leaf_types(body["mappings"].get("properties", {})).items():
            assert merged.setdefault(path, kind) == kind, (
                f"{path}: {kind} in {name}, {merged[path]} elsewhere"
            )
    return merged


def emitted_leaves(doc: Any, prefix: str = "", flat: tuple[str, ...] = ()) -> Iterator[str]:
    """Every leaf path a document holds a value at; below a flat_object path, that path."""
    if prefix and prefix[:-1] in flat:
        yield prefix[:-1]
        return
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from emitted_leaves(value, f"{prefix}{key}.", flat)
    elif isinstance(doc, list):
        for value in doc:
            yield from emitted_leaves(value, prefix, flat)
    elif doc is not None and prefix:
        yield prefix[:-1]


def count(client: Client, index: str, query: dict[str, Any] | None = None) -> int:
    body = {"query": query} if query else None
    return int(client.ok("POST", f"/{index}/_count", body)["count"])


def refresh(client: Client, index: str) -> None:
    client.ok("POST", f"/{index}/_refresh")


def read_docs(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
