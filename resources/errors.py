"""Failure kinds every connector raises, so orchestration can treat each the same way.

Messages name the provider and what to do, and never carry tokens, secrets or bodies that may.
"""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call failed."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


class AuthorizationRequired(ProviderError):
    """Needs a person: consent expired or revoked, credentials rejected.

    `fix` says what that person does; by default, reconnect (sources with fixed API keys and
    no consent name the settings to correct instead)."""

    def __init__(self, provider: str, message: str, fix: str | None = None) -> None:
        self.fix = fix or f"Reconnect with: bankflow connect {provider}"
        super().__init__(provider, f"{message}. {self.fix}")


class TransientProviderError(ProviderError):
    """Worth retrying: 429, 5xx, timeouts, dropped connections."""

    def __init__(self, provider: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(provider, message)
        self.retry_after = retry_after


class ProviderResponseError(ProviderError):
    """The provider answered, but not with something we can use (bad status, malformed body)."""


class AccessTokenRejected(AuthorizationRequired):
    """The bank refused the access token on a data call (expired early, rotated elsewhere).

    A client with a way to re-authorise (refresh grant, client credentials) tries that once;
    if the new token is refused too, a person has to reconnect.
    """
