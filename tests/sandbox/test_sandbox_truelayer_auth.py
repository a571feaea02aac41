"""TrueLayer auth over real HTTP: auth link, code exchange, refresh rotation, token errors."""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sandbox_oauth_flow import FULL_SCOPE, REDIRECT_URI, authorize, connect, exchange

from sandbox.server import Sandbox


def refresh(http: httpx.Client, sandbox: Sandbox, refresh_token: str) -> httpx.Response:
    return http.post(
        "/connect/token",
        data={
            "grant_type": "refresh_token",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "refresh_token": refresh_token,
        },
    )


def test_auth_link_redirects_with_code_and_state(client: httpx.Client, sandbox: Sandbox) -> None:
    params = {
        "response_type": "code",
        "client_id": sandbox.client_id,
        "redirect_uri": "https://app.example/cb?tenant=7",
        "scope": FULL_SCOPE,
        "state": "abc",
        "nonce": "xyz",
        "providers": "uk-ob-all uk-oauth-all",
    }
    response = client.get("/", params=params)
    assert response.status_code == 302
    location = urlparse(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://app.example/cb"
    query = parse_qs(location.query)
    assert query["tenant"] == ["7"] and query["state"] == ["abc"] and query["code"][0]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"redirect_uri": ""}, "invalid_request"),
    ],
)
def test_bad_auth_links_are_refused(client: httpx.Client, sandbox: Sandbox, change: dict, error: str) -> None:
    params = {"response_type": "code", "client_id": sandbox.client_id, "redirect_uri": REDIRECT_URI}
    params |= {"scope": FULL_SCOPE, **change}
    response = client.get("/", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_code_exchange_and_single_use(client: httpx.Client, sandbox: Sandbox) -> None:
    code = authorize(client, sandbox)
    first = exchange(client, sandbox, code)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"access_token", "expires_in", "token_type", "refresh_token", "scope"}
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer" and body["scope"] == FULL_SCOPE
    again = exchange(client, sandbox, code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_code_needs_the_same_redirect_uri(client: httpx.Client, sandbox: Sandbox) -> None:
    code = authorize(client, sandbox)
    response = client.post(
        "/connect/token",
        data={
            "grant_type": "authorization_code",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "redirect_uri": "http://elsewhere/cb",
            "code": code,
        },
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_code_expires_after_five_minutes(
    client: httpx.Client, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = authorize(client, sandbox)
    monkeypatch.setattr(sandbox.state.oauth, "clock", lambda: time.time() + 301)
    response = exchange(client, sandbox, code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_bad_client_secret_is_401(client: httpx.Client, sandbox: Sandbox) -> None:
    code = authorize(client, sandbox)
    response = client.post(
        "/connect/token",
        data={
            "grant_type": "authorization_code",
            "client_id": sandbox.client_id,
            "client_secret": "wrong",
            "redirect_uri": REDIRECT_URI,
            "code": code,
        },
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_client_credentials_by_http_basic(client: httpx.Client, sandbox: Sandbox) -> None:
    code = authorize(client, sandbox)
    basic = base64.b64encode(f"{sandbox.client_id}:{sandbox.client_secret}".encode()).decode()
    response = client.post(
        "/connect/token",
        data={"grant_type": "authorization_code", "redirect_uri": REDIRECT_URI, "code": code},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text


def test_token_endpoint_wants_a_form_and_a_known_grant_type(client: httpx.Client, sandbox: Sandbox) -> None:
    as_json = client.post("/connect/token", json={"grant_type": "authorization_code"})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    odd = client.post(
        "/connect/token",
        data={
            "grant_type": "password",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        },
    )
    assert odd.status_code == 400 and odd.json()["error"] == "unsupported_grant_type"


def test_refresh_rotates_the_refresh_token(client: httpx.Client, sandbox: Sandbox) -> None:
    tokens = connect(client, sandbox)
    refreshed = refresh(client, sandbox, tokens["refresh_token"])
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["access_token"] != tokens["access_token"] and new["refresh_token"] != tokens["refresh_token"]
    assert new["expires_in"] == 3600 and new["scope"] == FULL_SCOPE
    me = client.get("/data/v1/me", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert me.status_code == 200
    reused = refresh(client, sandbox, tokens["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant" and reused.json()["error_description"]
    assert refresh(client, sandbox, new["refresh_token"]).status_code == 200
    assert refresh(client, sandbox, "never-issued").json()["error"] == "invalid_grant"


def test_no_refresh_token_without_offline_access(client: httpx.Client, sandbox: Sandbox) -> None:
    response = exchange(client, sandbox, authorize(client, sandbox, scope="info accounts transactions"))
    assert response.status_code == 200 and "refresh_token" not in response.json()


def test_access_tokens_expire_after_an_hour(
    client: httpx.Client, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = connect(client, sandbox)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/data/v1/accounts", headers=headers).status_code == 200
    monkeypatch.setattr(sandbox.state.oauth, "clock", lambda: time.time() + 3601)
    expired = client.get("/data/v1/accounts", headers=headers)
    assert expired.status_code == 401 and expired.json()["error"] == "unauthorized"
    new = refresh(client, sandbox, tokens["refresh_token"]).json()
    assert client.get(
        "/data/v1/accounts", headers={"Authorization": f"Bearer {new['access_token']}"}
    ).is_success


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic abc"])
def test_data_api_needs_a_bearer_token(client: httpx.Client, header: str | None) -> None:
    response = client.get("/data/v1/accounts", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json() == {
        "error": "unauthorized",
        "error_description": response.json()["error_description"],
        "error_details": {},
    }


def test_consent_limited_to_named_providers(client: httpx.Client, sandbox: Sandbox) -> None:
    tokens = connect(client, sandbox, providers="uk-ob-all ob-monzo")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    accounts = client.get("/data/v1/accounts", headers=headers).json()["results"]
    monzo = [a for a in sandbox.world.accounts_for("truelayer", cards=False) if a.provider_id == "ob-monzo"]
    assert [a["account_id"] for a in accounts] == [a.account_id for a in monzo]
    me = client.get("/data/v1/me", headers=headers).json()["results"][0]
    assert me["provider"]["provider_id"] == "ob-monzo" and me["client_id"] == sandbox.client_id
    other = next(
        a for a in sandbox.world.accounts_for("truelayer", cards=False) if a.provider_id != "ob-monzo"
    )
    assert client.get(f"/data/v1/accounts/{other.account_id}", headers=headers).status_code == 404
