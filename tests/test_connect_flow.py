"""`bankflow connect`: consent link with state + PKCE, redirect to a one-shot callback server."""

from __future__ import annotations

import threading
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from bankflow_cli.connect import ConsentError, connect_truelayer, start_truelayer_consent
from bankflow_cli.demo import scripted_user
from resources.errors import AuthorizationRequired
from resources.vault import TokenVault


@pytest.fixture
def config(truelayer):
    return replace(truelayer.config(), redirect_uri="http://127.0.0.1:0/callback")


def test_scripted_user_completes_the_flow(config, database_url: str, secret_key: str) -> None:
    vault = TokenVault(database_url, secret_key)
    connect_truelayer(config, vault, "connect-test", scripted_user, timeout=30)
    tokens = vault.load("connect-test")
    assert tokens["access_token"] and tokens["refresh_token"]
    assert tokens["consent_granted_at"]


def test_consent_link_carries_state_and_pkce(truelayer) -> None:
    pending = start_truelayer_consent(truelayer.auth())
    query = dict(parse_qsl(urlsplit(pending.url).query))
    assert query["state"] == pending.state
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] and query["code_challenge"] != pending.code_verifier


def test_wrong_state_is_rejected(config, database_url: str, secret_key: str) -> None:
    def forged_redirect(url: str) -> None:
        def run() -> None:
            location = httpx.get(url).headers["location"]
            parts = urlsplit(location)
            query = dict(parse_qsl(parts.query)) | {"state": "forged"}
            httpx.get(parts._replace(query=urlencode(query)).geturl())

        threading.Thread(target=run, daemon=True).start()

    with pytest.raises(ConsentError, match="state does not match"):
        connect_truelayer(config, TokenVault(database_url, secret_key), "forged", forged_redirect, timeout=30)
    assert TokenVault(database_url, secret_key).load("forged") is None


def test_code_without_its_pkce_verifier_is_refused(truelayer) -> None:
    pending = start_truelayer_consent(truelayer.auth())
    code = dict(parse_qsl(urlsplit(httpx.get(pending.url).headers["location"]).query))["code"]
    with pytest.raises(AuthorizationRequired, match="invalid_grant"):
        truelayer.auth().exchange_code(code, "not-the-verifier")


def test_no_redirect_times_out(config, database_url: str, secret_key: str) -> None:
    with pytest.raises(TimeoutError, match="no redirect"):
        connect_truelayer(
            config, TokenVault(database_url, secret_key), "never", lambda url: None, timeout=0.5
        )
