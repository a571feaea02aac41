"""Consent expiry is visible (warning before, error after) and `bankflow connections` lists it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from bankflow_cli.main import app
from resources.connections import consent_status, list_connections
from resources.vault import TokenVault

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_consent_states() -> None:
    assert consent_status(NOW + timedelta(days=30), NOW, warn_days=7).state == "ok"
    expiring = consent_status(NOW + timedelta(days=3, hours=1), NOW, warn_days=7)
    assert (expiring.state, expiring.days_left) == ("expiring", 3)
    assert consent_status(NOW - timedelta(minutes=1), NOW).state == "expired"
    assert consent_status(None, NOW).state == "unknown"


def test_connections_are_listed_with_expiry(database_url: str, secret_key: str, monkeypatch) -> None:
    vault = TokenVault(database_url, secret_key)
    vault.save("listed-gc", "gocardless", {"access": "x"}, datetime.now(UTC) + timedelta(days=2))
    summary = next(c for c in list_connections(database_url) if c.name == "listed-gc")
    assert summary.consent.state == "expiring"
    assert summary.daily_limit_per_account == 4

    monkeypatch.setenv("BANKFLOW_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["connections"])
    assert result.exit_code == 0, result.output
    assert "listed-gc" in result.output and "expires in" in result.output
