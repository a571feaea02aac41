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
    count_rows,
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


@pytest.mark.parametrize(
    ("cards", "prefix", "staging_model"),
    [
        (False, "truelayer_", "stg_truelayer__transactions"),
        (True, "truelayer_card_", "stg_truelayer__card_transactions"),
    ],
    ids=["accounts", "cards"],
)
def test_row_counts_per_layer_equal_the_world(
    cards: bool, prefix: str, staging_model: str, backfill: Backfill, sandbox: Sandbox, database_url: str
) -> None:
    start, end = fetched_days(backfill.first, backfill.last)
    booked = world_booked(sandbox, start, end, cards=cards)
    expected_booked = sum(len(txns) for txns in booked.values())
    expected_pending = sum(len(sandbox.world.pending(account_id)) for account_id in booked)
    assert expected_booked > (100 if not cards else 5)  # busy enough for the comparison to mean something

    window = (start.isoformat(), end.isoformat())
    in_window = "partition_key >= %s and partition_key < %s"
    assert count_rows(database_url, "raw", f"{prefix}transactions", in_window, window) == expected_booked
    booked_in_window = "booking_date >= %s and booking_date < %s"
    assert (
        count_rows(database_url, "staging", staging_model, booked_in_window, (start, end)) == expected_booked
    )
    assert count_rows(database_url, "raw", f"{prefix}pending_transactions") == expected_pending
    counts = dict(
        rows(
            database_url,
            "select f.status, count(*) from marts.fct_transactions f"
            " join marts.dim_accounts a using (account_key)"
            " where f.source = 'truelayer' and a.provider_account_id = any(%s)"
            " and (f.status = 'pending' or (f.booking_date >= %s and f.booking_date < %s)) group by f.status",
            (list(booked), start, end),
        )
    )
    expected = {"booked": expected_booked} | ({"pending": expected_pending} if expected_pending else {})
    assert counts == expected
    accounts = "select count(*) from marts.dim_accounts where provider_account_id = any(%s)"
    assert scalar(database_url, accounts, (list(booked),)) == len(booked)


def test_amounts_are_exact_per_account(backfill: Backfill, sandbox: Sandbox, database_url: str) -> None:
    start, end = fetched_days(backfill.first, backfill.last)
    booked = world_booked(sandbox, start, end)
    expected = {
        account_id: decimal_sum([t.amount for t in txns]) for account_id, txns in booked.items() if txns
    }
    actual = dict(
        rows(
            database_url,
            "select a.provider_account_id, sum(t.amount) from marts.fct_transactions t"
            " join marts.dim_accounts a using (account_key)"
            " where t.source = 'truelayer' and t.status = 'booked' and t.booking_date >= %s and t.booking_date < %s"
            " group by a.provider_account_id",
            (start, end),
        )
    )
    # Card rows come in with the opposite sign and are turned around in staging: the world's
    # signed amounts (and so the card's balance movements) must come out again.
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
    # The backfill ran this day once already: one more run is the re-run.
    again = run_window(definitions, day, day)
    assert again.success
    assert raw_snapshot(database_url) == raw_before
    assert fct_snapshot(database_url) == fct_before
    landed = again.asset_materializations_for_node("raw_truelayer")
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
    assert transactions["accounts"].value == 9  # 8 accounts and 1 card
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
    # Compared on the days the runs built: other test modules leave raw rows of other days (fixed
    # worlds, other windows) that only a full refresh reads, as it should.
    start, end = fetched_days(backfill.first, backfill.last)

    def built(rows: list[tuple]) -> list[tuple]:
        return [row for row in rows if row[3] is None or start <= row[3] < end]

    incremental = built(fct_snapshot(database_url))
    assert incremental
    dbt = str(Path(sys.executable).parent / "dbt")
    # Every incremental model from nothing (staging, the union, the kept rule matches and transfer
    # pairs, fct_transactions) and everything on them: a full refresh replaces a table and drops
    # the views on it.
    args = [
        "build",
        "--full-refresh",
        "--select",
        "config.materialized:incremental+",
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    completed = subprocess.run(
        [dbt, *args, "--target-path", "target/full_refresh_test"],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **warehouse.dbt_env()},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-2000:]
    assert built(fct_snapshot(database_url)) == incremental
