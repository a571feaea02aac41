"""The Revolut client against the sandbox and small odd servers over real HTTP: JWT tokens, refresh,
paging with ties, pacing, Retry-After, quarantine, pending items booked under a new id."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from test_revolut_sandbox import (
    RunningRevolut,
    consent_code,
    make_key_pair,
    running_revolut,
    world_with_pending,
)

from resources.errors import AuthorizationRequired, ProviderResponseError
from resources.http import RetryPolicy
from resources.providers.revolut import (
    HeldRows,
    RevolutAuth,
    RevolutClient,
    RevolutConfig,
    authorization_url,
    client_assertion,
    exchange_code,
    extract_window,
    partition_day,
)
from resources.rate_limit import RateLimiter
from sandbox.server import serve

FAST = RetryPolicy(max_attempts=4, backoff_initial=0.01)


@pytest.fixture(scope="module")
def rv() -> Iterator[RunningRevolut]:
    yield from running_revolut()


@pytest.fixture(autouse=True)
def _clean(rv: RunningRevolut) -> Iterator[None]:
    yield
    rv.reset()


def config(rv: RunningRevolut) -> RevolutConfig:
    return RevolutConfig(
        api_url=rv.api_url,
        consent_url=rv.consent_url,
        client_id=rv.state.client_id,
        private_key_pem=rv.keys.private_pem,
    )


def connect(rv: RunningRevolut, **client_options: object) -> RevolutClient:
    cfg = config(rv)
    tokens = exchange_code(cfg, consent_code(rv), retry=FAST)
    return RevolutClient(RevolutAuth(cfg, retry=FAST), tokens, retry=FAST, **client_options)  # type: ignore[arg-type]


def window(rv: RunningRevolut, days: int = 90) -> tuple[dt.date, dt.date]:
    return rv.world.today - dt.timedelta(days=days - 1), rv.world.today


def booked_keys(extract) -> list[str]:
    return sorted(r.record_key for r in extract.load("revolut_transactions").records)


def test_client_assertion_claims_follow_the_contract() -> None:
    keys = make_key_pair()
    cfg = RevolutConfig(
        "http://x/api/1.0", "http://x/app-confirm", "cid", keys.private_pem, "https://app.example.com/cb"
    )
    token = jwt.decode(client_assertion(cfg), RSAKey.import_key(keys.public_pem), algorithms=["RS256"])
    assert token.header == {"alg": "RS256", "typ": "JWT"}
    assert token.claims["iss"] == "app.example.com"
    assert token.claims["sub"] == "cid" and token.claims["aud"] == "https://revolut.com"
    assert token.claims["exp"] > time.time()
    assert "client_id=cid" in authorization_url(cfg, "st") and "response_type=code" in authorization_url(cfg)


def test_bad_private_key_is_a_clear_error_without_the_key() -> None:
    cfg = RevolutConfig("http://x", "http://x", "cid", "-----BEGIN PRIVATE KEY-----\nsecretstuff\n")
    with pytest.raises(AuthorizationRequired) as error:
        client_assertion(cfg)
    assert "secretstuff" not in str(error.value) and "BANKFLOW_REVOLUT_PRIVATE_KEY_PEM" in str(error.value)


def test_small_pages_and_ties_give_the_same_transactions_as_one_page(rv: RunningRevolut) -> None:
    first, last = window(rv)
    with connect(rv) as client:
        reference = booked_keys(extract_window(client, first, last, last))
    rv.options.page_border_ties = True
    with connect(rv, page_size=2) as client:
        tied = extract_window(client, first, last, last)
        pages = client.requests_sent
    assert booked_keys(tied) == reference
    assert len(reference) > 40
    # Whole pages of one created_at were met and read past (more calls than pages of 2 alone).
    assert pages > len(reference) // 2


@pytest.mark.parametrize("page_size", [1, 3, 7])
def test_paging_never_loops_and_never_duplicates(rv: RunningRevolut, page_size: int) -> None:
    rv.options.page_border_ties = True
    start = dt.datetime.combine(rv.world.today - dt.timedelta(days=30), dt.time(0), tzinfo=dt.UTC)
    with connect(rv, page_size=1000) as client:
        everything = client.transactions(start)
    with connect(rv, page_size=page_size) as client:
        paged = client.transactions(start)
    assert [t["id"] for t in paged] == [t["id"] for t in everything]


def test_expired_token_is_refreshed_before_the_call_and_saved(rv: RunningRevolut) -> None:
    saved: list[dict] = []
    cfg = config(rv)
    tokens = exchange_code(cfg, consent_code(rv))
    tokens["expires_at"] = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    with RevolutClient(RevolutAuth(cfg), tokens, on_tokens=saved.append, retry=FAST) as client:
        assert len(client.accounts()) == 2
    assert len(saved) == 1 and saved[0]["refresh_token"] == tokens["refresh_token"]
    assert saved[0]["access_token"] != tokens["access_token"]


def test_token_dying_mid_run_is_refreshed_once(rv: RunningRevolut) -> None:
    saved: list[dict] = []
    cfg = config(rv)
    tokens = exchange_code(cfg, consent_code(rv))
    with RevolutClient(RevolutAuth(cfg), tokens, on_tokens=saved.append, retry=FAST) as client:
        client.accounts()
        rv.options.expire_access_tokens()
        assert len(client.accounts()) == 2
    assert len(saved) == 1


def test_revoked_consent_asks_for_reconnect(rv: RunningRevolut) -> None:
    with connect(rv) as client:
        client.accounts()
        rv.options.revoke_consent()
        with pytest.raises(AuthorizationRequired, match="bankflow connect revolut"):
            client.accounts()


def test_429_storm_honours_retry_after(rv: RunningRevolut) -> None:
    rv.options.retry_after_seconds = 1
    try:
        with connect(rv) as client:
            rv.state.set_fault("rate_limit", 2, path_prefix="/api/1.0")
            started = time.monotonic()
            assert len(client.accounts()) == 2
            assert time.monotonic() - started >= 1.9
    finally:
        rv.options.retry_after_seconds = 0


def test_token_and_data_calls_share_the_rate_limit(rv: RunningRevolut) -> None:
    # 3 per 0.5 s: a test-sized stand-in for 60 per minute.
    limiter = RateLimiter(3, period_seconds=0.5)
    cfg = config(rv)
    tokens = exchange_code(cfg, consent_code(rv), retry=FAST)
    tokens["expires_at"] = "2000-01-01T00:00:00+00:00"  # the first read must refresh first
    with RevolutClient(RevolutAuth(cfg, retry=FAST, rate_limiter=limiter), tokens, retry=FAST) as client:
        started = time.monotonic()
        for _ in range(4):
            client.accounts()
        # refresh + 4 reads = 5 requests: the 4th and 5th had to wait for the window to move.
        assert time.monotonic() - started >= 0.5
        assert client.requests_sent == 4


def test_slow_responses_time_out_and_are_retried(rv: RunningRevolut) -> None:
    rv.options.slow_seconds, rv.options.slow_requests = 0.5, 1
    with connect(rv, timeout=0.2) as client:
        assert len(client.accounts()) == 2


def test_malformed_json_is_a_clear_error(rv: RunningRevolut) -> None:
    with connect(rv) as client:
        rv.state.set_fault("malformed_json", 1, path_prefix="/api/1.0")
        with pytest.raises(ProviderResponseError, match="not valid JSON"):
            client.accounts()


def test_pending_booked_under_a_new_id_replaces_the_pending_row() -> None:
    world = world_with_pending()
    for rv in running_revolut(world):
        first, last = world.today - dt.timedelta(days=6), world.today
        with connect(rv) as client:
            before = extract_window(client, first, last, last)
        pending = before.load("revolut_pending_transactions").records
        assert pending and all(r.partition_key <= last.isoformat() for r in pending)
        rv.options.book_pending, rv.options.rebook_under_new_id = True, True
        with connect(rv) as client:
            after = extract_window(client, first, last, last)
        assert after.load("revolut_pending_transactions").records == []
        new_keys = set(booked_keys(after)) - set(booked_keys(before))
        assert len(new_keys) == len(pending)
        assert not new_keys & {r.record_key for r in pending}


def _odd_revolut() -> Starlette:
    """A Revolut that sends one good transaction, one without id, one with a float-less bad amount,
    one on an unknown account and one completed outside the window."""

    async def accounts(request: Request) -> Response:
        return Response('[{"id":"acc-1","currency":"GBP","balance":10.50}]', media_type="application/json")

    async def details(request: Request) -> Response:
        return Response("[]", media_type="application/json")

    async def transactions(request: Request) -> Response:
        if request.query_params.getlist("state"):
            return Response("[]", media_type="application/json")
        leg = '"legs":[{"leg_id":"l1","account_id":"acc-1","amount":-2.99,"currency":"GBP"}]'
        body = (
            "["
            f'{{"id":"ok","state":"completed","created_at":"2026-03-02T10:00:00.000Z","completed_at":"2026-03-02T10:00:01.000Z",{leg}}},'
            f'{{"state":"completed","created_at":"2026-03-02T09:00:00.000Z","completed_at":"2026-03-02T09:00:01Z",{leg}}},'
            '{"id":"bad-amount","state":"completed","created_at":"2026-03-02T08:00:00.000Z","completed_at":"2026-03-02T08:00:01Z",'
            '"legs":[{"leg_id":"l2","account_id":"acc-1","amount":"x","currency":"GBP"}]},'
            '{"id":"elsewhere","state":"completed","created_at":"2026-03-02T07:00:00.000Z","completed_at":"2026-03-02T07:00:01Z",'
            '"legs":[{"leg_id":"l3","account_id":"acc-9","amount":1,"currency":"GBP"}]},'
            f'{{"id":"later","state":"completed","created_at":"2026-03-02T06:00:00.000Z","completed_at":"2026-04-01T06:00:01Z",{leg}}}'
            "]"
        )
        return Response(body, media_type="application/json")

    return Starlette(
        routes=[
            Route("/api/1.0/accounts", accounts),
            Route("/api/1.0/accounts/{account_id}/bank-details", details),
            Route("/api/1.0/transactions", transactions),
        ]
    )


def test_unusable_records_are_quarantined_and_out_of_window_ones_skipped() -> None:
    with serve(_odd_revolut()) as url:
        cfg = RevolutConfig(url + "/api/1.0", url + "/app-confirm", "cid", make_key_pair().private_pem)
        tokens = {"access_token": "t", "refresh_token": "r", "expires_at": "2999-01-01T00:00:00+00:00"}
        with RevolutClient(RevolutAuth(cfg), tokens, retry=FAST) as client:
            extract = extract_window(client, dt.date(2026, 3, 1), dt.date(2026, 3, 3), dt.date(2026, 3, 3))
    assert booked_keys(extract) == ["ok"]
    assert extract.load("revolut_transactions").records[0].partition_key == "2026-03-02"
    reasons = sorted(item.reason for item in extract.quarantined)
    assert len(reasons) == 3
    assert any("without id" in r for r in reasons) and any("connected account" in r for r in reasons)


def test_partition_day_is_completed_at_for_booked_and_created_at_otherwise() -> None:
    booked = {
        "state": "completed",
        "created_at": "2026-01-31T23:59:00Z",
        "completed_at": "2026-02-01T00:00:01+00:00",
    }
    declined = {"state": "declined", "created_at": "2026-01-31T23:59:00Z"}
    assert partition_day(booked) == "2026-02-01"
    assert partition_day(declined) == "2026-01-31"
    assert partition_day({"state": "completed", "created_at": "2026-01-31T23:59:00Z"}) is None


class _ScheduledRevolut:
    """A Revolut with one scheduled transfer: created 30 days before the window, completed in it.
    Serves the list contract: created_at filter (`from` inclusive, `to` exclusive), state filter."""

    created = "2026-02-01T09:00:00.000Z"
    completed = "2026-03-02T09:00:00.000Z"

    def __init__(self) -> None:
        self.state = "pending"

    def app(self) -> Starlette:
        async def accounts(request: Request) -> Response:
            return Response('[{"id":"acc-1","currency":"GBP","balance":1}]', media_type="application/json")

        async def details(request: Request) -> Response:
            return Response("[]", media_type="application/json")

        async def transactions(request: Request) -> Response:
            txn = {
                "id": "scheduled-1",
                "type": "transfer",
                "state": self.state,
                "created_at": self.created,
                "legs": [{"leg_id": "l1", "account_id": "acc-1", "amount": -250, "currency": "GBP"}],
            }
            if self.state == "completed":
                txn["completed_at"] = self.completed
            start = dt.datetime.fromisoformat(request.query_params["from"].replace("Z", "+00:00"))
            end = request.query_params.get("to")
            created = dt.datetime.fromisoformat(self.created.replace("Z", "+00:00"))
            states = request.query_params.getlist("state")
            shown = created >= start and (
                end is None or created < dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
            )
            shown = shown and (not states or self.state in states)
            return Response(json.dumps([txn] if shown else []), media_type="application/json")

        return Starlette(
            routes=[
                Route("/api/1.0/accounts", accounts),
                Route("/api/1.0/accounts/{account_id}/bank-details", details),
                Route("/api/1.0/transactions", transactions),
            ]
        )


def test_a_transfer_completing_weeks_after_it_was_made_is_landed_and_kept_on_rerun() -> None:
    bank = _ScheduledRevolut()
    first, last = dt.date(2026, 3, 1), dt.date(2026, 3, 3)
    with serve(bank.app()) as url:
        cfg = RevolutConfig(url + "/api/1.0", url + "/app-confirm", "cid", make_key_pair().private_pem)
        tokens = {"access_token": "t", "refresh_token": "r", "expires_at": "2999-01-01T00:00:00+00:00"}
        with RevolutClient(RevolutAuth(cfg), tokens, retry=FAST) as client:
            before = extract_window(client, first, last, last)
            [held_pending] = before.load("revolut_pending_transactions").records
            created = dt.datetime.fromisoformat(bank.created.replace("Z", "+00:00"))
            bank.state = "completed"
            # Without what raw holds, the usual created_at lookback cannot reach it.
            assert booked_keys(extract_window(client, first, last, last)) == []
            after = extract_window(
                client, first, last, last, held=HeldRows(pending_created={held_pending.record_key: created})
            )
            assert booked_keys(after) == ["scheduled-1"]
            assert after.load("revolut_pending_transactions").records == []
            # Re-running the window later: the pending row is gone, the booked one is held.
            rerun = extract_window(client, first, last, last, held=HeldRows(booked_earliest_created=created))
            assert booked_keys(rerun) == ["scheduled-1"]
