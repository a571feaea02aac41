"""Internal-transfer detection against the sandbox world's answer key, and FX to the reporting currency.

The score is sandbox/answer_key.py's (pair-level precision and recall over the run's partition
days; bench/accuracy.py prints the same figures): fct_transactions rows are matched to the world's
rows per account, and a predicted pair is right when its two legs are the two legs of one world
transfer.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import dagster as dg
import psycopg
import pytest
import yaml
from pipeline_runs import rows, run_window

from pipelines.partitions import LOOKBACK_DAYS
from pipelines.transform.project import DBT_PROJECT_DIR
from resources.categories import clear_category_override, set_category_override
from sandbox.answer_key import TRANSFER_TARGET, score_transfers
from sandbox.server import Sandbox

WINDOW_DAYS = 40


@pytest.fixture(scope="module")
def window(definitions: dg.Definitions) -> tuple[dt.date, dt.date]:
    """The daily pipeline over WINDOW_DAYS partitions ending today; returns [start, end) of those days."""
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=WINDOW_DAYS - 1)
    result = run_window(definitions, first, today)
    assert result.success
    return first, today + dt.timedelta(days=1)


def test_internal_transfers_match_the_world(
    window: tuple[dt.date, dt.date], sandbox: Sandbox, database_url: str
) -> None:
    score = score_transfers(database_url, sandbox.world, *window)
    print(f"transfers: {score} precision={score.precision:.4f} recall={score.recall:.4f}")
    # Every kind of transfer the world makes recurs within the window (daily round-ups, weekly
    # sweeps and exchanges, monthly savings, top-ups and card repayments).
    assert score.expected >= 40
    assert score.precision >= TRANSFER_TARGET
    assert score.recall >= TRANSFER_TARGET


def test_both_legs_share_one_group_and_no_leg_is_paired_twice(
    window: tuple[dt.date, dt.date], database_url: str
) -> None:
    groups = rows(
        database_url,
        "select transfer_group_key, count(*), sum(sign(amount)), count(distinct account_key)"
        " from marts.fct_transactions where is_internal_transfer group by 1",
    )
    assert groups
    assert {(count, total, accounts) for _, count, total, accounts in groups} == {(2, 0, 2)}
    flags = rows(
        database_url,
        "select count(*) from marts.fct_transactions"
        " where is_internal_transfer is distinct from (transfer_group_key is not null)",
    )
    assert flags == [(0,)]


def test_amounts_convert_through_the_days_reference_rate(
    window: tuple[dt.date, dt.date], database_url: str
) -> None:
    unconverted = rows(
        database_url,
        "select currency, count(*) from marts.fct_transactions where amount_reporting is null group by 1",
    )
    assert unconverted == []
    # Recompute one conversion per currency from the seed: the last rate published on or before
    # the booking day, through EUR, rounded to cents; fx_rate unrounded.
    checked = rows(
        database_url,
        """
        select distinct on (f.currency)
            f.currency, f.amount, f.amount_reporting, f.fx_rate,
            (select r.rate_per_eur from marts.fx_rates_daily r
             where r.currency = f.currency and r.rate_date <= f.booking_date
             order by r.rate_date desc limit 1) as published_rate
        from marts.fct_transactions f
        where f.currency <> 'EUR'
        order by f.currency, f.booking_date, f.transaction_key
        """,
    )
    assert {row[0] for row in checked} >= {"GBP", "RON", "BGN", "INR"}
    for currency, amount, amount_reporting, fx_rate, published_rate in checked:
        assert abs(fx_rate * published_rate - 1) < Decimal("1e-15"), currency
        # Postgres rounds half away from zero.
        assert amount_reporting == (amount / published_rate).quantize(Decimal("0.01"), ROUND_HALF_UP), (
            currency
        )
    eur = rows(
        database_url,
        "select count(*) from marts.fct_transactions"
        " where currency = 'EUR' and (fx_rate <> 1 or amount_reporting <> amount)",
    )
    assert eur == [(0,)]


# -- rows before the next run's window follow what changed about them -----------------------------


def _old_booked_row(database_url: str, today: dt.date, where: str) -> tuple[str, str | None, str | None]:
    """(transaction_key, transfer_group_key, category) of a booked row a one-day run today would not
    rebuild by its booking day (before the lookback)."""
    found = rows(
        database_url,
        "select transaction_key, transfer_group_key, category from marts.fct_transactions"  # noqa: S608
        f" where status = 'booked' and booking_date < %s and {where}"
        " order by booking_date, transaction_key limit 1",
        (today - dt.timedelta(days=LOOKBACK_DAYS + 2),),
    )
    assert found, where
    return found[0]


def test_a_transfer_leg_before_the_window_is_restated_when_its_pairing_changes(
    window: tuple[dt.date, dt.date], definitions: dg.Definitions, database_url: str
) -> None:
    today = window[1] - dt.timedelta(days=1)
    key, group, _ = _old_booked_row(database_url, today, "is_internal_transfer")
    ghost = f"vanished-{key}"
    with psycopg.connect(database_url) as conn:
        # What a build before the other leg arrived left: the old leg unpaired.
        conn.execute(
            "update marts.fct_transactions set transfer_group_key = null, is_internal_transfer = false"
            " where transaction_key = %s",
            (key,),
        )
        # And a leg an earlier build paired whose row has since gone from every source (a statement
        # file replaced by a version without it): its group is no longer in int_transfers_paired.
        conn.execute(
            "insert into marts.fct_transactions select * from marts.fct_transactions where transaction_key = %s",
            (key,),
        )
        conn.execute(
            "update marts.fct_transactions set transaction_key = %s, transfer_group_key = %s,"
            " is_internal_transfer = true where ctid = (select max(ctid) from marts.fct_transactions"
            " where transaction_key = %s)",
            (ghost, f"gone-{group}", key),
        )
    run = run_window(definitions, today, today)
    assert run.success  # the relationships test to int_transfers_paired among its checks
    assert rows(
        database_url,
        "select transfer_group_key, is_internal_transfer from marts.fct_transactions where transaction_key = %s",
        (key,),
    ) == [(group, True)]
    assert (
        rows(database_url, "select 1 from marts.fct_transactions where transaction_key = %s", (ghost,)) == []
    )


def test_a_days_run_keeps_older_transfer_pairs_and_drops_those_with_a_vanished_leg(
    window: tuple[dt.date, dt.date], definitions: dg.Definitions, database_url: str
) -> None:
    today = window[1] - dt.timedelta(days=1)
    max_days = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["transfer_max_days"]
    # A one-day run redoes the pairs with a leg booked on or after this day; older ones it keeps.
    redone_from = today - dt.timedelta(days=LOOKBACK_DAYS + max_days)
    older_pairs = """
        select * from intermediate.int_transfers_paired
        where transfer_group_key in (
            select transfer_group_key from intermediate.int_transfers_paired
            group by 1 having max(booking_date) < %s
        )
        order by transaction_key
    """
    before = rows(database_url, older_pairs, (redone_from,))
    assert before
    old_day = before[0][3]
    with psycopg.connect(database_url) as conn:
        # A pair an earlier build made whose legs have since gone from every source.
        conn.execute(
            "insert into intermediate.int_transfers_paired"
            " (transaction_key, transfer_group_key, leg, booking_date, partner_transaction_key,"
            "  day_gap, amount_gap, pairing_round)"
            " values ('vanished-out', 'vanished-pair', 'out', %(day)s, 'vanished-in', 0, 0, 1),"
            "        ('vanished-in', 'vanished-pair', 'in', %(day)s, 'vanished-out', 0, 0, 1)",
            {"day": old_day},
        )
    run = run_window(definitions, today, today)
    assert run.success  # int_transfers_paired's relationships test to int_transactions_unioned too
    assert rows(database_url, older_pairs, (redone_from,)) == before
    assert (
        rows(
            database_url,
            "select 1 from intermediate.int_transfers_paired where transfer_group_key = 'vanished-pair'",
        )
        == []
    )


def test_an_override_on_an_old_row_shows_on_the_next_run_and_its_removal_too(
    window: tuple[dt.date, dt.date], definitions: dg.Definitions, database_url: str
) -> None:
    today = window[1] - dt.timedelta(days=1)
    key, _, category = _old_booked_row(database_url, today, "category is distinct from 'education'")
    set_category_override(database_url, key, "education")
    try:
        assert run_window(definitions, today, today).success
        assert rows(
            database_url,
            "select category, category_source from marts.fct_transactions where transaction_key = %s",
            (key,),
        ) == [("education", "override")]
    finally:
        clear_category_override(database_url, key)
    assert run_window(definitions, today, today).success
    restored = rows(
        database_url,
        "select category, category_source from marts.fct_transactions where transaction_key = %s",
        (key,),
    )
    assert restored[0][0] == category and restored[0][1] != "override"
