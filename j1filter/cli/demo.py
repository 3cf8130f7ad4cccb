"""``j1filter demo``: the whole pipeline against the bundled J1 API simulator.

Starts the simulator on a free loopback port, runs ``j1filter collect --once`` against it
as a real process over HTTP, maps its output with the filter's own stream code, and shows
a short report a person can read: documents by source, class and severity, errors by kind,
what becomes of a bad value, and one full document. ``--json`` prints every document
instead, one per line; ``--out FILE`` writes them to FILE as well. No J1 account is
needed; the demo credentials are public values.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
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
from .report import ecs_fields_filled, errors_by_kind, source_table

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
    mapper = Mapper(compile_mappings())
    with Simulator() as simulator, _collector(simulator.url) as collector:
        if not args.quiet:
            print(
                f"j1filter demo: J1 API simulator at {simulator.url}; running "
                "`j1filter collect --once | j1filter`",
                file=sys.stderr,
            )
        mapped = io.BytesIO()
        stats = run(cast(BinaryIO, collector.stdout), sys.stdout.buffer if args.json else mapped, mapper)
        collected = collector.wait()
    if not args.quiet:
        print(stats.summary(), file=sys.stderr)
    if stats.stopped_by is not None:
        return signal_exit_code(stats.stopped_by)
    if stats.output_closed:  # `j1filter demo --json | head -1`
        silence_stdout()
        return EXIT_OK
    if args.out:
        _write_out(args.out, mapped.getvalue())
    if not args.json:
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


def _write_out(path: str, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)


def demo_report(docs: list[dict[str, Any]], stats: Stats, mapper: Mapper, out: str | None) -> str:
    """What a newcomer reads: the counts, what a bad value becomes, one full document, and
    how to see everything."""
    example = _example(docs)
    lines = [
        f"{stats.documents:,} ECS documents from {stats.lines:,} collected entities.",
        "",
        source_table(docs),
        "",
        f"errors by kind: {errors_by_kind(stats.errors, docs)}",
        f"ECS fields filled: {ecs_fields_filled(docs)}",
        "",
        *_bad_value(mapper),
    ]
    if example is not None:
        lines += [
            "",
            f"one document in full ({_describe(example)}):",
            orjson.dumps(example, option=orjson.OPT_INDENT_2).decode(),
        ]
    lines += [
        "",
        "See every document: `j1filter demo --json` (one per line) or "
        "`j1filter demo --out FILE`." + (f" All {stats.documents:,} are in {out}." if out else ""),
    ]
    return "\n".join(lines)


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
        f"  event.kind     {doc['event'].get('kind')}",
        *(f"  error.message  {message}" for message in doc.get("error", {}).get("message", [])),
        f"  host.ip        {orjson.dumps(host_ip).decode()} (the bad address is left out of every ECS field"
        + (" and kept in event.original)" if kept else ")"),
    ]
