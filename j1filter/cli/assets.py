"""`j1filter assets --out DIR`: argument parsing only."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .._meta import DEFAULT_DATA_STREAM_TYPE, DEFAULT_DATASET, DEFAULT_NAMESPACE
from ..assets.bundle import ENGINES, render, write
from ..assets.names import Names
from ..io.stops import EXIT_OK
from ..language.loader import load_mappings
from .main import new_parser


def _parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "j1filter assets",
        "Render the Elasticsearch assets (templates, ILM policy, ingest pipeline, latest "
        "transform and index) and the Kibana dashboards into DIR/elasticsearch and DIR/kibana, "
        "or with --engine opensearch the OpenSearch assets (templates, ISM policy, ingest "
        "pipeline, current-state index, Logstash pipeline) into DIR/opensearch. "
        "`--out logstash` re-renders the shipped bundle.",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        type=Path,
        help="write DIR/elasticsearch (with install.sh) and DIR/kibana, created if missing; "
        "files already there are replaced",
    )
    parser.add_argument(
        "--engine", choices=ENGINES, default=ENGINES[0], help="target search engine (default: %(default)s)"
    )
    parser.add_argument(
        "--type", default=DEFAULT_DATA_STREAM_TYPE, help="data_stream.type (default: %(default)s)"
    )
    parser.add_argument(
        "--dataset", default=DEFAULT_DATASET, help="data_stream.dataset (default: %(default)s)"
    )
    parser.add_argument(
        "--namespace", default=DEFAULT_NAMESPACE, help="data_stream.namespace (default: %(default)s)"
    )
    parser.add_argument(
        "--interval", default="1h", help="collection interval of `collect` (default: %(default)s)"
    )
    parser.add_argument(
        "--full-interval",
        default="24h",
        help="full snapshot interval of `collect` (default: %(default)s); the latest view "
        "keeps an entity full-interval + max(2 x interval, full-interval / 4)",
    )
    parser.add_argument(
        "-m",
        "--mapping",
        action="append",
        default=[],
        metavar="PATH",
        help="extra mapping file or directory (its field types join the templates)",
    )
    parser.add_argument(
        "--no-shipped-mappings",
        action="store_true",
        help="derive the field types from the --mapping files only",
    )
    return parser


def assets_main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    names = Names(args.type, args.dataset, args.namespace, args.interval, args.full_interval)
    specs = load_mappings(args.mapping, shipped=not args.no_shipped_mappings)
    files = render(names, specs, args.engine)  # compiles the mappings: a file `check` refuses stops here
    write(files, args.out)
    print(f"j1filter assets: wrote {len(files)} files for {names.data_stream} to {args.out}", file=sys.stderr)
    return EXIT_OK
