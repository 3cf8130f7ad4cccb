"""A client for JupiterOne's GraphQL ``queryV1`` operation (stdlib urllib + ssl only).

`J1Client.pages(j1ql)` yields one `Page` per cursor step until the cursor comes back
null or missing; a short or empty page is not the end. Along the way it:

- spaces GraphQL requests with a client-side rate limit (`RateLimiter`);
- retries HTTP 429/502/503/504, GraphQL errors that report a rate limit, and network
  errors, with exponential backoff and full jitter, waiting at least what `Retry-After`
  or `RateLimit-Reset` asks, every wait capped and the attempts bounded (`RetryPolicy`);
- stops at once on 401/403 (`AuthError`), GraphQL errors in a 200 answer (`QueryError`)
  and unparsable pages (`MalformedResponseError`, naming the page number);
- in deferred mode polls the state URL J1 hands back, without credentials, and reads
  the results inline or from the second URL the finished state points at.

The API token lives in a `Secret`; server text that is quoted in an error is scrubbed of
it, so no exception or log line of this module can carry it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.client
import ipaddress
import json
import logging
import random
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus, urlsplit

import orjson

from .._meta import __version__
from ..errors import (
    AuthError,
    CollectError,
    MalformedResponseError,
    QueryError,
    ResponseTooLargeError,
    RunawayPagingError,
)
from ..io.output import plural

log = logging.getLogger("j1filter.collect")

REGION_ENDPOINTS = {
    "us": "https://graphql.us.jupiterone.io/",
    "eu": "https://graphql.eu.jupiterone.io/",
}

# Flags and the deferred option travel as declared variables: a GraphQL server drops
# undeclared ones silently (the trap python's client fell into).
QUERY_V1 = (
    "query J1QL($query: String!, $cursor: String, $includeDeleted: Boolean,"
    " $flags: QueryV1Flags, $deferredResponse: DeferredResponseOption) {"
    " queryV1(query: $query, cursor: $cursor, includeDeleted: $includeDeleted,"
    " flags: $flags, deferredResponse: $deferredResponse)"
    " { type data url cursor totalCount correlationId } }"
)

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
DEFERRED_STATUSES = ("IN_PROGRESS", "COMPLETED", "FAILED")

T = TypeVar("T")


DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
_READ_CHUNK = 1 << 16


class _Retryable(Exception):
    """One attempt failed in a way that may pass; `wait_hint` is the server's ask in seconds."""

    def __init__(self, reason: str, wait_hint: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_hint = wait_hint


class Secret:
    """A string that never shows itself in repr(), str() or tracebacks."""

    __slots__ = ("_pattern", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        self._pattern = _echo_pattern(value) if value else None

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """`text` without the token in any form a server may echo it: as is, JSON-escaped,
        HTML-escaped, URL-encoded (any hex case) or inside base64."""
        return self._pattern.sub("***", text) if self._pattern else text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to connect. `endpoint` is the full GraphQL URL (see `resolve_endpoint`)."""

    endpoint: str
    proxy: str | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    timeout: float = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most `max_attempts` tries, no single wait above `max_delay` seconds."""

    max_attempts: int = 10
    base_delay: float = 2.0
    max_delay: float = 60.0

    def delay(self, attempt: int, wait_hint: float, rng: Callable[[], float] = random.random) -> float:
        """Full-jitter exponential backoff, at least the server's hint, capped at `max_delay`."""
        backoff = rng() * min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return min(self.max_delay, max(backoff, wait_hint))


class RateLimiter:
    """Spaces calls evenly: at most `per_minute` a minute, no bursts; 0 disables it."""

    def __init__(
        self,
        per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._spacing = 60.0 / per_minute if per_minute > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_slot: float | None = None

    def acquire(self) -> None:
        if not self._spacing:
            return
        now = self._clock()
        if self._next_slot is not None and self._next_slot > now:
            self._sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + self._spacing


def _echo_pattern(token: str) -> re.Pattern[str]:
    forms = {
        token,
        json.dumps(token)[1:-1],
        json.dumps(token, ensure_ascii=False)[1:-1],
        html.escape(token, quote=True),
        html.escape(token, quote=False),
        html.escape(token).replace("&#x27;", "&#39;"),
        quote_plus(token, safe=""),
    }
    forms.update(_base64_cores(token.encode("utf-8", "surrogatepass")))
    alternatives = [re.escape(form) for form in sorted(forms, key=len, reverse=True) if len(form) >= 4]
    # %-encoding: any hex case, any mix of encoded and plain characters is rare; cover both cases
    alternatives.append("(?i:" + re.escape(quote(token, safe="")) + ")")
    return re.compile("|".join(alternatives))


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 text the token produces wherever it sits in a larger encoded string: for each
    of the three byte alignments, the characters that depend on the token alone."""
    cores = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        start = -(-shift * 4 // 3)  # characters touched by the padding bytes in front
        end = len(encoded) - (4 if (shift + len(raw)) % 3 else 0)  # the last, partial group
        core = encoded[start:end]
        if len(core) >= 8:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))  # URL-safe alphabet
    return cores


@dataclass(frozen=True)
class PagingLimits:
    """Caps that make every collection end, whatever the server answers."""

    max_pages: int = 100_000
    max_empty_pages: int = 50
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


@dataclass(frozen=True)
class Page:
    number: int
    items: list[dict[str, Any]]
    cursor: str | None


@dataclass
class ClientStats:
    retries: int = 0


def resolve_endpoint(value: str) -> str:
    """Map a region shortcut (`us`, `eu`) to its GraphQL URL; pass full http(s) URLs through."""
    shortcut = REGION_ENDPOINTS.get(value.strip().lower())
    if shortcut:
        return shortcut
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint must be 'us', 'eu' or an http(s) URL, not {value!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            "plain http is allowed only for loopback endpoints (the token would travel in clear)"
        )
    return value


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class J1Client:
    """Runs J1QL through queryV1 and pages through the results."""

    def __init__(
        self,
        settings: ConnectionSettings,
        token: Secret,
        account_id: str,
        *,
        retry: RetryPolicy = RetryPolicy(),
        rate_limit_per_minute: float = 30.0,
        deferred: bool = False,
        poll_interval: float = 1.0,
        deferred_timeout: float = 600.0,
        limits: PagingLimits = PagingLimits(),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._token = token
        self._account_id = account_id
        self._retry = retry
        self._rate_limiter = RateLimiter(rate_limit_per_minute, clock, sleep)
        self._deferred = deferred
        self._poll_interval = poll_interval
        self._deferred_timeout = deferred_timeout
        self._limits = limits
        self._sleep = sleep
        self._clock = clock
        # The token goes only to the endpoint, and never follows a redirect elsewhere.
        self._api_opener = _build_opener(settings, settings.endpoint, follow_redirects=False)
        self._download_openers: dict[bool, urllib.request.OpenerDirector] = {}
        self.stats = ClientStats()

    def __repr__(self) -> str:
        return f"J1Client(endpoint={self._settings.endpoint!r}, account_id={self._account_id!r}, token={self._token!r})"

    def pages(self, j1ql: str, *, include_deleted: bool = False) -> Iterator[Page]:
        """Yield every page of `j1ql`, following the cursor until it is null or missing.

        Always ends: a cursor seen before (a cycle of any length), more than `max_pages`
        pages or more than `max_empty_pages` empty pages in a row raise RunawayPagingError.
        """
        limits = self._limits
        cursor: str | None = None
        seen_cursors: set[bytes] = set()  # digests: bounded by max_pages, whatever the cursor size
        number = empty_in_a_row = 0
        while True:
            number += 1
            if number > limits.max_pages:
                raise RunawayPagingError(
                    f"stopped after {plural(limits.max_pages, 'page')} (--max-pages): the results do not end"
                )
            page = self._fetch_page(number, j1ql, cursor, include_deleted)
            yield page
            if not page.cursor:
                return
            empty_in_a_row = 0 if page.items else empty_in_a_row + 1
            if empty_in_a_row >= limits.max_empty_pages:
                raise RunawayPagingError(
                    f"page {number}: {plural(empty_in_a_row, 'empty page')} in a row, each with a new cursor"
                    " (--max-empty-pages); stopping"
                )
            digest = hashlib.blake2b(page.cursor.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            if digest in seen_cursors or page.cursor == cursor:
                raise RunawayPagingError(
                    f"page {number}: the cursor repeats an earlier one (a cursor cycle); stopping"
                )
            seen_cursors.add(digest)
            cursor = page.cursor

    # -- one page -------------------------------------------------------------------

    def _fetch_page(self, number: int, j1ql: str, cursor: str | None, include_deleted: bool) -> Page:
        variables = {
            "query": j1ql,
            "cursor": cursor,
            "includeDeleted": include_deleted,
            "flags": {"variableResultSize": True},
            "deferredResponse": "FORCE" if self._deferred else "DISABLED",
        }
        body = orjson.dumps({"query": QUERY_V1, "variables": variables})
        try:
            document = self._with_retries(f"page {number}", lambda: self._post_once(body))
            result = _query_v1_result(document)
            if result.get("type") == "deferred":
                result = self._await_deferred(result, number)
            return _parse_page(number, result)
        except MalformedResponseError as error:
            raise MalformedResponseError(f"malformed response for page {number}: {error}") from None

    def _post_once(self, body: bytes) -> Any:
        self._rate_limiter.acquire()
        request = urllib.request.Request(
            self._settings.endpoint, data=body, method="POST", headers=self._api_headers()
        )
        status, headers, payload = self._send(self._api_opener, request)
        if status in (401, 403):
            raise AuthError(
                f"HTTP {status} from {self._settings.endpoint}: the API token or account ID was refused"
                " (check J1_API_TOKEN, J1_ACCOUNT_ID and the endpoint's region)"
            )
        if status in RETRYABLE_STATUSES:
            raise _Retryable(f"HTTP {status}", _server_wait_hint(headers))
        if not 200 <= status < 300:
            raise CollectError(f"HTTP {status} from {self._settings.endpoint}: {self._snippet(payload)}")
        document = self._decode_json(payload)
        self._raise_graphql_errors(document)
        return document

    def _raise_graphql_errors(self, document: Any) -> None:
        errors = document.get("errors") if isinstance(document, dict) else None
        if not errors:
            return
        messages = (
            "; ".join(_error_message(error) for error in errors) if isinstance(errors, list) else str(errors)
        )
        messages = self._token.redact(messages)
        if _mentions_rate_limit(messages):  # J1's older way to say 429
            raise _Retryable(f"rate limited: {messages}")
        raise QueryError(f"J1 returned GraphQL errors: {messages}")

    def _api_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._token.reveal()}",
            "JupiterOne-Account": self._account_id,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"j1filter/{__version__}",
        }

    # -- deferred mode ----------------------------------------------------------------

    def _await_deferred(self, result: dict[str, Any], page_number: int) -> dict[str, Any]:
        """Poll the deferred job until it settles; return a queryV1-shaped result."""
        state_url = _download_url(result.get("url"), "deferred answer")
        deadline = self._clock() + self._deferred_timeout
        wait = self._poll_interval
        while True:
            state = _json_object(
                self._get_json(state_url, f"page {page_number} deferred state"), "deferred state"
            )
            status = state.get("status")
            if status == "COMPLETED":
                if "data" in state:
                    return state
                results_url = _download_url(state.get("url"), "COMPLETED deferred state")
                return _json_object(
                    self._get_json(results_url, f"page {page_number} deferred results"), "deferred results"
                )
            if status == "FAILED":
                reason = self._token.redact(str(state.get("error") or "no reason given"))
                raise QueryError(f"deferred query failed on page {page_number}: {reason}")
            if status != "IN_PROGRESS":
                raise MalformedResponseError(
                    f"deferred status {status!r} is not one of {', '.join(DEFERRED_STATUSES)}"
                )
            if self._clock() >= deadline:
                raise CollectError(
                    f"deferred query for page {page_number} still IN_PROGRESS after {self._deferred_timeout:g} s"
                )
            self._sleep(wait)
            wait = min(wait * 2, self._poll_interval * 5)

    def _get_json(self, url: str, what: str) -> Any:
        """GET a deferred-mode document. No credentials: J1 serves these from a download host."""

        def attempt() -> Any:
            request = urllib.request.Request(
                url, headers={"Accept": "application/json", "User-Agent": f"j1filter/{__version__}"}
            )
            status, headers, payload = self._send(self._download_opener(url), request)
            if status in RETRYABLE_STATUSES or status >= 500:
                raise _Retryable(f"HTTP {status}", _server_wait_hint(headers))
            if status != 200:
                raise CollectError(f"{what}: HTTP {status}: {self._snippet(payload)}")
            try:
                return self._decode_json(payload)
            except MalformedResponseError as error:  # a half-written state file is worth another look
                raise _Retryable(str(error)) from None

        return self._with_retries(what, attempt)

    # -- plumbing ---------------------------------------------------------------------

    def _with_retries(self, what: str, attempt_once: Callable[[], T]) -> T:
        attempts = self._retry.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return attempt_once()
            except _Retryable as failure:
                if attempt == attempts:
                    raise CollectError(
                        f"{what}: gave up after {plural(attempts, 'attempt')}; last error: {failure.reason}"
                    ) from None
                delay = self._retry.delay(attempt, failure.wait_hint)
                self.stats.retries += 1
                log.info(
                    "%s: %s; retrying in %.2f s (attempt %d of %d)",
                    what,
                    failure.reason,
                    delay,
                    attempt + 1,
                    attempts,
                )
                self._sleep(delay)
        raise AssertionError("unreachable: the last attempt either returns or raises")

    def _download_opener(self, url: str) -> urllib.request.OpenerDirector:
        """Deferred downloads follow redirects; a loopback host never goes through the proxy."""
        loopback = _is_loopback(urlsplit(url).hostname or "")
        if loopback not in self._download_openers:
            self._download_openers[loopback] = _build_opener(self._settings, url, follow_redirects=True)
        return self._download_openers[loopback]

    def _send(
        self, opener: urllib.request.OpenerDirector, request: urllib.request.Request
    ) -> tuple[int, Message, bytes]:
        """One HTTP exchange that ends within --timeout, body included (a server dripping
        bytes cannot hold it longer), and reads at most --max-response-bytes."""
        timeout = self._settings.timeout
        with _Deadline(timeout) as deadline:
            try:
                with opener.open(request, timeout=timeout) as response:
                    body = self._read_body(response)
                if deadline.expired:  # the watchdog shut the socket: the body may look complete
                    raise _Retryable(f"no complete answer within --timeout {timeout:g} s")
                return response.status, response.headers, body
            except urllib.error.HTTPError as error:
                with error:
                    return error.code, error.headers, _read_quietly(error, self._limits.max_response_bytes)
            except urllib.error.URLError as error:
                # The socket's own timeout (one read) and the watchdog (the whole exchange) both
                # mean the same to the user; whichever fires first, say it the same way.
                if deadline.expired or isinstance(error.reason, TimeoutError):
                    raise _Retryable(f"no complete answer within --timeout {timeout:g} s") from None
                raise _Retryable(f"network error: {self._token.redact(str(error.reason))}") from None
            except (OSError, http.client.HTTPException) as error:  # timeouts, resets, truncated bodies
                if deadline.expired or isinstance(error, TimeoutError):
                    raise _Retryable(f"no complete answer within --timeout {timeout:g} s") from None
                raise _Retryable(
                    f"network error: {self._token.redact(type(error).__name__ + ': ' + str(error))}"
                ) from None

    def _read_body(self, response: http.client.HTTPResponse) -> bytes:
        cap = self._limits.max_response_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise ResponseTooLargeError(self._too_large(int(declared)))
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(_READ_CHUNK):
            size += len(chunk)
            if size > cap:
                raise ResponseTooLargeError(self._too_large(size, at_least=True))
            chunks.append(chunk)
        if declared and declared.isdigit() and size < int(declared):
            raise http.client.IncompleteRead(b"", int(declared) - size)
        return b"".join(chunks)

    def _too_large(self, size: int, *, at_least: bool = False) -> str:
        cap = self._limits.max_response_bytes
        return (
            f"an answer of {'more than ' if at_least else ''}{size:,} bytes is larger than"
            f" --max-response-bytes {cap:,}; raise the limit if this is expected"
        )

    def _decode_json(self, payload: bytes) -> Any:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
        try:  # the standard library also reads lone surrogates (\ud800) and huge integers
            return json.loads(payload)
        except (ValueError, RecursionError):
            raise MalformedResponseError(f"the body is not JSON: {self._snippet(payload)}") from None

    def _snippet(self, payload: bytes, limit: int = 200) -> str:
        text = " ".join(payload.decode("utf-8", "replace").split())
        text = self._token.redact(text)
        return (text[:limit] + "...") if len(text) > limit else (text or "(empty body)")


def _query_v1_result(document: Any) -> dict[str, Any]:
    data = document.get("data") if isinstance(document, dict) else None
    result = data.get("queryV1") if isinstance(data, dict) else None
    if not isinstance(result, dict):
        raise MalformedResponseError("no data.queryV1 object in the answer")
    return result


def _json_object(document: Any, what: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise MalformedResponseError(f"the {what} is a JSON {type(document).__name__}, not an object")
    return document


def _parse_page(number: int, result: Mapping[str, Any]) -> Page:
    items = result.get("data")
    if not isinstance(items, list):
        raise MalformedResponseError(
            f"queryV1.data is {type(items).__name__}, not a list (type {result.get('type')!r})"
        )
    for position, item in enumerate(items, start=1):
        if not (isinstance(item, dict) and isinstance(item.get("entity"), dict)):
            raise MalformedResponseError(
                f"item {position} is not an entity {{id, entity, properties}};"
                " collect needs a FIND query without RETURN"
            )
    cursor = result.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise MalformedResponseError(f"cursor is {type(cursor).__name__}, not a string")
    return Page(number, items, cursor or None)


def _download_url(value: object, where: str) -> str:
    """Deferred URLs come from the server: accept only http(s), never file: or the like."""
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise MalformedResponseError(f"the {where} has no http(s) url")
    return value


def _server_wait_hint(headers: Message | None) -> float:
    """Seconds the server asked us to wait, from Retry-After (seconds or HTTP date) or RateLimit-Reset."""
    if headers is None:
        return 0.0
    hints = [
        _seconds_from_header(headers.get("Retry-After")),
        _seconds_from_header(headers.get("RateLimit-Reset")),
    ]
    return max(hints)


def _seconds_from_header(value: str | None) -> float:
    if not value:
        return 0.0
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, moment.timestamp() - time.time())


def _error_message(error: object) -> str:
    if isinstance(error, dict):
        message = str(error.get("message", error))
        code = (
            (error.get("extensions") or {}).get("code") if isinstance(error.get("extensions"), dict) else None
        )
        return f"{message} ({code})" if code else message
    return str(error)


def _mentions_rate_limit(message: str) -> bool:
    lowered = message.lower()
    return "429" in lowered or "rate limit" in lowered or "too many requests" in lowered


def _read_quietly(error: urllib.error.HTTPError, limit: int) -> bytes:
    """An error body, for quoting: at most `limit` bytes."""
    try:
        return error.read(limit)
    except (OSError, http.client.HTTPException):
        return b""


# -- a deadline for the whole request ----------------------------------------------------

_active = threading.local()


class _Deadline:
    """Shuts the request's sockets when the whole exchange (connect, headers, body) runs past
    `seconds`; the socket timeout alone only bounds each read."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire) if seconds > 0 else None

    def __enter__(self) -> _Deadline:
        _active.deadline = self
        if self._timer:
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        _active.deadline = None
        if self._timer:
            self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def _watch(sock: socket.socket | None) -> None:
    deadline = getattr(_active, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _HTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self.sock)


class _HTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _watch(self.sock)


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._j1_context = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_HTTPSConnection, req, context=self._j1_context)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None  # urllib then raises the 3xx as an HTTPError


def _build_opener(
    settings: ConnectionSettings, url: str, *, follow_redirects: bool
) -> urllib.request.OpenerDirector:
    """An opener for requests to `url`'s host."""
    context = ssl.create_default_context(cafile=settings.ca_bundle)
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    handlers: list[urllib.request.BaseHandler] = [
        _proxy_handler(settings, url),
        _HTTPHandler(),
        _HTTPSHandler(context),
    ]
    if not follow_redirects:
        handlers.append(_NoRedirect())
    return urllib.request.build_opener(*handlers)


def _proxy_handler(settings: ConnectionSettings, url: str) -> urllib.request.ProxyHandler:
    """A loopback host (the simulator) never goes through a proxy, not even an explicit
    --proxy; otherwise --proxy wins over urllib's usual *_proxy / no_proxy variables."""
    if _is_loopback(urlsplit(url).hostname or ""):
        return urllib.request.ProxyHandler({})
    if settings.proxy:
        return urllib.request.ProxyHandler({"http": settings.proxy, "https": settings.proxy})
    return urllib.request.ProxyHandler()
