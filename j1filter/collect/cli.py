"""`j1filter collect` and `j1filter simulate`.

``j1filter collect`` runs J1QL through JupiterOne's ``queryV1`` and writes one raw entity
JSON per line on stdout (the queryV1 list item ``{"id", "entity", "properties"}``), the
exact input of the filter, so ``j1filter collect | j1filter`` is the whole pipeline.
Credentials come only from the environment (``J1_API_TOKEN``, ``J1_ACCOUNT_ID``) or from
``--token-file``; the token never reaches argv, logs, errors or output. Progress and
errors go to stderr.

Exit codes of ``collect``:

- 0: done (with ``--interval``: never, unless stdout closes);
  also when stdout is closed by the reader (BrokenPipe), which ends the run quietly
- 1: the API or the network failed for good: 401/403, GraphQL errors, a malformed
  page, retries exhausted. Everything received before the failure is on stdout.
- 2: usage or configuration error: bad option, missing credentials, unreadable token
  file or CA bundle, unusable checkpoint file
- 130: interrupted (Ctrl-C)

``j1filter simulate`` serves the bundled sample data through a local J1 API simulator
until Ctrl-C (see `j1filter.collect.simulator`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from j1filter.collect.checkpoint import CheckpointError, incremental_query
from j1filter.collect.client import (
    AuthError,
    CollectError,
    ConnectionSettings,
    J1Client,
    RetryPolicy,
    Secret,
    resolve_endpoint,
)
from j1filter.collect.collector import DEFAULT_QUERY, CollectOptions, collect_once
from j1filter.collect.simulator import DEMO_ACCOUNT_ID, DEMO_TOKEN, Simulator, load_sample_entities

log = logging.getLogger("j1filter.collect")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class ConfigError(Exception):
    """A usage or configuration problem (exit code 2)."""


@dataclass(frozen=True)
class CollectRun:
    client: J1Client
    options: CollectOptions
    interval: float | None


def parse_duration(text: str) -> float:
    """Seconds in `text`: `30s`, `15m`, `1h`, `1d`, `250ms` or bare seconds."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use e.g. 30s, 15m, 1h, 1d)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _positive_duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration must be above zero: {text!r}")
    return seconds


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def build_collect_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="j1filter collect",
        description="Pull JupiterOne entities through queryV1 and print one raw entity JSON per line.",
        epilog="Environment: J1_API_TOKEN, J1_ACCOUNT_ID (required), J1_ENDPOINT (optional). "
        "Exit codes: 0 ok, 1 API/network failure, 2 usage/configuration error.",
    )
    source = parser.add_argument_group("query and endpoint")
    source.add_argument("--query", default=DEFAULT_QUERY, help=f"J1QL to run (default: {DEFAULT_QUERY!r})")
    source.add_argument("--endpoint", help="'us', 'eu' or the full GraphQL URL (default: $J1_ENDPOINT, else us)")
    source.add_argument("--token-file", type=Path, help="read the API token from FILE instead of $J1_API_TOKEN")
    source.add_argument(
        "--deferred", action="store_true", help="use deferred mode (deferredResponse: FORCE) for slow queries"
    )
    source.add_argument(
        "--poll-interval",
        type=_non_negative,
        default=1.0,
        metavar="SECONDS",
        help="first wait between deferred-status polls (default: 1)",
    )

    network = parser.add_argument_group("network")
    network.add_argument("--proxy", metavar="URL", help="HTTP(S) proxy (default: the *_proxy environment variables)")
    network.add_argument("--ca-bundle", type=Path, metavar="FILE", help="PEM file of CA certificates to trust")
    network.add_argument("--insecure", action="store_true", help="do not verify TLS certificates (not for production)")
    network.add_argument(
        "--timeout", type=_non_negative, default=60.0, metavar="SECONDS", help="per-request timeout (default: 60)"
    )
    network.add_argument(
        "--rate-limit",
        type=_non_negative,
        default=30.0,
        metavar="PER_MINUTE",
        help="most GraphQL requests a minute; 0 = no limit (default: 30, J1's published per-account limit)",
    )
    network.add_argument(
        "--max-retries",
        type=int,
        default=10,
        metavar="N",
        help="retries of a failing request before giving up (default: 10)",
    )
    network.add_argument(
        "--max-retry-wait",
        type=_non_negative,
        default=60.0,
        metavar="SECONDS",
        help="cap on any single retry wait, Retry-After included (default: 60)",
    )

    schedule = parser.add_argument_group("schedule and state")
    when = schedule.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="collect once and exit (the default)")
    when.add_argument(
        "--interval",
        type=_positive_duration,
        metavar="DURATION",
        help="collect every DURATION (30s, 15m, 1h, 1d) forever",
    )
    schedule.add_argument(
        "--checkpoint", type=Path, metavar="FILE", help="incremental runs: keep the _beginOn high-water mark in FILE"
    )
    schedule.add_argument(
        "--overlap",
        type=parse_duration,
        default=15 * 60.0,
        metavar="DURATION",
        help="re-read this much before the high-water mark (default: 15m)",
    )
    schedule.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr, only warnings and errors")
    return parser


def collect_main(argv: list[str]) -> int:
    """Entry point of `j1filter collect`; returns the exit code."""
    parser = build_collect_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # argparse's --help (0) and usage errors (2)
        return int(exit_request.code or 0)

    with _stderr_logging(quiet=args.quiet) as redact_from_logs:
        try:
            token = _read_token(args.token_file, os.environ)
            redact_from_logs(token)
            run = _configure(args, os.environ, token)
            if run.interval:
                _collect_forever(run, sys.stdout.buffer)
            else:
                collect_once(run.client, sys.stdout.buffer, run.options)
        except (ConfigError, CheckpointError) as error:
            log.error("error: %s", error)
            return EXIT_USAGE
        except CollectError as error:
            log.error("error: %s", error)
            return EXIT_FAILED
        except BrokenPipeError:
            _silence_stdout()
            return EXIT_OK
        except OSError as error:  # the client and the checkpoint wrap theirs: this is stdout
            log.error("error: cannot write the output: %s", error.strerror or error)
            return EXIT_FAILED
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    return EXIT_OK


def _read_token(token_file: Path | None, environ: Mapping[str, str]) -> Secret:
    """The token from --token-file or $J1_API_TOKEN; raises ConfigError without quoting it."""
    if token_file:
        try:
            text = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                f"cannot read --token-file {token_file}: {getattr(error, 'strerror', None) or error}"
            ) from None
    else:
        text = environ.get("J1_API_TOKEN", "").strip()
    return Secret(text)


def _configure(args: argparse.Namespace, environ: Mapping[str, str], token: Secret) -> CollectRun:
    if not token.reveal():
        raise ConfigError("no API token: set J1_API_TOKEN or pass --token-file FILE")
    if any(char.isspace() or not char.isprintable() for char in token.reveal()):
        raise ConfigError("the API token contains whitespace or control characters")
    account_id = environ.get("J1_ACCOUNT_ID", "").strip()
    if not account_id:
        raise ConfigError("no account: set J1_ACCOUNT_ID")
    if args.max_retries < 0:
        raise ConfigError("--max-retries must not be negative")
    if args.checkpoint:
        try:
            incremental_query(args.query, 0)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    try:
        endpoint = resolve_endpoint(args.endpoint or environ.get("J1_ENDPOINT") or "us")
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if args.insecure:
        log.warning("TLS certificate verification is off (--insecure)")

    settings = ConnectionSettings(
        endpoint, args.proxy, str(args.ca_bundle) if args.ca_bundle else None, not args.insecure, args.timeout
    )
    retry = RetryPolicy(
        max_attempts=args.max_retries + 1, base_delay=min(2.0, args.max_retry_wait), max_delay=args.max_retry_wait
    )
    try:
        client = J1Client(
            settings,
            token,
            account_id,
            retry=retry,
            rate_limit_per_minute=args.rate_limit,
            deferred=args.deferred,
            poll_interval=args.poll_interval,
        )
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(
            f"cannot use --ca-bundle {args.ca_bundle}: {getattr(error, 'strerror', None) or error}"
        ) from None
    options = CollectOptions(args.query, args.checkpoint, int(args.overlap * 1000))
    return CollectRun(client, options, args.interval)


def _collect_forever(run: CollectRun, out: BinaryIO) -> None:
    """Collect every `run.interval` seconds, start to start. A failed collection is logged and
    tried again next time (its checkpoint did not move); only credential errors end the loop."""
    assert run.interval is not None
    while True:
        started = time.monotonic()
        try:
            collect_once(run.client, out, run.options)
        except AuthError:
            raise
        except (CollectError, CheckpointError) as error:
            log.error("collection failed, will retry at the next interval: %s", error)
        time.sleep(max(0.0, started + run.interval - time.monotonic()))


class _Redactor(logging.Filter):
    """Last line of defence: no log record of this package may carry the token."""

    def __init__(self, token: Secret) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._token.redact(record.getMessage()), None
        return True


@contextmanager
def _stderr_logging(*, quiet: bool) -> Iterator[Callable[[Secret], None]]:
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


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (e.g. captured in tests): nothing to flush


# -- j1filter simulate ------------------------------------------------------------------


def build_simulate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="j1filter simulate",
        description="Serve sample entities through a local JupiterOne queryV1 simulator until Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765; 0 = any free port)")
    parser.add_argument("--page-size", type=int, default=2, help="entities per page (default: 2)")
    parser.add_argument(
        "--entities",
        type=Path,
        metavar="FILE",
        help="NDJSON of queryV1 items to serve (default: the bundled sample set)",
    )
    parser.add_argument(
        "--account-id", default=DEMO_ACCOUNT_ID, help=f"account ID to expect (default: {DEMO_ACCOUNT_ID})"
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help=f"expect the token in FILE (default: the public demo token {DEMO_TOKEN!r})",
    )
    return parser


def simulate_main(argv: list[str]) -> int:
    """Entry point of `j1filter simulate`; returns the exit code."""
    try:
        args = build_simulate_parser().parse_args(argv)
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    try:
        token = args.token_file.read_text(encoding="utf-8").strip() if args.token_file else DEMO_TOKEN
        entities = _read_ndjson(args.entities) if args.entities else load_sample_entities()
        simulator = Simulator(
            entities, token=token, account_id=args.account_id, page_size=args.page_size, host=args.host, port=args.port
        )
    except (OSError, ValueError) as error:
        print(f"j1filter simulate: error: {error}", file=sys.stderr)
        return EXIT_USAGE

    logging.basicConfig(level=logging.INFO, format="j1filter simulate: %(message)s", stream=sys.stderr)
    with simulator:
        shown_token = token if token == DEMO_TOKEN else f"<the token in {args.token_file}>"
        print(
            f"J1 API simulator serving {len(entities)} entities ({args.page_size} a page) at {simulator.url}",
            flush=True,
        )
        print(f"  J1_ENDPOINT={simulator.url} J1_ACCOUNT_ID={args.account_id} J1_API_TOKEN={shown_token}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def _read_ndjson(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


if __name__ == "__main__":
    _COMMANDS = {"collect": collect_main, "simulate": simulate_main}
    if len(sys.argv) < 2 or sys.argv[1] not in _COMMANDS:
        print("usage: python -m j1filter.collect.cli {collect,simulate} [options]", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    sys.exit(_COMMANDS[sys.argv[1]](sys.argv[2:]))
