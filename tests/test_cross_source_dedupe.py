"""Cross-source dedupe over the daily pipeline, with the sandbox world as the answer key.

Two real accounts of the world are reported by two sources each: chloe's EUR account through
TrueLayer and GoCardless, bogdan's Banca Transilvania account through its Berlin Group API and
GoCardless. dim_accounts unifies each by IBAN; every movement on them must be one fct_transactions
row, the better source's (the bank's own API > TrueLayer > GoCardless), naming both reporters.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import dagster as dg
import pytest
from pipeline_runs import rows, run_window

from resources.categories import clear_category_override, set_category_override
from sandbox.model import Account
from sandbox.server import Sandbox

WINDOW_DAYS = 14
API_SOURCES = ("truelayer", "berlin_group", "revolut", "gocardless")
# source_priority: the bank's own API first, then the aggregators.
PRIORITY = ("berlin_group", "revolut", "truelayer", "gocardless")


@pytest.fixture(scope="module")
def window(definitions: dg.Definitions) -> tuple[dt.date, dt.date]:
    """The daily pipeline over WINDOW_DAYS partitions ending today; [start, end) of those days."""
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=WINDOW_DAYS - 1)
    assert run_window(definitions, first, today).success
    return first, today + dt.timedelta(days=1)


def multi_provider_accounts(sandbox: Sandbox) -> list[Account]:
    return [a for a in sandbox.world.accounts if len(set(a.providers) & set(API_SOURCES)) > 1]


def account_key(database_url: str, account: Account) -> str:
    return rows(database_url, "select account_key from marts.dim_accounts where iban = %s", (account.iban,))[
        0
    ][0]


def reporters(account: Account) -> str:
    return ",".join(sorted(set(account.providers) & set(API_SOURCES), key=PRIORITY.index))


def test_the_world_has_accounts_two_sources_report(sandbox: Sandbox) -> None:
    assert {reporters(a) for a in multi_provider_accounts(sandbox)} == {
        "truelayer,gocardless",
        "berlin_group,gocardless",
    }


def test_each_movement_of_a_multi_provider_account_is_one_row(
    window: tuple[dt.date, dt.date], sandbox: Sandbox, database_url: str
) -> None:
    start, end = window
    for account in multi_provider_accounts(sandbox):
        key = account_key(database_url, account)
        world = sandbox.world.booked(account.account_id, start, end)
        assert len(world) > 5  # busy enough for the comparison to mean something
        landed = rows(
            database_url,
            "select booking_date, amount, source, reported_by from marts.fct_transactions"
            " where account_key = %s and status = 'booked' and booking_date >= %s and booking_date < %s",
            (key, start, end),
        )
        assert Counter((day, amount) for day, amount, _, _ in landed) == Counter(
            (txn.booking_date, txn.amount) for txn in world
        ), account.key
        # The better source's row, naming both.
        expected = reporters(account)
        assert {(source, reported) for _, _, source, reported in landed} == {
            (expected.split(",")[0], expected)
        }
        pending = rows(
            database_url,
            "select amount, reported_by from marts.fct_transactions where account_key = %s and status = 'pending'",
            (key,),
        )
        assert Counter(amount for amount, _ in pending) == Counter(
            txn.amount for txn in sandbox.world.pending(account.account_id)
        ), account.key
        assert {reported for _, reported in pending} <= {expected}


def test_totals_per_account_and_day_equal_the_world(
    window: tuple[dt.date, dt.date], sandbox: Sandbox, database_url: str
) -> None:
    start, end = window
    for account in multi_provider_accounts(sandbox):
        totals: dict[dt.date, Decimal] = {}
        for txn in sandbox.world.booked(account.account_id, start, end):
            assert txn.booking_date is not None
            totals[txn.booking_date] = totals.get(txn.booking_date, Decimal(0)) + txn.amount
        landed = dict(
            rows(
                database_url,
                "select booking_date, sum(amount) from marts.fct_transactions where account_key = %s"
                " and status = 'booked' and booking_date >= %s and booking_date < %s group by 1",
                (account_key(database_url, account), start, end),
            )
        )
        assert landed == totals, account.key


def test_a_movement_one_source_reports_names_that_source(
    window: tuple[dt.date, dt.date], sandbox: Sandbox, database_url: str
) -> None:
    shared = [account_key(database_url, account) for account in multi_provider_accounts(sandbox)]
    # The API sources only: statement files that other modules landed on this database report
    # accounts in two formats of their own (camt.053 and MT940), which is theirs to test.
    assert (
        rows(
            database_url,
            "select source, reported_by, count(*) from marts.fct_transactions"
            " where not (account_key = any(%s)) and source = any(%s) and reported_by <> source group by 1, 2",
            (shared, list(API_SOURCES)),
        )
        == []
    )


def test_an_override_on_a_displaced_report_follows_the_kept_row(
    window: tuple[dt.date, dt.date], sandbox: Sandbox, database_url: str
) -> None:
    # An override set while GoCardless's report was the row (before TrueLayer's arrived, say).
    kept, displaced = rows(
        database_url,
        "select transaction_key, duplicate_transaction_keys from intermediate.int_transactions_unioned"
        " where source = 'truelayer' and reported_by = 'truelayer,gocardless' and status = 'booked'"
        " order by transaction_key limit 1",
    )[0]
    assert displaced and "," not in displaced

    def categorised() -> tuple[str, str | None]:
        return rows(
            database_url,
            "select category, category_source from intermediate.int_transactions_categorised"
            " where transaction_key = %s",
            (kept,),
        )[0]

    before = categorised()
    assert before[0] != "rent"
    set_category_override(database_url, displaced, "rent")
    try:
        assert categorised() == ("rent", "override")
    finally:
        clear_category_override(database_url, displaced)
    assert categorised() == before
