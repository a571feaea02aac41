"""Fault switches and request counts, set in-process and over HTTP."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from sandbox_oauth_flow import TODAY

from sandbox.server import Sandbox

WEEK = (TODAY - dt.timedelta(days=7), TODAY)


def test_malformed_json(client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]) -> None:
    sandbox.state.set_fault("malformed_json", count=1)
    broken = client.get("/data/v1/accounts", headers=auth)
    assert broken.status_code == 200 and broken.content.startswith(b'{"results":[')
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert client.get("/data/v1/accounts", headers=auth).json()["status"] == "Succeeded"
    assert sandbox.state.fault is None


@pytest.mark.parametrize(
    ("mode", "status", "error"),
    [
        ("server_error", 500, "provider_error"),
        ("unauthorized", 401, "invalid_token"),
        ("rate_limit", 429, "provider_too_many_requests"),
    ],
)
def test_error_faults_apply_count_times(
    client: httpx.Client, sandbox: Sandbox, auth: dict[str, str], mode: str, status: int, error: str
) -> None:
    sandbox.state.set_fault(mode, count=2)
    for _ in range(2):
        response = client.get("/data/v1/accounts", headers=auth)
        assert response.status_code == status
        assert set(response.json()) == {"error", "error_description", "error_details"}
        assert response.json()["error"] == error
        assert response.headers["x-tl-correlation-id"] and response.headers["x-request-id"]
        if mode == "rate_limit":
            assert response.headers["retry-after"] == "1"
    assert client.get("/data/v1/accounts", headers=auth).status_code == 200


def test_fault_over_http_until_cleared(client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]) -> None:
    set_response = client.post("/_sandbox/faults", json={"mode": "server_error"})
    assert set_response.json() == {
        "fault": {"mode": "server_error", "remaining": None, "path_prefix": "/data/v1"}
    }
    assert [client.get("/data/v1/me", headers=auth).status_code for _ in range(3)] == [500, 500, 500]
    # Faults cover the data API only by default: the token endpoint still works.
    assert client.post("/connect/token", data={"grant_type": "x"}).status_code == 401
    assert client.delete("/_sandbox/faults").json() == {"fault": None}
    assert client.get("/data/v1/me", headers=auth).status_code == 200


def test_fault_over_http_with_count_and_prefix(client: httpx.Client, sandbox: Sandbox) -> None:
    client.post("/_sandbox/faults", json={"mode": "rate_limit", "count": 1, "path_prefix": "/connect/token"})
    assert client.post("/connect/token", data={"grant_type": "x"}).status_code == 429
    assert client.post("/connect/token", data={"grant_type": "x"}).status_code == 401
    assert client.get("/_sandbox/faults").json() == {"fault": None}


@pytest.mark.parametrize(
    "body", [{"mode": "explode"}, {"mode": "server_error", "count": 0}, {"count": "2"}, []]
)
def test_bad_fault_requests_are_400(client: httpx.Client, body: object) -> None:
    response = client.post("/_sandbox/faults", json=body)
    assert response.status_code == 400 and response.json()["error"] == "invalid_fault"


def test_request_counts(client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]) -> None:
    account = sandbox.world.accounts_for("truelayer", cards=False)[0].account_id
    path = f"/data/v1/accounts/{account}/balance"
    before = sandbox.state.request_count(path)
    for _ in range(3):
        client.get(path, headers=auth)
    client.get("/_sandbox/requests")
    assert sandbox.state.request_count(path) == before + 3
    counts = client.get("/_sandbox/requests").json()["requests"]
    assert counts[path] == before + 3 and not any(p.startswith("/_sandbox") for p in counts)
    assert client.delete("/_sandbox/requests").json() == {"requests": {}}
    assert sandbox.state.request_count(path) == 0


def test_bad_rows_over_http_until_cleared(
    client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]
) -> None:
    account = next(
        a
        for a in sandbox.world.accounts_for("truelayer", cards=False)
        if sandbox.world.booked(a.account_id, *WEEK)
    )
    path = f"/data/v1/accounts/{account.account_id}/transactions"
    params = {"from": WEEK[0].isoformat(), "to": WEEK[1].isoformat()}
    clean = client.get(path, headers=auth, params=params).json()["results"]
    kinds = ["duplicate_id", "future_date", "null_amount", "unknown_currency"]
    assert client.post("/_sandbox/bad_rows", json={"kinds": kinds}).json() == {"kinds": kinds}
    try:
        served = client.get(path, headers=auth, params=params).json()["results"]
    finally:
        assert client.delete("/_sandbox/bad_rows").json() == {"kinds": []}
    assert served[: len(clean)] == clean
    duplicate, future, null_amount, unknown_currency = served[len(clean) :]
    assert (
        duplicate["transaction_id"] == clean[0]["transaction_id"]
        and duplicate["amount"] != clean[0]["amount"]
    )
    assert future["timestamp"] > f"{sandbox.world.today}T23:59:59"
    assert null_amount["amount"] is None
    assert unknown_currency["currency"] == "ZZZ"
    # Each bad row but the duplicate has ids of its own.
    ids = {row["transaction_id"] for row in (future, null_amount, unknown_currency)}
    assert len(ids) == 3 and not ids & {row["transaction_id"] for row in clean}
    assert client.get(path, headers=auth, params=params).json()["results"] == clean


def test_unknown_bad_row_kinds_are_400(client: httpx.Client) -> None:
    response = client.post("/_sandbox/bad_rows", json={"kinds": ["negative_zero"]})
    assert response.status_code == 400 and "negative_zero" in response.json()["error_description"]
