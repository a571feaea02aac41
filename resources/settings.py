"""Process-wide settings read from the environment and an optional `.env` file.

Dagster resources take their fields from `dg.EnvVar`; this model is for the CLI and the
warehouse bootstrap, which run before any Dagster code is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_FILE = ".env"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BANKFLOW_", env_file=ENV_FILE, extra="ignore")

    # Unset: bankflow runs its own embedded Postgres under `home`.
    database_url: SecretStr | None = None
    # Dagster's run/event storage; unset: database `<warehouse db>_dagster` on the same server.
    dagster_database_url: SecretStr | None = None
    home: Path = Path(".bankflow")
    # Fernet key that encrypts tokens at rest in `ops.connections`.
    secret_key: SecretStr | None = None
    # Set: the read-only role BI tools log in as (marts only) is created with this password.
    bi_password: SecretStr | None = None
    bi_role: str = "bankflow_bi"
    # The bearer token `bankflow serve` asks spreadsheet tools for; unset: the export is not served.
    export_token: SecretStr | None = None


def load_settings() -> Settings:
    return Settings()


def environment() -> dict[str, str]:
    """The environment as the settings see it: `.env` under the process's own variables. For
    variables whose names are data (BANKFLOW_BI_PASSWORD_<OWNER>), which no field declares."""
    from_file = {name: value for name, value in dotenv_values(ENV_FILE).items() if value is not None}
    return {**from_file, **os.environ}
