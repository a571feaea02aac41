"""Fibank e-banking as a Dagster resource: the user's own login from the environment."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from resources.http import RetryPolicy
from resources.providers.fibank import FibankClient, FibankConfig


class FibankResource(dg.ConfigurableResource):
    """Fibank retail e-banking (my.fibank.bg, or bankflow's simulator: only the URL differs).

    There is no consent to keep: every run signs in with the e-banking username and password
    and holds the session token in memory only.
    """

    base_url: str = "https://my.fibank.bg"
    username: str = Field(repr=False)
    password: str = Field(repr=False)
    device_id: str = "bankflow"
    max_attempts: int = 5
    backoff_initial_seconds: float = 0.5
    timeout_seconds: float = 30.0
    # A retail web app, not an API for machines: read few accounts at once and pace the calls
    # like a person clicking through statements would, well under any abuse threshold.
    max_concurrent_accounts: int = 2
    requests_per_minute: int = 30

    def config(self) -> FibankConfig:
        return FibankConfig(
            base_url=self.base_url, username=self.username, password=self.password, device_id=self.device_id
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, backoff_initial=self.backoff_initial_seconds)

    def open_client(self) -> FibankClient:
        """A signed-in client: a refused login fails here, before any statement is read."""
        client = FibankClient(
            self.config(),
            retry=self.retry_policy(),
            timeout=self.timeout_seconds,
            concurrency=self.max_concurrent_accounts,
            requests_per_minute=self.requests_per_minute,
        )
        try:
            return client.open()
        except BaseException:
            client.close()
            raise
