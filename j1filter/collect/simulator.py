"""A local stand-in for JupiterOne's GraphQL ``queryV1`` API, for tests and demos.

    with Simulator(entities, page_size=2) as sim:
        sim.add_fault(Fault.http(429, retry_after="1"))   # the next request is throttled
        sim.add_fault(Fault.graphql_error("boom"), after=3)  # then 3 go through, then this
        ...  # j1filter collect --endpoint sim.url, J1_API_TOKEN=demo-token, J1_ACCOUNT_ID=demo-account
        assert len(sim.requests) == ...

What it speaks (stdlib ``http.server``, one thread per connection):

- ``POST <url>`` with a GraphQL body calling ``queryV1``. It checks
  ``Authorization: Bearer <token>`` and the ``JupiterOne-Account`` (or ``LifeOmic-Account``)
  header, answering 401 ``Unauthorized`` as J1 does. Variables read: ``query`` (J1QL),
  ``cursor``, ``includeDeleted``, ``deferredResponse``.
- J1QL: ``FIND <Class | type | (A | B ...) | *>`` selects by class (a capitalised name, matched
  against ``_class``) or type (``_type``); ``WITH`` conditions joined by ``AND`` are honoured
  when they are ``_beginOn > X`` (X epoch ms, ``date(ISO)`` or a quoted ISO string) or
  ``property = 'text' | "text" | number | true | false``; any other condition is ignored (and
  logged). Entities with ``_deleted: true`` are served only with ``includeDeleted: true``; with a
  `clock_ms` (simulated time), only for 7 days after their ``_endOn``, as J1 keeps them (without
  one, the data set is a fixed snapshot and its deletions are always served).
- State that changes over a controllable clock (`clock_ms`): `upsert`, `update` and `delete`
  stamp ``_beginOn``/``_version``/``_endOn`` as J1 does, for accelerated-time tests.
- Cursor paging: the first request snapshots the matching entities; each page holds
  `page_size` of them and an opaque cursor, and the last page has ``"cursor": null``.
- Deferred mode (``deferredResponse: FORCE``): the answer is ``{"type": "deferred", "url"}``;
  ``GET`` on that state URL says ``IN_PROGRESS`` `deferred_polls` times, then ``COMPLETED``
  with the page inline (`deferred_inline`, the default) or behind a second ``url``.

Faults are queued with `add_fault(fault, after=n)` and hit GraphQL POSTs in order: `n`
requests pass normally, then the fault is served once. Kinds (see `Fault`): an HTTP
status with an optional ``Retry-After``; a GraphQL error in a 200; a malformed JSON body;
a slow answer; a body dripped byte by byte; a dropped connection; an empty page that still
has a cursor; a deferred job that ends ``FAILED``. `page_delay` slows every answer down.

`requests` records every request received (method, path, status, J1QL, cursor, whether
credentials came along, which fault was served); credentials themselves are never stored
or logged.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Literal, NamedTuple

import orjson

from ._timestamps import iso_from_ms, timestamp_ms

log = logging.getLogger("j1filter.simulator")

DEMO_TOKEN = "demo-token"
DEMO_ACCOUNT_ID = "demo-account"

DELETED_RETENTION_MS = 7 * 86_400_000  # J1 serves deleted entities (includeDeleted) this long

_BEGIN_ON_FILTER = re.compile(
    r"_beginOn\s*>\s*(?:date\(\s*([^)]*?)\s*\)|'([^']*)'|\"([^\"]*)\"|(\d+))", re.IGNORECASE
)
_FIND = re.compile(
    r"^\s*FIND\s+(\*|\([^)]*\)|[A-Za-z_][\w-]*)(?:\s+WITH\s+(.*?))?\s*$", re.IGNORECASE | re.DOTALL
)
_AND = re.compile(r"\s+AND\s+(?=(?:[^'\"]|'[^']*'|\"[^\"]*\")*$)", re.IGNORECASE)
_EQUALS = re.compile(
    r"^\(*\s*([\w.]+)\s*=\s*('([^']*)'|\"([^\"]*)\"|true|false|-?\d+(?:\.\d+)?)\s*\)*$", re.IGNORECASE
)
_BEGIN_ON_CONDITION = re.compile(r"^\(*\s*_beginOn\s*>", re.IGNORECASE)


def load_sample_entities() -> list[dict[str, Any]]:
    """The bundled sample data set, `j1filter/samples/entities.ndjson`: one queryV1 item a line."""
    resource = resources.files("j1filter").joinpath("samples").joinpath("entities.ndjson")
    text = resource.read_text(encoding="utf-8")  # FileNotFoundError if the package ships none
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


FaultKind = Literal[
    "http", "graphql_error", "malformed", "slow", "drip", "disconnect", "empty_page", "deferred_failed"
]


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour; build it with the class methods."""

    kind: FaultKind
    status: int = 200
    retry_after: str | None = None
    message: str = ""
    seconds: float = 0.0

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
        """Wait `seconds`, then answer normally."""
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


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    status: int
    has_credentials: bool
    j1ql: str | None = None
    cursor: str | None = None
    include_deleted: bool | None = None
    deferred: bool = False
    fault: FaultKind | None = None


class _Answer(NamedTuple):
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] | None = None


def _json_answer(status: int, document: object) -> _Answer:
    try:
        body = orjson.dumps(document)
    except TypeError:  # integers beyond 64 bits, lone surrogates: what J1 data may hold
        body = json.dumps(document).encode()
    return _Answer(status, body, "application/json")


@dataclass
class _DeferredJob:
    result: dict[str, Any] | None
    polls_left: int
    failure: str | None


class Simulator:
    """The J1 API simulator as a context manager (or `start()`/`stop()`); see the module docstring."""

    def __init__(
        self,
        entities: list[dict[str, Any]] | None = None,
        *,
        token: str = DEMO_TOKEN,
        account_id: str = DEMO_ACCOUNT_ID,
        page_size: int = 2,
        host: str = "127.0.0.1",
        port: int = 0,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.entities = load_sample_entities() if entities is None else entities
        self.page_size = page_size
        self.page_delay = 0.0
        self.clock_ms: Callable[[], int] = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.deleted_retention_ms: int | None = DELETED_RETENTION_MS if clock_ms else None
        self.deferred_polls = 1
        self.deferred_inline = True
        self.requests: list[RecordedRequest] = []
        self._token = token
        self._account_id = account_id
        self._faults: deque[tuple[int, Fault]] = deque()
        self._snapshots: dict[str, list[dict[str, Any]]] = {}
        self._jobs: dict[str, _DeferredJob] = {}
        self._lock = threading.Lock()
        self._host = host
        self._server = _Server((host, port), _Handler, self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}/graphql"

    def __repr__(self) -> str:
        return f"Simulator(url={self.url!r}, entities={len(self.entities)}, page_size={self.page_size})"

    def start(self) -> Simulator:
        # A short poll interval keeps stop() quick; serve_forever checks for shutdown this often.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="j1-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def add_fault(self, fault: Fault, *, after: int = 0) -> None:
        """Queue `fault`: once the faults before it are served, let `after` GraphQL requests through, then serve it."""
        with self._lock:
            self._faults.append((after, fault))

    def pending_faults(self) -> int:
        """How many queued faults have not been served yet."""
        with self._lock:
            return len(self._faults)

    # -- J1 state that changes over time ---------------------------------------------

    def count(self, j1ql: str, *, include_deleted: bool) -> tuple[int, int]:
        """(entities served for `j1ql`, of which deleted): what a collection would write."""
        served = _matching(self.entities, j1ql, include_deleted, self._retained_since())
        return len(served), sum(1 for item in served if item["entity"].get("_deleted") is True)

    def upsert(self, item: dict[str, Any]) -> dict[str, Any]:
        """Create the entity (version 1) or replace its content (next version), stamped now."""
        now = self.clock_ms()
        entity = item["entity"]
        with self._lock:
            position = self._position(entity["_id"])
            previous = self.entities[position]["entity"] if position is not None else None
            entity["_version"] = previous["_version"] + 1 if previous else 1
            entity.setdefault("_createdOn", previous.get("_createdOn") if previous else iso_from_ms(now))
            entity.update({"_beginOn": iso_from_ms(now), "_deleted": False})
            entity.pop("_endOn", None)
            if position is None:
                self.entities.append(item)
            else:
                self.entities[position] = item
        return item

    def update(self, entity_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        """A new version of a live entity with `properties` merged in."""
        with self._lock:
            position = self._position(entity_id)
            if position is None:
                raise KeyError(entity_id)
            item = copy.deepcopy(self.entities[position])
        item.setdefault("properties", {}).update(properties)
        return self.upsert(item)

    def delete(self, entity_id: str, *, new_version: bool = False) -> None:
        """Mark deleted now (`_deleted`, `_endOn`); J1 serves it with includeDeleted for 7 days.
        Whether J1 also writes a new version (and `_beginOn`) is not documented: both are possible."""
        now = iso_from_ms(self.clock_ms())
        with self._lock:
            position = self._position(entity_id)
            if position is None:
                raise KeyError(entity_id)
            entity = self.entities[position]["entity"]
            entity.update({"_deleted": True, "_endOn": now})
            if new_version:
                entity.update({"_version": entity["_version"] + 1, "_beginOn": now})

    def _retained_since(self) -> int | None:
        """Deleted entities that ended before this are gone from J1 (None: keep them all)."""
        return None if self.deleted_retention_ms is None else self.clock_ms() - self.deleted_retention_ms

    def _position(self, entity_id: str) -> int | None:
        for position, item in enumerate(self.entities):
            if item["entity"].get("_id") == entity_id:
                return position
        return None

    def graphql_requests(self) -> list[RecordedRequest]:
        """The recorded POSTs (download GETs left out)."""
        with self._lock:
            return [request for request in self.requests if request.method == "POST"]

    # -- called by the handler threads ---------------------------------------------

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            after, fault = self._faults[0]
            if after > 0:
                self._faults[0] = (after - 1, fault)
                return None
            self._faults.popleft()
            return fault

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
        log.info(
            "%s %s -> %d%s",
            request.method,
            request.path,
            request.status,
            f" ({request.fault})" if request.fault else "",
        )

    def _credentials_ok(self, authorization: str | None, account: str | None) -> bool:
        return authorization == f"Bearer {self._token}" and account == self._account_id

    def _page(self, j1ql: str, cursor: str | None, include_deleted: bool, empty: bool) -> dict[str, Any]:
        """A queryV1 result; raises ValueError with a J1-like message on a bad query or cursor."""
        if cursor is None:
            snapshot_key = uuid.uuid4().hex
            with self._lock:
                matches = _matching(self.entities, j1ql, include_deleted, self._retained_since())
            with self._lock:
                self._snapshots[snapshot_key] = matches
            offset, page_number = 0, 0
        else:
            snapshot_key, offset, page_number = _decode_cursor(cursor)
            with self._lock:
                snapshot = self._snapshots.get(snapshot_key)
            if snapshot is None:
                raise ValueError("Invalid or expired cursor")
            matches = snapshot
        end = offset if empty else offset + self.page_size
        next_cursor = _encode_cursor(snapshot_key, end, page_number + 1) if end < len(matches) else None
        return {
            "type": "list",
            "data": copy.deepcopy(matches[offset:end]),
            "cursor": next_cursor,
            "totalCount": len(matches),
            "correlationId": uuid.uuid4().hex,
        }

    def _new_job(self, result: dict[str, Any] | None, failure: str | None) -> str:
        job_id = uuid.uuid4().hex
        with self._lock:
            self._jobs[job_id] = _DeferredJob(result, self.deferred_polls, failure)
        return job_id

    def _job_state(self, job_id: str, base_url: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.polls_left > 0:
                job.polls_left -= 1
                return {"status": "IN_PROGRESS", "correlationId": job_id}
        if job.failure is not None:
            return {"status": "FAILED", "error": job.failure, "correlationId": job_id}
        state = {
            "status": "COMPLETED",
            "correlationId": job_id,
            "url": f"{base_url}/deferred/{job_id}/result.json",
        }
        if self.deferred_inline:
            state.update(job.result or {})
        return state

    def _job_result(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job.result if job and job.failure is None else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow-fault thread must not hold up stop()

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], simulator: Simulator
    ) -> None:
        super().__init__(address, handler)
        self.simulator = simulator

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that timed out and left makes the late answer fail; that is expected here.
        log.debug("connection from %s ended early", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "j1-simulator"

    @property
    def simulator(self) -> Simulator:
        return self.server.simulator

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # requests are recorded and logged by Simulator._record instead

    def do_POST(self) -> None:
        sim = self.simulator
        has_credentials = "Authorization" in self.headers
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        account = self.headers.get("JupiterOne-Account") or self.headers.get("LifeOmic-Account")
        if not sim._credentials_ok(self.headers.get("Authorization"), account):
            sim._record(RecordedRequest("POST", self.path, 401, has_credentials))
            self._send(401, b"Unauthorized", "text/plain")
            return
        try:
            variables = orjson.loads(body)["variables"]
            j1ql = variables["query"]
        except (ValueError, KeyError, TypeError):
            sim._record(RecordedRequest("POST", self.path, 400, has_credentials))
            self._send(
                *_json_answer(
                    400, {"errors": [{"message": "Must provide a queryV1 operation with a $query variable"}]}
                )
            )
            return
        fault = sim._next_fault()
        record = RecordedRequest(
            "POST",
            self.path,
            200,
            has_credentials,
            j1ql=j1ql,
            cursor=variables.get("cursor"),
            include_deleted=variables.get("includeDeleted"),
            deferred=variables.get("deferredResponse") == "FORCE",
            fault=fault.kind if fault else None,
        )
        if fault and fault.kind == "slow":
            time.sleep(fault.seconds)
        if sim.page_delay:
            time.sleep(sim.page_delay)
        answer = self._answer_query(record, fault)
        # Record before answering, so a client that has its answer always finds it in `requests`.
        sim._record(replace(record, status=answer.status if answer else 0))
        if answer:
            self._send(*answer, drip=fault.seconds if fault and fault.kind == "drip" else 0.0)
        else:
            self.close_connection = True

    def _answer_query(self, record: RecordedRequest, fault: Fault | None) -> _Answer | None:
        """The queryV1 answer, or the scripted fault; None means: drop the connection."""
        if fault and fault.kind == "disconnect":
            return None
        if fault and fault.kind == "http":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return _Answer(
                fault.status, orjson.dumps({"error": f"HTTP {fault.status}"}), "application/json", headers
            )
        if fault and fault.kind == "graphql_error":
            return _json_answer(200, {"errors": [{"message": fault.message}], "data": None})
        if fault and fault.kind == "malformed":
            return _Answer(200, b'{"data": {"queryV1": {"type": "list", "data": [{"id": ', "application/json")

        failure = fault.message if fault and fault.kind == "deferred_failed" else None
        try:
            result = (
                None if failure else self._page_for(record, empty=bool(fault and fault.kind == "empty_page"))
            )
        except ValueError as error:
            return _json_answer(200, {"errors": [{"message": str(error)}], "data": None})
        if record.deferred:
            job_id = self.simulator._new_job(result, failure)
            result = {
                "type": "deferred",
                "data": None,
                "url": f"{self._base_url()}/deferred/{job_id}/state.json",
                "correlationId": job_id,
            }
        return _json_answer(200, {"data": {"queryV1": result}})

    def _page_for(self, record: RecordedRequest, *, empty: bool) -> dict[str, Any]:
        return self.simulator._page(record.j1ql or "", record.cursor, bool(record.include_deleted), empty)

    def do_GET(self) -> None:
        """Deferred-mode downloads: /deferred/<job>/state.json and /deferred/<job>/result.json."""
        sim = self.simulator
        match = re.fullmatch(r"/deferred/([0-9a-f]+)/(state|result)\.json", self.path)
        document = None
        if match:
            job_id, which = match.groups()
            document = (
                sim._job_state(job_id, self._base_url()) if which == "state" else sim._job_result(job_id)
            )
        status = 200 if document is not None else 404
        sim._record(RecordedRequest("GET", self.path, status, "Authorization" in self.headers))
        self._send(*_json_answer(status, document if document is not None else {"error": "Not Found"}))

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.simulator.url.removesuffix("/graphql")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        *,
        drip: float = 0.0,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not drip:
            self.wfile.write(body)
            return
        for offset in range(len(body)):  # a slow-drip server: every read gets one byte
            self.wfile.write(body[offset : offset + 1])
            self.wfile.flush()
            time.sleep(drip)


def _matching(
    entities: list[dict[str, Any]], j1ql: str, include_deleted: bool, retained_since: int | None
) -> list[dict[str, Any]]:
    since_ms = _begin_on_filter(j1ql)
    wanted, conditions = _find_clause(j1ql)
    matches = []
    for item in entities:
        entity = item.get("entity") or {}
        if entity.get("_deleted") is True:
            ended = timestamp_ms(entity.get("_endOn"))
            if not include_deleted or (
                retained_since is not None and ended is not None and ended < retained_since
            ):
                continue
        if since_ms is not None:
            begin_ms = timestamp_ms(entity.get("_beginOn"))
            if begin_ms is None or begin_ms <= since_ms:
                continue
        if wanted is not None and "entity" in item and not _selected(entity, wanted):  # rows pass
            continue
        if all(_value_of(item, name) == value for name, value in conditions):
            matches.append(item)
    return matches


def _find_clause(j1ql: str) -> tuple[set[str] | None, list[tuple[str, object]]]:
    """(class or type names, or None for any; equality conditions) of a FIND query."""
    match = _FIND.match(j1ql)
    if not match:
        log.warning("query not understood, serving every entity: %.200s", j1ql)
        return None, []
    target, where = match.groups()
    wanted = (
        None if target == "*" else {name.strip() for name in target.strip("()").split("|") if name.strip()}
    )
    conditions: list[tuple[str, object]] = []
    for condition in _AND.split(where or ""):
        equality = _EQUALS.match(condition.strip())
        if equality:
            name, literal, single, double = equality.groups()
            value = single if single is not None else double
            conditions.append((name, value if value is not None else orjson.loads(literal.lower())))
        elif condition.strip() and not _BEGIN_ON_CONDITION.match(condition.strip()):
            log.warning("condition ignored by the simulator: %.200s", condition.strip())
    return wanted, conditions


def _selected(entity: dict[str, Any], wanted: set[str]) -> bool:
    classes, types = entity.get("_class"), entity.get("_type")
    names = set(classes if isinstance(classes, list) else [classes])
    names.update(types if isinstance(types, list) else [types])
    return bool(names & wanted)


def _value_of(item: dict[str, Any], name: str) -> object:
    properties = item.get("properties")
    if isinstance(properties, dict) and name in properties:
        return properties[name]
    return (item.get("entity") or {}).get(name)


def _begin_on_filter(j1ql: str) -> int | None:
    match = _BEGIN_ON_FILTER.search(j1ql)
    if not match:
        return None
    literal = next(group for group in match.groups() if group is not None)
    since_ms = timestamp_ms(literal)
    if since_ms is None:
        raise ValueError(f"Could not parse date value {literal!r} in J1QL")
    return since_ms


def _encode_cursor(snapshot_key: str, offset: int, page_number: int) -> str:
    raw = orjson.dumps({"cacheKey": snapshot_key, "offset": offset, "page": page_number})
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[str, int, int]:
    try:
        fields = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(fields["cacheKey"]), int(fields["offset"]), int(fields["page"])
    except (ValueError, KeyError, TypeError):
        raise ValueError("Invalid or expired cursor") from None
