"""Running the daily pipeline in-process, and reading what it left in Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import psycopg
from psycopg import sql

from pipelines.partitions import LOOKBACK_DAYS
from resources.warehouse.resource import WarehouseResource
from sandbox.server import Sandbox

# dbt build without tests: models and the seeds they join (FX rates), which `dbt run` would not load.
MODELS_AND_SEEDS_ONLY = ("--exclude", "resource_type:test", "resource_type:unit_test")


def run_window(
    definitions: dg.Definitions, first: date, last: date, only: str | None = None
) -> dg.ExecuteInProcessResult:
    """One run over the partitions first..last (a single-run backfill); `only`: just the assets
    whose names start with it (one source's extract, without the dbt models after it)."""
    job = definitions.resolve_job_def("daily_pipeline")
    selection = None
    if only is not None:
        selection = [key for key in job.asset_layer.executable_asset_keys if key.path[-1].startswith(only)]
        assert selection, only
    return job.execute_in_process(
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        raise_on_error=False,
        asset_selection=selection,
    )


DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"


def run_dbt(warehouse: WarehouseResource, target: str, *args: str) -> str:
    """A dbt command on the test warehouse, in its own target folder (`target/<target>`); its output.
    Fails the test, with dbt's last output, when dbt does."""
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *args, "--profiles-dir", str(DBT_PROJECT_DIR)]
        + ["--target-path", f"target/{target}"],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **warehouse.dbt_env()},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-4000:]
    return completed.stdout


def fetched_days(first: date, last: date) -> tuple[date, date]:
    """The half-open range of booking days a run over first..last fetches (lookback included)."""
    return first - timedelta(days=LOOKBACK_DAYS), last + timedelta(days=1)


def world_booked(sandbox: Sandbox, start: date, end: date, cards: bool | None = None) -> dict[str, list]:
    """The world's booked rows per TrueLayer account (cards: None both, False accounts, True cards)."""
    accounts = sandbox.world.accounts_for("truelayer", cards=cards)
    return {a.account_id: sandbox.world.booked(a.account_id, start, end) for a in accounts}


def rows(database_url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchall()


def scalar(database_url: str, query: str, params: tuple = ()) -> object:
    return rows(database_url, query, params)[0][0]


def count_rows(database_url: str, schema: str, table: str, where: str = "true", params: tuple = ()) -> int:
    """Rows of schema.table matching `where` (a fixed SQL condition with %s placeholders)."""
    query = sql.SQL("select count(*) from {} where ").format(sql.Identifier(schema, table)) + sql.SQL(where)
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchone()[0]


def fct_snapshot(database_url: str) -> list[tuple]:
    return rows(
        database_url,
        "select transaction_key, account_key, status, booking_date, amount, currency, description, raw_record_key"
        " from marts.fct_transactions order by transaction_key",
    )


def raw_snapshot(database_url: str, table: str = "truelayer_transactions") -> list[tuple]:
    # transaction_id changes on every pull for some banks (contract §3); identity is record_key.
    return rows(
        database_url,
        f"select account_ref, partition_key, record_key, payload - 'transaction_id' from raw.{table}"  # noqa: S608
        " order by account_ref, record_key",
    )


def decimal_sum(values: list[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


def forget_staged(conn: psycopg.Connection, model: str, condition: str = "true", params: tuple = ()) -> None:
    """Delete rows of an incremental staging table whose raw rows a test deleted behind the loader's
    back (a clean slate): no dbt run restages partitions nobody reloaded, so the table would keep them."""
    if conn.execute("select to_regclass(%s)", (f"staging.{model}",)).fetchone()[0] is not None:
        conn.execute(
            sql.SQL("delete from staging.{} where {}").format(sql.Identifier(model), sql.SQL(condition)),
            params,
        )


def clear_statement_files(database_url: str) -> None:
    """Forget every statement file landed on this database (its raw rows, the file ledger, its staged
    rows and quarantined files): a worker's modules share one database, and one module's files
    would be rows of another's marts."""
    with psycopg.connect(database_url) as conn:
        conn.execute("truncate raw.file_entries, raw.file_statements, ops.file_ledger")
        forget_staged(conn, "stg_files__transactions")
        conn.execute("delete from ops.quarantine where entity = 'file' or file_id is not null")
