"""Elasticsearch data stream names: the one check every option that names one goes through.

A data stream is named ``<type>-<dataset>-<namespace>``. The rules below are those of
Elasticsearch index names (lowercase; none of ``\\ / * ? " < > | , # :`` or spaces; not
starting with ``-``, ``_`` or ``+``; ``.`` is for hidden indices) plus those of ECS's ``data_stream.*`` fields (type
``logs`` or ``metrics``; no ``-`` in dataset or namespace, which would make the name
ambiguous; at most 100 characters each). The whole name is held to 100 bytes as well:
Elasticsearch allows 255 for an index name, and the backing indices (``.ds-<name>-<date>-
<generation>``) and the names derived from it for the latest view need the rest.
"""

from __future__ import annotations

DATA_STREAM_TYPES = ("logs", "metrics")
MAX_PART_LENGTH = 100
MAX_NAME_BYTES = 100
_FORBIDDEN = '\\/*?"<>|,#: '
_BAD_START = "_+."  # and "-", refused anywhere; "." starts hidden index names


def data_stream_name(type_: str, dataset: str, namespace: str) -> str:
    return f"{type_}-{dataset}-{namespace}"


def data_stream_problems(type_: str, dataset: str, namespace: str) -> list[str]:
    """Every reason why ``<type>-<dataset>-<namespace>`` is not a usable data stream name,
    one sentence each naming the option; empty when it is usable."""
    problems = []
    if type_ not in DATA_STREAM_TYPES:
        problems.append(f"--type {type_!r}: must be one of {', '.join(DATA_STREAM_TYPES)}")
    for option, value in (("--dataset", dataset), ("--namespace", namespace)):
        problems += [f"{option} {value!r}: {why}" for why in _part_problems(value)]
    name = data_stream_name(type_, dataset, namespace)
    if not problems and len(name.encode("utf-8")) > MAX_NAME_BYTES:
        problems.append(
            f"data stream name {name!r} is {len(name.encode('utf-8'))} bytes long; "
            f"keep <type>-<dataset>-<namespace> within {MAX_NAME_BYTES}"
        )
    return problems


def _part_problems(value: str) -> list[str]:
    if not value:
        return ["must not be empty"]
    problems = []
    if value != value.lower():
        problems.append("must be lowercase")
    if "-" in value:
        problems.append("must not contain '-' (it separates type, dataset and namespace)")
    if value[0] in _BAD_START:
        problems.append(f"must not start with {value[0]!r}")
    bad = sorted({char for char in value if char in _FORBIDDEN or not char.isprintable()})
    if bad:
        problems.append("must not contain " + ", ".join(repr(char) for char in bad))
    if value in (".", ".."):
        problems.append("must not be '.' or '..'")
    if len(value) > MAX_PART_LENGTH:
        problems.append(f"is {len(value)} characters long; at most {MAX_PART_LENGTH}")
    return problems
