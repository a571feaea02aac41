"""End to end: sandbox TrueLayer over HTTP -> raw -> dbt -> marts -> checks, in real Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from pipeline_runs import (
    decimal_sum,
    fct_snapshot,
    fetched_days,
    raw_snapshot,
    rows,
    run_window,
    scalar,
    world_booked,
)

from pipelines.transform.project import DBT_PROJECT_DIR
from sandbox.server import Sandbox

WINDOW_DAYS = 14


@dataclass(frozen=True)
class Backfill:
    first: date
    last: date
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def backfill(definitions: dg.Definitions) -> Backfill:
    today = datetime.now(UTC).date()
    first = today - timedelta(days=WINDOW_DAYS - 1)
    return Backfill(first, today, run_window(definitions, first, today))


def test_backfill_succeeds_with_every_check_passing(backfill: Backfill) -> None:
    assert backfill.result.success
    evaluations = backfill.result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} >= {
        "gx_fct_transactions",
        "unique_fct_transactions_transaction_key",
    }
    assert [e.check_name for e in evaluations if not e.passed] == []


def test_row_counts_per_layer_equal_the_world(
    backfill: Backfill, sandbox: Sandbox, database_url: str
) -> None:
    start, end = fetched_days(backfill.first, backfill.last)
    booked = world_booked(sandbox, start, end)
    expected_booked = sum(len(txns) for txns in booked.values())
    expected_pending = sum(len(sandbox.world.pending(account_id)) for account_id in booked)
    assert expected_booked > 100  # the world is busy enough for the comparison to mean something

    window = (start.isoformat(), end.isoformat())
    assert (
        scalar(
            database_url,
            "select count(*) from raw.truelayer_transactions where partition_key >= %s and partition_key < %s",
            window,
        )
        == expected_booked
    )
    assert (
        scalar(
            database_url,
            "select count(*) from staging.stg_truelayer__transactions where booking_date >= %s and booking_date < %s",
            (start, end),
        )
        == expected_booked
    )
    assert scalar(database_url, "select count(*) from raw.truelayer_pending_transactions") == expected_pending
    counts = dict(
        rows(
            database_url,
            "select status, count(*) from marts.fct_transactions where source = 'truelayer'"
            " and (status = 'pending' or (booking_date >= %s and booking_date < %s)) group by status",
            (start, end),
        )
    )
    assert counts == (
        {"booked": expected_booked, "pending": expected_pending}
        if expected_pending
        else {"booked": expected_booked}
    )
    assert scalar(
        database_url, "select count(*) from marts.dim_accounts where sources like %s", ("%truelayer%",)
    ) == len(booked)


def test_amounts_are_exact_per_account(backfill: Backfill, sandbox: Sandbox, database_url: str) -> None:
    start, end = fetched_days(backfill.first, backfill.last)
    booked = {
        a.iban: sandbox.world.booked(a.account_id, start, end)
        for a in sandbox.world.accounts_for("truelayer")
    }
    expected = {iban: decimal_sum([t.amount for t in txns]) for iban, txns in booked.items() if txns}
    actual = dict(
        rows(
            database_url,
            "select a.iban, sum(t.amount) from marts.fct_transactions t join marts.dim_accounts a using (account_key)"
            " where t.source = 'truelayer' and t.status = 'booked' and t.booking_date >= %s and t.booking_date < %s"
            " group by a.iban",
            (start, end),
        )
    )
    assert actual == expected
    assert all(isinstance(v, Decimal) for v in actual.values())
    column_type = scalar(
        database_url,
        "select data_type from information_schema.columns"
        " where table_schema = 'marts' and table_name = 'fct_transactions' and column_name = 'amount'",
    )
    assert column_type == "numeric"


def test_unstable_transaction_ids_do_not_duplicate(
    backfill: Backfill, definitions: dg.Definitions, database_url: str
) -> None:
    # One bank in the sandbox issues a new transaction_id on every pull (as the contract warns).
    day = backfill.last - timedelta(days=2)
    before = fct_snapshot(database_url)
    assert run_window(definitions, day, day).success
    assert fct_snapshot(database_url) == before


def test_rerunning_a_partition_gives_the_same_tables(
    backfill: Backfill, definitions: dg.Definitions, database_url: str
) -> None:
    day = backfill.first + timedelta(days=5)
    raw_before, fct_before = raw_snapshot(database_url), fct_snapshot(database_url)
    first = run_window(definitions, day, day)
    second = run_window(definitions, day, day)
    assert first.success and second.success
    assert raw_snapshot(database_url) == raw_before
    assert fct_snapshot(database_url) == fct_before
    landed = second.asset_materializations_for_node("raw_truelayer")
    metadata = {m.asset_key.to_user_string(): m.metadata for m in landed}
    assert (
        metadata["raw_truelayer_transactions"]["rows_landed"].value
        == metadata["raw_truelayer_transactions"]["rows_replaced"].value
    )


def test_materialization_metadata_explains_the_load(backfill: Backfill) -> None:
    materializations = {
        m.asset_key.to_user_string(): m.metadata
        for m in backfill.result.asset_materializations_for_node("raw_truelayer")
    }
    transactions = materializations["raw_truelayer_transactions"]
    first_fetched = backfill.first - timedelta(days=3)
    assert transactions["window_fetched"].value == f"{first_fetched} .. {backfill.last}"
    assert transactions["accounts"].value == 8
    assert transactions["rows_landed"].value > 0
    assert "| date | description | amount | currency |" in transactions["preview"].value


def test_no_secret_reaches_the_event_log(
    backfill: Backfill, truelayer, database_url: str, secret_key: str
) -> None:
    from resources.vault import TokenVault

    tokens = TokenVault(database_url, secret_key).load(truelayer.connection_name)
    event_text = "\n".join(str(event) for event in backfill.result.all_events)
    for secret in (truelayer.client_secret, tokens["access_token"], tokens["refresh_token"], secret_key):
        assert secret not in event_text
    stored = scalar(
        database_url,
        "select encrypted_tokens from ops.connections where connection_name = %s",
        ("truelayer",),
    )
    assert tokens["refresh_token"].encode() not in bytes(stored)


def test_full_refresh_equals_incremental(backfill: Backfill, warehouse, database_url: str) -> None:
    incremental = fct_snapshot(database_url)
    dbt = str(Path(sys.executable).parent / "dbt")
    args = ["build", "--full-refresh", "--select", "fct_transactions", "--profiles-dir", str(DBT_PROJECT_DIR)]
    completed = subprocess.run(
        [dbt, *args, "--target-path", "target/full_refresh_test"],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **warehouse.dbt_env()},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-2000:]
    assert fct_snapshot(database_url) == incremental
