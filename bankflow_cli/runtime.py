"""Everything a bankflow process needs before Dagster code loads: the warehouse, the Dagster
instance database, and the environment the code location reads."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from resources.settings import Settings, environment
from resources.vault import generate_secret_key
from resources.warehouse.bi_access import ensure_bi_reader
from resources.warehouse.database import (
    bootstrap_schemas,
    ensure_database,
    libpq_params,
    resolve_database,
    sqlalchemy_url,
    with_database,
)
from resources.warehouse.owner_access import ensure_owner_reader, owner_passwords

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Runtime:
    database_url: str
    dagster_database_url: str
    embedded: bool
    home: Path


def prepare_runtime(settings: Settings) -> Runtime:
    """Start or reach Postgres, create the project schemas and the Dagster database, and export
    the environment (BANKFLOW_DATABASE_URL, BANKFLOW_DAGSTER_DATABASE_URL, DAGSTER_HOME) that
    Dagster processes started from here inherit."""
    home = (PROJECT_ROOT / settings.home).resolve() if not settings.home.is_absolute() else settings.home
    target = resolve_database(
        settings.database_url.get_secret_value() if settings.database_url else None, home
    )
    bootstrap_schemas(target.url)
    if settings.bi_password:
        ensure_bi_reader(target.url, settings.bi_password.get_secret_value(), settings.bi_role)
    for owner, password in owner_passwords(environment()).items():
        ensure_owner_reader(target.url, owner, password)
    if settings.dagster_database_url:
        # Either a libpq URL or the SQLAlchemy form this function exports (postgresql+psycopg2://):
        # a second call in one process reads back what the first one set.
        dagster_url = re.sub(
            r"^postgresql\+\w+://", "postgresql://", settings.dagster_database_url.get_secret_value()
        )
    else:
        # Named after the warehouse database, so each warehouse (a test one too) has its own.
        dagster_database = f"{libpq_params(target.url)['dbname']}_dagster"
        ensure_database(target.url, dagster_database)
        dagster_url = with_database(target.url, dagster_database)
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    _link(dagster_home / "dagster.yaml", PROJECT_ROOT / "dagster.yaml")
    os.environ.update(
        {
            "BANKFLOW_HOME": str(home),
            "BANKFLOW_DATABASE_URL": target.url,
            # dagster-postgres is written for psycopg2; SQLAlchemy 2.1 defaults to psycopg 3.
            "BANKFLOW_DAGSTER_DATABASE_URL": sqlalchemy_url(dagster_url, "psycopg2"),
            "DAGSTER_HOME": str(dagster_home),
            "GX_ANALYTICS_ENABLED": "false",
        }
    )
    return Runtime(
        database_url=target.url, dagster_database_url=dagster_url, embedded=target.embedded, home=home
    )


def ensure_secret_key(settings: Settings, env_file: Path = PROJECT_ROOT / ".env") -> bool:
    """Make sure BANKFLOW_SECRET_KEY exists; create one in `.env` (git-ignored) if not.

    Returns True when a key was created.
    """
    if settings.secret_key:
        os.environ["BANKFLOW_SECRET_KEY"] = settings.secret_key.get_secret_value()
        return False
    key = generate_secret_key()
    with env_file.open("a") as handle:
        handle.write(f"BANKFLOW_SECRET_KEY={key}\n")
    env_file.chmod(0o600)
    os.environ["BANKFLOW_SECRET_KEY"] = key
    return True


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(target)
