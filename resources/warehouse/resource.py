"""The warehouse as a Dagster resource: where Postgres is, connections, the token vault."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg
from pydantic import Field, PrivateAttr

from resources.vault import TokenVault
from resources.warehouse.database import DatabaseTarget, bootstrap_schemas, dbt_env, resolve_database


class WarehouseResource(dg.ConfigurableResource):
    """Postgres for raw, ops and the dbt schemas.

    `database_url` empty means the embedded server under `home`, started on first use.
    """

    # The URL may carry a password: kept out of reprs like the key.
    database_url: str | None = Field(default=None, repr=False)
    home: str = ".bankflow"
    secret_key: str | None = Field(default=None, repr=False)

    _target: DatabaseTarget | None = PrivateAttr(default=None)

    def target(self) -> DatabaseTarget:
        if self._target is None:
            self._target = resolve_database(self.database_url or None, Path(self.home))
            bootstrap_schemas(self._target.url)
        return self._target

    @property
    def url(self) -> str:
        return self.target().url

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.url) as conn:
            yield conn

    def vault(self) -> TokenVault:
        return TokenVault(self.url, self.secret_key or "")

    def dbt_env(self) -> dict[str, str]:
        """The environment dbt's profiles.yml reads its connection from."""
        return dbt_env(self.url)
