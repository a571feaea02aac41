"""The GoCardless client against real HTTP servers: tokens, identity, the call budget, faults, quarantine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from resources.call_budget import CallBudget
from resources.errors import AuthorizationRequired, ProviderResponseError
from resources.http import RetryPolicy
from resources.providers.gocardless import (
    DailyLimitReached,
    GoCardlessClient,
    GoCardlessConfig,
    content_hash,
    extract_window,
    finish_connection,
    record_key,
    start_connection,
)
from sandbox.gocardless import API_PREFIX, GoCardlessControls, build_gocardless_app
from sandbox.gocardless_json import institution_id
from sandbox.server import serve
from sandbox.state import SandboxState
from sandbox.world import World

FAST = RetryPolicy(max_attempts=4, backoff_initial=0.01)


class MemoryVault:
    """The TokenVault's interface, in memory (the real one is tested with Postgres elsewhere)."""

    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}

    def save(
        self, name: str, provider: str, tokens: dict[str, Any], consent_expires_at: object = None
    ) -> None:
        self.saved[name] = dict(tokens)

    def load(self, name: str) -> dict[str, Any] | None:
        return self.saved.get(name)


@dataclass
class Bank:
    world: World
    state: SandboxState
    controls: GoCardlessControls
    url: str
    account_ids: list[str]

    def config(self, secret_key: str | None = None) -> GoCardlessConfig:
        return GoCardlessConfig(
            self.url + API_PREFIX, self.state.client_id, secret_key or self.state.client_secret
        )


@pytest.fixture(scope="module")
def bank() -> Iterator[Bank]:
    world, state, controls = World(7), SandboxState(), GoCardlessControls()
    with serve(build_gocardless_app(world, state, controls)) as url:
        config = GoCardlessConfig(url + API_PREFIX, state.client_id, state.client_secret)
        vault = MemoryVault()
        account_ids = []
        with GoCardlessClient(config, retry=FAST) as client:
            for account in world.accounts_for("gocardless"):
                pending = start_connection(
                    institution_id(account.bank),
                    "http://127.0.0.1:9/cb",
                    client=client,
                    vault=vault,  # type: ignore[arg-type]
                )
                assert httpx.get(pending.link, follow_redirects=False).status_code == 302
                linked = finish_connection(pending.requisition_id, client=client, vault=vault)  # type: ignore[arg-type]
                account_ids += linked["account_ids"]
        yield Bank(world, state, controls, url, account_ids)


@pytest.fixture(autouse=True)
def _fresh_day(bank: Bank) -> Iterator[None]:
    bank.controls.reset_limits()
    yield
    bank.state.clear_fault()
    bank.controls.clear()


@pytest.fixture
def budget(database_url: str) -> CallBudget:
    # A provider name of its own per test: budgets of other tests (and the pipeline's) stay apart.
    return CallBudget(database_url, f"gocardless-test-{uuid.uuid4().hex[:8]}", calls_per_day=4)


def window(bank: Bank, days: int = 10) -> tuple[date, date, date]:
    today = bank.world.today
    return today - timedelta(days=days), today, today


def test_identity_prefers_gocardless_internal_id_then_bank_id_then_hash() -> None:
    assert record_key({"transactionId": "t", "internalTransactionId": "i"}) == "i"
    assert record_key({"transactionId": "t", "internalTransactionId": ""}) == "t"
    assert record_key({}) is None
    assert record_key({"transactionId": "t", "internalTransactionId": "NOTPROVIDED"}) == "t"
    assert record_key({"transactionId": "NOTPROVIDED"}) is None
    row = {"bookingDate": "2026-01-02", "transactionAmount": {"amount": "-1.50", "currency": "EUR"}}
    assert content_hash(row) == content_hash(dict(row)) != content_hash({**row, "bookingDate": "2026-01-03"})


def test_connect_flow_links_every_bank_and_records_consent(bank: Bank) -> None:
    assert len(bank.account_ids) == 3


def test_extract_spends_one_call_per_account_and_scope(bank: Bank, budget: CallBudget) -> None:
    first, last, today = window(bank)
    with GoCardlessClient(bank.config(), retry=FAST) as client:
        extract = extract_window(client, bank.account_ids, first, last, today, budget)
    assert sorted(extract.account_refs) == sorted(bank.account_ids)
    assert extract.skipped == []
    for account_id in bank.account_ids:
        for scope in ("details", "balances", "transactions"):
            assert budget.remaining(account_id, scope) == 3
            assert bank.controls.successes(account_id, scope, bank.world.today) == 1


def test_accounts_are_visited_stalest_first(bank: Bank, budget: CallBudget) -> None:
    fresh, *rest = bank.account_ids
    budget.spend(fresh, "transactions")
    first, last, today = window(bank, 1)
    with GoCardlessClient(bank.config(), retry=FAST) as client:
        extract = extract_window(client, bank.account_ids, first, last, today, budget)
    assert extract.account_refs[-1] == fresh


def test_a_spent_budget_makes_no_call(bank: Bank, budget: CallBudget) -> None:
    spent, *others = bank.account_ids
    for _ in range(4):
        budget.spend(spent, "transactions")
    bank.state.reset_request_counts()
    first, last, today = window(bank, 1)
    with GoCardlessClient(bank.config(), retry=FAST) as client:
        extract = extract_window(client, bank.account_ids, first, last, today, budget)
    assert bank.state.request_count(f"{API_PREFIX}/accounts/{spent}/transactions/") == 0
    assert any(spent in reason and "spent" in reason for reason in extract.skipped)
    scope = extract.load("gocardless_transactions").scope
    assert spent not in (scope.account_refs or []) and set(others) <= set(scope.account_refs or [])


def test_the_daily_limit_is_read_from_headers_and_never_retried(bank: Bank) -> None:
    account_id = bank.account_ids[0]
    with GoCardlessClient(bank.config(), retry=FAST) as client:
        for _ in range(4):
            client.balances(account_id)
        bank.state.reset_request_counts()
        with pytest.raises(DailyLimitReached) as raised:
            client.balances(account_id)
    assert bank.state.request_count(f"{API_PREFIX}/accounts/{account_id}/balances/") == 1
    assert raised.value.reset_seconds is not None and 0 < raised.value.reset_seconds <= 86400


def test_a_platform_429_storm_is_retried_and_spent_once(bank: Bank, budget: CallBudget) -> None:
    bank.state.set_fault("rate_limit", 2, path_prefix=f"{API_PREFIX}/accounts")
    first, last, today = window(bank, 1)
    with GoCardlessClient(bank.config(), retry=FAST) as client:
        extract = extract_window(client, bank.account_ids, first, last, today, budget)
    assert extract.skipped == []
    assert all(budget.remaining(a, "details") == 3 for a in bank.account_ids)


def test_an_unparseable_2xx_is_spent_but_not_retried(bank: Bank, budget: CallBudget) -> None:
    account_id = bank.account_ids[0]
    bank.state.set_fault("malformed_json", 1, path_prefix=f"{API_PREFIX}/accounts/{account_id}/details/")
    first, last, today = window(bank, 1)
    with GoCardlessClient(bank.config(), retry=FAST) as client, pytest.raises(ProviderResponseError):
        extract_window(client, [account_id], first, last, today, budget)
    # The bank counted the 200 it sent: so do we, once.
    assert budget.remaining(account_id, "details") == 3
    assert bank.controls.successes(account_id, "details", bank.world.today) == 1


def test_expired_access_token_is_refreshed_mid_run(bank: Bank) -> None:
    seen: list[dict[str, Any]] = []
    first, last, today = window(bank, 1)
    with GoCardlessClient(bank.config(), retry=FAST, on_tokens=seen.append) as client:
        client.institutions("nl")
        refresh = client.tokens["refresh"]
        bank.controls.expire_access_tokens(after_calls=2)
        extract = extract_window(client, bank.account_ids, first, last, today)
    assert len(extract.account_refs) == 3
    assert len(seen) == 2 and seen[-1]["refresh"] == refresh  # refreshed, not a new token set


def test_expired_refresh_token_falls_back_to_a_new_token(bank: Bank) -> None:
    with GoCardlessClient(bank.config(), retry=FAST) as client:
        client.institutions("nl")
        old = client.tokens["refresh"]
        bank.controls.expire_refresh_tokens()
        bank.controls.expire_access_tokens()
        assert client.institutions("nl")
        assert client.tokens["refresh"] != old


def test_wrong_secret_names_the_setting_and_hides_the_secret(bank: Bank) -> None:
    with GoCardlessClient(bank.config("not-the-secret-123"), retry=FAST) as client:
        with pytest.raises(AuthorizationRequired) as raised:
            client.institutions("nl")
    assert "BANKFLOW_GOCARDLESS_SECRET_KEY" in str(raised.value)
    assert "not-the-secret-123" not in str(raised.value)
    assert "not-the-secret-123" not in repr(bank.config("not-the-secret-123"))


@pytest.mark.parametrize("problem", ["expired", "revoked"])
def test_lapsed_consent_asks_for_a_reconnect(bank: Bank, problem: str) -> None:
    bank.controls.set_consent_problem(problem)  # type: ignore[arg-type]
    first, last, today = window(bank, 1)
    with (
        GoCardlessClient(bank.config(), retry=FAST) as client,
        pytest.raises(AuthorizationRequired) as raised,
    ):
        extract_window(client, bank.account_ids, first, last, today)
    assert "bankflow connect gocardless" in str(raised.value)


def test_slow_response_is_retried_after_the_timeout(bank: Bank) -> None:
    bank.controls.set_slow(1.0, count=1)
    with GoCardlessClient(bank.config(), retry=FAST, timeout=0.3) as client:
        assert client.balances(bank.account_ids[0])["balances"]


def _odd_bank() -> Starlette:
    """A bank that sends a good row, a row without amount, a row outside the window, two identical
    id-less rows and a pending row without bookingDate."""

    async def token(request: Request) -> Response:
        return JSONResponse(
            {"access": "a", "access_expires": 86400, "refresh": "r", "refresh_expires": 2592000}
        )

    async def details(request: Request) -> Response:
        return JSONResponse({"account": {"iban": "NL00X", "currency": "EUR"}})

    async def metadata(request: Request) -> Response:
        return JSONResponse({"id": "acc-x", "status": "READY"})

    async def balances(request: Request) -> Response:
        return JSONResponse({"balances": []})

    async def transactions(request: Request) -> Response:
        same = '{"bookingDate":"2026-03-02","transactionAmount":{"amount":"-2.10","currency":"EUR"}}'
        body = (
            '{"transactions":{"booked":['
            '{"internalTransactionId":"ok-1","bookingDate":"2026-03-02","transactionAmount":{"amount":"-2.99","currency":"EUR"}},'
            '{"internalTransactionId":"bad-1","bookingDate":"2026-03-02","transactionAmount":{"amount":"1,00","currency":"EUR"}},'
            '{"internalTransactionId":"late-1","bookingDate":"2026-04-01","transactionAmount":{"amount":"5.00","currency":"EUR"}},'
            '{"internalTransactionId":"feb-30","bookingDate":"2026-03-02","bookingDateTime":"2026-02-30T10:00:00Z","transactionAmount":{"amount":"5.00","currency":"EUR"}},'
            '{"internalTransactionId":"ok-1","bookingDate":"2026-03-02","transactionAmount":{"amount":"-2.99","currency":"EUR"}},'
            f"{same},{same}"
            '],"pending":[{"valueDate":"2026-03-03","transactionAmount":{"amount":"-1.00","currency":"EUR"}}]}}'
        )
        return Response(body, media_type="application/json")

    return Starlette(
        routes=[
            Route("/token/new/", token, methods=["POST"]),
            Route("/accounts/{id}/", metadata),
            Route("/accounts/{id}/details/", details),
            Route("/accounts/{id}/balances/", balances),
            Route("/accounts/{id}/transactions/", transactions),
        ]
    )


def test_unusable_records_are_quarantined_not_dropped() -> None:
    config = GoCardlessConfig("", "id", "key")
    with serve(_odd_bank()) as url:
        config = GoCardlessConfig(url, "id", "key")
        with GoCardlessClient(config, retry=FAST) as client:
            extract = extract_window(client, ["acc-x"], date(2026, 3, 1), date(2026, 3, 3), date(2026, 3, 3))
    booked = extract.load("gocardless_transactions").records
    keys = [r.record_key for r in booked]
    assert keys[0] == "ok-1" and len(keys) == 3 and keys[2] == keys[1] + "#2"
    reasons = sorted(item.reason for item in extract.quarantined)
    assert reasons == [
        "bookingDate 2026-04-01 is outside the requested window",
        "bookingDateTime '2026-02-30T10:00:00Z' is not a calendar date",
        "transaction id 'ok-1' repeated in one response",
        "transactionAmount.amount '1,00' is not a decimal amount",
    ]
    (pending,) = extract.load("gocardless_pending_transactions").records
    assert pending.partition_key == "2026-03-03" and pending.record_key.startswith("sha256:")
    assert '"amount":"-2.99"' in booked[0].payload  # amounts kept as the bank's strings


def test_a_window_older_than_the_banks_history_replaces_nothing(bank: Bank, budget: CallBudget) -> None:
    today = bank.world.today
    first, last = today - timedelta(days=120), today - timedelta(days=100)
    with GoCardlessClient(bank.config(), retry=FAST) as client:
        extract = extract_window(client, bank.account_ids, first, last, today, budget, max_historical_days=30)
    booked = extract.load("gocardless_transactions")
    assert booked.records == [] and list(booked.scope.partition_keys) == []
    assert extract.load("gocardless_pending_transactions").scope.account_refs == []
    assert budget.remaining(bank.account_ids[0], "transactions") == 4
