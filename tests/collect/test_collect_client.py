"""J1Client pieces with injected sleep and clock: backoff, Retry-After, rate limit, endpoints, parsing."""

from __future__ import annotations

import pytest
from collect_helpers import ACCOUNT_ID, TOKEN
from faults import Fault, Simulator

from j1filter.collect.client import ConnectionSettings, J1Client, _parse_page, resolve_endpoint
from j1filter.collect.pacing import Pacer, RetryPolicy, server_wait_hint
from j1filter.collect.secrets import Secret
from j1filter.errors import CollectError, ConfigurationError, MalformedResponseError


class FakeTime:
    """A clock that moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(sim: Simulator, fake: FakeTime, **options: object) -> J1Client:
    defaults: dict[str, object] = {
        "rate_limit_per_minute": 0,
        "deferred": False,
        "retry": RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=100),
    }
    return J1Client(
        ConnectionSettings(sim.url, timeout=5),
        Secret(TOKEN),
        ACCOUNT_ID,
        sleep=fake.sleep,
        clock=fake.clock,
        **{**defaults, **options},  # type: ignore[arg-type]
    )


def test_retry_after_is_honoured(simulator: Simulator) -> None:
    fake = FakeTime()
    simulator.add_fault(Fault.http(429, retry_after="7"))
    pages = list(make_client(simulator, fake).pages("FIND Finding"))
    assert sum(len(page.items) for page in pages) == 25
    assert fake.sleeps == [7.0]


def test_retry_after_is_capped(simulator: Simulator) -> None:
    fake = FakeTime()
    simulator.add_fault(Fault.http(503, retry_after="3600"))
    client = make_client(simulator, fake, retry=RetryPolicy(max_attempts=3, max_delay=0.5))
    list(client.pages("FIND Finding"))
    assert fake.sleeps == [0.5]
    assert client.stats.retries == 1


def test_the_rate_limit_spaces_graphql_requests(simulator: Simulator) -> None:
    fake = FakeTime()
    pages = list(make_client(simulator, fake, rate_limit_per_minute=30).pages("FIND Finding"))
    assert len(pages) == 13
    assert fake.sleeps == [2.0] * 12  # the first request goes at once, then one every 2 s


def test_deferred_polls_back_off_to_five_times_the_interval(simulator: Simulator) -> None:
    fake = FakeTime()
    simulator.deferred_polls = 5
    client = make_client(simulator, fake, deferred=True, poll_interval=1.0)
    next(client.pages("FIND Finding"))
    assert fake.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_deferred_job_that_never_finishes_times_out(simulator: Simulator) -> None:
    fake = FakeTime()
    simulator.deferred_polls = 1000
    client = make_client(simulator, fake, deferred=True, poll_interval=1.0, deferred_timeout=30.0)
    with pytest.raises(CollectError, match="still IN_PROGRESS after 30 s"):
        next(client.pages("FIND Finding"))


def test_rate_limiter_disabled_never_sleeps() -> None:
    fake = FakeTime()
    limiter = Pacer(0, fake.clock, fake.sleep)
    for _ in range(5):
        limiter.acquire()
    assert fake.sleeps == []


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_stays_within_bounds(attempt: int) -> None:
    policy = RetryPolicy(base_delay=2, max_delay=60)
    assert policy.delay(attempt, 0, rng=lambda: 1.0) == min(60, 2 * 2 ** (attempt - 1))
    assert policy.delay(attempt, 0, rng=lambda: 0.0) == 0
    assert policy.delay(attempt, 30, rng=lambda: 0.0) == 30
    assert policy.delay(attempt, 90, rng=lambda: 0.0) == 60


def test_server_wait_hint_reads_retry_after_and_ratelimit_reset() -> None:
    assert server_wait_hint({"retry-after": "3", "ratelimit-reset": "11"}) == 11
    assert server_wait_hint({"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}) == 0
    assert server_wait_hint({"retry-after": "nan", "ratelimit-reset": "\u00b2"}) == 0
    assert server_wait_hint({}) == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("us", "https://graphql.us.jupiterone.io/"),
        ("EU", "https://graphql.eu.jupiterone.io/"),
        ("https://api.us.jupiterone.io/graphql", "https://api.us.jupiterone.io/graphql"),
        ("http://127.0.0.1:8765/graphql", "http://127.0.0.1:8765/graphql"),
        ("http://localhost:8765/", "http://localhost:8765/"),
    ],
)
def test_endpoints_resolve(value: str, expected: str) -> None:
    assert resolve_endpoint(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "ap",
        "ftp://example.com/",
        "http://graphql.example.com/",
        "https://",
        "http://[::1/",
        "https://h\u00e9.example/",
    ],
)
def test_bad_endpoints_are_refused(value: str) -> None:
    with pytest.raises(ConfigurationError):
        resolve_endpoint(value)


def test_a_missing_or_empty_cursor_ends_the_results() -> None:
    item = {"id": "1", "entity": {"_id": "1"}, "properties": {}}
    assert _parse_page(1, {"type": "list", "data": [item]}).cursor is None
    assert _parse_page(1, {"type": "list", "data": [item], "cursor": ""}).cursor is None
    assert _parse_page(1, {"type": "list", "data": [], "cursor": "abc"}).cursor == "abc"


@pytest.mark.parametrize(
    "result",
    [
        {"type": "list", "data": None},
        {"type": "table", "data": [{"f.name": "a row"}]},
        {"type": "list", "data": [{"f.name": "a row"}, {"g": 1}]},
        {"type": "list", "data": [], "cursor": 5},
    ],
)
def test_malformed_results_are_refused(result: dict[str, object]) -> None:
    with pytest.raises(MalformedResponseError):
        _parse_page(1, result)
