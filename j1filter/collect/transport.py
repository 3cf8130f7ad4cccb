"""One HTTP exchange with J1 (stdlib urllib + ssl only): a deadline for the whole exchange, a
cap on the body, and every failure said in one line that names the host.

`HttpTransport.send(request)` returns a `Response` (status, lower-cased headers, body) for any
HTTP status, raises `Retryable` for what may pass (network errors, timeouts, truncated bodies)
and `ResponseTooLargeError` for an answer above the cap. The simulator offers the same
`send` in-process (`Simulator.transport()`), so the client runs on simulated time in tests.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Protocol
from urllib.parse import urlsplit

from ..errors import ResponseTooLargeError
from .secrets import Secret, remote_text

DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024
_READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to connect. `endpoint` is the full GraphQL URL (see `resolve_endpoint`)."""

    endpoint: str
    proxy: str | None = None
    ca_bundle: str | None = None
    verify_tls: bool = True
    timeout: float = 60.0


@dataclass(frozen=True)
class Request:
    method: str  # "POST" (GraphQL) or "GET" (deferred downloads)
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None
    credentials: bool = False  # True: the endpoint's opener (no redirects); False: a download


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


class Retryable(Exception):
    """One attempt failed in a way that may pass; `wait_hint` is the server's ask in seconds."""

    def __init__(self, reason: str, wait_hint: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_hint = wait_hint


class Transport(Protocol):
    def send(self, request: Request) -> Response: ...


def host_of(url: str) -> str:
    """The host[:port] of `url` for messages; never raises on a malformed URL."""
    try:
        return urlsplit(url).netloc.rsplit("@", 1)[-1] or "(no host)"
    except ValueError:
        return "(unreadable URL)"


def hostname_of(url: str) -> str:
    """The host name of `url`, "" when there is none or the URL cannot be read."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpTransport:
    """Real HTTP(S). The token goes only to the endpoint (no redirects followed there); deferred
    downloads follow redirects; a loopback host never goes through a proxy."""

    def __init__(self, settings: ConnectionSettings, secret: Secret, max_response_bytes: int) -> None:
        self._settings = settings
        self._secret = secret
        self._cap = max_response_bytes
        self._api_opener = _build_opener(settings, settings.endpoint, follow_redirects=False)
        self._download_openers: dict[bool, urllib.request.OpenerDirector] = {}

    def send(self, request: Request) -> Response:
        """One exchange that ends within --timeout, body included (a server dripping bytes cannot
        hold it longer), and reads at most --max-response-bytes."""
        opener = self._api_opener if request.credentials else self._download_opener(request.url)
        timeout = self._settings.timeout
        host = host_of(request.url)
        late = f"no complete answer from {host} within --timeout {timeout:g} s"
        try:
            prepared = urllib.request.Request(
                request.url, data=request.body, headers=dict(request.headers), method=request.method
            )
        except ValueError as error:  # a URL urllib cannot even parse
            raise Retryable(f"{host}: unusable URL ({remote_text(str(error), self._secret)})") from None
        with _Deadline(timeout) as deadline:
            try:
                with opener.open(prepared, timeout=timeout) as response:
                    body = self._read_body(response)
                if deadline.expired:  # the watchdog shut the socket: the body may look complete
                    raise Retryable(late)
                return Response(response.status, _lower(response.headers), body)
            except urllib.error.HTTPError as error:
                with error:
                    return Response(error.code, _lower(error.headers), _read_quietly(error, self._cap))
            except urllib.error.URLError as error:
                # The socket's own timeout (one read) and the watchdog (the whole exchange) both
                # mean the same to the user; whichever fires first, say it the same way.
                if deadline.expired or isinstance(error.reason, TimeoutError):
                    raise Retryable(late) from None
                raise Retryable(f"network error talking to {host}: {self._describe(error.reason)}") from None
            except (OSError, http.client.HTTPException, ValueError, UnicodeError) as error:
                # timeouts, resets, truncated bodies, and what urllib raises on a hostile URL
                if deadline.expired or isinstance(error, TimeoutError):
                    raise Retryable(late) from None
                raise Retryable(f"network error talking to {host}: {self._describe(error)}") from None

    def _describe(self, error: object) -> str:
        if isinstance(error, OSError) and error.strerror:  # no raw "[Errno N]": the words, then a hint
            text = error.strerror
        else:
            text = str(error) if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return remote_text(text, self._secret) + _hint(error)

    def _read_body(self, response: http.client.HTTPResponse) -> bytes:
        cap = self._cap
        declared = _declared_length(response.headers.get("Content-Length"))
        if declared is not None and declared > cap:
            raise ResponseTooLargeError(_too_large(declared, cap))
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(_READ_CHUNK):
            size += len(chunk)
            if size > cap:
                raise ResponseTooLargeError(_too_large(size, cap, at_least=True))
            chunks.append(chunk)
        if declared is not None and size < declared:
            raise http.client.IncompleteRead(b"", declared - size)
        return b"".join(chunks)

    def _download_opener(self, url: str) -> urllib.request.OpenerDirector:
        loopback = is_loopback(hostname_of(url))
        if loopback not in self._download_openers:
            self._download_openers[loopback] = _build_opener(self._settings, url, follow_redirects=True)
        return self._download_openers[loopback]


def _hint(error: object) -> str:
    """What to do about the usual network errors, so no raw errno stands alone."""
    text = str(error).lower()
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return " (the host name does not resolve: check --endpoint, DNS and --proxy)"
    if "connection refused" in text:
        return " (nothing listens there: check --endpoint and --proxy)"
    if "certificate" in text:
        return " (TLS: pass --ca-bundle FILE with your CA, e.g. a TLS-inspecting proxy's)"
    if "network is unreachable" in text or "no route to host" in text:
        return " (no route: check the network, the firewall and --proxy)"
    return ""


def _declared_length(value: str | None) -> int | None:
    """Content-Length when it is plain ASCII digits (`²` is a digit to str.isdigit, not to int)."""
    if value and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    return None


def _too_large(size: int, cap: int, *, at_least: bool = False) -> str:
    return (
        f"an answer of {'more than ' if at_least else ''}{size:,} bytes is larger than"
        f" --max-response-bytes {cap:,}; raise the limit if this is expected"
    )


def _lower(headers: Message | None) -> dict[str, str]:
    if headers is None:
        return {}
    return {name.lower(): str(value) for name, value in headers.items()}


def _read_quietly(error: urllib.error.HTTPError, limit: int) -> bytes:
    """An error body, for quoting: at most `limit` bytes."""
    try:
        return error.read(limit)
    except (OSError, http.client.HTTPException, ValueError):
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
    if is_loopback(hostname_of(url)):
        return urllib.request.ProxyHandler({})
    if settings.proxy:
        return urllib.request.ProxyHandler({"http": settings.proxy, "https": settings.proxy})
    return urllib.request.ProxyHandler()
