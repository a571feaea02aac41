"""Incremental staging (macros/restaging.sql) against real Postgres and dbt: a window's run restages
the raw records landed in its partitions and ends where a full build over the same raw ends.

In a database of its own: the scenarios land TrueLayer rows directly (the loader, as an extract
does) and run dbt with explicit windows, each step checked against a full refresh of the same raw.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from truelayer_landing import (
    ACCOUNT,
    DAY_1,
    at,
    dbt,
    land_account,
    land_day,
    window_vars,
)

from resources.warehouse.database import scratch_database

DAY_2, DAY_3 = date(2026, 3, 9), date(2026, 3, 16)
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
    with scratch_database(server_url, "bankflow_test_incremental_staging") as scratch:
        yield scratch


# The staging models and the union on them (what restaging feeds).
SELECTION = ("--select", "+int_transactions_unioned")


def run_window(url: str, day: date) -> None:
    """The day's run as the pipeline passes it: partition `day`, lookback included."""
    dbt(url, "run", *SELECTION, "--vars", window_vars(day))


def snapshot(url: str) -> tuple[list[tuple], list[tuple]]:
    with psycopg.connect(url) as conn:
        return conn.execute(STAGED).fetchall(), conn.execute(UNIONED).fetchall()


def full_build(url: str) -> tuple[list[tuple], list[tuple]]:
    dbt(url, "run", *SELECTION, "--full-refresh")
    return snapshot(url)


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
