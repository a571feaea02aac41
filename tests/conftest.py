"""Real parts for every test: Postgres (embedded, or BANKFLOW_DATABASE_URL), the sandbox banks
over HTTP on 127.0.0.1, dbt against that Postgres, Dagster in-process."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster_dbt import DbtCliResource
from psycopg import sql

from bankflow_cli.connect import connect_truelayer
from bankflow_cli.demo import scripted_user
from pipelines.definitions import build_definitions
from pipelines.transform.project import dbt_project
from resources.providers.truelayer_resource import TrueLayerResource
from resources.vault import TokenVault, generate_secret_key
from resources.warehouse.database import bootstrap_schemas, with_database
from resources.warehouse.embedded import start_embedded_postgres
from resources.warehouse.resource import WarehouseResource
from sandbox.server import Sandbox

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEST_DATABASE = "bankflow_test"
BANKFLOW_SCHEMAS = ("raw", "ops", "staging", "intermediate", "marts")
SANDBOX_SEED = 7

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def server_url() -> str:
    """The Postgres server under test: BANKFLOW_DATABASE_URL if set, else the embedded one."""
    return os.environ.get("BANKFLOW_DATABASE_URL") or start_embedded_postgres(PROJECT_ROOT / ".bankflow")


@pytest.fixture(scope="session")
def database_url(server_url: str) -> str:
    """A clean bankflow database: on the embedded server a fresh `bankflow_test` database, on a
    configured server its database with the bankflow schemas dropped and re-created."""
    if os.environ.get("BANKFLOW_DATABASE_URL"):
        url = server_url
        with psycopg.connect(url, autocommit=True) as conn:
            for schema in BANKFLOW_SCHEMAS:
                conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
    else:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(TEST_DATABASE))
            )
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(TEST_DATABASE)))
        url = with_database(server_url, TEST_DATABASE)
    bootstrap_schemas(url)
    return url


@pytest.fixture(scope="session")
def secret_key() -> str:
    return generate_secret_key()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=SANDBOX_SEED) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_fault_left(sandbox: Sandbox) -> Iterator[None]:
    yield
    for state in sandbox.states.values():
        state.clear_fault()


@pytest.fixture(scope="session")
def warehouse(database_url: str, secret_key: str) -> WarehouseResource:
    return WarehouseResource(
        database_url=database_url, home=str(PROJECT_ROOT / ".bankflow"), secret_key=secret_key
    )


@pytest.fixture(scope="session")
def truelayer(sandbox: Sandbox) -> TrueLayerResource:
    return TrueLayerResource(
        auth_url=sandbox.truelayer_url,
        api_url=sandbox.truelayer_api_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        max_attempts=2,
        backoff_initial_seconds=0.01,
    )


@pytest.fixture(scope="session")
def connected_truelayer(
    truelayer: TrueLayerResource, database_url: str, secret_key: str
) -> TrueLayerResource:
    """TrueLayer connected through the real consent flow (callback server, state, PKCE); a
    scripted user approves on the sandbox's page."""
    config = replace(truelayer.config(), redirect_uri="http://127.0.0.1:0/callback")
    connect_truelayer(
        config, TokenVault(database_url, secret_key), truelayer.connection_name, scripted_user, timeout=30
    )
    return truelayer


@pytest.fixture(scope="session")
def definitions(warehouse: WarehouseResource, connected_truelayer: TrueLayerResource) -> dg.Definitions:
    dbt = DbtCliResource(project_dir=dbt_project(), dbt_executable=str(Path(sys.executable).parent / "dbt"))
    return build_definitions({"warehouse": warehouse, "truelayer": connected_truelayer, "dbt": dbt})
