"""GoCardless Bank Account Data as a Dagster resource: configuration from the environment,
tokens and the requisition from the vault, the per-account call budget in `ops.call_budget`."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from resources.call_budget import CallBudget
from resources.errors import AuthorizationRequired
from resources.http import RetryPolicy
from resources.providers.gocardless import (
    ACCESS_SCOPE,
    CALLS_PER_DAY,
    DEFAULT_BASE_URL,
    PROVIDER,
    GoCardlessClient,
    GoCardlessConfig,
    PendingConnection,
    finish_connection,
    start_connection,
)
from resources.rate_limit import RateLimiter
from resources.vault import TokenVault

# The 100-a-minute limit is on /accounts/{id}/... (institutions and requisitions have their own,
# higher ones).
ACCOUNT_PATHS = r"^/accounts/"


class GoCardlessResource(dg.ConfigurableResource):
    """GoCardless Bank Account Data API v2 (live, or bankflow's simulator: only the URL differs)."""

    base_url: str = DEFAULT_BASE_URL
    secret_id: str
    secret_key: str = Field(repr=False)
    connection_name: str = PROVIDER
    max_attempts: int = 5
    backoff_initial_seconds: float = 0.5
    timeout_seconds: float = 30.0
    # GoCardless allows 4 successful calls per account, access scope and day (contract §8).
    calls_per_day: int = CALLS_PER_DAY
    # Accounts read at once (the daily limits are per account, so this spends no extra call).
    max_concurrent_accounts: int = 4
    # GoCardless allows 100 requests a minute per company on account endpoints (contract §8);
    # paced here rather than met with 429s. 0 lifts it (a simulator with no such limit).
    requests_per_minute: int = 100

    def config(self) -> GoCardlessConfig:
        return GoCardlessConfig(base_url=self.base_url, secret_id=self.secret_id, secret_key=self.secret_key)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, backoff_initial=self.backoff_initial_seconds)

    def budget(self, database_url: str) -> CallBudget:
        return CallBudget(database_url, self.connection_name, self.calls_per_day)

    def open_client(self, vault: TokenVault) -> GoCardlessClient:
        """A client with the vault's tokens (if any); every renewed token set is saved back at once,
        keeping the connection's requisition and consent expiry beside it."""
        stored = vault.load(self.connection_name) or {}

        def save(tokens: dict[str, Any]) -> None:
            current = vault.load(self.connection_name) or {}
            vault.save(self.connection_name, PROVIDER, {**current, **tokens})

        return GoCardlessClient(
            self.config(),
            stored,
            on_tokens=save,
            retry=self.retry_policy(),
            timeout=self.timeout_seconds,
            concurrency=self.max_concurrent_accounts,
            rate_limiter=RateLimiter.per_minute(self.requests_per_minute, paths=ACCOUNT_PATHS),
        )

    def requisitions(self, vault: TokenVault) -> list[dict[str, Any]]:
        """The linked requisitions, one per institution (requisition_id, account_ids,
        max_historical_days, consent_expires_at)."""
        stored = vault.load(self.connection_name) or {}
        requisitions = stored.get("requisitions") or []
        if not requisitions:
            raise AuthorizationRequired(
                PROVIDER, f"no bank linked in connection {self.connection_name!r} yet"
            )
        return list(requisitions)

    def calls_left_today(self, vault: TokenVault, database_url: str) -> dict[str, dict[str, int]]:
        """For `bankflow connections`: account id -> access scope -> successful calls left today,
        from our own count in ops.call_budget (asking GoCardless would need an account call)."""
        budget = self.budget(database_url)
        stored = vault.load(self.connection_name) or {}
        accounts = [a for r in stored.get("requisitions") or [] for a in r.get("account_ids") or []]
        return {a: {scope: budget.remaining(a, scope) for scope in ACCESS_SCOPE} for a in accounts}

    def start_connection(
        self, vault: TokenVault, institution_id: str, redirect: str, **options: Any
    ) -> PendingConnection:
        with self.open_client(vault) as client:
            return start_connection(
                institution_id,
                redirect,
                client=client,
                vault=vault,
                connection_name=self.connection_name,
                **options,
            )

    def finish_connection(self, vault: TokenVault, requisition_id: str) -> dict[str, Any]:
        with self.open_client(vault) as client:
            return finish_connection(
                requisition_id, client=client, vault=vault, connection_name=self.connection_name
            )
