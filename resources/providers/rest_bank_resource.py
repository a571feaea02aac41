"""Declarative REST banks as one Dagster resource: the HTTP settings they share.

Each bank's own settings are its YAML file (rest_bank_config); its secrets are the environment
variables that file names, read when a run opens the bank's client, never stored in a config.
"""

from __future__ import annotations

import dagster as dg

from resources.http import RetryPolicy
from resources.providers.rest_bank import RestBankClient, RestCredentials
from resources.providers.rest_bank_config import RestBank


class RestBanksResource(dg.ConfigurableResource):
    """Retries and timeouts for every bank defined in `connectors/rest/*.yaml`."""

    max_attempts: int = 5
    backoff_initial_seconds: float = 0.5
    retry_after_max_seconds: float = 120.0
    timeout_seconds: float = 30.0

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            backoff_initial=self.backoff_initial_seconds,
            retry_after_max=self.retry_after_max_seconds,
        )

    def open_client(self, bank: RestBank) -> RestBankClient:
        """A client on the bank's base URL (or its base_url_env override) with the secrets its
        file names; a missing variable stops the bank with that variable's name."""
        return RestBankClient(
            bank, RestCredentials.from_env(bank), retry=self.retry_policy(), timeout=self.timeout_seconds
        )
