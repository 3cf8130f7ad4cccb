"""A client for JupiterOne's GraphQL ``queryV1`` operation: paging, deferred mode and retries.

`J1Client.pages(j1ql)` yields one `Page` per cursor step until the cursor comes back null or
missing; a short or empty page is not the end. Along the way it:

- paces GraphQL requests by J1's own ``RateLimit-*`` answer, under the ``--rate-limit``
  ceiling (`pacing.Pacer`);
- asks for ``deferredResponse: FORCE`` (J1's advice for automated processes: an inline query
  past 30 s times out at the gateway), polls the state URL without credentials and reads the
  finished results inline or from the second URL the state points at (both documented forms);
- retries HTTP 429/5xx, GraphQL errors that report a rate limit, and network errors, with
  full-jitter backoff, waiting at least what ``Retry-After`` or ``RateLimit-Reset`` asks, every
  wait capped and the attempts bounded (`pacing.RetryPolicy`);
- stops at once on 401/403 (`AuthError`), GraphQL errors in a 200 answer (`QueryError`) and
  unreadable pages (`MalformedResponseError`, naming the page and the host).

Server text quoted in an error goes through `secrets.remote_text`: token redacted, control
characters escaped, length capped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

from .._meta import __version__
from ..errors import (
    AuthError,
    ConfigurationError,
    MalformedResponseError,
    QueryError,
    RemoteError,
    RunawayPagingError,
)
from ..io.output import plural
from .pacing import Pacer, RetryPolicy, server_wait_hint
from .secrets import Secret, remote_text
from .transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    ConnectionSettings,
    HttpTransport,
    Request,
    Retryable,
    Transport,
    host_of,
    is_loopback,
)

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
#: The default --rate-limit ceiling: J1's highest documented J1QL allowance (120 a minute on
#: request); the account's own RateLimit-* answer paces below it.
DEFAULT_CEILING_PER_MINUTE = 120.0

T = TypeVar("T")
DEFAULT_RETRY = RetryPolicy()

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "ClientStats",
    "ConnectionSettings",
    "J1Client",
    "Page",
    "PagingLimits",
    "RetryPolicy",
    "Secret",
    "resolve_endpoint",
]


@dataclass(frozen=True)
class PagingLimits:
    """Caps that make every collection end, whatever the server answers."""

    max_pages: int = 100_000
    max_empty_pages: int = 50
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


@dataclass(frozen=True)
class Page:
    number: int
    items: list[Any]  # queryV1 list items; a hostile one is passed on for the collector's guard
    cursor: str | None


@dataclass
class ClientStats:
    requests: int = 0  # GraphQL POSTs sent
    retries: int = 0
    throttled: int = 0  # 429s and rate-limit errors
    paced_seconds: float = 0.0  # waited for the account's allowance or the ceiling


def resolve_endpoint(value: str) -> str:
    """Map a region shortcut (`us`, `eu`) to its GraphQL URL; pass full http(s) URLs through."""
    shortcut = REGION_ENDPOINTS.get(value.strip().lower())
    if shortcut:
        return shortcut
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        scheme = parts.scheme
    except ValueError:
        hostname, scheme = None, ""
    readable = value.isascii() and value.isprintable() and not any(char.isspace() for char in value)
    if scheme not in ("http", "https") or not hostname or not readable:
        raise ConfigurationError(
            f"--endpoint must be 'us', 'eu' or an http(s) URL, not {remote_text(value)!r}"
        )
    if scheme == "http" and not is_loopback(hostname):
        raise ConfigurationError(
            "--endpoint: plain http is allowed only for loopback endpoints (the token would travel in"
            " clear); use https"
        )
    return value


class J1Client:
    """Runs J1QL through queryV1 and pages through the results."""

    def __init__(
        self,
        settings: ConnectionSettings,
        token: Secret,
        account_id: str,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        rate_limit_per_minute: float = DEFAULT_CEILING_PER_MINUTE,
        deferred: bool = True,
        poll_interval: float = 0.5,
        deferred_timeout: float = 600.0,
        limits: PagingLimits = PagingLimits(),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: Transport | None = None,
    ) -> None:
        self._settings = settings
        self._token = token
        self._account_id = account_id
        self._retry = retry
        self._pacer = Pacer(rate_limit_per_minute, clock, sleep, max_wait=max(retry.max_delay, 0.0))
        self._deferred = deferred
        self._poll_interval = poll_interval
        self._deferred_timeout = deferred_timeout
        self._limits = limits
        self._sleep = sleep
        self._clock = clock
        self._transport = transport or HttpTransport(settings, token, limits.max_response_bytes)
        self._host = host_of(settings.endpoint)
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
            if digest in seen_cursors:
                raise RunawayPagingError(
                    f"page {number}: the cursor repeats an earlier one (a cursor cycle); stopping"
                )
            seen_cursors.add(digest)
            cursor = page.cursor

    def probe(self, j1ql: str) -> Page:
        """The first page of `j1ql` only (`collect --check`): the token, the account and the endpoint."""
        return self._fetch_page(1, j1ql, None, False)

    # -- one page ---------------------------------------------------------------------

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
            result = self._with_retries(f"page {number}", lambda: self._post(body))
            if result.get("type") == "deferred" or (result.get("url") and result.get("data") is None):
                result = self._await_deferred(result, number)
            return _parse_page(number, result)
        except MalformedResponseError as error:
            raise MalformedResponseError(f"malformed response for page {number}: {error}") from None

    def _post(self, body: bytes) -> dict[str, Any]:
        self._pacer.acquire()
        self.stats.requests += 1
        request = Request("POST", self._settings.endpoint, self._headers(), body, credentials=True)
        response = self._transport.send(request)
        self._pacer.observe(response.headers)
        status = response.status
        if status == 429:
            self.stats.throttled += 1
            raise Retryable(f"HTTP 429 (rate limited) from {self._host}", server_wait_hint(response.headers))
        if status in (401, 403):
            raise AuthError(
                f"HTTP {status} from {self._host}: the API token or account ID was refused"
                " (check J1_API_TOKEN, J1_ACCOUNT_ID and the endpoint's region)"
            )
        if status in RETRYABLE_STATUSES or status >= 500:
            raise Retryable(f"HTTP {status} from {self._host}", server_wait_hint(response.headers))
        if status != 200:
            raise RemoteError(f"HTTP {status} from {self._host}: {self._snippet(response.body)}")
        document = self._decode(response.body)
        errors = document.get("errors") if isinstance(document, dict) else None
        if errors:
            listed = errors[:5] if isinstance(errors, list) else [errors]
            message = "; ".join(_error_message(error, self._token) for error in listed)
            if _mentions_rate_limit(message):  # J1's older way to say 429
                self.stats.throttled += 1
                raise Retryable(
                    f"rate limited by {self._host}: {message}", server_wait_hint(response.headers)
                )
            raise QueryError(f"J1 returned GraphQL errors: {message}")
        return _query_v1_result(document, self._host)

    def _headers(self) -> dict[str, str]:
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
        state_url = _download_url(result.get("url"), f"page {page_number}: the deferred answer")
        deadline = self._clock() + self._deferred_timeout
        wait = self._poll_interval
        while True:
            state = self._get_json(state_url, f"page {page_number} deferred state")
            status = state.get("status")
            if status == "COMPLETED":
                if "data" in state:  # the state document holds the results itself
                    return state
                where = f"page {page_number}: the COMPLETED deferred state"
                return self._get_json(
                    _download_url(state.get("url"), where), f"page {page_number} deferred results"
                )
            if status == "FAILED":
                reason = remote_text(state.get("error") or "no reason given", self._token)
                raise QueryError(f"deferred query failed on page {page_number}: {reason}")
            if status != "IN_PROGRESS":
                raise MalformedResponseError(
                    f"page {page_number}: deferred status {remote_text(status, self._token, 80)}"
                    f" from {host_of(state_url)} is not one of {', '.join(DEFERRED_STATUSES)}"
                )
            if self._clock() >= deadline:
                raise RemoteError(
                    f"deferred query for page {page_number} still IN_PROGRESS after {self._deferred_timeout:g} s"
                )
            self._sleep(wait)
            wait = min(wait * 2, self._poll_interval * 5)

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        """GET a deferred-mode document. No credentials: J1 serves these from a download host."""
        host = host_of(url)

        def attempt() -> dict[str, Any]:
            headers = {"Accept": "application/json", "User-Agent": f"j1filter/{__version__}"}
            response = self._transport.send(Request("GET", url, headers))
            if response.status in RETRYABLE_STATUSES or response.status >= 500:
                raise Retryable(f"HTTP {response.status} from {host}", server_wait_hint(response.headers))
            if response.status != 200:
                raise RemoteError(
                    f"{what} from {host}: HTTP {response.status}: {self._snippet(response.body)}"
                )
            try:
                document = self._decode(response.body)
            except MalformedResponseError as error:  # a half-written state file is worth another look
                raise Retryable(str(error)) from None
            if not isinstance(document, dict):
                raise MalformedResponseError(
                    f"{what} from {host} is a JSON {type(document).__name__}, not an object"
                )
            return document

        return self._with_retries(what, attempt)

    # -- plumbing ---------------------------------------------------------------------

    def _with_retries(self, what: str, attempt_once: Callable[[], T]) -> T:
        attempts = self._retry.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return attempt_once()
            except Retryable as failure:
                if attempt == attempts:
                    raise RemoteError(
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

    def _decode(self, payload: bytes) -> Any:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
        try:  # the standard library also reads lone surrogates (\ud800) and huge integers
            return json.loads(payload)
        except (ValueError, RecursionError):
            raise MalformedResponseError(f"the body is not JSON: {self._snippet(payload)}") from None

    def _snippet(self, payload: bytes, limit: int = 200) -> str:
        text = " ".join(payload[: 4 * 1024].decode("utf-8", "replace").split())
        return remote_text(text, self._token, limit) or "(empty body)"

    @property
    def pacing(self) -> Pacer:
        return self._pacer

    @property
    def host(self) -> str:
        return self._host


def _query_v1_result(document: Any, host: str) -> dict[str, Any]:
    data = document.get("data") if isinstance(document, dict) else None
    result = data.get("queryV1") if isinstance(data, dict) else None
    if not isinstance(result, dict):
        raise MalformedResponseError(f"no data.queryV1 object in the answer from {host}")
    return result


def _parse_page(number: int, result: Mapping[str, Any]) -> Page:
    items = result.get("data")
    if not isinstance(items, list):
        raise MalformedResponseError(
            f"queryV1.data is {type(items).__name__}, not a list"
            f" (type {remote_text(result.get('type'), limit=40)})"
        )
    if result.get("type") in ("table", "tree") or (
        items
        and not any(_is_entity(item) for item in items)
        and all(isinstance(item, dict) and "entity" not in item for item in items)
    ):
        raise MalformedResponseError(
            "the items are not entities {id, entity, properties}; collect needs a FIND query without RETURN"
        )
    cursor = result.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise MalformedResponseError(f"cursor is {type(cursor).__name__}, not a string")
    return Page(number, items, cursor or None)


def _is_entity(item: object) -> bool:
    return isinstance(item, dict) and isinstance(item.get("entity"), dict)


def _download_url(value: object, where: str) -> str:
    """Deferred URLs come from the server: only plain-ASCII http(s) URLs with a host, never file:."""
    try:
        usable = (
            isinstance(value, str)
            and value.isascii()
            and value.isprintable()
            and urlsplit(value).scheme in ("http", "https")
            and bool(urlsplit(value).hostname)
        )
    except ValueError:  # e.g. http://[::1/
        usable = False
    if not usable:
        raise MalformedResponseError(f"{where} has no usable http(s) url")
    return str(value)


def _error_message(error: object, token: Secret) -> str:
    if isinstance(error, dict):
        extensions = error.get("extensions")
        code = extensions.get("code") if isinstance(extensions, dict) else None
        message = remote_text(error.get("message", error), token)
        return f"{message} ({remote_text(code, token, 60)})" if code else message
    return remote_text(error, token)


def _mentions_rate_limit(message: str) -> bool:
    lowered = message.lower()
    return "429" in lowered or "rate limit" in lowered or "too many requests" in lowered
