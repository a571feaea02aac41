"""Connecting a provider: the consent link, the redirect back, tokens into the vault."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from resources.providers.truelayer import PROVIDER, TrueLayerAuth
from resources.vault import TokenVault


class ConsentError(Exception):
    pass


@dataclass(frozen=True)
class PendingConsent:
    url: str
    state: str


def start_truelayer_consent(auth: TrueLayerAuth) -> PendingConsent:
    state = secrets.token_urlsafe(16)
    return PendingConsent(url=auth.authorization_url(state), state=state)


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


def finish_truelayer_consent(auth: TrueLayerAuth, vault: TokenVault, connection_name: str, code: str) -> None:
    tokens = auth.exchange_code(code)
    vault.save(connection_name, PROVIDER, tokens, auth.consent_expires_at(tokens))
