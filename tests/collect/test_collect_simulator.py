"""The simulator itself, spoken to with plain urllib: auth, time filter, deletions, cursors, records."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from collect_helpers import ACCOUNT_ID, BASE_BEGIN_MS, TOKEN, make_entities, make_entity
from faults import Fault, Simulator

from j1filter.collect._timestamps import iso_from_ms
from j1filter.collect.client import QUERY_V1


def post(sim: Simulator, variables: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
    body = json.dumps({"query": QUERY_V1, "variables": variables}).encode()
    default_headers = {
        "Authorization": f"Bearer {TOKEN}",
        "JupiterOne-Account": ACCOUNT_ID,
        "Content-Type": "application/json",
    }
    request = urllib.request.Request(
        sim.url, data=body, headers=headers if headers is not None else default_headers
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def ids(answer: Any) -> list[str]:
    return [item["id"] for item in answer["data"]["queryV1"]["data"]]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong", "JupiterOne-Account": ACCOUNT_ID},
        {"Authorization": f"Bearer {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}", "JupiterOne-Account": "someone-else"},
    ],
    ids=["no-headers", "wrong-token", "no-account", "wrong-account"],
)
def test_credentials_are_checked(simulator: Simulator, headers: dict[str, str]) -> None:
    assert post(simulator, {"query": "FIND Finding"}, headers) == (401, "Unauthorized")


def test_the_older_account_header_is_accepted(simulator: Simulator) -> None:
    status, _ = post(
        simulator,
        {"query": "FIND Finding"},
        {"Authorization": f"Bearer {TOKEN}", "LifeOmic-Account": ACCOUNT_ID},
    )
    assert status == 200


@pytest.mark.parametrize(
    "literal",
    [
        str(BASE_BEGIN_MS + 20 * 60_000),
        f"date({iso_from_ms(BASE_BEGIN_MS + 20 * 60_000)})",
        f"'{iso_from_ms(BASE_BEGIN_MS + 20 * 60_000)}'",
    ],
    ids=["epoch-ms", "date()", "quoted-iso"],
)
def test_the_begin_on_filter_is_honoured(literal: str) -> None:
    with Simulator(make_entities(25), token=TOKEN, account_id=ACCOUNT_ID, page_size=100) as sim:
        status, answer = post(sim, {"query": f"FIND Finding WITH _beginOn > {literal}"})
    assert status == 200
    assert ids(answer) == [item["id"] for item in make_entities(25)[21:]]


def test_deleted_entities_need_include_deleted() -> None:
    entities = [make_entity(0), make_entity(1, deleted=True)]
    with Simulator(entities, token=TOKEN, account_id=ACCOUNT_ID, page_size=10) as sim:
        assert ids(post(sim, {"query": "FIND Finding"})[1]) == [entities[0]["id"]]
        assert ids(post(sim, {"query": "FIND Finding", "includeDeleted": True})[1]) == [
            entities[0]["id"],
            entities[1]["id"],
        ]


def test_a_bad_cursor_or_date_is_a_graphql_error(simulator: Simulator) -> None:
    _, answer = post(simulator, {"query": "FIND Finding", "cursor": "bm90LWEtY3Vyc29y"})
    assert answer == {"errors": [{"message": "Invalid or expired cursor"}], "data": None}
    _, answer = post(simulator, {"query": "FIND Finding WITH _beginOn > date(last tuesday)"})
    assert "Could not parse date" in answer["errors"][0]["message"]


def test_faults_are_served_in_order_after_the_requested_gap(simulator: Simulator) -> None:
    simulator.add_fault(Fault.http(502), after=1)
    simulator.add_fault(Fault.http(429, retry_after="4"))
    statuses = [post(simulator, {"query": "FIND Finding"})[0] for _ in range(4)]
    assert statuses == [200, 502, 429, 200]
    assert simulator.pending_faults() == 0
    assert [request.note for request in simulator.requests] == [None, "http", "http", None]


def test_records_never_hold_credentials(simulator: Simulator) -> None:
    post(simulator, {"query": "FIND Finding"})
    assert TOKEN not in repr(simulator.requests)
    assert simulator.requests[0].has_credentials


def test_unknown_download_urls_are_404(simulator: Simulator) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(simulator.url.replace("/graphql", "/deferred/abc/state.json"), timeout=5)
    raised.value.close()
    assert raised.value.code == 404
