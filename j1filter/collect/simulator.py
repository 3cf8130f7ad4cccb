"""A local stand-in for JupiterOne's GraphQL ``queryV1`` API, for tests and demos.

    with Simulator(entities, page_size=2) as sim:
        ...  # j1filter collect --endpoint sim.url, J1_API_TOKEN=demo-token, J1_ACCOUNT_ID=demo-account
        assert len(sim.requests) == ...

What it speaks (stdlib ``http.server``, one thread per connection; or in-process, on simulated
time, through `Simulator.transport()` and an injected `clock_ms` and `sleep`):

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
  ``GET`` on that state URL says ``IN_PROGRESS`` `deferred_polls` times (default 0), then ``COMPLETED``
  with the page inline (`deferred_inline`, the default) or behind a second ``url``, and not
  before `query_seconds` have passed.
- Time: a query takes `query_seconds`; inline (without FORCE) one past 30 s ends in J1's
  gateway answer, HTTP 504 after 30 s. `page_delay` slows every answer down in real time.
- Rate limits (`tier`, one of `TIERS`): a token bucket per account with J1's documented rates
  and burst; every GraphQL answer carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and
  ``RateLimit-Reset``; past the limit, HTTP 429 with ``Retry-After`` (a refused request costs
  nothing).

Tests script misbehaviour in a subclass (tests/collect/faults.py) through `_scripted` and
`_result_for`; the product never imports it. `requests` records every request received
(method, path, status, J1QL, cursor, whether credentials came along, a note on special
answers); credentials themselves are never stored or logged.
"""

from __future__ import annotations

import base64
import copy
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import orjson

from ..io.jsontext import json_bytes
from ._timestamps import iso_from_ms, timestamp_ms
from .transport import Request, Response, Retryable

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
    note: str | None = None  # what was special about the answer ("rate limited", a test's script)


@dataclass(frozen=True)
class Reply:
    """One answer: `disconnect` drops the connection instead; `drip` sends the body slowly."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    drip: float = 0.0
    disconnect: bool = False


@dataclass(frozen=True)
class RateTier:
    """J1's documented per-account J1QL limits: requests a minute and the burst a full bucket allows."""

    name: str
    per_minute: int
    burst: int


#: docs `jupiterone-api.md` (2023): Free 10/min, Freemium 30/min, no burst; Enterprise 60/min with burst.
TIERS = {
    "free": RateTier("free", 10, 1),
    "freemium": RateTier("freemium", 30, 1),
    "enterprise": RateTier("enterprise", 60, 60),
}
#: Past this an inline (not deferred) query times out at J1's API gateway.
GATEWAY_TIMEOUT_SECONDS = 30.0


class JobFailed(Exception):
    """The query fails inside J1: a FAILED deferred job, or a GraphQL error inline."""


def _json_reply(status: int, document: object, headers: dict[str, str] | None = None) -> Reply:
    # integers beyond 64 bits, lone surrogates, any depth: what J1 data may hold
    return Reply(status, json_bytes(document), headers=headers or {})


@dataclass
class _DeferredJob:
    result: dict[str, Any] | None
    polls_left: int
    failure: str | None
    ready_at: float  # simulated seconds


class _Bucket:
    """A token bucket: `burst` tokens, refilled at `per_minute` a minute; a refused request costs nothing."""

    def __init__(self, tier: RateTier, now: float) -> None:
        self.tier = tier
        self.tokens = float(tier.burst)
        self.updated = now

    def take(self, now: float) -> tuple[bool, dict[str, str]]:
        rate = self.tier.per_minute / 60.0
        self.tokens = min(float(self.tier.burst), self.tokens + (now - self.updated) * rate)
        self.updated = now
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        headers = {
            "RateLimit-Limit": f"{self.tier.per_minute}, {self.tier.per_minute};window=60",
            "RateLimit-Remaining": str(int(self.tokens)),
            "RateLimit-Reset": str(math.ceil((self.tier.burst - self.tokens) / rate)),
        }
        if not allowed:
            headers["Retry-After"] = str(math.ceil((1.0 - self.tokens) / rate))
        return allowed, headers


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
        sleep: Callable[[float], None] = time.sleep,
        tier: RateTier | None = None,
        listen: bool = True,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.entities = load_sample_entities() if entities is None else entities
        self.page_size = page_size
        self.page_delay = 0.0
        self.query_seconds = 0.0  # how long J1 takes to run a query (simulated with `sleep`)
        self.clock_ms: Callable[[], int] = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.sleep = sleep
        self.deleted_retention_ms: int | None = DELETED_RETENTION_MS if clock_ms else None
        self.deferred_polls = 0  # IN_PROGRESS answers before a job is done (besides query_seconds)
        self.deferred_inline = True
        self.requests: list[RecordedRequest] = []
        self._token = token
        self._account_id = account_id
        self._bucket = _Bucket(tier, self._seconds()) if tier else None
        self._snapshots: dict[str, list[dict[str, Any]]] = {}
        self._jobs: dict[str, _DeferredJob] = {}
        self._lock = threading.Lock()
        self._host = host
        self._server = _Server((host, port), _Handler, self) if listen else None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        port = self._server.server_port if self._server else 80
        return f"http://{self._host}:{port}/graphql"

    def __repr__(self) -> str:
        return f"Simulator(url={self.url!r}, entities={len(self.entities)}, page_size={self.page_size})"

    def start(self) -> Simulator:
        if self._server is None:
            return self
        # A short poll interval keeps stop() quick; serve_forever checks for shutdown this often.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="j1-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def transport(self) -> SimulatedTransport:
        """The client's `Transport`, answered in-process: no socket, simulated time only."""
        return SimulatedTransport(self)

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

    def _seconds(self) -> float:
        return self.clock_ms() / 1000.0

    def graphql_requests(self) -> list[RecordedRequest]:
        """The recorded POSTs (download GETs left out)."""
        with self._lock:
            return [request for request in self.requests if request.method == "POST"]

    # -- one request, whatever carries it (HTTP or the in-process transport) -----------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes, base_url: str) -> Reply:
        """The answer to one request; `headers` with lower-case names."""
        if method == "POST":
            return self._handle_post(path, headers, body)
        return self._handle_get(path, headers, base_url)

    def _handle_post(self, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        has_credentials = "authorization" in headers
        account = headers.get("jupiterone-account") or headers.get("lifeomic-account")
        if not self._credentials_ok(headers.get("authorization"), account):
            self._record(RecordedRequest("POST", path, 401, has_credentials))
            return Reply(401, b"Unauthorized", "text/plain")
        try:
            variables = orjson.loads(body)["variables"]
            j1ql = variables["query"]
        except (ValueError, KeyError, TypeError):
            self._record(RecordedRequest("POST", path, 400, has_credentials))
            return _json_reply(
                400, {"errors": [{"message": "Must provide a queryV1 operation with a $query variable"}]}
            )
        record = RecordedRequest(
            "POST",
            path,
            200,
            has_credentials,
            j1ql=j1ql,
            cursor=variables.get("cursor"),
            include_deleted=variables.get("includeDeleted"),
            deferred=variables.get("deferredResponse") == "FORCE",
        )
        limit_headers: dict[str, str] = {}
        if self._bucket is not None:
            with self._lock:
                allowed, limit_headers = self._bucket.take(self._seconds())
            if not allowed:
                self._record(replace(record, status=429, note="rate limited"))
                return _json_reply(429, {"error": "Too Many Requests"}, limit_headers)
        reply = self._scripted(record)
        if reply is None:
            if self.page_delay:
                time.sleep(self.page_delay)
            reply = self._answer_query(record)
        reply = replace(reply, headers={**limit_headers, **reply.headers})
        # Record before answering, so a client that has its answer always finds it in `requests`.
        self._record(replace(record, status=0 if reply.disconnect else reply.status, note=self._note(reply)))
        return reply

    def _scripted(self, record: RecordedRequest) -> Reply | None:
        """A test's own answer to this request instead of J1's (None: J1's). For subclasses."""
        return None

    def _note(self, reply: Reply) -> str | None:
        return None

    def _answer_query(self, record: RecordedRequest) -> Reply:
        failure = None
        try:
            result = self._result_for(record)
        except JobFailed as error:
            result, failure = None, str(error)
        except ValueError as error:
            return _json_reply(200, {"errors": [{"message": str(error)}], "data": None})
        if record.deferred:
            job_id = self._new_job(result, failure)
            url = f"{self.url.removesuffix('/graphql')}/deferred/{job_id}/state.json"
            return _json_reply(
                200,
                {
                    "data": {
                        "queryV1": {"type": "deferred", "data": None, "url": url, "correlationId": job_id}
                    }
                },
            )
        if self.query_seconds > GATEWAY_TIMEOUT_SECONDS:
            self.sleep(GATEWAY_TIMEOUT_SECONDS)
            return _json_reply(504, {"message": "Endpoint request timed out"})
        if self.query_seconds:
            self.sleep(self.query_seconds)
        if failure is not None:
            return _json_reply(200, {"errors": [{"message": failure}], "data": None})
        return _json_reply(200, {"data": {"queryV1": result}})

    def _result_for(self, record: RecordedRequest) -> dict[str, Any]:
        """The queryV1 result of a query; raises ValueError (a GraphQL error) or JobFailed. For subclasses."""
        return self._page(record.j1ql or "", record.cursor, bool(record.include_deleted))

    def _handle_get(self, path: str, headers: Mapping[str, str], base_url: str) -> Reply:
        """Deferred-mode downloads: /deferred/<job>/state.json and /deferred/<job>/result.json."""
        match = re.fullmatch(r"/deferred/([0-9a-f]+)/(state|result)\.json", path)
        document = None
        if match:
            job_id, which = match.groups()
            document = self._job_state(job_id, base_url) if which == "state" else self._job_result(job_id)
        status = 200 if document is not None else 404
        self._record(RecordedRequest("GET", path, status, "authorization" in headers))
        return _json_reply(status, document if document is not None else {"error": "Not Found"})

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
        log.debug(
            "%s %s -> %d%s",
            request.method,
            request.path,
            request.status,
            f" ({request.note})" if request.note else "",
        )

    def _credentials_ok(self, authorization: str | None, account: str | None) -> bool:
        return authorization == f"Bearer {self._token}" and account == self._account_id

    def _page(
        self, j1ql: str, cursor: str | None, include_deleted: bool, empty: bool = False
    ) -> dict[str, Any]:
        """A queryV1 result; raises ValueError with a J1-like message on a bad query or cursor.
        `empty`: a page of no entities whose cursor points at the rest (J1 may send one)."""
        if cursor is None:
            snapshot_key = uuid.uuid4().hex
            with self._lock:
                matches = _matching(self.entities, j1ql, include_deleted, self._retained_since())
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
            "data": matches[offset:end],  # serialised at once: J1 sends bytes, not our objects
            "cursor": next_cursor,
            "totalCount": len(matches),
            "correlationId": uuid.uuid4().hex,
        }

    def _new_job(self, result: dict[str, Any] | None, failure: str | None) -> str:
        job_id = uuid.uuid4().hex
        with self._lock:
            ready_at = self._seconds() + self.query_seconds
            self._jobs[job_id] = _DeferredJob(result, self.deferred_polls, failure, ready_at)
        return job_id

    def _job_state(self, job_id: str, base_url: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.polls_left > 0 or self._seconds() < job.ready_at:
                job.polls_left = max(0, job.polls_left - 1)
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


class SimulatedTransport:
    """`transport.Transport` served by a `Simulator` in the same process (no socket, no thread)."""

    def __init__(self, simulator: Simulator) -> None:
        self._simulator = simulator

    def send(self, request: Request) -> Response:
        parts = urlsplit(request.url)
        headers = {name.lower(): value for name, value in request.headers.items()}
        reply = self._simulator.handle(
            request.method, parts.path, headers, request.body or b"", f"{parts.scheme}://{parts.netloc}"
        )
        if reply.disconnect:
            raise Retryable(f"{parts.netloc}: network error: the connection was closed")
        return Response(
            reply.status, {name.lower(): value for name, value in reply.headers.items()}, reply.body
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow answer's thread must not hold up stop()

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

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # requests are recorded and logged by Simulator._record instead

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length))

    def do_GET(self) -> None:
        self._answer(b"")

    def _answer(self, body: bytes) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        host = self.headers.get("Host")
        base_url = f"http://{host}" if host else self.server.simulator.url.removesuffix("/graphql")
        reply = self.server.simulator.handle(self.command, self.path, headers, body, base_url)
        if reply.disconnect:
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not reply.drip:
            self.wfile.write(reply.body)
            return
        for offset in range(len(reply.body)):  # a slow-drip server: every read gets one byte
            self.wfile.write(reply.body[offset : offset + 1])
            self.wfile.flush()
            time.sleep(reply.drip)


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
