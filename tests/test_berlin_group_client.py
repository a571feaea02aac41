"""The Berlin Group client against real HTTP: identity order, quarantine, paging, error mapping, retries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from resources.errors import AuthorizationRequired, ProviderResponseError
from resources.http import RetryPolicy
from resources.providers.berlin_group import (
    BerlinGroupAuth,
    BerlinGroupClient,
    BerlinGroupConfig,
    content_hash,
    extract_window,
    finish_consent,
    parse_amount,
    pkce_challenge,
    record_key,
    start_consent,
)
from sandbox.berlin_group import BerlinGroupSandbox, BerlinGroupSwitches, build_berlin_group_app
from sandbox.server import serve
from sandbox.state import SandboxState
from sandbox.world import World

FAST = RetryPolicy(max_attempts=3, backoff_initial=0.01)


def test_identity_follows_the_contract_order() -> None:
    row = {"transactionAmount": {"amount": "-1.50", "currency": "RON"}, "bookingDate": "2026-01-02"}
    assert record_key({**row, "entryReference": "E1", "transactionId": "T1"}) == "er:E1"
    assert record_key({**row, "transactionId": "T1"}) == "tx:T1"
    assert record_key({**row, "entryReference": "NOTPROVIDED", "transactionId": "T1"}) == "tx:T1"
    assert (
        record_key({**row, "transactionId": "NOTPROVIDED"})
        == f"h:{content_hash(row | {'transactionId': 'NOTPROVIDED'})}:0"
    )
    assert record_key(row) == f"h:{content_hash(row)}:0"
    assert record_key(row, 1) != record_key(row, 0)


@pytest.mark.parametrize(
    ("amount", "value"),
    [
        ("1056", Decimal(1056)),
        ("-1.50", Decimal("-1.50")),
        ("5768.2", Decimal("5768.2")),
        (1.5, None),
        ("1,5", None),
        ("1.2345", None),
    ],
)
def test_amounts_are_signed_decimal_strings(amount: object, value: Decimal | None) -> None:
    assert parse_amount({"transactionAmount": {"amount": amount, "currency": "EUR"}}) == value


def test_pkce_challenge_is_rfc7636_s256() -> None:
    # Checked against an independent implementation (authlib's).
    verifier = "dBjftJeZ4CVP-mJ92K9hUFLFPsbPqMQHSgcZj-jXk"
    assert pkce_challenge(verifier) == create_s256_code_challenge(verifier)


def _odd_bank() -> Starlette:
    """One account; rows with no id, a float amount, a day outside the window, two equal rows; a
    second page behind _links.next; errors with tppMessages as an object."""
    base = {"transactionAmount": {"amount": "-3.00", "currency": "RON"}, "bookingDate": "2026-03-02"}

    async def accounts(request: Request) -> Response:
        assert request.headers["x-request-id"] and request.headers["consent-id"] == "c-1"
        return JSONResponse(
            {
                "accounts": [
                    {"resourceId": "r1", "iban": "RO49 AAAA 1B31 0075 9384 0000", "currency": "RON"},
                    {"currency": "RON"},
                ]
            }
        )

    async def balances(request: Request) -> Response:
        return JSONResponse(
            {
                "balances": [
                    {"balanceAmount": {"amount": "10.00", "currency": "RON"}, "balanceType": "closingBooked"}
                ]
            }
        )

    async def transactions(request: Request) -> Response:
        if request.query_params.get("page") == "2":
            return JSONResponse({"transactions": {"booked": [{**base, "transactionId": "p2"}], "_links": {}}})
        if request.query_params["dateFrom"] < "2026-02-25":
            return JSONResponse(
                {"tppMessages": {"category": "ERROR", "code": "PERIOD_INVALID"}}, status_code=400
            )
        booked = [
            {**base, "entryReference": "ok-1"},
            base,
            base,
            {**base, "transactionAmount": {"amount": -2.5, "currency": "RON"}, "transactionId": "float"},
            {**base, "bookingDate": "2026-04-01", "transactionId": "late"},
            {**base, "valueDate": "2026-02-30", "transactionId": "feb-30"},
        ]
        pending = [
            {
                "transactionId": "pnd-1",
                "valueDate": "2026-03-03",
                "transactionAmount": {"amount": "-9.99", "currency": "RON"},
            }
        ]
        return JSONResponse(
            {
                "transactions": {
                    "booked": booked,
                    "pending": pending,
                    "_links": {"next": {"href": "/v1/accounts/r1/transactions?page=2"}},
                }
            }
        )

    return Starlette(
        routes=[
            Route("/v1/accounts", accounts),
            Route("/v1/accounts/r1/balances", balances),
            Route("/v1/accounts/r1/transactions", transactions),
        ]
    )


def test_extract_pages_shrinks_the_window_and_quarantines() -> None:
    with serve(_odd_bank()) as url, BerlinGroupClient(url, "tok", "c-1", retry=FAST) as client:
        extract = extract_window(client, dt.date(2026, 2, 20), dt.date(2026, 3, 5), dt.date(2026, 3, 5))
    # PERIOD_INVALID for 2026-02-20: cut to the first common cap the bank accepts (here 7 days).
    assert extract.first_day == dt.date(2026, 2, 26)
    booked = extract.load("berlin_group_transactions").records
    keys = [r.record_key for r in booked]
    assert keys[0] == "er:ok-1" and "tx:p2" in keys
    hashed = [k for k in keys if k.startswith("h:")]
    assert len(hashed) == 2 and len(set(hashed)) == 2  # two equal rows stay two rows
    assert extract.account_refs == ["RO49AAAA1B31007593840000"]
    reasons = sorted(item.reason for item in extract.quarantined)
    assert len(reasons) == 4
    assert any("transactionAmount" in r for r in reasons) and any("outside" in r for r in reasons)
    assert any("resourceId" in r for r in reasons)
    assert "valueDate '2026-02-30' is not a calendar date" in reasons
    pending = extract.load("berlin_group_pending_transactions").records
    assert [(r.record_key, r.partition_key) for r in pending] == [("tx:pnd-1", "2026-03-03")]


@dataclass
class Bank:
    url: str
    state: SandboxState
    bg: BerlinGroupSandbox
    world: World

    def auth(self, **config: object) -> BerlinGroupAuth:
        settings = {"frequency_per_day": 100, **config}
        return BerlinGroupAuth(
            BerlinGroupConfig(
                base_url=self.url,
                token_url=self.url + "/oauth/token",
                client_id=self.state.client_id,
                client_secret=self.state.client_secret,
                **settings,  # type: ignore[arg-type]
            ),
            FAST,
        )


@pytest.fixture(scope="module")
def bank() -> Iterator[Bank]:
    world, state = World(7), SandboxState()
    bg = BerlinGroupSandbox(BerlinGroupSwitches(max_frequency_per_day=100))
    with serve(build_berlin_group_app(world, state, bg)) as url:
        yield Bank(url, state, bg, world)


def connect(bank: Bank, **config: object) -> tuple[BerlinGroupAuth, dict]:
    auth = bank.auth(**config)
    pending = start_consent(auth)
    location = httpx.get(pending.url, follow_redirects=False).headers["location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    return auth, finish_consent(code, pending, auth=auth)


def client_for(bank: Bank, **config: object) -> BerlinGroupClient:
    auth, tokens = connect(bank, **config)
    holder = dict(tokens)

    def refresh() -> str:
        holder.update(auth.refresh(holder))
        return holder["access_token"]

    return BerlinGroupClient(
        # Long enough for a loaded 2-core machine to answer a normal call; the slow-call test waits longer.
        bank.url,
        tokens["access_token"],
        tokens["consent_id"],
        refresh=refresh,
        retry=FAST,
        timeout=2.0,
    )


def test_consent_flow_with_and_without_pkce(bank: Bank) -> None:
    _, tokens = connect(bank)
    assert tokens["consent_valid_until"] == (bank.world.today + dt.timedelta(days=90)).isoformat()
    bank.bg.switches.require_pkce = False
    try:
        _, plain = connect(bank, pkce=False)
    finally:
        bank.bg.switches.require_pkce = True
    assert plain["access_token"] and plain["consent_id"] != tokens["consent_id"]


def test_token_expiry_mid_run_refreshes_and_retries_transient_errors(bank: Bank) -> None:
    today = bank.world.today
    with client_for(bank) as client:
        clean = extract_window(client, today - dt.timedelta(days=20), today, today)
        bank.bg.switches.expire_token_after = 1
        bank.state.set_fault("server_error", count=1, path_prefix="/v1/accounts/")
        bank.bg.switches.slow_seconds, bank.bg.switches.slow_calls = 4.0, 1
        again = extract_window(client, today - dt.timedelta(days=20), today, today)
    assert [(r.record_key, r.payload) for r in again.load("berlin_group_transactions").records] == [
        (r.record_key, r.payload) for r in clean.load("berlin_group_transactions").records
    ]


@pytest.mark.parametrize("form", ["array", "object"])
def test_expired_consent_stops_with_a_reconnect_message(bank: Bank, form: str) -> None:
    today = bank.world.today
    bank.bg.switches.tpp_messages = form  # type: ignore[assignment]
    try:
        with client_for(bank) as client:
            bank.bg.set_consent_status("expired", client._consent_id)
            with pytest.raises(AuthorizationRequired, match="CONSENT_EXPIRED.*bankflow connect berlin_group"):
                extract_window(client, today, today, today)
    finally:
        bank.bg.switches.tpp_messages = "mixed"


def test_malformed_json_is_a_clear_error(bank: Bank) -> None:
    today = bank.world.today
    with client_for(bank) as client:
        bank.state.set_fault("malformed_json", count=1, path_prefix="/v1/accounts")
        with pytest.raises(ProviderResponseError, match="not valid JSON"):
            extract_window(client, today, today, today)
    bank.state.clear_fault()


def test_access_exceeded_defers_the_account(bank: Bank) -> None:
    today = bank.world.today
    with client_for(bank, frequency_per_day=1) as client:
        first = extract_window(client, today, today, today)
        second = extract_window(client, today, today, today)
    assert first.account_refs and not first.deferred
    assert second.deferred == ["*"] and second.account_refs == []


def test_consent_validity_is_inclusive_of_valid_until() -> None:
    from resources.providers.berlin_group import consent_expires_at

    assert consent_expires_at({"consent_valid_until": "2026-02-21"}) == dt.datetime(
        2026, 2, 22, tzinfo=dt.UTC
    )
    assert consent_expires_at({}) is None
