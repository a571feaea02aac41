"""The month and day totals kept from fct_transactions' change log (macros/changed_periods.sql)
against real Postgres and dbt: a window's run rebuilds the months it changed, including months
outside the window (a posting moved away, an override on an old row), and a consumer that missed
fct_transactions builds catches up on its next build; each step ends where a full refresh ends.

In a database of its own: TrueLayer rows landed through the loader, dbt run with explicit windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from psycopg.rows import dict_row
from truelayer_landing import at, dbt, land_account, land_day, window_vars

from resources.categories import set_category_override
from resources.warehouse.database import scratch_database

ACCOUNT = "acc-monthly-totals"
JAN, FEB, MAR_2, MAR_9, MAR_16 = (
    date(2026, 1, 12),
    date(2026, 2, 10),
    date(2026, 3, 2),
    date(2026, 3, 9),
    date(2026, 3, 16),
)
KEPT = {
    "monthly": "select * from marts.fct_transactions_monthly order by transaction_month_key",
    "daily": "select * from marts.fct_account_bookings_daily order by account_booking_day_key",
    "spend": "select * from marts.mart_spend_monthly order by spend_month_key",
    "cashflow": "select * from marts.mart_cashflow_monthly order by cashflow_month_key",
    "quality": "select * from marts.mart_categorisation_quality order by category_currency_key",
}
# `build` without the data tests: it takes the snapshot of pending rows the models read.
BUILD = ("build", "--exclude-resource-type", "test", "unit_test")
CONSUMERS = ("--select", "fct_transactions_monthly+", "fct_account_bookings_daily+")
EVERYTHING = ("--select", "@fct_transactions_monthly", "@fct_account_bookings_daily")


@pytest.fixture(scope="module")
def url(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "bankflow_test_incremental_marts") as scratch:
        dbt(scratch, "seed")
        land_account(scratch, ACCOUNT)
        yield scratch


def kept(url: str) -> dict[str, list[dict]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return {name: conn.execute(query).fetchall() for name, query in KEPT.items()}


def full_build(url: str) -> dict[str, list[dict]]:
    dbt(url, *BUILD, *EVERYTHING, "--full-refresh")
    return kept(url)


def spend_count(url: str, month: date) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select sum(transaction_count) from marts.mart_cashflow_monthly where month_start_date = %s",
            (month.replace(day=1),),
        ).fetchone()
    return int(row[0] or 0)


def january_groceries(kept: dict[str, list[dict]]) -> list[int]:
    return [
        row["net_spend"]
        for row in kept["spend"]
        if row["month_start_date"] == date(2026, 1, 1) and row["category"] == "groceries"
    ]


def land(url: str, day: date, rows: list[tuple[str, str, str]], hour: int) -> None:
    land_day(url, day, rows, at(hour), account=ACCOUNT)


def test_a_windows_run_rebuilds_the_months_it_changed_outside_the_window(url: str) -> None:
    land(url, JAN, [("m1", "-12.00", "TESCO STORES"), ("m2", "-30.00", "NETFLIX.COM")], 1)
    land(url, FEB, [("m3", "-8.50", "PRET A MANGER"), ("m4", "-20.00", "UBER TRIP")], 1)
    land(url, MAR_2, [("m5", "-5.00", "COSTA COFFEE")], 1)
    before = full_build(url)
    assert spend_count(url, FEB) == 2

    # The bank moves m4 from February to March (only March is re-fetched), and the user overrides
    # a January row: both months are outside the March window.
    land(url, MAR_9, [("m4", "-20.00", "UBER TRIP")], 2)
    with psycopg.connect(url) as conn:
        (netflix,) = conn.execute(
            "select transaction_key from marts.fct_transactions where source_transaction_id = 'm2'"
        ).fetchone()
    set_category_override(url, netflix, "groceries")
    dbt(url, *BUILD, *EVERYTHING, "--vars", window_vars(MAR_9))
    after = kept(url)
    assert spend_count(url, FEB) == 1
    assert after["monthly"] != before["monthly"]
    # net_spend of January's groceries: the Tesco row (a rule's), now with the overridden one.
    assert january_groceries(before) == [12] and january_groceries(after) == [42]
    assert after == full_build(url)


def test_a_consumer_that_missed_builds_of_fct_transactions_catches_up(url: str) -> None:
    # Two days' runs build fct_transactions only (a consumer's step failed, or ran later)...
    land(url, MAR_16, [("m6", "-3.00", "COSTA COFFEE")], 3)
    dbt(url, *BUILD, "--select", "+fct_transactions", "--vars", window_vars(MAR_16))
    land(url, FEB, [("m3", "-8.50", "PRET A MANGER"), ("m7", "-99.00", "IKEA")], 4)
    dbt(url, *BUILD, "--select", "+fct_transactions", "--vars", window_vars(FEB))
    # ...then the consumers run with a window that covers neither day.
    dbt(url, *BUILD, *CONSUMERS, "--vars", window_vars(JAN))
    assert spend_count(url, FEB) == 2
    caught_up = kept(url)
    with psycopg.connect(url) as conn:
        # Every consumer has read every entry, so the log is pruned.
        assert conn.execute("select count(*) from intermediate.fct_transactions_changes").fetchone() == (0,)
    assert caught_up == full_build(url)
