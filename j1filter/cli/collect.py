"""`j1filter collect` and `j1filter simulate`.

``j1filter collect`` runs J1QL through JupiterOne's ``queryV1`` and writes one raw entity
JSON per line (the queryV1 list item ``{"id", "entity", "properties"}`` plus the
``_collection`` metadata), the exact input of the filter, so ``j1filter collect | j1filter``
is the whole pipeline; ``--map`` maps in-process instead and ``--spool DIR`` writes each
collection to a file that is complete and on disk before the checkpoint moves.
Credentials come only from the environment (``J1_API_TOKEN``, ``J1_ACCOUNT_ID``) or from
``--token-file``; the token never reaches argv, logs, errors or output. Progress and
errors go to stderr.

Exit codes (collect and simulate):

- 0: done; also when the reader closed stdout early (the run ends quietly)
- 1: the API or the network failed for good (401/403, GraphQL errors, a malformed page,
  retries exhausted, runaway paging, an oversized answer), or the output could not be
  written. Everything received before the failure was written as whole lines.
- 2: usage or configuration error: bad option, missing credentials, unreadable token
  file or CA bundle, unusable checkpoint file, invalid mapping (with --map)
- 129, 130, 143: stopped by SIGHUP, SIGINT (Ctrl-C) or SIGTERM; whole lines only, and the
  checkpoint of an interrupted collection did not move
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import orjson

from ..collect.checkpoint import can_narrow, load_checkpoint
from ..collect.client import (
    DEFAULT_MAX_RESPONSE_BYTES,
    ConnectionSettings,
    J1Client,
    PagingLimits,
    RetryPolicy,
    Secret,
    resolve_endpoint,
)
from ..collect.collector import DEFAULT_QUERY, CollectOptions, Collector, remove_stale_parts
from ..collect.simulator import DEMO_ACCOUNT_ID, DEMO_TOKEN, Simulator, load_sample_entities
from ..errors import AuthError, CheckpointError, CollectError, ConfigurationError, J1FilterError, MappingError
from ..io.output import plural
from ..io.stops import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, GUARD, Stopped, signal_exit_code, silence_stdout

if TYPE_CHECKING:
    from ..runtime.mapper import Mapper

log = logging.getLogger("j1filter.collect")

EXIT_INTERRUPTED = signal_exit_code(signal.SIGINT)  # Ctrl-C seen as KeyboardInterrupt

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "": 1}


ConfigError = ConfigurationError


class Parser(argparse.ArgumentParser):
    """No prefix matching (`--token` is not `--token-file`), and usage errors that never echo
    a value: an unknown argument may be a secret typed in the wrong place."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(allow_abbrev=False, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            names = [
                word.split("=", 1)[0] for word in message.split(":", 1)[1].split() if word.startswith("-")
            ]
            message = (
                "unrecognized arguments" + (f": {' '.join(names)}" if names else "") + " (values not shown)"
            )
        super().error(message)


@dataclass(frozen=True)
class CollectRun:
    client: J1Client
    options: CollectOptions
    interval: float | None


def parse_duration(text: str) -> float:
    """Seconds in `text`: `30s`, `15m`, `1h`, `1d`, `250ms` or bare seconds."""
    stripped = text.strip()
    number = stripped.rstrip("mshd")
    unit = stripped[len(number) :]
    try:
        value = float(number) if unit in _DURATION_UNITS and number.replace(".", "", 1).isdigit() else -1.0
    except ValueError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use e.g. 30s, 15m, 1h, 1d)")
    return value * _DURATION_UNITS[unit]


def _positive_duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration must be above zero: {text!r}")
    return seconds


def _non_negative(text: str) -> float:
    return _at_least_zero(text, float, "a number")


def _count(text: str) -> int:
    return int(_at_least_zero(text, int, "a whole number"))


def _at_least_zero(text: str, kind: Callable[[str], float], what: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def build_collect_parser() -> argparse.ArgumentParser:
    from .options import add_mapping_options

    parser = Parser(
        prog="j1filter collect",
        description="Pull JupiterOne entities through queryV1 and print one raw entity JSON per line"
        " (or, with --map, one ECS document per line).",
        epilog="Environment: J1_API_TOKEN, J1_ACCOUNT_ID (required), J1_ENDPOINT (optional). "
        "Exit codes: 0 ok (also when the reader closed stdout), 1 API/network/output failure, "
        "2 usage/configuration error, 129/130/143 stopped by SIGHUP/SIGINT/SIGTERM.",
    )
    source = parser.add_argument_group("query and endpoint")
    source.add_argument("--query", default=DEFAULT_QUERY, help=f"J1QL to run (default: {DEFAULT_QUERY!r})")
    source.add_argument(
        "--endpoint", help="'us', 'eu' or the full GraphQL URL (default: $J1_ENDPOINT, else us)"
    )
    source.add_argument(
        "--token-file", type=Path, help="read the API token from FILE instead of $J1_API_TOKEN"
    )
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
    network.add_argument(
        "--proxy",
        metavar="URL",
        help="HTTP(S) proxy for J1 (default: the *_proxy environment variables);"
        " loopback addresses never use a proxy",
    )
    network.add_argument(
        "--ca-bundle", type=Path, metavar="FILE", help="PEM file of CA certificates to trust"
    )
    network.add_argument(
        "--insecure", action="store_true", help="do not verify TLS certificates (not for production)"
    )
    network.add_argument(
        "--timeout",
        type=_non_negative,
        default=60.0,
        metavar="SECONDS",
        help="deadline for each whole HTTP request, body included (default: 60)",
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
        type=_count,
        default=10,
        metavar="N",
        help="retries of a failing request (default: 10)",
    )
    network.add_argument(
        "--max-retry-wait",
        type=_non_negative,
        default=60.0,
        metavar="SECONDS",
        help="cap on any single retry wait, Retry-After included (default: 60)",
    )
    network.add_argument(
        "--max-response-bytes",
        type=_count,
        default=DEFAULT_MAX_RESPONSE_BYTES,
        metavar="N",
        help=f"refuse an answer larger than this (default: {DEFAULT_MAX_RESPONSE_BYTES})",
    )
    network.add_argument(
        "--max-pages",
        type=_count,
        default=100_000,
        metavar="N",
        help="pages per collection at most (default: 100000)",
    )
    network.add_argument(
        "--max-empty-pages",
        type=_count,
        default=50,
        metavar="N",
        help="empty pages in a row (each with a new cursor) at most (default: 50)",
    )

    schedule = parser.add_argument_group("schedule and state")
    when = schedule.add_mutually_exclusive_group()
    when.add_argument("--once", action="store_true", help="run one collection and exit (the default)")
    when.add_argument(
        "--interval",
        type=_positive_duration,
        metavar="DURATION",
        help="run a collection every DURATION (30s, 15m, 1h, 1d) forever",
    )
    schedule.add_argument(
        "--full-interval",
        type=_positive_duration,
        default=24 * 3600.0,
        metavar="DURATION",
        help="a full collection when the last full one started this long ago (default: 24h)",
    )
    schedule.add_argument("--full", action="store_true", help="make the (first) collection a full one")
    schedule.add_argument(
        "--checkpoint", type=Path, metavar="FILE", help="keep the schedule state (our own clock) in FILE"
    )
    schedule.add_argument(
        "--overlap",
        type=parse_duration,
        default=15 * 60.0,
        metavar="DURATION",
        help="incremental collections re-read this much before the full snapshot's start (default: 15m)",
    )
    schedule.add_argument(
        "--dedupe-window",
        type=_count,
        default=100_000,
        metavar="N",
        help="within one collection, drop repeats among the last N entities (default: 100000; 0 = off)",
    )

    output = parser.add_argument_group("output")
    output.add_argument(
        "--map", action="store_true", help="map in-process: write ECS documents, not raw entities"
    )
    output.add_argument(
        "--spool",
        type=Path,
        metavar="DIR",
        help="write each collection to DIR/j1-<start>-<kind>.ndjson (fsync'd and renamed when complete)",
    )
    output.add_argument(
        "-q", "--quiet", action="store_true", help="no progress on stderr, only warnings and errors"
    )
    add_mapping_options(parser)
    return parser


def collect_main(argv: list[str]) -> int:
    """Entry point of `j1filter collect`; returns the exit code."""
    parser = build_collect_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # argparse's --help (0) and usage errors (2)
        return int(exit_request.code or 0)

    with _stderr_logging(quiet=args.quiet) as redact_from_logs, GUARD.installed():
        try:
            token = _read_token(args.token_file, os.environ)
            redact_from_logs(token)
            run = _configure(args, os.environ, token)
            collector = Collector(run.client, sys.stdout.buffer, run.options)
            if run.interval:
                _collect_forever(collector, run.interval)
            else:
                collector.collect_once()
        except (ConfigError, CheckpointError) as error:
            log.error("error: %s", error)
            return EXIT_USAGE
        except CollectError as error:
            log.error("error: %s", error)
            return EXIT_FAILURE
        except BrokenPipeError:
            silence_stdout()
            return EXIT_OK
        except OSError as error:  # the client and the checkpoint wrap theirs: this is the output
            log.error("error: cannot write the output: %s", error.strerror or error)
            return EXIT_FAILURE
        except Stopped as stop:
            log.warning("stopped by %s", stop)
            return stop.exit_code
        except KeyboardInterrupt:  # SIGINT outside the main thread's handler
            return EXIT_INTERRUPTED
    return EXIT_OK


def _read_token(token_file: Path | None, environ: Mapping[str, str]) -> Secret:
    """The token from --token-file or $J1_API_TOKEN; raises ConfigError without quoting it."""
    if token_file:
        try:
            text = token_file.read_text(encoding="utf-8").strip()
            mode = token_file.stat().st_mode
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                f"cannot read --token-file {token_file}: {getattr(error, 'strerror', None) or 'not UTF-8 text'}"
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


def _configure(args: argparse.Namespace, environ: Mapping[str, str], token: Secret) -> CollectRun:
    _check_credentials(token, environ.get("J1_ACCOUNT_ID", "").strip())
    account_id = environ.get("J1_ACCOUNT_ID", "").strip()
    if args.checkpoint:
        if not can_narrow(args.query):
            raise ConfigError(
                "--checkpoint needs a query of the form 'FIND <classes> [WITH <conditions>]'"
                " (no THAT, RETURN, AS, ORDER, LIMIT or SKIP)"
            )
        load_checkpoint(args.checkpoint, args.query)  # a corrupt file is exit 2 now, not at the first run
    elif args.interval and not can_narrow(args.query):
        log.warning("the query cannot be narrowed to recent changes: every collection will be a full one")
    if args.spool:
        if not args.spool.is_dir():
            raise ConfigError(f"--spool {args.spool} is not a directory")
        if not args.map:
            log.warning(
                "--spool without --map writes raw entities; the shipped spool readers expect ECS documents"
            )
        stale = remove_stale_parts(args.spool)
        if stale:
            log.info("removed %s of collections that did not finish", plural(stale, "partial file"))
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
        max_attempts=args.max_retries + 1,
        base_delay=min(2.0, args.max_retry_wait),
        max_delay=args.max_retry_wait,
    )
    limits = PagingLimits(
        max(1, args.max_pages), max(1, args.max_empty_pages), max(1, args.max_response_bytes)
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
            limits=limits,
        )
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(
            f"cannot use --ca-bundle {args.ca_bundle}: {getattr(error, 'strerror', None) or error}"
        ) from None
    options = CollectOptions(
        query=args.query,
        checkpoint_path=args.checkpoint,
        overlap_ms=int(args.overlap * 1000),
        full_interval_ms=int(args.full_interval * 1000),
        force_full=args.full,
        dedupe_window=args.dedupe_window,
        spool_dir=args.spool,
        mapper=_mapper(args) if args.map else None,
    )
    return CollectRun(client, options, args.interval)


def _check_credentials(token: Secret, account_id: str) -> None:
    if not token.reveal():
        raise ConfigError("no API token: set J1_API_TOKEN or pass --token-file FILE")
    if not _header_safe(token.reveal()):
        raise ConfigError(
            "the API token contains whitespace, control or non-ASCII characters: copy it again from J1"
            " (Settings > API Keys)"
        )
    if not account_id:
        raise ConfigError("no account: set J1_ACCOUNT_ID")
    if not _header_safe(account_id):
        raise ConfigError(
            "J1_ACCOUNT_ID contains whitespace, control or non-ASCII characters: set the account ID"
        )


def _header_safe(text: str) -> bool:
    return text.isascii() and text.isprintable() and not any(char.isspace() for char in text)


def _mapper(args: argparse.Namespace) -> Mapper:
    from .options import mapper_from_args

    try:  # before any request, as in the filter
        return mapper_from_args(args)
    except MappingError as error:
        raise ConfigError(f"invalid mapping: {error}") from None
    except J1FilterError as error:  # a data stream name Elasticsearch would refuse, no mappings
        raise ConfigError(str(error)) from None


def _collect_forever(collector: Collector, interval: float) -> None:
    """A collection every `interval` seconds, start to start. A failed collection is logged and
    run again next time (its checkpoint did not move); only refused credentials end the loop."""
    while True:
        started = time.monotonic()
        try:
            collector.collect_once()
        except AuthError:
            raise
        except (CollectError, CheckpointError) as error:
            log.error("collection failed, will retry at the next interval: %s", error)
        time.sleep(max(0.0, started + interval - time.monotonic()))


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


# -- j1filter simulate ------------------------------------------------------------------


def build_simulate_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="j1filter simulate",
        description="Serve sample entities through a local JupiterOne queryV1 simulator until Ctrl-C.",
        epilog="Exit codes: 2 usage error; 129/130/143 stopped by SIGHUP/SIGINT/SIGTERM (its normal end).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8765, help="port to listen on (default: 8765; 0 = any free port)"
    )
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
    """Entry point of `j1filter simulate`; returns the exit code (it runs until stopped)."""
    try:
        args = build_simulate_parser().parse_args(argv)
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    try:
        token = args.token_file.read_text(encoding="utf-8").strip() if args.token_file else DEMO_TOKEN
        entities = _read_ndjson(args.entities) if args.entities else load_sample_entities()
        simulator = Simulator(
            entities,
            token=token,
            account_id=args.account_id,
            page_size=args.page_size,
            host=args.host,
            port=args.port,
        )
    except (OSError, ValueError) as error:
        print(f"j1filter simulate: error: {error}", file=sys.stderr)
        return EXIT_USAGE

    logging.basicConfig(level=logging.INFO, format="j1filter simulate: %(message)s", stream=sys.stderr)
    with GUARD.installed():
        try:
            with simulator:
                for line in simulate_banner(simulator, token, args):
                    print(line, flush=True)
                while True:
                    time.sleep(3600)
        except Stopped as stop:
            return stop.exit_code
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            silence_stdout()
            return EXIT_OK


def simulate_banner(simulator: Simulator, token: str, args: argparse.Namespace) -> list[str]:
    """What the simulator serves (counted as `collect` will write it) and how to collect it."""
    total, deleted = simulator.count(DEFAULT_QUERY, include_deleted=True)
    deletions = f", {deleted} of them {'a deletion' if deleted == 1 else 'deletions'}" if deleted else ""
    shown_token = token if token == DEMO_TOKEN else f"$(cat {args.token_file})"
    return [
        f"J1 API simulator at {simulator.url}: `j1filter collect` will write"
        f" {plural(total, 'entity', 'entities')}{deletions} ({args.page_size} a page)",
        "Try:",
        f"  J1_API_TOKEN={shown_token} J1_ACCOUNT_ID={args.account_id} \\",
        f"    j1filter collect --endpoint {simulator.url} --rate-limit 0 | j1filter",
        "Press Ctrl-C to stop.",
    ]


def _read_ndjson(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
