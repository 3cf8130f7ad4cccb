"""``j1filter demo``: the whole pipeline against the bundled J1 API simulator.

Starts the simulator on a free loopback port, runs ``j1filter collect --once`` against it
as a real process over HTTP, maps its output with the filter's own stream code, and shows
a short report a person can read: documents by source, class and severity, errors by kind,
what becomes of a bad value, and one full document. ``--json`` prints every document
instead, one per line; ``--out FILE`` writes them to FILE as well. No J1 account is
needed; the demo credentials are public values.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

import orjson

from ..collect.simulator import DEMO_ACCOUNT_ID, DEMO_TOKEN, Simulator
from ..io.output import LineWriter
from ..io.stops import EXIT_FAILURE, EXIT_OK, signal_exit_code, silence_stdout
from ..protocol import map_line
from ..runtime.compiler import compile_mappings
from ..runtime.mapper import Mapper
from ..stream import Stats, run
from .main import new_parser
from .report import ecs_fields_filled, errors_by_kind, source_table, source_table_legend

#: An invented entity with one bad value, to show what becomes of it.
BAD_ENTITY = (
    b'{"id": "demo-bad-1", "entity": {"_id": "demo-bad-1", "_class": ["Finding"], '
    b'"_type": "qualys_host_finding"}, "properties": {"deviceLocalIp": "10.0.0.300", '
    b'"deviceExternalIp": "203.0.113.9", "numericSeverity": "7"}}'
)


def demo_main(argv: Sequence[str]) -> int:
    parser = new_parser(
        "j1filter demo",
        "Run `j1filter collect | j1filter` against the bundled J1 API simulator and show what "
        "came out: a summary by source, class and severity, errors by kind, and one full "
        "ECS document.",
    )
    parser.add_argument(
        "--json",
        "--compact",
        dest="json",
        action="store_true",
        help="print every ECS document instead, one JSON per line",
    )
    parser.add_argument(
        "--out", metavar="FILE", help="also write every ECS document to FILE, one JSON per line"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="nothing on stderr but failures")
    args = parser.parse_args(argv)
    try:  # before anything runs: a path that cannot be written fails at once
        out_file = open(args.out, "wb") if args.out else None  # noqa: SIM115 - closed below
    except OSError as exc:  # the exit-code table reports it; this says what --out needs
        exc.add_note("--out needs a file in an existing folder you can write to")
        raise
    try:
        return _demo(args, out_file)
    finally:
        if out_file is not None:
            out_file.close()


def _demo(args: argparse.Namespace, out_file: BinaryIO | None) -> int:
    mapper = Mapper(compile_mappings())
    streamed = args.json and out_file is None  # documents straight to stdout, as they come
    with Simulator() as simulator, _collector(simulator.url) as collector:
        if not args.quiet:
            print(
                f"j1filter demo: J1 API simulator at {simulator.url}; running "
                "`j1filter collect --once | j1filter`",
                file=sys.stderr,
            )
        mapped = io.BytesIO()
        stats = run(cast(BinaryIO, collector.stdout), sys.stdout.buffer if streamed else mapped, mapper)
        collected = collector.wait()
    if not args.quiet:
        print(stats.summary(), file=sys.stderr)
    if stats.stopped_by is not None:
        return signal_exit_code(stats.stopped_by)
    if stats.output_closed:  # `j1filter demo --json | head -1`
        silence_stdout()
        return EXIT_OK
    if out_file is not None:
        out_file.write(mapped.getvalue())
    if args.json and not streamed:
        LineWriter(sys.stdout.buffer).write_text(mapped.getvalue().decode())
    elif not args.json:
        docs = [orjson.loads(line) for line in mapped.getvalue().splitlines()]
        LineWriter(sys.stdout.buffer).write_text(demo_report(docs, stats, mapper, args.out))
    return EXIT_FAILURE if collected else EXIT_OK


@contextmanager
def _collector(url: str) -> Iterator[subprocess.Popen[bytes]]:
    """``j1filter collect --once`` against ``url`` as a child process reading into a pipe.
    The child is stopped if the demo ends first."""
    env = dict(os.environ, J1_API_TOKEN=DEMO_TOKEN, J1_ACCOUNT_ID=DEMO_ACCOUNT_ID)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "j1filter",
            "collect",
            "--once",
            "--quiet",
            "--rate-limit",
            "0",
            "--endpoint",
            url,
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        yield child
    finally:
        assert child.stdout is not None
        child.stdout.close()
        if child.poll() is None:
            child.terminate()
        child.wait()


#: The report's lines stay within this width (the source table aside, which is as wide as its
#: rows); longer values of the full document are cut, with their length.
WIDTH = 100
VALUE_WIDTH = 80


def demo_report(docs: list[dict[str, Any]], stats: Stats, mapper: Mapper, out: str | None) -> str:
    """What a newcomer reads: the counts, what a bad value becomes, one full document, and
    how to see everything."""
    example = _example(docs)
    lines = [
        f"{stats.documents:,} ECS documents from {stats.lines:,} collected entities.",
        "",
        source_table(docs),
        *_wrap(*source_table_legend(docs)),
        "",
        *_wrap(f"errors by kind: {errors_by_kind(stats.errors, docs)}"),
        *_wrap(f"ECS fields filled: {ecs_fields_filled(docs)}"),
        "",
        *_bad_value(mapper),
    ]
    if example is not None:
        lines += [
            "",
            f"one document in full ({_describe(example)}; values over {VALUE_WIDTH} characters cut here):",
            orjson.dumps(_shortened(example), option=orjson.OPT_INDENT_2).decode(),
        ]
    lines += ["", *_closing_hint(stats, out)]
    return "\n".join(lines)


def _wrap(*paragraphs: str) -> list[str]:
    return [line for text in paragraphs for line in textwrap.wrap(text, WIDTH, subsequent_indent="  ")]


def _shortened(value: Any) -> Any:
    """``value`` with every text longer than VALUE_WIDTH cut, saying how long it was."""
    if isinstance(value, dict):
        return {key: _shortened(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shortened(item) for item in value]
    if isinstance(value, str) and len(value) > VALUE_WIDTH:
        return f"{value[: VALUE_WIDTH - 20]}… ({len(value):,} characters)"
    return value


def _closing_hint(stats: Stats, out: str | None) -> list[str]:
    """How to see every document, and how to have `j1filter` at hand when it is not."""
    lines = ["See every document: `j1filter demo --json` (one per line) or `j1filter demo --out FILE`."]
    if out:
        lines.append(f"All {stats.documents:,} are in {out}.")
    if shutil.which("j1filter") is None:
        if sys.prefix != sys.base_prefix:  # a virtual environment, such as ./dev's .venv
            activate = os.path.join(sys.prefix, "bin", "activate")
            relative = os.path.relpath(activate)
            lines += [
                "`j1filter` is not on your PATH yet; this puts it there for your shell:",
                f"  source {activate if relative.startswith('..') else relative}",
                "(or run any subcommand as `./dev j1filter ...` in the checkout).",
            ]
        else:
            lines.append("`j1filter` is not on your PATH: run it as `python3 -m j1filter`.")
    return lines


def _example(docs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A typical finding to show in full: the shortest clean document with a vulnerability id."""
    candidates = [d for d in docs if "error" not in d and "id" in d.get("vulnerability", {})] or docs
    return min(candidates, key=lambda doc: len(orjson.dumps(doc)), default=None)


def _describe(doc: dict[str, Any]) -> str:
    asset = doc.get("jupiter_one", {}).get("asset", {}).get("entity", {})
    kind = asset.get("_type")
    return f"a {kind[0] if isinstance(kind, list) else kind} entity" if kind else "an entity"


def _bad_value(mapper: Mapper) -> list[str]:
    """Map an invented entity with an impossible IP address, and say what happened to it."""
    (result,) = map_line(mapper, BAD_ENTITY, "line 1")
    doc = result.doc
    host_ip = doc.get("host", {}).get("ip")
    kept = "10.0.0.300" in doc["event"]["original"]
    return [
        'what becomes of a bad value (an invented entity whose deviceLocalIp is "10.0.0.300"):',
        *_field("event.kind", str(doc["event"].get("kind"))),
        *(
            line
            for message in doc.get("error", {}).get("message", [])
            for line in _field("error.message", message)
        ),
        *_field(
            "host.ip",
            f"{orjson.dumps(host_ip).decode()} (the bad address is left out of every ECS field"
            + (" and kept in event.original)" if kept else ")"),
        ),
    ]


def _field(name: str, text: str) -> list[str]:
    """`  name           text`, the text wrapped under itself."""
    return textwrap.wrap(text, WIDTH, initial_indent=f"  {name:<15}", subsequent_indent=" " * 17)
