"""Command line: argument parsing and exit codes only; the work happens in the core.

Exit codes: 0 done (bad input lines become error documents, they do not fail the run);
1 runtime failure (unreadable input, unwritable output or errors file, output closed early,
or any error document with --fail-on-error); 2 usage error or invalid mapping file.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .._meta import (DEFAULT_DATA_STREAM_TYPE, DEFAULT_DATASET, DEFAULT_NAMESPACE, ECS_VERSION,
                    __version__)
from ..errors import MappingError
from ..language.loader import expand_paths, load_mapping, load_mappings, shipped_mapping_paths
from ..runtime.mapper import Mapper, Options
from .stream import DEFAULT_MAX_LINE_BYTES, run

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
SUBCOMMANDS = ("filter", "check", "fields", "explain", "collect", "simulate", "demo")


def _filter_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="j1filter",
        description="Read raw JupiterOne entities (one JSON per line) on stdin and write ECS "
                    "documents (one JSON per line) on stdout. Subcommands: "
                    + ", ".join(SUBCOMMANDS) + " (see `j1filter SUBCOMMAND --help`).",
    )
    parser.add_argument("--version", action="version", version=f"j1filter {__version__} (ECS {ECS_VERSION})")
    parser.add_argument("-m", "--mapping", action="append", default=[], metavar="PATH",
                        help="extra mapping file or directory; one named like a shipped mapping "
                             "replaces it (repeatable)")
    parser.add_argument("--no-shipped-mappings", action="store_true",
                        help="use only the --mapping files")
    parser.add_argument("--preserve-duplicate-custom-fields", action="store_true",
                        help="keep the raw copies of fields also mapped to ECS (Elastic's option)")
    parser.add_argument("--type", default=DEFAULT_DATA_STREAM_TYPE, help="data_stream.type (default: %(default)s)")
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="data_stream.dataset (default: %(default)s)")
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="data_stream.namespace (default: %(default)s)")
    parser.add_argument("--line-buffered", action="store_true",
                        help="flush after every input line (for Logstash's pipe input, tail -f)")
    parser.add_argument("--errors-file", metavar="PATH",
                        help="also append every document with an error to this file")
    parser.add_argument("--max-line-bytes", type=int, default=DEFAULT_MAX_LINE_BYTES, metavar="N",
                        help="longer input lines become error documents (default: %(default)s)")
    parser.add_argument("--fail-on-error", action="store_true",
                        help="exit 1 if any document carries an error")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    parser.add_argument("input", nargs="?", metavar="FILE",
                        help="read this file instead of stdin")
    return parser



def filter_main(argv: Sequence[str]) -> int:
    args = _filter_parser().parse_args(argv)
    if args.max_line_bytes < 1024:
        print("j1filter: --max-line-bytes must be at least 1024", file=sys.stderr)
        return EXIT_USAGE
    try:
        specs = load_mappings(args.mapping, shipped=not args.no_shipped_mappings)
        mapper = Mapper(specs, Options(
            preserve_duplicate_custom_fields=args.preserve_duplicate_custom_fields,
            data_stream_type=args.type, dataset=args.dataset, namespace=args.namespace))
    except MappingError as exc:
        print(f"j1filter: invalid mapping\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    if not specs:
        print("j1filter: no mapping files to use", file=sys.stderr)
        return EXIT_USAGE
    try:
        source = open(args.input, "rb") if args.input else sys.stdin.buffer
        errors_sink = open(args.errors_file, "ab") if args.errors_file else None
    except OSError as exc:
        print(f"j1filter: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        stats = run(source, sys.stdout.buffer, mapper, line_buffered=args.line_buffered,
                    errors_sink=errors_sink, max_line_bytes=args.max_line_bytes)
    except OSError as exc:
        print(f"j1filter: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if errors_sink is not None:
            errors_sink.close()
        if args.input:
            source.close()
    if stats.output_closed:
        _quiet_stdout()
    if not args.quiet:
        print(stats.summary(), file=sys.stderr)
    if stats.output_closed or (args.fail_on_error and stats.errors):
        return EXIT_FAILURE
    return EXIT_OK


def _quiet_stdout() -> None:
    # The reader went away: point stdout at /dev/null so the interpreter's final flush
    # does not raise a second BrokenPipeError.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def check_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="j1filter check",
        description="Validate mapping files without reading stdin: each file alone, then all "
                    "of them together with the shipped mappings, as the filter would load them.")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="mapping files or directories")
    parser.add_argument("--no-shipped-mappings", action="store_true",
                        help="check the given files without the shipped mappings")
    args = parser.parse_args(argv)
    paths = expand_paths(args.paths) if args.paths else shipped_mapping_paths()
    problems = []
    for path in paths:
        try:
            load_mapping(path)
        except MappingError as exc:
            problems.append(str(exc))
    if not problems:  # each file is sound; now check them together (names, targets)
        try:
            Mapper(load_mappings(args.paths, shipped=not args.no_shipped_mappings))
        except MappingError as exc:
            problems.append(str(exc))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return EXIT_USAGE
    print(f"{len(paths)} mapping file(s) OK: " + ", ".join(p.name for p in paths))
    return EXIT_OK


def fields_main(argv: Sequence[str]) -> int:
    from .report import field_table, transform_table

    parser = argparse.ArgumentParser(
        prog="j1filter fields",
        description="Print the source -> ECS field table the mappings compile to.")
    parser.add_argument("-m", "--mapping", action="append", default=[], metavar="PATH")
    parser.add_argument("--transforms", action="store_true", help="list the transforms instead")
    args = parser.parse_args(argv)
    if args.transforms:
        print(transform_table())
        return EXIT_OK
    try:
        specs = load_mappings(args.mapping)
        Mapper(specs)  # full check, so the table never shows an invalid mapping
    except MappingError as exc:
        print(f"j1filter: invalid mapping\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    print(field_table(specs))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else "filter"
    rest = argv[1:] if argv and argv[0] == command else argv
    if command == "collect":
        from ..collect.cli import collect_main
        return collect_main(rest)
    if command == "simulate":
        from ..collect.cli import simulate_main
        return simulate_main(rest)
    if command == "explain":
        from .explain import explain_main
        return explain_main(rest)
    if command == "demo":
        from .demo import demo_main
        return demo_main(rest)
    return {"filter": filter_main, "check": check_main, "fields": fields_main}[command](rest)
