"""Revolut Business as a Dagster resource: configuration from the environment, tokens from the vault."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from resources.errors import AuthorizationRequired
from resources.http import RetryPolicy
from resources.providers.revolut import (
    MAX_PAGE,
    PROVIDER,
    RevolutAuth,
    RevolutClient,
    RevolutConfig,
)
from resources.rate_limit import RateLimiter
from resources.vault import TokenVault


class RevolutResource(dg.ConfigurableResource):
    """Revolut Business API (live, sandbox, or bankflow's simulator: only the URLs differ).

    `api_url` is the API root including `/api/1.0`; `consent_url` the Business app's app-confirm page.
    """

    api_url: str
    consent_url: str
    client_id: str
    private_key_pem: str = Field(repr=False)
    redirect_uri: str = "http://127.0.0.1:3000/callback"
    # The JWT `iss`; empty means the redirect URI's host, as Revolut expects.
    issuer: str = ""
    connection_name: str = "revolut"
    max_attempts: int = 5
    backoff_initial_seconds: float = 0.5
    retry_after_max_seconds: float = 120.0
    # Revolut allows 60 requests per minute per business; 0 turns client pacing off.
    requests_per_minute: int = 60
    page_size: int = MAX_PAGE
    timeout_seconds: float = 30.0

    def config(self) -> RevolutConfig:
        return RevolutConfig(
            api_url=self.api_url,
            consent_url=self.consent_url,
            client_id=self.client_id,
            private_key_pem=self.private_key_pem,
            redirect_uri=self.redirect_uri,
            issuer=self.issuer or None,
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            backoff_initial=self.backoff_initial_seconds,
            retry_after_max=self.retry_after_max_seconds,
        )

    def auth(self, rate_limiter: RateLimiter | None = None) -> RevolutAuth:
        return RevolutAuth(self.config(), retry=self.retry_policy(), rate_limiter=rate_limiter)

    def open_client(self, vault: TokenVault) -> RevolutClient:
        """A client on the stored tokens; every refreshed token set is saved before it is used."""
        tokens = vault.load(self.connection_name)
        if tokens is None:
            raise AuthorizationRequired(PROVIDER, f"no connection named {self.connection_name!r} yet")
        # One limiter for token and data calls: both count against the same per-minute limit.
        return RevolutClient(
            self.auth(RateLimiter.per_minute(self.requests_per_minute)),
            tokens,
            on_tokens=lambda refreshed: vault.save(self.connection_name, PROVIDER, refreshed),
            retry=self.retry_policy(),
            page_size=self.page_size,
            timeout=self.timeout_seconds,
        )
