"""Deferred mode (deferredResponse: FORCE): poll the state URL, read results inline or behind a URL."""

from __future__ import annotations

import pytest
from collect_helpers import Collect
from faults import Fault, Simulator


@pytest.mark.parametrize("inline", [True, False], ids=["results-inline", "results-behind-url"])
def test_deferred_pages_deliver_every_entity_once(
    collect: Collect, simulator: Simulator, inline: bool
) -> None:
    simulator.deferred_inline = inline
    simulator.deferred_polls = 2
    result = collect("--endpoint", simulator.url, "--deferred")
    assert result.code == 0, result.stderr
    assert len(result.ids) == 25 == len(set(result.ids))

    posts = simulator.graphql_requests()
    downloads = [request for request in simulator.requests if request.method == "GET"]
    assert len(posts) == 13 and all(request.deferred for request in posts)
    # Per page: two IN_PROGRESS polls, one COMPLETED, and the results file when not inline.
    assert len(downloads) == 13 * (3 if inline else 4)
    assert not any(request.has_credentials for request in downloads), (
        "the token must not go to the download host"
    )


def test_a_failed_deferred_job_is_fatal(collect: Collect, simulator: Simulator) -> None:
    simulator.add_fault(Fault.deferred_failed("Query timed out in the graph"), after=2)
    result = collect("--endpoint", simulator.url, "--deferred")
    assert result.code == 1
    assert len(result.ids) == 4
    assert "deferred query failed on page 3: Query timed out in the graph" in result.stderr


def test_deferred_mode_recovers_from_a_throttled_request(collect: Collect, simulator: Simulator) -> None:
    simulator.add_fault(Fault.http(429, retry_after="1"), after=5)
    result = collect("--endpoint", simulator.url, "--deferred")
    assert result.code == 0, result.stderr
    assert len(set(result.ids)) == 25
