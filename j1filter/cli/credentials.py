"""Secrets at the command line: a parser that never echoes a value, the API token from the
environment or a file (never argv), and stderr logging that scrubs the token from every record.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from ..collect.secrets import Secret
from ..errors import ConfigurationError
from .parser import CommandParser

log = logging.getLogger("j1filter.collect")

TOKEN_HINT = "pass the API token in J1_API_TOKEN or --token-file FILE, never on the command line"


class Parser(CommandParser):
    """The command line's parser (no prefix matching: `--token` is not `--token-file`; "did you
    mean"), with usage errors that never echo a value: an unknown argument may be a secret
    typed in the wrong place."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            names = [
                word.split("=", 1)[0] for word in message.split(":", 1)[1].split() if word.startswith("-")
            ]
            message = (
                "unrecognized arguments" + (f": {' '.join(names)}" if names else "") + " (values not shown)"
            )
            if any(name.startswith("--tok") and name != "--token-file" for name in names):
                message += f"; {TOKEN_HINT}"
        super().error(message)


def read_token(token_file: Path | None, environ: Mapping[str, str]) -> Secret:
    """The token from --token-file or $J1_API_TOKEN; raises ConfigurationError without quoting it."""
    if token_file:
        try:
            text = token_file.read_text(encoding="utf-8").strip()
            mode = token_file.stat().st_mode
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8 text"
            raise ConfigurationError(
                f"cannot read --token-file {token_file}: {reason}; check the path and that the collector's"
                " user can read it (under systemd: LoadCredential=)"
            ) from None
        if mode & 0o077:
            log.warning(
                "--token-file %s can be read by group or others (mode %03o): run chmod 600 %s",
                token_file,
                mode & 0o777,
                token_file,
            )
    else:
        text = environ.get("J1_API_TOKEN", "").strip()
    return Secret(text)


def check_credentials(token: Secret, account_id: str) -> None:
    if not token.reveal():
        raise ConfigurationError("no API token: set J1_API_TOKEN or pass --token-file FILE")
    if not _header_safe(token.reveal()):
        raise ConfigurationError(
            "the API token contains whitespace, control or non-ASCII characters: copy it again from J1"
            " (Settings > API Keys)"
        )
    if not account_id:
        raise ConfigurationError("no account: set J1_ACCOUNT_ID")
    if not _header_safe(account_id):
        raise ConfigurationError(
            "J1_ACCOUNT_ID contains whitespace, control or non-ASCII characters: set the account ID"
        )


def _header_safe(text: str) -> bool:
    return text.isascii() and text.isprintable() and not any(char.isspace() for char in text)


class _Redactor(logging.Filter):
    """Last line of defence: no log record of this package may carry the token."""

    def __init__(self, token: Secret) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._token.redact(record.getMessage()), None
        return True


@contextmanager
def stderr_logging(*, quiet: bool) -> Iterator[Callable[[Secret], None]]:
    """Send `j1filter.collect` records to stderr for one command; yields a function that
    registers the token to scrub from every record."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("j1filter collect: %(message)s"))
    redactors: list[_Redactor] = []

    def redact(token: Secret) -> None:
        redactors.append(_Redactor(token))
        log.addFilter(redactors[-1])

    saved_level, saved_propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False  # the main CLI may configure the root logger: print each line once
    try:
        yield redact
    finally:
        log.removeHandler(handler)
        for redactor in redactors:
            log.removeFilter(redactor)
        log.setLevel(saved_level)
        log.propagate = saved_propagate
