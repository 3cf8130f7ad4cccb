"""The mapper's command-line options, defined once for every command that maps entities
(the filter and `collect --map`)."""

from __future__ import annotations

import argparse

from .._meta import DEFAULT_DATA_STREAM_TYPE, DEFAULT_DATASET, DEFAULT_NAMESPACE
from ..datastream import data_stream_problems
from ..errors import ConfigurationError, UsageError
from ..runtime.compiler import compile_files
from ..runtime.mapper import Mapper, Options

_STREAM_HELP = (
    "; a value other than the default needs the Elasticsearch assets rendered with "
    "the same option (`j1filter assets`)"
)


def add_mapping_path_option(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    description: str = "extra mapping file or directory; one named like a shipped mapping replaces it (repeatable)",
) -> None:
    """-m/--mapping PATH, repeatable: the mapping files to load after (or instead of) the shipped ones."""
    parser.add_argument("-m", "--mapping", action="append", default=[], metavar="PATH", help=description)


def add_mapping_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """--mapping, --no-shipped-mappings, --preserve-duplicate-custom-fields, --type, --dataset, --namespace."""
    group = parser.add_argument_group("mapping")
    add_mapping_path_option(group)
    group.add_argument("--no-shipped-mappings", action="store_true", help="use only the --mapping files")
    group.add_argument(
        "--preserve-duplicate-custom-fields",
        action="store_true",
        help="keep the raw copies of fields also mapped to ECS (Elastic's option)",
    )
    group.add_argument(
        "--type",
        default=DEFAULT_DATA_STREAM_TYPE,
        help="data_stream.type: logs or metrics (default: %(default)s)" + _STREAM_HELP,
    )
    group.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        help="data_stream.dataset and event.dataset: lowercase, no '-' (default: %(default)s)" + _STREAM_HELP,
    )
    group.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help="data_stream.namespace: lowercase, no '-', e.g. prod_eu (default: %(default)s)" + _STREAM_HELP,
    )
    return group


def mapping_option_problems(args: argparse.Namespace) -> list[str]:
    """Why the mapping options cannot be used (data stream naming rules), one line each."""
    return data_stream_problems(args.type, args.dataset, args.namespace)


def mapper_from_args(args: argparse.Namespace) -> Mapper:
    """The Mapper the options ask for. Raises a ConfigurationError (MappingError for an invalid
    mapping file, UsageError for a bad data stream name): exit code 2."""
    problems = mapping_option_problems(args)
    if problems:
        raise UsageError("; ".join(problems))
    compiled = compile_files(args.mapping, shipped=not args.no_shipped_mappings)
    if not compiled.specs:
        raise ConfigurationError("no mapping files to use")
    return Mapper(
        compiled,
        Options(
            preserve_duplicate_custom_fields=args.preserve_duplicate_custom_fields,
            data_stream_type=args.type,
            dataset=args.dataset,
            namespace=args.namespace,
        ),
    )
