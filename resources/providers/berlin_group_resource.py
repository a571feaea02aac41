"""A Berlin Group NextGenPSD2 bank as a Dagster resource: configuration from the environment,
tokens and consent from the vault, the call budget in ops.call_budget."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from resources.call_budget import CallBudget
from resources.errors import AuthorizationRequired
from resources.http import RetryPolicy
from resources.providers.berlin_group import (
    PROVIDER,
    BerlinGroupAuth,
    BerlinGroupClient,
    BerlinGroupConfig,
    consent_expires_at,
)
from resources.vault import TokenVault


class BerlinGroupResource(dg.ConfigurableResource):
    """One Berlin Group bank (Banca Transilvania by default config; any BG bank by its URLs)."""

    base_url: str
    token_url: str
    client_id: str
    client_secret: str = Field(repr=False)
    consent_path: str = "/v1/consents"
    # Empty: taken from the consent's scaOAuth (well-known metadata) or scaRedirect link.
    authorize_url: str = ""
    pkce: bool = True
    redirect_uri: str = "http://127.0.0.1:3000/callback"
    tpp_ip_address: str = "127.0.0.1"
    frequency_per_day: int = 4
    consent_days: int = 180
    connection_name: str = PROVIDER
    max_attempts: int = 5
    backoff_initial_seconds: float = 0.5
    timeout_seconds: float = 30.0
    # Accounts read at once; every limit the bank states (frequencyPerDay) is per account.
    max_concurrent_accounts: int = 4

    def config(self) -> BerlinGroupConfig:
        return BerlinGroupConfig(
            base_url=self.base_url,
            token_url=self.token_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            consent_path=self.consent_path,
            authorize_url=self.authorize_url,
            pkce=self.pkce,
            redirect_uri=self.redirect_uri,
            tpp_ip_address=self.tpp_ip_address,
            frequency_per_day=self.frequency_per_day,
            consent_days=self.consent_days,
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, backoff_initial=self.backoff_initial_seconds)

    def auth(self) -> BerlinGroupAuth:
        return BerlinGroupAuth(self.config(), retry=self.retry_policy())

    def call_budget(self, database_url: str) -> CallBudget:
        # Keyed by connection name, so two connections to one bank keep their own ledgers.
        return CallBudget(database_url, self.connection_name, self.frequency_per_day)

    def open_client(self, vault: TokenVault) -> BerlinGroupClient:
        """A data client under the stored consent; refreshed tokens are saved before they are used."""
        tokens = vault.load(self.connection_name)
        if tokens is None or not tokens.get("consent_id"):
            raise AuthorizationRequired(PROVIDER, f"no connection named {self.connection_name!r} yet")
        expires = consent_expires_at(tokens)
        if expires is not None and expires <= datetime.now(UTC):
            raise AuthorizationRequired(PROVIDER, f"the consent expired on {tokens['consent_valid_until']}")
        auth = self.auth()
        current = dict(tokens)

        def refresh() -> str:
            nonlocal current
            current = auth.refresh(current)
            # Save first: a rotated refresh token is already spent at the bank.
            vault.save(self.connection_name, PROVIDER, current, consent_expires_at(current))
            return current["access_token"]

        # Refresh only when needed: each refresh may rotate the refresh token, and a consent that
        # lapsed is better reported by the data call (CONSENT_EXPIRED) than by the token endpoint.
        access_token = current["access_token"] if _still_valid(current) else refresh()
        return BerlinGroupClient(
            self.base_url,
            access_token,
            current["consent_id"],
            refresh=refresh,
            retry=self.retry_policy(),
            timeout=self.timeout_seconds,
            concurrency=self.max_concurrent_accounts,
        )


# A token this close to its expiry is refreshed before the run rather than in the middle of it.
TOKEN_MARGIN = timedelta(seconds=120)


def _still_valid(tokens: Mapping[str, Any]) -> bool:
    obtained, lifetime = tokens.get("obtained_at"), tokens.get("expires_in")
    if not isinstance(obtained, str) or not isinstance(lifetime, int) or not tokens.get("access_token"):
        return False
    expires = datetime.fromisoformat(obtained) + timedelta(seconds=lifetime)
    return expires - TOKEN_MARGIN > datetime.now(UTC)
