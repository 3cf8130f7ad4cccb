"""One real OpenSearch node per test session (see node.py), started by the first test that
asks for it. In CI (CI=true) a node that cannot start fails the run; elsewhere a missing Java or
Maven skips these tests with the reason."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from node import FIGURES, HEAP, Client, Node, NodeUnavailable, runner_jars, verdict


@pytest.fixture(scope="session")
def opensearch_node() -> Iterator[Node]:
    in_ci = os.environ.get("CI") == "true"
    try:
        began = time.monotonic()
        lib = runner_jars()
        FIGURES["runner jars ready (cached or downloaded)"] = f"{time.monotonic() - began:.1f} s"
        node = Node.start(lib)
    except NodeUnavailable as exc:
        if verdict(exc, in_ci) == "skip":
            pytest.skip(f"OpenSearch test node: {exc}")
        pytest.fail(f"the OpenSearch test node could not start: {exc}", pytrace=False)
    FIGURES["node start-up"] = f"{node.startup_s:.1f} s (OpenSearch {node.version}, heap {HEAP})"
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def opensearch(opensearch_node: Node) -> Client:
    return opensearch_node.client


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("OpenSearch test node")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
