"""Tokens are encrypted at rest and never leak through errors."""

from __future__ import annotations

import psycopg
import pytest

from resources.vault import TokenVault, VaultError, generate_secret_key


def test_tokens_round_trip_encrypted(database_url: str) -> None:
    vault = TokenVault(database_url, generate_secret_key())
    vault.save("vault-test", "truelayer", {"refresh_token": "rt-very-secret"})
    assert vault.load("vault-test") == {"refresh_token": "rt-very-secret"}
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "select encrypted_tokens from ops.connections where connection_name = 'vault-test'"
        ).fetchone()[0]
    assert b"rt-very-secret" not in bytes(stored)


def test_wrong_key_is_a_clear_error_without_the_token(database_url: str) -> None:
    TokenVault(database_url, generate_secret_key()).save(
        "vault-test-2", "truelayer", {"refresh_token": "rt-2"}
    )
    with pytest.raises(VaultError, match="cannot be decrypted") as error:
        TokenVault(database_url, generate_secret_key()).load("vault-test-2")
    assert "rt-2" not in str(error.value)


def test_missing_key_names_the_fix(database_url: str) -> None:
    with pytest.raises(VaultError, match="BANKFLOW_SECRET_KEY is not set"):
        TokenVault(database_url, "")
