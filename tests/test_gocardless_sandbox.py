"""The GoCardless sandbox speaks contract §8 over real HTTP (plain httpx, no bankflow client)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest

from sandbox.gocardless import API_PREFIX, GoCardlessControls, build_gocardless_app, seconds_to_midnight
from sandbox.gocardless_json import gc_account_id, institution_id
from sandbox.server import serve
from sandbox.state import SandboxState
from sandbox.world import World

SEED = 7


@dataclass
class App:
    world: World
    state: SandboxState
    controls: GoCardlessControls
    http: httpx.Client


@pytest.fixture(scope="module")
def app() -> Iterator[App]:
    world, state, controls = World(SEED), SandboxState(), GoCardlessControls()
    with serve(build_gocardless_app(world, state, controls)) as url, httpx.Client(base_url=url) as http:
        yield App(world, state, controls, http)


@pytest.fixture(autouse=True)
def _clean(app: App) -> Iterator[None]:
    app.controls.reset_limits()
    yield
    app.state.clear_fault()
    app.controls.clear()


def new_token(app: App) -> dict:
    response = app.http.post(
        f"{API_PREFIX}/token/new/",
        json={"secret_id": app.state.client_id, "secret_key": app.state.client_secret},
    )
    assert response.status_code == 200
    return response.json()


def auth(token: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access']}"}


def link_all(app: App) -> tuple[dict, dict[str, str]]:
    """Link every sandbox bank; returns the token and gc account id -> IBAN."""
    token = new_token(app)
    linked: dict[str, str] = {}
    for account in app.world.accounts_for("gocardless"):
        iid = institution_id(account.bank)
        agreement = app.http.post(
            f"{API_PREFIX}/agreements/enduser/",
            json={"institution_id": iid, "max_historical_days": 730, "access_valid_for_days": 90},
            headers=auth(token),
        ).json()
        requisition = app.http.post(
            f"{API_PREFIX}/requisitions/",
            json={
                "redirect": "http://127.0.0.1:9/cb",
                "institution_id": iid,
                "reference": "r1",
                "agreement": agreement["id"],
            },
            headers=auth(token),
        ).json()
        assert requisition["status"] == "CR" and requisition["accounts"] == []
        back = app.http.get(requisition["link"].removeprefix(str(app.http.base_url).rstrip("/")))
        assert back.status_code == 302 and back.headers["location"] == "http://127.0.0.1:9/cb?ref=r1"
        after = app.http.get(f"{API_PREFIX}/requisitions/{requisition['id']}/", headers=auth(token)).json()
        assert after["status"] == "LN"
        for account_id in after["accounts"]:
            linked[account_id] = account.iban
    return token, linked


def test_tokens_new_and_refresh(app: App) -> None:
    token = new_token(app)
    assert token["access_expires"] == 86400 and token["refresh_expires"] == 2592000
    refreshed = app.http.post(f"{API_PREFIX}/token/refresh/", json={"refresh": token["refresh"]}).json()
    assert set(refreshed) == {"access", "access_expires"}
    wrong = app.http.post(f"{API_PREFIX}/token/new/", json={"secret_id": "x", "secret_key": "y"})
    assert wrong.status_code == 401 and wrong.json()["summary"] == "Authentication failed"
    assert (
        app.http.get(f"{API_PREFIX}/institutions/", headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )


def test_institutions_by_country(app: App) -> None:
    token = new_token(app)
    nl = app.http.get(f"{API_PREFIX}/institutions/", params={"country": "nl"}, headers=auth(token)).json()
    assert [i["id"] for i in nl] == ["ING_INGBNL2A"]
    assert nl[0]["transaction_total_days"] == "730"


def test_agreement_field_errors(app: App) -> None:
    token = new_token(app)
    response = app.http.post(
        f"{API_PREFIX}/agreements/enduser/",
        json={"institution_id": "ING_INGBNL2A", "access_valid_for_days": 365},
        headers=auth(token),
    )
    assert response.status_code == 400
    assert set(response.json()) == {"access_valid_for_days", "status_code"}


def test_transactions_are_the_worlds_in_berlin_group_shape(app: App) -> None:
    token, linked = link_all(app)
    today = app.world.today
    first = today - dt.timedelta(days=30)
    by_iban = {a.iban: a for a in app.world.accounts_for("gocardless")}
    for account_id, iban in linked.items():
        response = app.http.get(
            f"{API_PREFIX}/accounts/{account_id}/transactions/",
            params={"date_from": first.isoformat(), "date_to": today.isoformat()},
            headers=auth(token),
        )
        assert response.status_code == 200
        assert response.headers["HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING"] == "3"
        report = response.json(parse_float=Decimal)["transactions"]
        world = app.world.booked(by_iban[iban].account_id, first, today + dt.timedelta(days=1))
        assert len(report["booked"]) == len(world)
        assert all(isinstance(t["transactionAmount"]["amount"], str) for t in report["booked"])
        total = sum((Decimal(t["transactionAmount"]["amount"]) for t in report["booked"]), Decimal(0))
        assert total == sum((t.amount for t in world), Decimal(0))
        assert all(
            t["internalTransactionId"] and t["bookingDate"] >= first.isoformat() for t in report["booked"]
        )
        assert all("internalTransactionId" not in t for t in report["pending"])
        assert len(report["pending"]) == len(app.world.pending(by_iban[iban].account_id))


def test_four_successful_calls_per_scope_then_429(app: App) -> None:
    token, linked = link_all(app)
    account_id = next(iter(linked))
    path = f"{API_PREFIX}/accounts/{account_id}/balances/"
    app.state.set_fault("server_error", 1, path_prefix=path)
    assert app.http.get(path, headers=auth(token)).status_code == 500  # failures do not count
    for _ in range(4):
        assert app.http.get(path, headers=auth(token)).status_code == 200
    refused = app.http.get(path, headers=auth(token))
    assert refused.status_code == 429
    assert refused.headers["HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING"] == "0"
    reset = int(refused.headers["HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_RESET"])
    assert 0 < reset <= seconds_to_midnight() + 1
    assert refused.json()["detail"].endswith(f"Please try again in {reset} seconds")
    assert "Retry-After" not in refused.headers
    # Other scopes have their own four.
    assert (
        app.http.get(f"{API_PREFIX}/accounts/{account_id}/details/", headers=auth(token)).status_code == 200
    )


def test_future_date_from_is_a_field_error(app: App) -> None:
    token, linked = link_all(app)
    tomorrow = (app.world.today + dt.timedelta(days=1)).isoformat()
    response = app.http.get(
        f"{API_PREFIX}/accounts/{next(iter(linked))}/transactions/",
        params={"date_from": tomorrow},
        headers=auth(token),
    )
    assert response.status_code == 400 and "date_from" in response.json()


def test_fault_switches(app: App) -> None:
    token, linked = link_all(app)
    account_id = next(iter(linked))
    path = f"{API_PREFIX}/accounts/{account_id}/balances/"
    app.state.set_fault("rate_limit", 1, path_prefix=API_PREFIX)
    storm = app.http.get(path, headers=auth(token))
    assert storm.status_code == 429 and storm.headers["Retry-After"] == "1"
    app.controls.expire_access_tokens()
    assert app.http.get(path, headers=auth(token)).status_code == 401
    token = new_token(app)
    app.controls.set_consent_problem("expired")
    expired = app.http.get(path, headers=auth(token))
    assert expired.status_code == 401 and expired.json()["type"] == "AccessExpiredError"
    app.controls.set_consent_problem(None)
    rekeyed = f"{API_PREFIX}/accounts/{account_id}/transactions/"
    before = app.http.get(rekeyed, headers=auth(token)).json()["transactions"]["booked"]
    app.controls.rebooked_ids = True
    after = app.http.get(rekeyed, headers=auth(token)).json()["transactions"]["booked"]
    assert [t["internalTransactionId"] for t in before] == [t["internalTransactionId"] for t in after]
    assert {t["transactionId"] for t in before}.isdisjoint(t["transactionId"] for t in after)


def test_account_ids_are_gocardless_uuids(app: App) -> None:
    _, linked = link_all(app)
    assert set(linked) == {gc_account_id(SEED, a) for a in app.world.accounts_for("gocardless")}
