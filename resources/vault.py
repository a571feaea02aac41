"""The token vault: provider tokens encrypted at rest in `ops.connections`.

Tokens are Fernet-encrypted with the key in BANKFLOW_SECRET_KEY before they reach Postgres;
the database never holds them in plaintext, and nothing here logs or raises with them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg
from cryptography.fernet import Fernet, InvalidToken


class VaultError(Exception):
    pass


def generate_secret_key() -> str:
    return Fernet.generate_key().decode()


class TokenVault:
    def __init__(self, database_url: str, secret_key: str) -> None:
        if not secret_key:
            raise VaultError(
                "BANKFLOW_SECRET_KEY is not set: it encrypts provider tokens at rest. "
                "Create one with: bankflow secret-key >> .env"
            )
        try:
            self._fernet = Fernet(secret_key.encode())
        except ValueError:
            raise VaultError(
                "BANKFLOW_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes)"
            ) from None
        self._url = database_url

    def save(
        self,
        connection_name: str,
        provider: str,
        tokens: dict[str, Any],
        consent_expires_at: datetime | None = None,
    ) -> None:
        ciphertext = self._fernet.encrypt(json.dumps(tokens).encode())
        with psycopg.connect(self._url) as conn:
            conn.execute(
                """
                insert into ops.connections (connection_name, provider, encrypted_tokens, consent_expires_at)
                values (%s, %s, %s, %s)
                on conflict (connection_name) do update set
                    provider = excluded.provider,
                    encrypted_tokens = excluded.encrypted_tokens,
                    consent_expires_at = coalesce(excluded.consent_expires_at, ops.connections.consent_expires_at),
                    updated_at = now()
                """,
                (connection_name, provider, ciphertext, consent_expires_at),
            )

    def load(self, connection_name: str) -> dict[str, Any] | None:
        with psycopg.connect(self._url) as conn:
            row = conn.execute(
                "select encrypted_tokens from ops.connections where connection_name = %s",
                (connection_name,),
            ).fetchone()
        if row is None:
            return None
        try:
            return json.loads(self._fernet.decrypt(bytes(row[0])))
        except InvalidToken:
            raise VaultError(
                f"tokens of connection {connection_name!r} cannot be decrypted with this BANKFLOW_SECRET_KEY"
            ) from None

    def consent_expires_at(self, connection_name: str) -> datetime | None:
        """When the connection's consent ends (stored in clear beside the tokens: not a secret)."""
        with psycopg.connect(self._url) as conn:
            row = conn.execute(
                "select consent_expires_at from ops.connections where connection_name = %s",
                (connection_name,),
            ).fetchone()
        return row[0] if row else None
