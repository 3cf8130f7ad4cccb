"""Mapping files: which to read (the shipped ones, then the user's), read and parsed in
order, every problem of every file reported at once. See README "Mapping format"."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable
from pathlib import Path as FsPath

from ..errors import MappingError, Problem
from .parser import Parsed, parse_mapping_text
from .spec import MappingSpec


def read_mapping(path: str | FsPath, name: str | None = None) -> Parsed:
    """Read and parse one mapping file, problems included. ``name`` is how messages call
    the file (default: its path)."""
    path = FsPath(path)
    name = str(path) if name is None else name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Parsed(name, None, (Problem(name, 1, 1, "file", f"cannot read: {exc}"),))
    return parse_mapping_text(text, name)


def load_mapping(path: str | FsPath, name: str | None = None) -> MappingSpec:
    """Load one mapping file; raise MappingError (with file:line:col) if it is invalid."""
    parsed = read_mapping(path, name)
    if parsed.problems or parsed.spec is None:
        raise MappingError(list(parsed.problems))
    return parsed.spec


def shipped_mapping_paths() -> list[FsPath]:
    """The mapping files installed with the package (or, from a source tree, ``mappings/``)."""
    try:
        root = importlib.resources.files("j1filter.mappings")
        files = sorted(
            (FsPath(str(entry)) for entry in root.iterdir() if entry.name.endswith(".yml")),
            key=lambda p: p.name,
        )
        if files:
            return files
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    source_tree = FsPath(__file__).resolve().parents[2] / "mappings"
    return sorted(source_tree.glob("*.yml"))


def expand_paths(paths: Iterable[str | FsPath]) -> list[FsPath]:
    """Files as given; directories contribute their ``*.yml`` files in name order."""
    result: list[FsPath] = []
    for path in map(FsPath, paths):
        result.extend(sorted(path.glob("*.yml")) if path.is_dir() else [path])
    return result


def read_mappings(extra: Iterable[str | FsPath] = (), *, shipped: bool = True) -> list[Parsed]:
    """Shipped mapping files, then ``extra`` files, each read and parsed, problems included."""
    # Shipped files are named as in the source tree (mappings/NAME.yml) wherever installed.
    paths = [(p, f"mappings/{p.name}") for p in shipped_mapping_paths()] if shipped else []
    paths += [(p, str(p)) for p in expand_paths(extra)]
    return [read_mapping(path, name) for path, name in paths]


def run_order(parsed: Iterable[Parsed]) -> list[MappingSpec]:
    """The specs in the order they run: by ``order``, then load order; a file with the name
    of an earlier mapping replaces it (and takes its own place in the order)."""
    by_name: dict[str, MappingSpec] = {}
    for spec in (p.spec for p in parsed if p.spec is not None):
        by_name.pop(spec.name, None)
        by_name[spec.name] = spec
    return sorted(by_name.values(), key=lambda s: s.order)  # stable: load order breaks ties


def load_mappings(extra: Iterable[str | FsPath] = (), *, shipped: bool = True) -> list[MappingSpec]:
    """Shipped mappings, then ``extra`` files, in the order they run (see :func:`run_order`).
    Raises MappingError listing the problems of every file."""
    parsed = read_mappings(extra, shipped=shipped)
    problems = [problem for p in parsed for problem in p.problems]
    if problems:
        raise MappingError(problems)
    return run_order(parsed)
