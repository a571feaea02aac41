"""Incremental staging (macros/restaging.sql) against real Postgres and dbt: a window's run restages
the raw records landed in its partitions and ends where a full build over the same raw ends.

In a database of its own: the scenarios land TrueLayer rows directly (the loader, as an extract
does) and run dbt with explicit windows, each step checked against a full refresh of the same raw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from pipelines.partitions import booking_window
from pipelines.transform.project import DBT_PROJECT_DIR
from resources.warehouse.database import bootstrap_schemas, dbt_env, ensure_database, with_database
from resources.warehouse.loader import RawRecord, ReplaceScope, land

ACCOUNT = "acc-restaging"
DAY_1, DAY_2, DAY_3 = date(2026, 3, 2), date(2026, 3, 9), date(2026, 3, 16)
STAGED = (
    "select transaction_key, booking_date, amount, description, raw_partition_key"
    " from staging.stg_truelayer__transactions order by 1"
)
UNIONED = (
    "select transaction_key, booking_date, amount, description from intermediate.int_transactions_unioned"
    " where source = 'truelayer' order by 1"
)


@pytest.fixture(scope="module")
def url(server_url: str) -> Iterator[str]:
    name = "bankflow_test_incremental_staging"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
    ensure_database(server_url, name)
    scratch = with_database(server_url, name)
    bootstrap_schemas(scratch)
    yield scratch
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def transaction(txn_id: str, day: date, amount: str, description: str) -> str:
    # Amounts as JSON number text, as the extract lands them.
    fields = {
        "transaction_id": txn_id,
        "timestamp": f"{day.isoformat()}T00:00:00+00:00",
        "description": description,
        "currency": "EUR",
        "transaction_type": "DEBIT",
        "transaction_category": "PURCHASE",
    }
    return json.dumps(fields)[:-1] + f', "amount": {amount}}}'


def land_day(
    url: str, day: date, rows: list[tuple[str, str, str]], fetched_at: datetime, account: str = ACCOUNT
) -> None:
    """Replace the day's partition with `rows` (id, amount, description), as a re-fetch of that day does."""
    records = [
        RawRecord(transaction(txn_id, day, amount, text), day.isoformat(), txn_id, account)
        for txn_id, amount, text in rows
    ]
    with psycopg.connect(url) as conn:
        land(
            conn,
            table="truelayer_transactions",
            source="truelayer",
            records=records,
            scope=ReplaceScope(partition_keys=[day.isoformat()], account_refs=[account]),
            run_id="test",
            fetched_at=fetched_at,
        )


def land_account(url: str, account: str) -> None:
    payload = json.dumps({"account_id": account, "currency": "EUR", "display_name": "Current"})
    record = RawRecord(payload, DAY_1.isoformat(), account, account)
    with psycopg.connect(url) as conn:
        land(
            conn,
            table="truelayer_accounts",
            source="truelayer",
            records=[record],
            scope=ReplaceScope(partition_keys=[DAY_1.isoformat()], account_refs=[account]),
            run_id="test",
            fetched_at=at(0),
        )


def dbt(url: str, *args: str) -> None:
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *args, "--profiles-dir", str(DBT_PROJECT_DIR)]
        + ["--target-path", "target/incremental_staging_test"],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **dbt_env(url)},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-4000:]


# The staging models and the union on them (what restaging feeds).
SELECTION = ("--select", "+int_transactions_unioned")


def run_window(url: str, day: date) -> None:
    """The day's run as the pipeline passes it: partition `day`, lookback included."""
    start = datetime.combine(day, datetime.min.time(), UTC)
    window = booking_window(start, start + timedelta(days=1))
    dbt(url, "run", *SELECTION, "--vars", json.dumps(window.dbt_vars))


def snapshot(url: str) -> tuple[list[tuple], list[tuple]]:
    with psycopg.connect(url) as conn:
        return conn.execute(STAGED).fetchall(), conn.execute(UNIONED).fetchall()


def full_build(url: str) -> tuple[list[tuple], list[tuple]]:
    dbt(url, "run", *SELECTION, "--full-refresh")
    return snapshot(url)


def at(hour: int) -> datetime:
    return datetime(2026, 3, 20, hour, tzinfo=UTC)


def test_a_windows_run_restages_moved_and_vanished_postings_as_a_full_build_does(url: str) -> None:
    # Seeds (FX rates, rules) for the models on staging; accounts so the union knows the account.
    dbt(url, "seed")
    land_account(url, ACCOUNT)
    land_day(url, DAY_1, [("t1", "-10.00", "coffee"), ("t2", "-20.50", "books")], at(1))
    land_day(url, DAY_2, [("t3", "-5.25", "bread")], at(1))
    initial = full_build(url)
    assert len(initial[0]) == 3 and len(initial[1]) == 3

    # The bank moves t2 from DAY_1 to DAY_2: DAY_2's re-fetch has it, DAY_1 is not re-fetched.
    land_day(url, DAY_2, [("t3", "-5.25", "bread"), ("t2", "-20.50", "books (moved)")], at(2))
    run_window(url, DAY_2)
    moved = snapshot(url)
    staged_t2 = [row for row in moved[0] if row[3].startswith("books")]
    assert [(row[1], row[3], row[4]) for row in staged_t2] == [(DAY_2, "books (moved)", DAY_2.isoformat())]
    assert len(moved[1]) == 3  # one row per movement in the union too
    assert moved == full_build(url)

    # DAY_2 re-fetched without t2 (and t3 changed): t2's older landing on DAY_1 is all that is left.
    land_day(url, DAY_2, [("t3", "-5.30", "bread, corrected")], at(3))
    run_window(url, DAY_2)
    staged, unioned = snapshot(url)
    assert sorted((row[1], row[3]) for row in staged) == [
        (DAY_1, "books"),
        (DAY_1, "coffee"),
        (DAY_2, "bread, corrected"),
    ]
    # DAY_1 is outside the window: the union rebuilds it because t2's row was on a window day.
    assert sorted(row[3] for row in unioned) == ["books", "bread, corrected", "coffee"]
    assert (staged, unioned) == full_build(url)

    # A window with nothing landed in it changes nothing.
    run_window(url, DAY_3)
    assert snapshot(url) == (staged, unioned)


def test_rows_that_landed_before_their_account_get_its_key_on_a_later_days_run(url: str) -> None:
    # An extract whose accounts call failed: the account's transactions land, its account does not.
    late = "acc-listed-late"
    land_day(url, DAY_1, [("t9", "-7.00", "parking")], at(4), account=late)
    run_window(url, DAY_1)
    key_query = "select account_key from intermediate.int_transactions_unioned where account_ref = %s"
    with psycopg.connect(url) as conn:
        assert conn.execute(key_query, (late,)).fetchall() == [(None,)]
    # A later run, whose window is far from DAY_1, lands the account.
    land_account(url, late)
    run_window(url, DAY_3)
    with psycopg.connect(url) as conn:
        (key,) = conn.execute(key_query, (late,)).fetchone()
    assert key is not None
    after = snapshot(url)
    assert after == full_build(url)
