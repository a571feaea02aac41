"""TrueLayer as a Dagster resource: configuration from the environment, tokens from the vault."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from resources.connections import consent_status
from resources.errors import AuthorizationRequired
from resources.http import RetryPolicy
from resources.providers.truelayer import (
    PROVIDER,
    TrueLayerAuth,
    TrueLayerClient,
    TrueLayerConfig,
    environment_urls,
)
from resources.vault import TokenVault


class TrueLayerResource(dg.ConfigurableResource):
    """TrueLayer Data API v1 (live, sandbox, or bankflow's simulator: only the URLs differ)."""

    # live | sandbox | base URL of a TrueLayer-compatible server (e.g. bankflow's simulator).
    environment: str = "live"
    # Explicit hosts win over `environment` when set.
    auth_url: str = ""
    api_url: str = ""
    client_id: str
    client_secret: str = Field(repr=False)
    redirect_uri: str = "http://127.0.0.1:8765/callback"
    connection_name: str = "truelayer"
    max_attempts: int = 5
    backoff_initial_seconds: float = 0.5
    # A bank that has not answered by then is retried (a timeout is transient).
    timeout_seconds: float = 30.0
    # Accounts read at once. TrueLayer publishes no per-client concurrency limit; its banks
    # throttle per connection, so a handful keeps well within what one user's app would do.
    max_concurrent_accounts: int = 4

    # The PSU's IP, only for runs a user starts and watches: X-PSU-IP marks a call as
    # user-present, which banks do not count against the unattended quota. Never for schedules.
    psu_ip: str = ""

    def config(self) -> TrueLayerConfig:
        auth_url, api_url = environment_urls(self.environment)
        return TrueLayerConfig(
            auth_url=self.auth_url or auth_url,
            api_url=self.api_url or api_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            redirect_uri=self.redirect_uri,
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, backoff_initial=self.backoff_initial_seconds)

    def auth(self) -> TrueLayerAuth:
        return TrueLayerAuth(self.config(), retry=self.retry_policy())

    def open_client(self, vault: TokenVault) -> TrueLayerClient:
        """A data client with a fresh access token, refreshed again if the bank rejects it mid-run."""
        tokens = vault.load(self.connection_name)
        if tokens is None:
            raise AuthorizationRequired(PROVIDER, f"no connection named {self.connection_name!r} yet")
        auth = self.auth()
        consent = consent_status(auth.consent_expires_at(tokens))
        if consent.state == "expired":
            raise AuthorizationRequired(PROVIDER, consent.message)

        def refresh() -> str:
            # TrueLayer rotates the refresh token: save the new set before any data call uses it.
            refreshed = auth.refresh(vault.load(self.connection_name) or tokens)
            vault.save(self.connection_name, PROVIDER, refreshed, auth.consent_expires_at(refreshed))
            return refreshed["access_token"]

        return TrueLayerClient(
            auth.config.api_url,
            refresh(),
            refresh=refresh,
            psu_ip=self.psu_ip or None,
            retry=self.retry_policy(),
            timeout=self.timeout_seconds,
            concurrency=self.max_concurrent_accounts,
        )
