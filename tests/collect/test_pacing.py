"""Pacing by J1's own answer, on simulated time: every tier's allowance used, never exceeded;
429 with Retry-After; deferred FORCE by default; an inline query past 30 s times out."""

from __future__ import annotations

import pytest
from simulated_time import measure_snapshot, simulated, simulated_client, tiny_entities

from j1filter.collect.pacing import Pacer, RetryPolicy
from j1filter.collect.simulator import TIERS
from j1filter.errors import RemoteError

#: Enough pages that the first burst does not flatter the figure much; the 1-million run is
#: `python tests/collect/simulated_time.py` (its figures are in docs/collector-service.md).
ENTITIES = 60_000


@pytest.mark.parametrize("tier", list(TIERS.values()), ids=list(TIERS))
def test_a_full_snapshot_uses_the_whole_allowance_and_never_exceeds_it(tier) -> None:  # type: ignore[no-untyped-def]
    result = measure_snapshot(tier, ENTITIES)
    assert result.throttled == 0, "a request past the account's limit"
    assert result.requests == ENTITIES // 250
    assert 0.95 <= result.fraction <= 1.05 * (1 + tier.burst * 250 / ENTITIES), result


def test_the_ceiling_wins_over_a_larger_allowance() -> None:
    fake, sim = simulated(tiny_entities(100), tier=TIERS["enterprise"])
    client = simulated_client(sim, fake, rate_limit_per_minute=6)
    list(client.pages("FIND Finding"))
    assert len(sim.graphql_requests()) == 10 and fake.slept >= 9 * 10.0  # one every 10 s


def test_a_429_waits_what_retry_after_asks_and_costs_nothing() -> None:
    fake, sim = simulated(tiny_entities(30), tier=TIERS["free"])
    client = simulated_client(sim, fake)
    list(client.pages("FIND Finding"))  # paced by the headers: no 429 at all
    assert [r.status for r in sim.graphql_requests()] == [200, 200, 200]
    blind = simulated_client(sim, fake, retry=RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=60))
    blind._pacer = Pacer(0, fake.clock, fake.sleep)  # a client that ignores RateLimit-*: a 429 comes
    blind._pacer.observe = lambda headers: None  # type: ignore[method-assign]
    before = fake.slept
    list(blind.pages("FIND Finding"))
    assert fake.slept - before >= 6, "a 429 is followed by the wait Retry-After asks (6 s at 10 a minute)"
    statuses = [r.status for r in sim.graphql_requests()][3:]
    assert 429 in statuses and statuses.count(200) == 3
    assert blind.stats.throttled == statuses.count(429)


def test_an_inline_query_past_30_s_times_out_and_force_does_not() -> None:
    fake, sim = simulated(tiny_entities(5))
    sim.query_seconds = 45
    inline = simulated_client(
        sim, fake, deferred=False, retry=RetryPolicy(max_attempts=2, base_delay=1, max_delay=1)
    )
    with pytest.raises(RemoteError, match="HTTP 504"):
        list(inline.pages("FIND Finding"))
    started = fake.now
    pages = list(simulated_client(sim, fake).pages("FIND Finding"))  # FORCE is the default
    assert sum(len(page.items) for page in pages) == 5
    assert fake.now - started >= 45
    assert all(request.deferred for request in sim.graphql_requests()[-1:])


@pytest.mark.parametrize("inline", [True, False], ids=["state holds the data", "state points at a url"])
def test_both_forms_of_a_completed_deferred_result(inline: bool) -> None:
    fake, sim = simulated(tiny_entities(25))
    sim.deferred_inline = inline
    pages = list(simulated_client(sim, fake).pages("FIND Finding"))
    assert [item["id"] for page in pages for item in page.items] == [f"e{i}" for i in range(25)]
    gets = [r.path for r in sim.requests if r.method == "GET"]
    assert any(path.endswith("result.json") for path in gets) is (not inline)
