"""The Revolut Business sandbox speaks the contract: consent, JWT client assertions, token rules,
/transactions paging semantics, legs, exact amounts, the rate limit."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import simplejson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from sandbox.revolut import ASSERTION_TYPE, RevolutOptions, build_revolut_app
from sandbox.server import serve
from sandbox.state import SandboxState
from sandbox.world import World

SEED = 7


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str


def make_key_pair() -> KeyPair:
    """A throwaway RSA key for one test module (never committed)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return KeyPair(private, public)


@dataclass
class RunningRevolut:
    url: str
    world: World
    state: SandboxState
    options: RevolutOptions
    keys: KeyPair

    @property
    def api_url(self) -> str:
        return self.url + "/api/1.0"

    @property
    def consent_url(self) -> str:
        return self.url + "/app-confirm"

    def reset(self) -> None:
        """Every switch back to a clean run (tokens stay valid)."""
        self.state.clear_fault()
        self.options.rate_limit_per_minute = None
        self.options.slow_requests = 0
        self.options.page_border_ties = False
        self.options.book_pending = False
        self.options.rebook_under_new_id = False


def world_with_pending() -> World:
    """The latest world (seed 7, today moved back at most 60 days) with Revolut payments still pending."""
    today = dt.datetime.now(dt.UTC).date()
    for back in range(60):
        world = World(SEED, today=today - dt.timedelta(days=back))
        if any(world.pending(a.account_id) for a in world.accounts_for("revolut")):
            return world
    raise AssertionError("no recent day of seed 7 has pending Revolut payments")


def running_revolut(world: World | None = None) -> Iterator[RunningRevolut]:
    """Serve the Revolut sandbox app (rate limit off unless a test turns it on)."""
    keys = make_key_pair()
    state = SandboxState()
    options = RevolutOptions(
        public_key_pem=keys.public_pem, rate_limit_per_minute=None, retry_after_seconds=0
    )
    world = world or World(SEED)
    with serve(build_revolut_app(world, state, options)) as url:
        yield RunningRevolut(url, world, state, options, keys)


def assertion(keys: KeyPair, client_id: str, **overrides: object) -> str:
    claims = {
        "iss": "127.0.0.1",
        "sub": client_id,
        "aud": "https://revolut.com",
        "exp": int(time.time()) + 300,
    }
    claims.update(overrides)
    return jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, RSAKey.import_key(keys.private_pem))


def consent_code(rv: RunningRevolut) -> str:
    """Play the user: open the consent link, do not follow the redirect, read the code."""
    response = httpx.get(
        rv.consent_url,
        params={
            "client_id": rv.state.client_id,
            "redirect_uri": "http://127.0.0.1:3000/callback",
            "response_type": "code",
            "scope": "READ",
            "state": "s1",
        },
        follow_redirects=False,
    )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


@pytest.fixture(scope="module")
def rv() -> Iterator[RunningRevolut]:
    yield from running_revolut()


@pytest.fixture(autouse=True)
def _clean(rv: RunningRevolut) -> Iterator[None]:
    yield
    rv.reset()


def token_request(rv: RunningRevolut, **form: str) -> httpx.Response:
    body = {"client_assertion_type": ASSERTION_TYPE, **form}
    body.setdefault("client_assertion", assertion(rv.keys, rv.state.client_id))
    return httpx.post(rv.api_url + "/auth/token", data=body)


def tokens(rv: RunningRevolut) -> dict:
    response = token_request(rv, grant_type="authorization_code", code=consent_code(rv))
    assert response.status_code == 200, response.text
    return response.json()


def get(rv: RunningRevolut, path: str, token: str, **params: object) -> httpx.Response:
    return httpx.get(rv.api_url + path, params=params, headers={"Authorization": f"Bearer {token}"})


def test_code_grant_needs_a_valid_client_assertion(rv: RunningRevolut) -> None:
    other = make_key_pair()
    cases = {
        "wrong key": assertion(other, rv.state.client_id),
        "wrong sub": assertion(rv.keys, "someone-else"),
        "wrong aud": assertion(rv.keys, rv.state.client_id, aud="https://example.com"),
        "wrong iss": assertion(rv.keys, rv.state.client_id, iss="evil.example"),
        "expired": assertion(rv.keys, rv.state.client_id, exp=int(time.time()) - 5),
        "not a jwt": "abc.def.ghi",
    }
    for name, bad in cases.items():
        response = token_request(
            rv, grant_type="authorization_code", code=consent_code(rv), client_assertion=bad
        )
        assert response.status_code == 401, name
        assert response.json()["error"] == "invalid_client"
    body = tokens(rv)
    assert body["token_type"] == "bearer" and body["expires_in"] == 40 * 60 and body["refresh_token"]


def test_codes_are_single_use(rv: RunningRevolut) -> None:
    code = consent_code(rv)
    assert token_request(rv, grant_type="authorization_code", code=code).status_code == 200
    again = token_request(rv, grant_type="authorization_code", code=code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_refresh_invalidates_the_previous_access_token_and_keeps_the_refresh_token(
    rv: RunningRevolut,
) -> None:
    first = tokens(rv)
    assert get(rv, "/accounts", first["access_token"]).status_code == 200
    refreshed = token_request(rv, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert "refresh_token" not in refreshed
    assert get(rv, "/accounts", first["access_token"]).status_code == 401
    assert get(rv, "/accounts", refreshed["access_token"]).status_code == 200
    # The refresh token lives on.
    assert (
        token_request(rv, grant_type="refresh_token", refresh_token=first["refresh_token"]).status_code == 200
    )


def test_expiry_and_revocation(rv: RunningRevolut) -> None:
    body = tokens(rv)
    rv.options.expire_access_tokens()
    assert get(rv, "/accounts", body["access_token"]).status_code == 401
    rv.options.revoke_consent()
    refused = token_request(rv, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_accounts_and_exchange_legs_are_exact(rv: RunningRevolut) -> None:
    token = tokens(rv)["access_token"]
    accounts = simplejson.loads(get(rv, "/accounts", token).text, use_decimal=True)
    assert {a["currency"] for a in accounts} == {"GBP", "EUR"}
    assert all(isinstance(a["balance"], Decimal) for a in accounts)
    txns = simplejson.loads(
        get(rv, "/transactions", token, **{"from": "2020-01-01", "count": 1000}).text, use_decimal=True
    )
    exchanges = [t for t in txns if t["type"] == "exchange"]
    assert exchanges and all(len(t["legs"]) == 2 for t in exchanges)
    assert all(len(t["legs"]) == 1 for t in txns if t["type"] != "exchange")
    out_leg = next(leg for leg in exchanges[0]["legs"] if leg["amount"] < 0)
    assert isinstance(out_leg["amount"], Decimal) and out_leg["fee"] > 0
    created = [t["created_at"] for t in txns]
    assert created == sorted(created, reverse=True)


def test_paging_is_from_inclusive_to_exclusive_on_created_at(rv: RunningRevolut) -> None:
    token = tokens(rv)["access_token"]
    everything = get(rv, "/transactions", token, **{"from": "2020-01-01", "count": 1000}).json()
    border = everything[5]["created_at"]
    older = get(rv, "/transactions", token, **{"from": "2020-01-01", "to": border, "count": 1000}).json()
    assert [t["id"] for t in older] == [t["id"] for t in everything[6:]]
    newer = get(rv, "/transactions", token, **{"from": border, "count": 1000}).json()
    assert [t["id"] for t in newer] == [t["id"] for t in everything[:6]]
    assert get(rv, "/transactions", token, count=1001).json()["code"] == 2101


def test_rate_limit_answers_3162_with_retry_after(rv: RunningRevolut) -> None:
    token = tokens(rv)["access_token"]
    rv.options.rate_limit_per_minute = 3
    rv.options.retry_after_seconds = 7
    try:
        statuses = [get(rv, "/accounts", token) for _ in range(4)]
    finally:
        rv.options.retry_after_seconds = 0
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert statuses[-1].json()["code"] == 3162 and statuses[-1].headers["Retry-After"] == "7"


def test_fault_switches_answer_like_revolut(rv: RunningRevolut) -> None:
    token = tokens(rv)["access_token"]
    rv.state.set_fault("server_error", 1, path_prefix="/api/1.0")
    assert get(rv, "/accounts", token).json()["code"] == 5000
    rv.state.set_fault("rate_limit", 1, path_prefix="/api/1.0")
    assert get(rv, "/accounts", token).status_code == 429
    rv.state.set_fault("malformed_json", 1, path_prefix="/api/1.0")
    with pytest.raises(ValueError):
        get(rv, "/accounts", token).json()
    assert get(rv, "/accounts", token).status_code == 200


def test_page_border_ties_share_created_at(rv: RunningRevolut) -> None:
    token = tokens(rv)["access_token"]
    rv.options.page_border_ties = True
    txns = get(rv, "/transactions", token, **{"from": "2020-01-01", "count": 1000}).json()
    created = [t["created_at"] for t in txns]
    assert max(created.count(c) for c in set(created)) >= 4
