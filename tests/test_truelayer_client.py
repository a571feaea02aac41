"""The TrueLayer client against real HTTP servers: identity order, retries, quarantine."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bankflow_cli.connect import code_from_redirect, start_truelayer_consent
from resources.errors import AuthorizationRequired, TransientProviderError
from resources.http import RetryPolicy
from resources.providers.truelayer import (
    TrueLayerClient,
    environment_urls,
    extract_window,
    posting_date,
    record_key,
)
from sandbox.server import Sandbox, serve

FAST = RetryPolicy(max_attempts=3, backoff_initial=0.01)


def test_identity_follows_the_contract_order() -> None:
    assert (
        record_key(
            {"transaction_id": "t", "provider_transaction_id": "p", "normalised_provider_transaction_id": "n"}
        )
        == "n"
    )
    assert record_key({"transaction_id": "t", "provider_transaction_id": "p"}) == "p"
    assert record_key({"transaction_id": "t", "normalised_provider_transaction_id": ""}) == "t"
    assert record_key({}) is None


@pytest.mark.parametrize(
    ("timestamp", "day"),
    [
        ("2018-03-06T00:00:00", "2018-03-06"),
        ("2026-01-31T23:30:00+02:00", "2026-01-31"),
        ("2026-01-31T00:00:00Z", "2026-01-31"),
        ("nope", None),
    ],
)
def test_posting_date_is_the_banks_calendar_day(timestamp: str, day: str | None) -> None:
    assert posting_date({"timestamp": timestamp}) == day


def _odd_bank() -> Starlette:
    """A bank that sends one good row, one without any id and one outside the window."""

    async def accounts(request: Request) -> Response:
        return JSONResponse({"results": [{"account_id": "acc-x", "currency": "GBP"}], "status": "Succeeded"})

    async def balance(request: Request) -> Response:
        return JSONResponse({"results": [{"currency": "GBP", "current": 1}], "status": "Succeeded"})

    async def transactions(request: Request) -> Response:
        body = (
            '{"results":['
            '{"transaction_id":"ok-1","timestamp":"2026-03-02T00:00:00","amount":-2.99,"currency":"GBP"},'
            '{"timestamp":"2026-03-02T00:00:00","amount":-1.00,"currency":"GBP"},'
            '{"transaction_id":"late-1","timestamp":"2026-04-01T00:00:00","amount":5.00,"currency":"GBP"}'
            '],"status":"Succeeded"}'
        )
        return Response(body, media_type="application/json")

    async def pending(request: Request) -> Response:
        return JSONResponse({"results": [], "status": "Succeeded"})

    async def no_cards(request: Request) -> Response:
        return JSONResponse({"results": [], "status": "Succeeded"})

    return Starlette(
        routes=[
            Route("/cards", no_cards),
            Route("/accounts", accounts),
            Route("/accounts/{id}/balance", balance),
            Route("/accounts/{id}/transactions", transactions),
            Route("/accounts/{id}/transactions/pending", pending),
        ]
    )


def test_unusable_records_are_quarantined_not_dropped() -> None:
    with serve(_odd_bank()) as url, TrueLayerClient(url, "token", retry=FAST) as client:
        extract = extract_window(client, date(2026, 3, 1), date(2026, 3, 3), date(2026, 3, 3))
    booked = next(load for load in extract.loads if load.table == "truelayer_transactions")
    assert [r.record_key for r in booked.records] == ["ok-1"]
    assert '"amount":-2.99' in booked.records[0].payload
    assert sorted(q.reason for q in extract.quarantined) == [
        "no transaction id in any of normalised_provider_transaction_id, provider_transaction_id, transaction_id",
        "posting date 2026-04-01 is outside the requested window",
    ]


def test_rate_limit_is_retried_after_retry_after(sandbox: Sandbox, connected_truelayer) -> None:
    with _client(sandbox, connected_truelayer) as client:
        sandbox.state.set_fault("rate_limit", count=2)
        assert client.accounts()
    assert sandbox.state.fault is None


def test_persistent_5xx_gives_up_with_a_transient_error(sandbox: Sandbox, connected_truelayer) -> None:
    with _client(sandbox, connected_truelayer) as client:
        sandbox.state.set_fault("server_error")
        with pytest.raises(TransientProviderError, match="HTTP 500"):
            client.accounts()


def test_revoked_token_asks_for_reconnect(sandbox: Sandbox, connected_truelayer) -> None:
    with TrueLayerClient(sandbox.truelayer_api_url, "not-a-token", retry=FAST) as client:
        with pytest.raises(AuthorizationRequired, match="bankflow connect truelayer") as error:
            client.accounts()
    assert "not-a-token" not in str(error.value)


def _client(sandbox: Sandbox, truelayer) -> TrueLayerClient:
    """A data client with a fresh consent (the sandbox approves at once)."""
    auth = truelayer.auth()
    pending = start_truelayer_consent(auth)
    code = code_from_redirect(httpx.get(pending.url).headers["location"], pending.state)
    tokens = auth.exchange_code(code, pending.code_verifier)
    return TrueLayerClient(sandbox.truelayer_api_url, tokens["access_token"], retry=FAST)


def test_environments_name_truelayers_hosts() -> None:
    assert environment_urls("live") == ("https://auth.truelayer.com", "https://api.truelayer.com/data/v1")
    assert environment_urls("sandbox")[1] == "https://api.truelayer-sandbox.com/data/v1"
    assert environment_urls("http://127.0.0.1:8700/") == (
        "http://127.0.0.1:8700",
        "http://127.0.0.1:8700/data/v1",
    )
    with pytest.raises(ValueError, match="live, sandbox or a base URL"):
        environment_urls("staging")


def _header_echo() -> Starlette:
    async def accounts(request: Request) -> Response:
        return JSONResponse({"results": [{"psu_ip": request.headers.get("x-psu-ip")}], "status": "Succeeded"})

    return Starlette(routes=[Route("/accounts", accounts)])


def test_psu_ip_is_sent_only_when_the_user_is_present() -> None:
    with serve(_header_echo()) as url:
        with TrueLayerClient(url, "token", retry=FAST) as unattended:
            assert unattended.accounts() == [{"psu_ip": None}]
        with TrueLayerClient(url, "token", psu_ip="203.0.113.7", retry=FAST) as present:
            assert present.accounts() == [{"psu_ip": "203.0.113.7"}]
