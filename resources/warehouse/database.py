"""Which Postgres bankflow talks to, and the schemas it owns there.

`raw` and `ops` belong to the project and are created here; dbt owns `staging`,
`intermediate` and `marts`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from resources.call_budget import CALL_BUDGET_DDL
from resources.categories import CATEGORY_OVERRIDES_DDL, CATEGORY_PREDICTIONS_DDL
from resources.files.ledger import FILE_LEDGER_DDL
from resources.owners import OWNERS_DDL
from resources.recon import RECON_DDL
from resources.recon_refetch import REFETCH_DDL
from resources.warehouse.embedded import start_embedded_postgres
from resources.warehouse.loader import raw_table_ddl
from resources.warehouse.owner_access import ROW_SECURITY_DDL
from resources.warehouse.quarantine import QUARANTINE_DDL
from resources.warehouse.raw_tables import all_raw_tables

DEFAULT_DATABASE = "bankflow"
PROJECT_SCHEMAS = ("raw", "ops")

OPS_DDL = """
create table if not exists ops.connections (
    connection_name text primary key,
    provider text not null,
    -- Fernet ciphertext of the token set; never plaintext.
    encrypted_tokens bytea not null,
    consent_expires_at timestamptz,
    updated_at timestamptz not null default now()
);
"""


@dataclass(frozen=True)
class DatabaseTarget:
    """Where the warehouse is: a libpq URL and whether bankflow runs the server itself."""

    url: str
    embedded: bool


def resolve_database(database_url: str | None, home: Path) -> DatabaseTarget:
    """The configured server when a URL is given, else the embedded one with a `bankflow` database."""
    if database_url:
        return DatabaseTarget(url=database_url, embedded=False)
    server_url = start_embedded_postgres(home)
    ensure_database(server_url, DEFAULT_DATABASE)
    return DatabaseTarget(url=with_database(server_url, DEFAULT_DATABASE), embedded=True)


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials as `url`, another database (as a URI)."""
    return libpq_url({**libpq_params(url), "dbname": dbname})


def libpq_url(params: dict[str, str], scheme: str = "postgresql") -> str:
    """Render connection parameters as a URI; a socket directory goes in the `host` query."""
    userinfo = quote(params["user"], safe="")
    if params.get("password"):
        userinfo += ":" + quote(params["password"], safe="")
    dbname = quote(params["dbname"], safe="")
    if params["host"].startswith("/"):
        query = urlencode({"host": params["host"], "port": params["port"]})
        return f"{scheme}://{userinfo}@/{dbname}?{query}"
    return f"{scheme}://{userinfo}@{params['host']}:{params['port']}/{dbname}"


def ensure_database(url: str, dbname: str) -> None:
    """Create database `dbname` on the server of `url` unless it exists."""
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))


def drop_database(url: str, dbname: str) -> None:
    """Drop database `dbname` on the server of `url` if it exists, closing its sessions."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))


@contextmanager
def scratch_database(server_url: str, dbname: str, *, keep: bool = False) -> Iterator[str]:
    """A new, bootstrapped database `dbname` on the server of `server_url` (any left from an
    earlier run is dropped first) for the block; its URL. Dropped afterwards unless `keep`."""
    drop_database(server_url, dbname)
    ensure_database(server_url, dbname)
    url = with_database(server_url, dbname)
    try:
        bootstrap_schemas(url)
        yield url
    finally:
        if not keep:
            drop_database(server_url, dbname)


def bootstrap_schemas(url: str) -> None:
    """Create the project's own schemas and `ops` tables; safe to run any number of times."""
    with psycopg.connect(url) as conn:
        # Two processes bootstrapping at once (webserver + run worker) must not race on DDL.
        conn.execute("select pg_advisory_xact_lock(hashtext('bankflow.bootstrap'))")
        for schema in PROJECT_SCHEMAS:
            conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        conn.execute(OPS_DDL)
        conn.execute(OWNERS_DDL)
        conn.execute(ROW_SECURITY_DDL)
        conn.execute(QUARANTINE_DDL)
        conn.execute(CALL_BUDGET_DDL)
        conn.execute(FILE_LEDGER_DDL)
        conn.execute(CATEGORY_OVERRIDES_DDL)
        conn.execute(CATEGORY_PREDICTIONS_DDL)
        conn.execute(RECON_DDL)
        conn.execute(REFETCH_DDL)
        for table in all_raw_tables():
            conn.execute(raw_table_ddl(table))


def libpq_params(url: str) -> dict[str, str]:
    """Split a libpq URL into host/port/user/password/dbname (for dbt's profile)."""
    params = conninfo_to_dict(url)
    return {
        "host": str(params.get("host") or "127.0.0.1"),
        "port": str(params.get("port") or "5432"),
        "user": str(params.get("user") or "postgres"),
        "password": str(params.get("password") or ""),
        "dbname": str(params.get("dbname") or DEFAULT_DATABASE),
    }


# dbt's sessions run without JIT compilation. A day's run is many queries over a few thousand
# rows, but their estimates (temp tables, views over unions) pass Postgres's JIT cost thresholds,
# and compiling one cost 3-6 s against milliseconds of execution: 16 s of a 42 s day's run at 1M rows
# (auto_explain, docs/benchmarks.md). libpq reads PGOPTIONS; dbt-postgres sets no options of its own.
DBT_SESSION_OPTIONS = "-c jit=off"


def dbt_env(url: str) -> dict[str, str]:
    """The environment dbt's profiles.yml reads its connection from (BANKFLOW_DBT_*), and its
    session settings (PGOPTIONS, after any the user has set)."""
    env = {f"BANKFLOW_DBT_{name.upper()}": value for name, value in libpq_params(url).items()}
    env["PGOPTIONS"] = f"{os.environ.get('PGOPTIONS', '')} {DBT_SESSION_OPTIONS}".strip()
    return env


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set `values` in os.environ for the block (dbt runs as a subprocess that inherits it), then
    restore what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dbt_connection(url: str) -> AbstractContextManager[None]:
    """Point dbt (a subprocess that inherits os.environ) at `url` for the block, then restore."""
    return environment(dbt_env(url))


def sqlalchemy_url(url: str, driver: str = "psycopg") -> str:
    """The libpq URL as a SQLAlchemy URL (psycopg 3 for GX, psycopg2 for dagster-postgres)."""
    return libpq_url(libpq_params(url), scheme=f"postgresql+{driver}")
