"""URL text -> ECS ``url`` object, following Elasticsearch's ``uri_parts`` processor.

Elasticsearch first tries Java's strict ``java.net.URI`` (which decodes path, query and
fragment) and falls back to ``java.net.URL`` for the schemes it knows (raw text, no
decoding). A host that is not a valid server name (e.g. one with ``_``) gives no
``domain``. ``user_info`` is written as Elasticsearch writes it, although it is not ECS.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from ..errors import TransformError
from .limits import MAX_PORT_DIGITS

# RFC 3986 reference, as java.net.URI splits it.
_URI = re.compile(r"(?:([A-Za-z][A-Za-z0-9+.\-]*):)?(?://([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?", re.S)
# Characters java.net.URI refuses anywhere unescaped.
_ILLEGAL = re.compile(r"[\s\"<>\\^`{|}]|%(?![0-9A-Fa-f]{2})")
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_SERVER_HOST = re.compile(rf"(?:{_HOST_LABEL}\.)*{_HOST_LABEL}\.?|\[[0-9A-Fa-f:.]+\]")
_MAX_PORT = 2**31 - 1  # java.net.URI reads the port as an int
_URL_FALLBACK_SCHEMES = frozenset({"http", "https", "ftp", "file", "jar"})


def url_parts(value: Any) -> dict[str, Any]:
    if not isinstance(value, str):
        raise TransformError(f"unable to parse URI [{value}]: not a string")
    m = _URI.fullmatch(value)
    strict = _ILLEGAL.search(value) is None
    if m is None or (not strict and (m[1] or "").lower() not in _URL_FALLBACK_SCHEMES):
        raise TransformError(f"unable to parse URI [{value}]")
    decode = unquote if strict else (lambda text: text)
    scheme, authority, path, query, fragment = m.groups()
    parts: dict[str, Any] = {"original": value}
    if scheme:
        parts["scheme"] = scheme
    if authority:
        _add_authority(parts, authority, decode)
    if path:
        parts["path"] = decode(path)
        last_segment = parts["path"].rsplit("/", 1)[-1]
        if "." in last_segment:
            parts["extension"] = last_segment.rsplit(".", 1)[-1]
    if query is not None and query != "":
        parts["query"] = decode(query)
    if fragment:
        parts["fragment"] = decode(fragment)
    return parts


def _add_authority(parts: dict[str, Any], authority: str, decode: Callable[[str], str]) -> None:
    user_info, _, host_port = authority.rpartition("@")
    host, port = host_port, ""
    if not host_port.endswith("]") and ":" in host_port:
        host, _, port = host_port.rpartition(":")
    if port and not (
        port.isascii() and port.isdigit() and len(port) <= MAX_PORT_DIGITS and int(port) <= _MAX_PORT
    ):
        return  # registry-based authority (as Java's URI for a port it cannot read): no host, no port
    if host and _SERVER_HOST.fullmatch(host):
        parts["domain"] = host
        if port:
            parts["port"] = int(port)
    if user_info:
        user_info = decode(user_info)
        parts["user_info"] = user_info
        if ":" in user_info:
            parts["username"], parts["password"] = user_info.split(":", 1)
