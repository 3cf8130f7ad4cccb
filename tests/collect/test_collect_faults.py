"""Faults over real HTTP: what is retried, what is fatal, and that output survives a failure."""

from __future__ import annotations

import pytest
from collect_helpers import ACCOUNT_ID, Collect
from faults import Fault, Simulator


@pytest.mark.parametrize(
    "fault",
    [
        Fault.http(429, retry_after="1"),
        Fault.http(429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
        Fault.http(502),
        Fault.http(503, retry_after="2"),
        Fault.http(504),
        Fault.graphql_error("Rate limit exceeded (429)"),
        Fault.disconnect(),
    ],
    ids=["429", "429-http-date", "502", "503", "504", "graphql-429", "disconnect"],
)
def test_transient_faults_are_retried(collect: Collect, simulator: Simulator, fault: Fault) -> None:
    simulator.add_fault(fault, after=3)
    simulator.add_fault(fault)  # twice in a row on page 4
    result = collect("--endpoint", simulator.url)
    assert result.code == 0, result.stderr
    assert len(result.ids) == 25 == len(set(result.ids))
    assert "retrying" in result.stderr
    assert "2 retries" in result.stderr


def test_a_slow_answer_past_the_timeout_is_retried(collect: Collect, simulator: Simulator) -> None:
    simulator.add_fault(Fault.slow(2.0), after=1)
    result = collect("--endpoint", simulator.url, "--timeout", "0.5")
    assert result.code == 0, result.stderr
    assert len(set(result.ids)) == 25, result.stderr
    assert (
        f"page 2: no complete answer from {simulator.url.split('/')[2]} within --timeout 0.5 s; retrying"
        in result.stderr
    ), result.stderr


def test_giving_up_after_bounded_retries_keeps_what_arrived(collect: Collect, simulator: Simulator) -> None:
    simulator.add_fault(Fault.http(503), after=2)
    for _ in range(3):
        simulator.add_fault(Fault.http(503))
    result = collect("--endpoint", simulator.url, "--max-retries", "3")
    assert result.code == 1
    assert len(result.ids) == 4  # pages 1 and 2 were written before page 3 failed
    assert result.stderr.strip().splitlines()[-1] == (
        "j1filter collect: error: page 3: gave up after 4 attempts;"
        f" last error: HTTP 503 from {simulator.url.split('/')[2]}"
    )


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_stop_at_once(collect: Collect, simulator: Simulator, status: int) -> None:
    simulator.add_fault(Fault.http(status))
    result = collect("--endpoint", simulator.url)
    assert result.code == 1
    assert len(simulator.graphql_requests()) == 1  # no retry
    assert f"HTTP {status}" in result.stderr and "J1_API_TOKEN" in result.stderr


def test_a_wrong_token_is_fatal(collect: Collect, simulator: Simulator) -> None:
    result = collect("--endpoint", simulator.url, token="tok-wrong")
    assert (result.code, result.stdout) == (1, b"")
    assert "HTTP 401" in result.stderr
    assert [request.status for request in simulator.requests] == [401]


def test_a_wrong_account_is_fatal(collect: Collect, simulator: Simulator) -> None:
    result = collect("--endpoint", simulator.url, account_id=ACCOUNT_ID + "-other")
    assert result.code == 1 and "HTTP 401" in result.stderr


def test_graphql_errors_in_a_200_are_fatal_not_empty(collect: Collect, simulator: Simulator) -> None:
    simulator.add_fault(Fault.graphql_error('Error parsing J1QL: unexpected token "FNID"'), after=1)
    result = collect("--endpoint", simulator.url)
    assert result.code == 1
    assert len(result.ids) == 2  # page 1 made it out before page 2 failed
    last_line = result.stderr.strip().splitlines()[-1]
    assert (
        last_line
        == 'j1filter collect: error: J1 returned GraphQL errors: Error parsing J1QL: unexpected token "FNID"'
    )
    assert len(simulator.graphql_requests()) == 2  # not retried


def test_a_malformed_page_is_fatal_and_names_the_page(collect: Collect, simulator: Simulator) -> None:
    simulator.add_fault(Fault.malformed(), after=4)
    result = collect("--endpoint", simulator.url)
    assert result.code == 1
    assert len(result.ids) == 8
    assert "malformed response for page 5: the body is not JSON" in result.stderr


def test_a_table_result_is_refused(collect: Collect) -> None:
    rows = [{"id": "row-1", "f.name": "not an entity"}]
    with Simulator(rows, token="demo-token", account_id="demo-account") as sim:  # type: ignore[arg-type]
        result = collect("--endpoint", sim.url, token="demo-token", account_id="demo-account")
    assert result.code == 1
    assert "page 1" in result.stderr and "FIND query without RETURN" in result.stderr
