"""Connecting a provider: consent link with state (and PKCE where the bank supports it), the
redirect back to a one-shot callback server on 127.0.0.1, the code exchanged for tokens, the
tokens into the vault."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from bankflow_cli.callback import CallbackServer
from resources.providers import berlin_group, revolut
from resources.providers.berlin_group import BerlinGroupAuth, BerlinGroupConfig
from resources.providers.gocardless_resource import GoCardlessResource
from resources.providers.revolut import RevolutConfig
from resources.providers.truelayer import PROVIDER, TrueLayerAuth, TrueLayerConfig
from resources.vault import TokenVault

CONSENT_TIMEOUT_SECONDS = 300.0


class ConsentError(Exception):
    pass


@dataclass(frozen=True)
class PendingConsent:
    url: str
    state: str
    code_verifier: str = field(repr=False)


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


def authorize_via_callback(
    redirect_uri: str,
    begin: Callable[[str], tuple[str, str]],
    open_url: Callable[[str], object],
    timeout: float = CONSENT_TIMEOUT_SECONDS,
) -> str:
    """Run one authorisation-code consent and return the code.

    A one-shot server listens at `redirect_uri` (port 0: any free port, for tests); `begin`
    gets the URI actually listened on and returns the consent link and its state; `open_url`
    shows the link to the user (a browser, or a scripted client against the sandbox).
    """
    redirect = urlsplit(redirect_uri)
    with CallbackServer(redirect.hostname or "127.0.0.1", redirect.port or 0) as server:
        url, state = begin(server.redirect_uri)
        open_url(url)
        landed = server.wait(timeout)
    return code_from_redirect(landed, state)


def connect_truelayer(
    config: TrueLayerConfig,
    vault: TokenVault,
    connection_name: str,
    open_url: Callable[[str], object],
    timeout: float = CONSENT_TIMEOUT_SECONDS,
) -> None:
    started: dict[str, object] = {}

    def begin(redirect_uri: str) -> tuple[str, str]:
        auth = TrueLayerAuth(replace(config, redirect_uri=redirect_uri))
        pending = start_truelayer_consent(auth)
        started.update(auth=auth, pending=pending)
        return pending.url, pending.state

    code = authorize_via_callback(config.redirect_uri, begin, open_url, timeout)
    pending: PendingConsent = started["pending"]  # type: ignore[assignment]
    finish_truelayer_consent(started["auth"], vault, connection_name, code, pending.code_verifier)  # type: ignore[arg-type]


def connect_berlin_group(
    config: BerlinGroupConfig,
    vault: TokenVault,
    connection_name: str,
    open_url: Callable[[str], object],
    timeout: float = CONSENT_TIMEOUT_SECONDS,
) -> None:
    """Create the consent at the bank, let the user approve it (PKCE), store tokens + consent."""
    started: dict[str, object] = {}

    def begin(redirect_uri: str) -> tuple[str, str]:
        auth = BerlinGroupAuth(replace(config, redirect_uri=redirect_uri))
        pending = berlin_group.start_consent(auth)
        started.update(auth=auth, pending=pending)
        return pending.url, pending.state

    code = authorize_via_callback(config.redirect_uri, begin, open_url, timeout)
    berlin_group.finish_consent(
        code,
        started["pending"],
        auth=started["auth"],
        vault=vault,
        connection_name=connection_name,  # type: ignore[arg-type]
    )


def connect_revolut(
    config: RevolutConfig,
    vault: TokenVault,
    connection_name: str,
    open_url: Callable[[str], object],
    timeout: float = CONSENT_TIMEOUT_SECONDS,
) -> None:
    """Approve in the Business app; the code is traded with a JWT signed by the user's key."""
    started: dict[str, RevolutConfig] = {}

    def begin(redirect_uri: str) -> tuple[str, str]:
        started["config"] = replace(config, redirect_uri=redirect_uri)
        state = secrets.token_urlsafe(16)
        return revolut.authorization_url(started["config"], state), state

    code = authorize_via_callback(config.redirect_uri, begin, open_url, timeout)
    revolut.exchange_code(started["config"], code, vault, connection_name)


def connect_gocardless(
    resource: GoCardlessResource,
    vault: TokenVault,
    institution_id: str,
    open_url: Callable[[str], object],
    redirect_uri: str,
    timeout: float = CONSENT_TIMEOUT_SECONDS,
) -> None:
    """Link one bank: an end-user agreement and a requisition, the user approves at the bank,
    which redirects back with the requisition's reference; then its accounts are recorded."""
    redirect = urlsplit(redirect_uri)
    with CallbackServer(redirect.hostname or "127.0.0.1", redirect.port or 0) as server:
        pending = resource.start_connection(vault, institution_id, server.redirect_uri)
        open_url(pending.link)
        landed = server.wait(timeout)
    reference = parse_qs(urlsplit(landed).query).get("ref", [None])[0]
    if reference != pending.reference:
        raise ConsentError("the redirect's reference does not match this requisition; start again")
    resource.finish_connection(vault, pending.requisition_id)
