"""Connecting a provider: consent link with state and PKCE, the redirect back to a one-shot
callback server on 127.0.0.1, the code exchanged for tokens, the tokens into the vault."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from bankflow_cli.callback import CallbackServer
from resources.providers.truelayer import PROVIDER, TrueLayerAuth, TrueLayerConfig
from resources.vault import TokenVault

CONSENT_TIMEOUT_SECONDS = 300.0


class ConsentError(Exception):
    pass


@dataclass(frozen=True)
class PendingConsent:
    url: str
    state: str
    code_verifier: str


def start_truelayer_consent(auth: TrueLayerAuth) -> PendingConsent:
    state = secrets.token_urlsafe(16)
    verifier = secrets.token_urlsafe(64)
    url = auth.authorization_url(state, code_challenge=create_s256_code_challenge(verifier))
    return PendingConsent(url=url, state=state, code_verifier=verifier)


def code_from_redirect(redirect_url: str, expected_state: str) -> str:
    """The authorisation code from the URL the bank redirected the user to."""
    query = parse_qs(urlsplit(redirect_url).query)
    if "error" in query:
        raise ConsentError(f"the bank refused consent: {query['error'][0]}")
    if query.get("state", [None])[0] != expected_state:
        raise ConsentError("the redirect's state does not match this consent request; start again")
    code = query.get("code", [None])[0]
    if not code:
        raise ConsentError("the redirect URL has no authorisation code")
    return code


def finish_truelayer_consent(
    auth: TrueLayerAuth, vault: TokenVault, connection_name: str, code: str, code_verifier: str
) -> None:
    tokens = auth.exchange_code(code, code_verifier)
    vault.save(connection_name, PROVIDER, tokens, auth.consent_expires_at(tokens))


def connect_truelayer(
    config: TrueLayerConfig,
    vault: TokenVault,
    connection_name: str,
    open_url: Callable[[str], object],
    timeout: float = CONSENT_TIMEOUT_SECONDS,
) -> None:
    """The whole authorisation-code flow: `open_url` shows the consent page to the user (a
    browser, or a scripted client against the sandbox); the bank redirects to our callback."""
    redirect = urlsplit(config.redirect_uri)
    with CallbackServer(redirect.hostname or "127.0.0.1", redirect.port or 0) as server:
        # Port 0 (tests) binds a free port; the redirect URI must then name that port.
        auth = TrueLayerAuth(replace(config, redirect_uri=server.redirect_uri))
        pending = start_truelayer_consent(auth)
        open_url(pending.url)
        landed = server.wait(timeout)
    finish_truelayer_consent(
        auth, vault, connection_name, code_from_redirect(landed, pending.state), pending.code_verifier
    )
