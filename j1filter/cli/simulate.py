"""`j1filter simulate`: the local J1 API simulator, served until stopped."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
import time
from pathlib import Path

import orjson

from ..collect.collector import DEFAULT_QUERY
from ..collect.simulator import DEMO_ACCOUNT_ID, DEMO_TOKEN, TIERS, Simulator, load_sample_entities
from ..io.output import plural
from ..io.stops import EXIT_OK, EXIT_USAGE, GUARD, Stopped, silence_stdout
from .collect import EXIT_INTERRUPTED
from .credentials import Parser


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
    parser.add_argument(
        "--tier",
        choices=sorted(TIERS),
        help="enforce a J1 rate-limit tier (RateLimit-* headers, 429 past the limit); default: none",
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
            tier=TIERS[args.tier] if args.tier else None,
        )
    except (OSError, ValueError) as error:
        print(f"j1filter simulate: error: {_explain(error, args)}", file=sys.stderr)
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


def _explain(error: Exception, args: argparse.Namespace) -> str:
    """The error with what to do about it (never a bare errno)."""
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        return (
            f"port {args.port} on {args.host} is already in use: pass --port 0 for any free port,"
            " or stop what listens there"
        )
    if isinstance(error, OSError) and error.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {args.host}: not an address of this machine; use --host 127.0.0.1"
    if isinstance(error, OSError) and error.errno == errno.EACCES:
        return f"not allowed to listen on port {args.port}: use a port above 1023, or --port 0"
    if isinstance(error, OSError) and error.filename:
        return f"cannot read {error.filename}: {error.strerror}"
    return str(error)


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
