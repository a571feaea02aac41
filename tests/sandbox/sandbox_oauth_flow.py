"""Helpers shared by the sandbox tests: the TrueLayer auth-code flow over HTTP (uniquely named module)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlparse

import httpx

from sandbox.server import Sandbox

TODAY = dt.date(2025, 6, 15)  # a Sunday; card payments of the last days are still pending
SEED = 42
REDIRECT_URI = "http://127.0.0.1:9/callback"
FULL_SCOPE = "info accounts balance cards transactions direct_debits standing_orders offline_access"


def authorize(http: httpx.Client, sandbox: Sandbox, scope: str = FULL_SCOPE, **extra: str) -> str:
    """Follow the auth link (auto-consent) and return the code from the redirect."""
    params = {
        "response_type": "code",
        "client_id": sandbox.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": "st-123",
        "nonce": "n-456",
        **extra,
    }
    response = http.get("/", params=params)
    assert response.status_code == 302, response.text
    return parse_qs(urlparse(response.headers["location"]).query)["code"][0]


def exchange(http: httpx.Client, sandbox: Sandbox, code: str) -> httpx.Response:
    return http.post(
        "/connect/token",
        data={
            "grant_type": "authorization_code",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "redirect_uri": REDIRECT_URI,
            "code": code,
        },
    )


def connect(http: httpx.Client, sandbox: Sandbox, **extra: str) -> dict:
    """The full code flow; returns the token response body."""
    response = exchange(http, sandbox, authorize(http, sandbox, **extra))
    assert response.status_code == 200, response.text
    return response.json()
