"""Command line: argument parsing and exit codes only; the work happens in the core.

``j1filter [SUBCOMMAND] ...``: the subcommands are the rows of :data:`SUBCOMMANDS`; without
one, the filter runs. Each subcommand's module is imported only when it runs, so that the
stop signals are handled from the first moment (see :mod:`j1filter.io.stops`).

Subcommands raise; :func:`run_subcommand` turns what they raise into a message and an exit
code, by :data:`EXIT_CODES`, the same for every subcommand: 0 done (also when the reader
closed our output early), 1 runtime failure, 2 usage error, bad configuration or invalid
mapping, 128 + N stopped by signal N (129 SIGHUP, 130 SIGINT, 143 SIGTERM).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from .._meta import ECS_VERSION, __version__
from ..errors import ConfigurationError, DataError, J1FilterError, MappingError, RemoteError, UsageError
from ..io.stops import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, GUARD, Stopped, signal_exit_code, silence_stdout


@dataclass(frozen=True)
class Subcommand:
    name: str
    summary: str
    target: str  # "module:function" relative to this package, imported when it runs
    own_signals: bool = False  # it handles stop signals and a closed output itself

    def entry(self) -> Callable[[list[str]], int]:
        module, function = self.target.split(":")
        return getattr(importlib.import_module(module, __package__), function)  # type: ignore[no-any-return]


#: Every subcommand, in the order `--help` lists them. A new subcommand is one more row.
SUBCOMMANDS: dict[str, Subcommand] = {
    command.name: command
    for command in (
        Subcommand(
            "filter",
            "map J1 entities (stdin or FILE) to ECS documents on stdout; the default",
            ".main:filter_main",
        ),
        Subcommand("check", "validate mapping files without reading stdin", ".main:check_main"),
        Subcommand("fields", "print the source -> ECS field table (or --transforms)", ".main:fields_main"),
        Subcommand(
            "explain",
            "show, per entity, every output field and the rule that set it",
            ".explain:explain_main",
        ),
        Subcommand(
            "collect",
            "pull entities from JupiterOne's API, one JSON per line",
            ".collect:collect_main",
            own_signals=True,
        ),
        Subcommand(
            "simulate", "serve the local J1 API simulator", ".simulate:simulate_main", own_signals=True
        ),
        Subcommand("demo", "collect from the simulator, map, and show what came out", ".demo:demo_main"),
        Subcommand(
            "assets",
            "render the Elasticsearch assets and Kibana dashboards into a folder",
            ".assets:assets_main",
        ),
    )
}


#: The one exit-code table: what a subcommand raises -> its exit code (first match wins).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigurationError, EXIT_USAGE),  # usage, options, mapping files, names, checkpoint
    (RemoteError, EXIT_FAILURE),  # the J1 API failed
    (DataError, EXIT_FAILURE),  # a record that could not be mapped, where that is fatal
    (OSError, EXIT_FAILURE),  # unreadable input, unwritable output
    (J1FilterError, EXIT_FAILURE),  # any other failure j1filter raises on purpose
)


def new_parser(prog: str, description: str, **kwargs: object) -> argparse.ArgumentParser:
    """Every parser of the command line (see :mod:`.parser`: no abbreviations, "did you mean")."""
    from .parser import CommandParser

    return CommandParser(prog=prog, description=description, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command, rest = _split_command(args)
    except UsageError as exc:
        _say(f"j1filter: error: {exc}\nRun `j1filter --help` for the subcommands and options.")
        return EXIT_USAGE
    return run_subcommand(command, rest)


def _split_command(argv: list[str]) -> tuple[Subcommand, list[str]]:
    """The subcommand and its arguments. A bare first word that is neither a subcommand nor
    an existing file, but close to a subcommand's name, is a typo, not an input file."""
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]], argv[1:]
    word = argv[0] if argv else ""
    if word == "help" and not os.path.exists(word):  # `j1filter help [SUBCOMMAND]`
        named = SUBCOMMANDS.get(argv[1] if len(argv) > 1 else "filter", SUBCOMMANDS["filter"])
        return named, ["--help"]
    if word and not word.startswith("-") and not os.path.exists(word):
        close = difflib.get_close_matches(word, SUBCOMMANDS, n=1, cutoff=0.6)
        if close:
            raise UsageError(
                f"{word!r} is not a subcommand (nor a file to read); did you mean `j1filter {close[0]}`?"
            )
    return SUBCOMMANDS["filter"], argv


def run_subcommand(command: Subcommand, argv: list[str]) -> int:
    """Run a subcommand with the stop signals handled (unless it handles them itself), a
    closed output taken as done, and what it raises turned into its exit code."""
    prog = "j1filter" if command.name == "filter" else f"j1filter {command.name}"
    try:
        if command.own_signals:
            return command.entry()(argv)
        with GUARD.installed():
            return command.entry()(argv)
    except Stopped as stop:
        return stop.exit_code
    except BrokenPipeError:  # the reader has all it wanted (`| head -1`)
        silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:  # SIGINT where no stop guard was installed
        return signal_exit_code(signal.SIGINT)
    except Exception as exc:
        code = exit_code(exc)
        if code is None:
            raise  # a bug: the traceback says where
        _say(error_message(prog, exc))
        return code


def exit_code(exc: BaseException) -> int | None:
    """The exit code for what a subcommand raised (:data:`EXIT_CODES`); None: not expected."""
    return next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), None)


def error_message(prog: str, exc: BaseException) -> str:
    """What the user reads about what a subcommand raised."""
    if isinstance(exc, MappingError):
        return f"{prog}: invalid mapping\n{exc}"
    if isinstance(exc, UsageError):  # one line per problem
        return "\n".join(f"{prog}: error: {line}" for line in str(exc).splitlines())
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{prog}: cannot open {exc.filename!r}: {exc.strerror} (check the path and its permissions)"
    elif isinstance(exc, OSError) and exc.strerror:  # no raw "[Errno N]"
        text = f"{prog}: {exc.strerror}"
    else:
        text = f"{prog}: {exc}"
    # what the subcommand added about what it expected (BaseException.add_note)
    return "\n".join([text, *getattr(exc, "__notes__", ())])


# --- the filter -----------------------------------------------------------------------------


def _filter_parser() -> argparse.ArgumentParser:
    from ..stream import DEFAULT_MAX_LINE_BYTES
    from .options import add_mapping_options

    width = max(len(name) for name in SUBCOMMANDS)
    parser = new_parser(
        "j1filter",
        "Read raw JupiterOne entities (one JSON document per line) on stdin or from FILE and "
        "write ECS documents (one JSON document per line) on stdout.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="subcommands (`j1filter SUBCOMMAND --help` for each):\n"
        + "\n".join(f"  {c.name:<{width}}  {c.summary}" for c in SUBCOMMANDS.values())
        + "\n\nexit codes: 0 done (also when the reader closed the output early), 1 runtime "
        "failure,\n2 usage error or invalid mapping, 129/130/143 stopped by SIGHUP/SIGINT/SIGTERM",
    )
    parser.add_argument("--version", action="version", version=f"j1filter {__version__} (ECS {ECS_VERSION})")
    add_mapping_options(parser)
    parser.add_argument(
        "--line-buffered",
        action="store_true",
        help="flush after every input line (for Logstash's pipe input, tail -f)",
    )
    parser.add_argument(
        "--errors-file", metavar="PATH", help="also append every document with an error to this file"
    )
    parser.add_argument(
        "--max-line-bytes",
        type=int,
        default=DEFAULT_MAX_LINE_BYTES,
        metavar="N",
        help="longer input lines become error documents (default: %(default)s)",
    )
    parser.add_argument(
        "--fail-on-error", action="store_true", help="exit 1 if any document carries an error"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="map in N processes; output in input order, the same bytes as one process "
        "(for replays and backfills; line-buffered output keeps one) (default: %(default)s)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="nothing on stderr but failures: no summary, no progress, no hints",
    )
    parser.add_argument("input", nargs="?", metavar="FILE", help="read this file instead of stdin")
    return parser


def _usage_problems(args: argparse.Namespace) -> list[str]:
    from .options import mapping_option_problems

    problems = mapping_option_problems(args)
    if args.max_line_bytes < 1024:
        problems.append("--max-line-bytes must be at least 1024")
    if not 1 <= args.workers <= 64:
        problems.append("--workers must be between 1 and 64")
    return problems


TERMINAL_HINT = (
    "j1filter: reading J1 entities from the terminal, one JSON document per line; "
    "end with Ctrl-D.\n"
    "  Map a file: j1filter FILE   collect from J1: j1filter collect | j1filter   "
    "all options: j1filter --help"
)


def _open_input(path: str | None, *, unbuffered: bool) -> BinaryIO:
    """FILE or stdin. Unbuffered for --workers: their reader thread may still wait in a read
    when a stop signal ends the process, and a buffered reader's lock held then makes the
    interpreter abort at shutdown (SIGABRT instead of 128 + N)."""
    if path:
        return open(path, "rb", buffering=0 if unbuffered else -1)
    if unbuffered:
        return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    return sys.stdin.buffer


def filter_main(argv: Sequence[str]) -> int:
    from ..io.output import Progress
    from ..stream import run
    from .options import mapper_from_args

    args = _filter_parser().parse_args(argv)
    problems = _usage_problems(args)
    if problems:
        raise UsageError("\n".join(problems))
    mapper = mapper_from_args(args)
    source = _open_input(args.input, unbuffered=args.workers > 1)
    try:
        errors_sink = open(args.errors_file, "ab") if args.errors_file else None  # noqa: SIM115 - closed below
    except OSError:
        if args.input:
            source.close()
        raise
    interactive = not args.input and _is_terminal(sys.stdin)
    if interactive and not args.quiet:
        print(TERMINAL_HINT, file=sys.stderr)
    progress = Progress(enabled=_is_terminal(sys.stderr) and not interactive and not args.quiet)
    try:
        stats = run(
            source,
            sys.stdout.buffer,
            mapper,
            line_buffered=args.line_buffered or interactive,
            errors_sink=errors_sink,
            max_line_bytes=args.max_line_bytes,
            progress=progress,
            workers=args.workers,
        )
    finally:
        progress.clear()
        if errors_sink is not None:
            errors_sink.close()
        if args.input:
            source.close()
    if stats.output_closed:
        silence_stdout()
    if not args.quiet:
        _say(stats.summary())
    if stats.stopped_by is not None:
        return signal_exit_code(stats.stopped_by)
    if args.fail_on_error and stats.errors:
        return EXIT_FAILURE
    return EXIT_OK


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


def _say(text: str) -> None:
    """A line on stderr that must not fail the run (the terminal may be gone: SIGHUP)."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


# --- check and fields -------------------------------------------------------------------------


def _print_lines(text: str) -> None:
    """Text on stdout in whole lines (see :class:`.output.LineWriter`)."""
    from ..io.output import LineWriter

    LineWriter(sys.stdout.buffer).write_text(text)


def check_main(argv: Sequence[str]) -> int:
    from ..language.loader import expand_paths, shipped_mapping_paths
    from ..runtime.compiler import compile_files

    parser = new_parser(
        "j1filter check",
        "Validate mapping files without reading stdin, together with the shipped mappings as the "
        "filter would load them: every problem of every file, from its YAML to its field types.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="mapping files or directories")
    parser.add_argument(
        "--no-shipped-mappings",
        action="store_true",
        help="check the given files without the shipped mappings",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no line when all is well; problems still go to stderr"
    )
    args = parser.parse_args(argv)
    paths = expand_paths(args.paths) if args.paths else shipped_mapping_paths()
    compile_files(args.paths, shipped=not args.no_shipped_mappings or not args.paths)
    if not args.quiet:
        files = "mapping file" if len(paths) == 1 else "mapping files"
        _print_lines(f"{len(paths)} {files} OK: " + ", ".join(p.name for p in paths))
    return EXIT_OK


def fields_main(argv: Sequence[str]) -> int:
    from ..runtime.compiler import compile_files
    from .options import add_mapping_path_option
    from .report import field_table, transform_table

    parser = new_parser("j1filter fields", "Print the source -> ECS field table the mappings compile to.")
    add_mapping_path_option(parser)
    parser.add_argument("--transforms", action="store_true", help="list the transforms instead")
    args = parser.parse_args(argv)
    if args.transforms:
        _print_lines(transform_table())
        return EXIT_OK
    compiled = compile_files(args.mapping)  # so the table never shows an invalid mapping
    _print_lines(field_table(list(compiled.specs)))
    return EXIT_OK
