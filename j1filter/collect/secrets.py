"""The API token as a `Secret`, and remote text made safe for one log line.

`Secret.redact` removes the token in every form a server has been seen to echo it: as is,
JSON-, HTML- and URL-encoded, hex, base64 in each of the three byte alignments (standard and
URL-safe alphabets), and each of these again with whitespace or line breaks anywhere inside
(a wrapped base64 block, a hex dump). `remote_text` turns anything a server sent (an error
message, a status value of any type or depth) into one short line: token redacted, control
and line-breaking characters escaped, length capped, so no server can forge a log line.
"""

from __future__ import annotations

import base64
import html
import json
import re
import unicodedata
from urllib.parse import quote, quote_plus

import orjson

#: Remote text is cut to this many characters in a log line or error message.
REMOTE_TEXT_LIMIT = 300
#: Redaction looks at this much of a body: enough for any snippet shown, bounded whatever the size.
REDACT_WINDOW = 64 * 1024

_BETWEEN = r"\s*"  # whitespace or line breaks a server (or a wrapping encoder) put inside an echo


class Secret:
    """A string that never shows itself in repr(), str() or tracebacks."""

    __slots__ = ("_pattern", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        self._pattern = _echo_pattern(value) if value else None

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """`text` without the token in any of the forms listed in the module docstring."""
        return self._pattern.sub("***", text) if self._pattern else text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def remote_text(value: object, secret: Secret | None = None, limit: int = REMOTE_TEXT_LIMIT) -> str:
    """`value` (server data of any type) as one safe line: see the module docstring."""
    text = value if isinstance(value, str) else _bounded_json(value)
    text = text[:REDACT_WINDOW]
    if secret is not None:
        text = secret.redact(text)
    text = escape_controls(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def escape_controls(text: str) -> str:
    """Control, format, line/paragraph-separator and lone-surrogate characters as \\x.. or \\u....
    escapes: what is left prints on one line and moves no terminal cursor."""
    if text.isprintable() and text.isascii():
        return text
    return "".join(_escape_char(char) for char in text)


def _escape_char(char: str) -> str:
    if char == " " or (char.isprintable() and unicodedata.category(char) not in ("Cf", "Zl", "Zp", "Cs")):
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _bounded_json(value: object) -> str:
    """JSON text of `value` without recursion trouble: a value too deep for orjson is only named."""
    try:
        return orjson.dumps(value).decode()
    except (TypeError, ValueError):  # deeper than 255 levels, a lone surrogate, a huge integer
        return f"(a JSON {type(value).__name__} too deep or too odd to quote)"


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
    raw = token.encode("utf-8", "surrogatepass")
    forms.update(_base64_cores(raw))
    # Forms of 4 characters or more (a shorter one would match ordinary text), and the token itself
    alternatives = [_spaced(form) for form in sorted(forms, key=len, reverse=True) if len(form) >= 4]
    alternatives.append(re.escape(token))
    # %-encoding and hex in any letter case (too short a form would match ordinary text)
    for form in (quote(token, safe=""), raw.hex()):
        if len(form) >= 4:
            alternatives.append("(?i:" + _spaced(form) + ")")
    return re.compile("|".join(alternatives))


def _spaced(form: str) -> str:
    """A pattern for `form` that also matches it with whitespace between any two characters."""
    return _BETWEEN.join(re.escape(char) for char in form)


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
