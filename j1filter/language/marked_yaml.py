"""YAML with positions: every mapping and list remembers where it, its keys and its values
start, so each problem in a mapping file is reported at its line and column. An alias bomb
(a small file whose aliases expand to millions of nodes) is refused before it is built.
"""

from __future__ import annotations

from typing import Any

import yaml


class MarkedDict(dict[Any, Any]):
    """A YAML mapping that remembers where it and each of its keys and values start."""

    mark: Any = None
    key_marks: dict[Any, Any]
    value_marks: dict[Any, Any]


class MarkedList(list[Any]):
    mark: Any = None
    item_marks: list[Any]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser when PyYAML has it (ten times faster: start-up reads every mapping
    file), with the same marks; our constructors keep them."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> MarkedDict:
    own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)  # merge keys (<<): merged entries first, then the node's own
    merged = len(node.value) - own
    result = MarkedDict()
    result.mark, result.key_marks, result.value_marks = node.start_mark, {}, {}
    own_keys: set[Any] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float)):  # numbers appear in lookup tables
            raise yaml.MarkedYAMLError(
                None, None, f"keys must be text or numbers, found {key!r}", key_node.start_mark
            )
        if index >= merged:  # the node's own keys override merged ones, but not each other
            if key in own_keys:
                raise yaml.MarkedYAMLError(None, None, f"duplicate key '{key}'", key_node.start_mark)
            own_keys.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_marks[key] = key_node.start_mark
        result.value_marks[key] = value_node.start_mark
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> MarkedList:
    result = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
    result.mark, result.item_marks = node.start_mark, [child.start_mark for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


#: Most nodes plus text characters a mapping file may expand to through its aliases (or
#: twice its own length, if more): 300 times the largest shipped mapping, far less than
#: an alias bomb.
MAX_EXPANDED_SIZE = 1_000_000


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Nodes plus scalar characters of ``node`` with every alias expanded (each node is
    measured once, so this costs time linear in the file, however large the expansion)."""
    found = sizes.get(id(node))
    if found is not None:
        return found
    sizes[id(node)] = 0  # a recursive alias: the constructor refuses it
    if isinstance(node, yaml.ScalarNode):
        size = 1 + len(node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    else:
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = size
    return size


def _alias_bomb(node: yaml.Node, sizes: dict[int, int], limit: int) -> yaml.Node | None:
    """The innermost node whose expansion is over ``limit``, if any: where aliases blow up."""
    if sizes[id(node)] <= limit:
        return None
    children = (
        node.value
        if isinstance(node, yaml.SequenceNode)
        else [v for pair in node.value for v in pair]
        if isinstance(node, yaml.MappingNode)
        else []
    )
    for child in children:
        if sizes[id(child)] > limit:
            return _alias_bomb(child, sizes, limit)
    return node


class AliasBombError(yaml.MarkedYAMLError):
    """The document's aliases expand it beyond MAX_EXPANDED_SIZE."""

    pass


def load_yaml(text: str) -> Any:
    """The YAML document, refused (MarkedYAMLError) when its aliases expand it beyond
    MAX_EXPANDED_SIZE: an alias bomb would otherwise pass and blow up every document."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}
        total = _expanded_size(node, sizes)
        limit = max(MAX_EXPANDED_SIZE, 2 * len(text))
        bomb = _alias_bomb(node, sizes, limit)
        if bomb is not None:
            raise AliasBombError(
                None,
                None,
                f"aliases expand this value to {sizes[id(bomb)]:,} nodes and characters "
                f"(the whole file to {total:,}); the limit is {limit:,}",
                bomb.start_mark,
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()
