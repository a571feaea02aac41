"""The Berlin Group sandbox speaks the NextGenPSD2 contract over real HTTP (raw httpx, no bankflow client)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sandbox.berlin_group import BerlinGroupSandbox, BerlinGroupSwitches, build_berlin_group_app
from sandbox.server import serve
from sandbox.state import SandboxState
from sandbox.world import World

REDIRECT = "http://127.0.0.1:9/callback"
VERIFIER = "v" * 50


@dataclass
class Bank:
    url: str
    state: SandboxState
    bg: BerlinGroupSandbox
    world: World


@pytest.fixture(scope="module")
def bank() -> Iterator[Bank]:
    world, state = World(7), SandboxState()
    bg = BerlinGroupSandbox(BerlinGroupSwitches(max_frequency_per_day=4, page_size=20))
    with serve(build_berlin_group_app(world, state, bg)) as url:
        yield Bank(url, state, bg, world)


@pytest.fixture
def http(bank: Bank) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bank.url, timeout=10) as client:
        yield client
    bank.state.clear_fault()


def rid() -> dict[str, str]:
    return {"X-Request-ID": str(uuid.uuid4())}


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def create_consent(http: httpx.Client, frequency: int = 4) -> str:
    body = {
        "access": {"allPsd2": "allAccounts"},
        "recurringIndicator": True,
        "validUntil": "9999-12-31",
        "frequencyPerDay": frequency,
        "combinedServiceIndicator": False,
    }
    response = http.post("/v1/consents", json=body, headers={**rid(), "PSU-IP-Address": "10.0.0.1"})
    assert response.status_code == 201, response.text
    assert response.json()["consentStatus"] == "received"
    assert "scaOAuth" in response.json()["_links"]
    return response.json()["consentId"]


def authorize(http: httpx.Client, bank: Bank, consent_id: str, verifier: str | None = VERIFIER) -> str:
    params = {
        "response_type": "code",
        "client_id": bank.state.client_id,
        "redirect_uri": REDIRECT,
        "scope": f"AIS:{consent_id}",
        "state": "s1",
    }
    if verifier:
        params |= {"code_challenge": challenge(verifier), "code_challenge_method": "S256"}
    response = http.get("/oauth/authorize", params=params)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def token(http: httpx.Client, bank: Bank, code: str, verifier: str = VERIFIER) -> httpx.Response:
    return http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": bank.state.client_id,
            "client_secret": bank.state.client_secret,
        },
    )


@pytest.fixture
def session(http: httpx.Client, bank: Bank) -> dict[str, str]:
    """Headers for data calls under a fresh consent."""
    consent_id = create_consent(http)
    access = token(http, bank, authorize(http, bank, consent_id)).json()["access_token"]
    return {"Authorization": f"Bearer {access}", "Consent-ID": consent_id}


def test_pkce_is_verified_at_the_token_endpoint(http: httpx.Client, bank: Bank) -> None:
    consent_id = create_consent(http)
    wrong = token(http, bank, authorize(http, bank, consent_id), verifier="x" * 50)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    no_challenge = http.get(
        "/oauth/authorize",
        params={"response_type": "code", "client_id": bank.state.client_id, "redirect_uri": REDIRECT},
    )
    assert "error=" in no_challenge.headers["location"]


def test_consent_becomes_valid_and_validity_is_capped(http: httpx.Client, bank: Bank, session) -> None:
    consent = http.get(f"/v1/consents/{session['Consent-ID']}", headers=rid()).json()
    assert consent["consentStatus"] == "valid"
    assert dt.date.fromisoformat(consent["validUntil"]) == bank.world.today + dt.timedelta(days=90)


def test_x_request_id_is_required_and_echoed(http: httpx.Client, session) -> None:
    missing = http.get("/v1/accounts", headers=session)
    assert missing.status_code == 400
    assert missing.json()["tppMessages"]["code"] == "FORMAT_ERROR"  # object form, as older BT builds
    headers = {**session, **rid()}
    ok = http.get("/v1/accounts", headers={**headers, "PSU-IP-Address": "10.0.0.1"})
    assert ok.status_code == 200 and ok.headers["x-request-id"] == headers["X-Request-ID"]
    no_consent = http.get("/v1/accounts", headers={"Authorization": session["Authorization"], **rid()})
    assert no_consent.status_code == 400


def test_transactions_page_with_string_amounts_equal_to_the_world(
    http: httpx.Client, bank: Bank, session
) -> None:
    user_present = {**session, "PSU-IP-Address": "10.0.0.1"}
    account = http.get("/v1/accounts", headers={**user_present, **rid()}).json()["accounts"][0]
    assert account["iban"] == bank.world.accounts_for("berlin_group")[0].iban
    start, end = bank.world.today - dt.timedelta(days=60), bank.world.today
    path = f"/v1/accounts/{account['resourceId']}/transactions"
    params: dict[str, str] | None = {
        "dateFrom": start.isoformat(),
        "dateTo": end.isoformat(),
        "bookingStatus": "both",
    }
    booked, pages = [], 0
    while path:
        body = http.get(path, params=params, headers={**user_present, **rid()}).json()
        booked += body["transactions"]["booked"]
        path = body["transactions"]["_links"].get("next", {}).get("href")
        params, pages = None, pages + 1
    world_rows = bank.world.booked(
        bank.world.accounts_for("berlin_group")[0].account_id, start, end + dt.timedelta(days=1)
    )
    assert pages > 1 and len(booked) == len(world_rows)
    assert all(isinstance(t["transactionAmount"]["amount"], str) for t in booked)
    assert sum(Decimal(t["transactionAmount"]["amount"]) for t in booked) == sum(t.amount for t in world_rows)


def test_period_invalid_and_access_exceeded(http: httpx.Client, bank: Bank, session) -> None:
    account = http.get("/v1/accounts", headers={**session, **rid(), "PSU-IP-Address": "1.2.3.4"}).json()[
        "accounts"
    ][0]
    path = f"/v1/accounts/{account['resourceId']}/balances"
    old = http.get(
        f"/v1/accounts/{account['resourceId']}/transactions",
        params={"dateFrom": (bank.world.today - dt.timedelta(days=200)).isoformat(), "bookingStatus": "both"},
        headers={**session, **rid()},
    )
    assert old.status_code == 400 and old.json()["tppMessages"]["code"] == "PERIOD_INVALID"
    statuses = [http.get(path, headers={**session, **rid()}).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    refused = http.get(path, headers={**session, **rid()})
    assert refused.json()["tppMessages"]["code"] == "ACCESS_EXCEEDED"
    assert int(refused.headers["Retry-After"]) > 0
    # A user-present read is not counted and still works.
    assert http.get(path, headers={**session, **rid(), "PSU-IP-Address": "1.2.3.4"}).status_code == 200


def test_consent_expiry_and_revocation_answer_401_arrays(http: httpx.Client, bank: Bank, session) -> None:
    headers = {**session, "PSU-IP-Address": "1.2.3.4"}
    bank.bg.set_consent_status("expired", session["Consent-ID"])
    expired = http.get("/v1/accounts", headers={**headers, **rid()})
    assert expired.status_code == 401 and expired.json()["tppMessages"][0]["code"] == "CONSENT_EXPIRED"
    bank.bg.set_consent_status("revokedByPsu", session["Consent-ID"])
    assert (
        http.get("/v1/accounts", headers={**headers, **rid()}).json()["tppMessages"][0]["code"]
        == "CONSENT_INVALID"
    )


def test_token_expiry_and_generic_faults(http: httpx.Client, bank: Bank, session) -> None:
    headers = {**session, "PSU-IP-Address": "1.2.3.4"}
    bank.state.oauth.expire_access_tokens()
    expired = http.get("/v1/accounts", headers={**headers, **rid()})
    assert expired.json()["tppMessages"][0]["code"] == "TOKEN_EXPIRED"
    bank.state.set_fault("rate_limit", count=1, path_prefix="/v1/accounts")
    storm = http.get("/v1/accounts", headers={**headers, **rid()})
    assert storm.status_code == 429 and storm.headers["Retry-After"] == "1"


def test_rebook_switch_moves_recent_rows_to_pending_under_new_ids(
    http: httpx.Client, bank: Bank, session
) -> None:
    headers = {**session, "PSU-IP-Address": "1.2.3.4"}
    account = http.get("/v1/accounts", headers={**headers, **rid()}).json()["accounts"][0]
    path = f"/v1/accounts/{account['resourceId']}/transactions"
    params = {
        "dateFrom": (bank.world.today - dt.timedelta(days=6)).isoformat(),
        "bookingStatus": "both",
        "itemsPerPage": "500",
    }
    bank.bg.switches.page_size = 500
    try:
        before = http.get(path, params=params, headers={**headers, **rid()}).json()["transactions"]
        bank.bg.switches.rebook_days = 7
        during = http.get(path, params=params, headers={**headers, **rid()}).json()["transactions"]
    finally:
        bank.bg.switches.rebook_days, bank.bg.switches.page_size = 0, 20
    assert before["booked"] and not during["booked"]
    assert len(during["pending"]) == len(before["booked"]) + len(before["pending"])
    booked_ids = {t["transactionId"] for t in before["booked"]}
    assert booked_ids.isdisjoint({t["transactionId"] for t in during["pending"]})
    assert all("entryReference" not in t for t in during["pending"])


def test_switches_over_http_and_consent_deletion(http: httpx.Client, bank: Bank, session) -> None:
    set_ = http.post("/_sandbox/berlin-group", json={"page_size": 7, "tpp_messages": "array"})
    assert set_.json()["page_size"] == 7 and bank.bg.switches.tpp_messages == "array"
    assert http.post("/_sandbox/berlin-group", json={"nope": 1}).status_code == 400
    http.post("/_sandbox/berlin-group", json={"page_size": 20, "tpp_messages": "mixed"})
    consent_id = session["Consent-ID"]
    assert http.delete(f"/v1/consents/{consent_id}", headers=rid()).status_code == 204
    status = http.get(f"/v1/consents/{consent_id}/status", headers=rid()).json()
    assert status == {"consentStatus": "terminatedByTpp"}
    refused = http.get("/v1/accounts", headers={**session, **rid(), "PSU-IP-Address": "1.2.3.4"})
    assert refused.status_code == 401 and refused.json()["tppMessages"][0]["code"] == "CONSENT_INVALID"
