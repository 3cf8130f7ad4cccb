"""The mapper's command-line options, defined once for every command that maps entities
(the filter and `collect --map`)."""

from __future__ import annotations

import argparse

from .._meta import DEFAULT_DATA_STREAM_TYPE, DEFAULT_DATASET, DEFAULT_NAMESPACE
from ..errors import J1FilterError
from ..language.loader import load_mappings
from ..runtime.mapper import Mapper, Options


def add_mapping_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """--mapping, --no-shipped-mappings, --preserve-duplicate-custom-fields, --type, --dataset, --namespace."""
    group = parser.add_argument_group("mapping")
    group.add_argument(
        "-m",
        "--mapping",
        action="append",
        default=[],
        metavar="PATH",
        help="extra mapping file or directory; one named like a shipped mapping replaces it (repeatable)",
    )
    group.add_argument("--no-shipped-mappings", action="store_true", help="use only the --mapping files")
    group.add_argument(
        "--preserve-duplicate-custom-fields",
        action="store_true",
        help="keep the raw copies of fields also mapped to ECS (Elastic's option)",
    )
    group.add_argument("--type", default=DEFAULT_DATA_STREAM_TYPE, help="data_stream.type (default: %(default)s)")
    group.add_argument("--dataset", default=DEFAULT_DATASET, help="data_stream.dataset (default: %(default)s)")
    group.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="data_stream.namespace (default: %(default)s)")
    return group


def mapper_from_args(args: argparse.Namespace) -> Mapper:
    """The Mapper the options ask for. Raises J1FilterError (MappingError for an invalid mapping
    file): a usage error, exit code 2."""
    specs = load_mappings(args.mapping, shipped=not args.no_shipped_mappings)
    if not specs:
        raise J1FilterError("no mapping files to use")
    return Mapper(
        specs,
        Options(
            preserve_duplicate_custom_fields=args.preserve_duplicate_custom_fields,
            data_stream_type=args.type,
            dataset=args.dataset,
            namespace=args.namespace,
        ),
    )
