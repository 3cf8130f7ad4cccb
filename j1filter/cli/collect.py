"""`j1filter collect`: the command line of the collector (the work is in j1filter.collect).

``j1filter collect`` runs J1QL through JupiterOne's ``queryV1`` and writes one raw entity
JSON per line (the queryV1 list item ``{"id", "entity", "properties"}`` plus the
``_collection`` metadata), the exact input of the filter, so ``j1filter collect | j1filter``
is the whole pipeline; ``--map`` maps in-process instead and ``--spool DIR`` writes each
collection to a file that is complete and on disk before the checkpoint moves. ``--interval``
runs it as a service (see docs/collector-service.md); ``--check`` tries the configuration.
Credentials come only from the environment (``J1_API_TOKEN``, ``J1_ACCOUNT_ID``) or from
``--token-file``; the token never reaches argv, logs, errors or output. Progress and
errors go to stderr.

Exit codes (by the error families of j1filter.errors, from the one table in cli/main.py):

- 0: done; also when the reader closed stdout early (the run ends quietly)
- 1: the API or the network failed for good (401/403, GraphQL errors, a malformed page,
  retries exhausted, runaway paging, an oversized answer), or the output could not be
  written. Everything received before the failure was written as whole lines. Under
  ``--interval`` none of these ends the process: the next collection runs on schedule.
- 2: usage or configuration error, found before any request: bad option, missing
  credentials, unreadable token file or CA bundle, a checkpoint or spool directory that is
  missing, not writable or in use by another collector, invalid mapping (with --map)
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..collect.checkpoint import can_narrow, load_checkpoint
from ..collect.client import (
    DEFAULT_CEILING_PER_MINUTE,
    DEFAULT_MAX_RESPONSE_BYTES,
    ConnectionSettings,
    J1Client,
    PagingLimits,
    RetryPolicy,
    resolve_endpoint,
)
from ..collect.collector import DEFAULT_QUERY, CollectOptions, Collector, describe
from ..collect.files import DEFAULT_FILE_MODE, StateLock, require_writable_directory
from ..collect.secrets import Secret
from ..collect.service import collect_forever, collect_once
from ..collect.spool import remove_stale_parts
from ..collect.status import StatusFile, status_path_for
from ..errors import ConfigurationError, J1FilterError, MappingError, RemoteError
from ..io.output import plural
from ..io.stops import EXIT_FAILURE, EXIT_OK, GUARD, Stopped, signal_exit_code, silence_stdout
from .credentials import Parser, check_credentials, read_token, stderr_logging

if TYPE_CHECKING:
    from ..runtime.mapper import Mapper

log = logging.getLogger("j1filter.collect")

EXIT_INTERRUPTED = signal_exit_code(signal.SIGINT)  # Ctrl-C seen as KeyboardInterrupt

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "": 1}


def exit_code_for(error: BaseException) -> int:
    """The exit code of an error that ends `collect`: the command line's one table, by family."""
    from .main import exit_code

    return exit_code(error) or EXIT_FAILURE


@dataclass
class CollectRun:
    client: J1Client
    options: CollectOptions
    interval: float | None
    status: StatusFile | None
    checks: list[str] = field(default_factory=list)  # what the start-up checks found, for --check
    locks: list[StateLock] = field(default_factory=list)


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


def _file_mode(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an octal mode: {text!r} (e.g. 0600 or 0640)") from None
    if mode & ~0o660 or not mode & 0o600 == 0o600:
        raise argparse.ArgumentTypeError(
            f"--file-mode {text}: use 0600 (owner only) or 0640/0660 (the owner and a shipper's group)"
        )
    return mode


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
    deferred = source.add_mutually_exclusive_group()
    deferred.add_argument(
        "--deferred",
        dest="deferred",
        action="store_true",
        default=True,
        help="deferred mode, deferredResponse: FORCE (the default, as J1 advises for automated use)",
    )
    deferred.add_argument(
        "--no-deferred",
        dest="deferred",
        action="store_false",
        help="inline answers (deferredResponse: DISABLED); a query past 30 s then times out at J1's gateway",
    )
    source.add_argument(
        "--poll-interval",
        type=_non_negative,
        default=0.5,
        metavar="SECONDS",
        help="first wait between deferred-status polls, doubling up to 5x (default: 0.5)",
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
        default=DEFAULT_CEILING_PER_MINUTE,
        metavar="PER_MINUTE",
        help="ceiling on GraphQL requests a minute; below it the account's own RateLimit-* answer paces"
        f" the requests; 0 = no ceiling (default: {DEFAULT_CEILING_PER_MINUTE:g})",
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
        "--status",
        type=Path,
        metavar="FILE",
        help="health file a monitor reads: last success, counts, next run, last error"
        " (default: CHECKPOINT.status.json with --checkpoint)",
    )
    schedule.add_argument(
        "--check",
        action="store_true",
        help="try the configuration (token, account, endpoint, checkpoint, spool) with one request, then exit",
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
        "--file-mode",
        type=_file_mode,
        default=DEFAULT_FILE_MODE,
        metavar="MODE",
        help="mode of spool and state files (default: 0600; 0640 lets a shipper in the directory's group"
        " read the spool)",
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

    with stderr_logging(quiet=args.quiet and not args.check) as redact_from_logs, GUARD.installed():
        run: CollectRun | None = None
        try:
            token = read_token(args.token_file, os.environ)
            redact_from_logs(token)
            run = configure(args, os.environ, token)
            if args.check:
                return _check(run, args)
            collector = Collector(run.client, sys.stdout.buffer, run.options)
            if run.interval:
                collect_forever(collector, run.interval, status=run.status)
            else:
                collect_once(collector, status=run.status)
        except BrokenPipeError:
            silence_stdout()
            return EXIT_OK
        except Stopped as stop:
            log.warning("stopped by %s", stop)
            return stop.exit_code
        except KeyboardInterrupt:  # SIGINT outside the main thread's handler
            return EXIT_INTERRUPTED
        except (J1FilterError, OSError) as error:
            log.error("error: %s", _message(error))
            return exit_code_for(error)
        finally:
            for lock in run.locks if run else []:
                lock.release()
    return EXIT_OK


def _message(error: BaseException) -> str:
    if isinstance(error, OSError) and not isinstance(error, J1FilterError):
        # the client and the checkpoint wrap theirs: this is the output (a pipe, the spool)
        where = f" {error.filename}" if error.filename else ""
        return f"cannot write the output{where}: {error.strerror or error}; check free space and permissions"
    return describe(error)


def configure(args: argparse.Namespace, environ: Mapping[str, str], token: Secret) -> CollectRun:
    """Everything that can be checked before a request: raises ConfigurationError (exit 2)."""
    account_id = environ.get("J1_ACCOUNT_ID", "").strip()
    check_credentials(token, account_id)
    endpoint = resolve_endpoint(args.endpoint or environ.get("J1_ENDPOINT") or "us")
    checks = [f"credentials: a token and account {account_id} are set"]
    locks: list[StateLock] = []
    try:
        status_path = args.status or (status_path_for(args.checkpoint) if args.checkpoint else None)
        if args.checkpoint:
            if not can_narrow(args.query):
                raise ConfigurationError(
                    "--checkpoint needs a query of the form 'FIND <classes> [WITH <conditions>]'"
                    " (no THAT, RETURN, AS, ORDER, LIMIT or SKIP)"
                )
            require_writable_directory(args.checkpoint.parent, "--checkpoint")
            locks.append(StateLock(_lock_path(args.checkpoint), f"--checkpoint {args.checkpoint}"))
            checkpoint = load_checkpoint(args.checkpoint, args.query)  # a corrupt file is exit 2 now
            last = "none yet" if checkpoint.last_started_ms is None else f"last {checkpoint.last_kind}"
            checks.append(f"checkpoint: {args.checkpoint} is writable and not in use ({last})")
        elif args.interval and not can_narrow(args.query):
            log.warning("the query cannot be narrowed to recent changes: every collection will be a full one")
        if status_path:
            require_writable_directory(status_path.parent, "--status")
            checks.append(f"status: {status_path} is writable")
        if args.spool:
            require_writable_directory(args.spool, "--spool")
            locks.append(StateLock(args.spool / ".j1filter-spool.lock", f"--spool {args.spool}"))
            if not args.map:
                log.warning(
                    "--spool without --map writes raw entities; the shipped spool readers expect ECS documents"
                )
            stale = remove_stale_parts(args.spool)
            if stale:
                log.info("removed %s of collections that did not finish", plural(stale, "partial file"))
            checks.append(f"spool: {args.spool} is writable and not in use")
        client = _client(args, endpoint, token, account_id)
        options = CollectOptions(
            query=args.query,
            checkpoint_path=args.checkpoint,
            overlap_ms=int(args.overlap * 1000),
            full_interval_ms=int(args.full_interval * 1000),
            force_full=args.full,
            dedupe_window=args.dedupe_window,
            spool_dir=args.spool,
            file_mode=args.file_mode,
            mapper=_mapper(args) if args.map else None,
        )
    except BaseException:
        for lock in locks:
            lock.release()
        raise
    if args.insecure:
        log.warning("TLS certificate verification is off (--insecure)")
    status = StatusFile(status_path, args.file_mode) if status_path else None
    return CollectRun(client, options, args.interval, status, checks, locks)


def _lock_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + ".lock")


def _client(args: argparse.Namespace, endpoint: str, token: Secret, account_id: str) -> J1Client:
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
        return J1Client(
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
        raise ConfigurationError(
            f"cannot use --ca-bundle {args.ca_bundle}: {getattr(error, 'strerror', None) or error};"
            " pass a readable PEM file of CA certificates"
        ) from None


def _check(run: CollectRun, args: argparse.Namespace) -> int:
    """`--check`: the start-up checks passed; now one request tries the token, the account and
    the endpoint. One line per check on stdout."""
    for line in run.checks:
        print(f"ok    {line}", flush=True)
    try:
        page = run.client.probe(args.query)
    except RemoteError as error:
        print(f"FAIL  endpoint: {describe(error)}", flush=True)
        return exit_code_for(error)
    limit = run.client.pacing.last
    allowance = (
        f"; rate limit {limit.limit} a minute, {limit.remaining} left" if limit.limit is not None else ""
    )
    entities = plural(len(page.items), "entity", "entities")
    print(f"ok    endpoint: {run.client.host} took the token and account ({entities} on page 1{allowance})")
    print("ok    token, account, endpoint, checkpoint and spool: ready", flush=True)
    return EXIT_OK


def _mapper(args: argparse.Namespace) -> Mapper:
    from .options import mapper_from_args

    try:  # before any request, as in the filter
        return mapper_from_args(args)
    except MappingError as error:
        raise ConfigurationError(f"invalid mapping: {error}") from None
    except J1FilterError as error:  # a data stream name Elasticsearch would refuse, no mappings
        raise ConfigurationError(str(error)) from None
