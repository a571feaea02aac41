"""The finance marts over the daily pipeline, each checked against values computed here, in exact
Decimal, from fct_transactions, fct_balances, dim_accounts, the seeds and the sandbox world's own
closing balances.

Before the run, a week of the world's statement files (camt.053, MT940, CSV, JSON) for the four
statement accounts is imported, so that those accounts have bank-reported closing balances on days
other than today's API snapshot: the days the derived balance is compared with what a bank said.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import dagster as dg
import psycopg
import pytest
from pipeline_runs import clear_statement_files, fetched_days, rows, run_window, scalar
from psycopg import sql

from bankflow_cli.files import import_files
from resources.warehouse.raw_tables import all_raw_tables
from sandbox.answer_key import world_account_ids
from sandbox.server import Sandbox
from sandbox.statement_files import render_statement

WINDOW_DAYS = 35
STATEMENT_DAYS = 7
FINANCE_MARTS = {
    "fct_account_balances_daily",
    "mart_spend_monthly",
    "mart_budget_status",
    "mart_cashflow_monthly",
}
FILE_FORMATS = {"camt053", "mt940", "csv", "json", "ofx"}
# The statement accounts whose files report closing balances (SBI's JSON, the seed's standard
# transaction format, has none), with the bank that names an account without an IBAN
# (connectors/sftp/kaveri_icici.yaml).
STATEMENT_ACCOUNTS = {"northwind-gbp": None, "northwind-eur": None, "kaveri-icici": "icici"}
UNNAMED_OWNER = "(unnamed)"
REPORTING_CURRENCY = "EUR"
CENT = Decimal("0.01")
ZERO = Decimal(0)


@pytest.fixture(scope="module")
def window() -> tuple[date, date]:
    today = datetime.now(UTC).date()
    return today - timedelta(days=WINDOW_DAYS - 1), today


@pytest.fixture(scope="module")
def statement_days(
    sandbox: Sandbox, database_url: str, window: tuple[date, date], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[date]]:
    """The last STATEMENT_DAYS closed days' statement files of the statement accounts, imported."""
    clear_statement_files(database_url)
    today = window[1]
    days = [today - timedelta(days=n) for n in range(STATEMENT_DAYS, 0, -1)]
    folder = tmp_path_factory.mktemp("statements")
    for account in sandbox.world.accounts:
        if account.key not in STATEMENT_ACCOUNTS:
            continue
        paths = []
        for day in days:
            name, content = render_statement(sandbox.world, account, day)
            paths.append(folder / name)
            paths[-1].write_bytes(content)
        results = import_files(database_url, folder / "home", paths, bank=STATEMENT_ACCOUNTS[account.key])
        assert {result.outcome for _, result in results} == {"parsed"}, [r.reason for _, r in results]
    yield days
    clear_statement_files(database_url)


def _clean_api_balances(database_url: str) -> None:
    # A balance snapshot is kept under the partition of the run that fetched it, and a run over
    # the window replaces only its own last day's: snapshots another module left on this worker's
    # database for earlier days (test_recon lands a week of nightly TrueLayer balances; a backfill
    # ending on an earlier day leaves its own) would be API balances on days this module expects
    # none but the statements' closings.
    tables = [t for t in all_raw_tables() if t.endswith("balances")]
    with psycopg.connect(database_url) as conn:
        conn.execute(
            sql.SQL("truncate {}").format(sql.SQL(", ").join(sql.Identifier("raw", t) for t in tables))
        )


@pytest.fixture(scope="module")
def run(
    definitions: dg.Definitions, window: tuple[date, date], statement_days: list[date], database_url: str
) -> dg.ExecuteInProcessResult:
    _clean_api_balances(database_url)
    return run_window(definitions, *window)


# -- what the marts are computed from, read plainly -------------------------------------------------


@dataclass(frozen=True)
class Movement:
    """A booked fct_transactions row with what the finance marts need to know about it."""

    account_key: str
    source: str
    owner: str
    booking_date: date
    amount: Decimal
    amount_reporting: Decimal | None
    category: str
    parent_category: str | None
    is_spend: bool
    is_income: bool
    is_internal_transfer: bool

    @property
    def month(self) -> date:
        return self.booking_date.replace(day=1)

    @property
    def kind(self) -> str:
        """The row's cash-flow column, as the marts define it (see mart_cashflow_monthly)."""
        if self.is_internal_transfer:
            return "transfer_in" if self.amount >= 0 else "transfer_out"
        return self.kind_by_category

    @property
    def kind_by_category(self) -> str:
        """The column the category alone would give (what a mart blind to transfers would use)."""
        if self.category == "transfer":
            return "other_transfer_in" if self.amount >= 0 else "other_transfer_out"
        if self.is_income:
            return "income"
        if self.is_spend:
            return "spend"
        return "income" if self.amount >= 0 else "spend"


def booked_movements(database_url: str) -> list[Movement]:
    return [
        Movement(
            account_key=account_key,
            source=source,
            owner=(owner or "").strip() or UNNAMED_OWNER,
            booking_date=booking_date,
            amount=amount,
            amount_reporting=amount_reporting,
            category=category,
            parent_category=parent,
            is_spend=is_spend,
            is_income=is_income,
            is_internal_transfer=is_internal_transfer,
        )
        for (
            account_key,
            source,
            owner,
            booking_date,
            amount,
            amount_reporting,
            category,
            parent,
            is_spend,
            is_income,
            is_internal_transfer,
        ) in rows(
            database_url,
            "select f.account_key, f.source, d.owner_name, f.booking_date, f.amount, f.amount_reporting,"
            " f.category, c.parent_category, c.is_spend, c.is_income, f.is_internal_transfer"
            " from marts.fct_transactions f"
            " join marts.dim_accounts d on d.account_key = f.account_key"
            " join marts.categories c on c.category = f.category"
            " where f.status = 'booked'",
        )
    ]


class ReferenceRates:
    """The fx_rates_daily seed: units of a currency per euro, by publication day."""

    def __init__(self, database_url: str) -> None:
        self._published: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
        for currency, day, rate in rows(
            database_url, "select currency, rate_date, rate_per_eur from marts.fx_rates_daily order by 2"
        ):
            self._published[currency].append((day, rate))

    def to_reporting(self, amount: Decimal, currency: str, day: date) -> Decimal:
        """The amount in the reporting currency at the last rate published on or before the day."""
        if currency == REPORTING_CURRENCY:
            return amount
        published = self._published[currency]
        index = bisect_right(published, (day, Decimal("Infinity")))
        assert index, (currency, day)
        # Postgres rounds half away from zero.
        return (amount / published[index - 1][1]).quantize(CENT, ROUND_HALF_UP)


# -- the run ------------------------------------------------------------------------------------------


def test_the_run_builds_the_finance_marts_and_their_checks_pass(run: dg.ExecuteInProcessResult) -> None:
    assert run.success
    materialized = {event.asset_key.to_user_string() for event in run.get_asset_materialization_events()}
    assert FINANCE_MARTS <= materialized
    checks = [e for e in run.get_asset_check_evaluations() if e.asset_key.to_user_string() in FINANCE_MARTS]
    # Every mart's dbt tests ran as asset checks (the balance difference one among them).
    assert {e.asset_key.to_user_string() for e in checks} == FINANCE_MARTS
    assert any(e.check_name.startswith("zero_or_null") for e in checks)
    assert [e.check_name for e in checks if not e.passed] == []


# -- fct_account_balances_daily -----------------------------------------------------------------------


def test_derived_balances_move_by_each_days_booked_sum_from_the_latest_report(
    run: dg.ExecuteInProcessResult, database_url: str
) -> None:
    day_sums: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    day_counts: dict[tuple[str, date], int] = defaultdict(int)
    for movement in booked_movements(database_url):
        day_sums[(movement.account_key, movement.booking_date)] += movement.amount
        day_counts[(movement.account_key, movement.booking_date)] += 1
    # The day's report is its latest one; the anchor is the latest reported day's.
    reports: dict[tuple[str, date], Decimal] = {}
    for account_key, day, balance in rows(
        database_url,
        "select account_key, balance_date, current_balance from marts.fct_balances"
        " where current_balance is not null"
        " order by account_key, balance_date, coalesce(reported_at, fetched_at), source desc, balance_key desc",
    ):
        reports[(account_key, day)] = balance
    anchors: dict[str, tuple[date, Decimal]] = {}
    for (account_key, day), balance in sorted(reports.items()):
        anchors[account_key] = (day, balance)

    mart: dict[str, list[tuple]] = defaultdict(list)
    for row in rows(
        database_url,
        "select account_key, balance_date, booked_amount, transaction_count, derived_balance,"
        " reported_balance, balance_difference, anchor_date, anchor_balance"
        " from marts.fct_account_balances_daily order by account_key, balance_date",
    ):
        mart[row[0]].append(row[1:])

    # Every account with a reported balance, and only those.
    assert set(mart) == set(anchors)
    walked = 0
    for account_key, days in mart.items():
        known = [d for a, d in (*day_sums, *reports) if a == account_key]
        assert days[0][0] == min(known) and days[-1][0] == max(known), account_key
        anchor_date, anchor_balance = anchors[account_key]
        previous = None
        for day, booked, count, derived, reported, difference, row_anchor_date, row_anchor_balance in days:
            assert (row_anchor_date, row_anchor_balance) == (anchor_date, anchor_balance)
            assert booked == day_sums.get((account_key, day), ZERO), (account_key, day)
            assert count == day_counts.get((account_key, day), 0), (account_key, day)
            if previous is not None:
                previous_day, previous_derived = previous
                assert day == previous_day + timedelta(days=1), (account_key, day)
                # Continuity: the balance moves by exactly the day's booked movements.
                assert derived - previous_derived == booked, (account_key, day)
                walked += 1
            if day == anchor_date:
                assert derived == anchor_balance, account_key
            assert reported == reports.get((account_key, day)), (account_key, day)
            assert difference == (None if reported is None else reported - derived), (account_key, day)
            previous = (day, derived)
    assert walked >= WINDOW_DAYS * 10


def test_derived_balances_equal_the_worlds_and_the_statements_closings(
    run: dg.ExecuteInProcessResult,
    statement_days: list[date],
    sandbox: Sandbox,
    database_url: str,
    window: tuple[date, date],
) -> None:
    start, end = fetched_days(*window)
    to_world = world_account_ids(database_url, sandbox.world)
    # Two aggregators reporting one account (TrueLayer and GoCardless, Berlin Group and GoCardless)
    # put each movement in fct_transactions twice until cross-aggregator dedupe exists: such an
    # account's walk counts its movements twice, so only accounts one API reports are compared.
    api_sources: dict[str, set[str]] = defaultdict(set)
    for movement in booked_movements(database_url):
        if start <= movement.booking_date < end and movement.source not in FILE_FORMATS:
            api_sources[movement.account_key].add(movement.source)
    single = {key for key, sources in api_sources.items() if len(sources) == 1 and key in to_world}
    print(f"compared {len(single)} accounts; doubly reported: {sorted(set(api_sources) - single)}")
    assert len(single) >= 12

    compared, statement_closings = 0, 0
    for account_key, day, derived, reported, difference, source, anchor_date in rows(
        database_url,
        "select account_key, balance_date, derived_balance, reported_balance, balance_difference,"
        " reported_source, anchor_date from marts.fct_account_balances_daily"
        " where balance_date >= %s and balance_date < %s",
        (start, end),
    ):
        if account_key not in single:
            continue
        assert derived == sandbox.world.balance(to_world[account_key], day), (account_key, day)
        compared += 1
        if reported is not None and day != anchor_date:
            # A bank's own closing balance on a day other than the anchor's: the walk agrees.
            assert source in FILE_FORMATS and day in statement_days, (account_key, day, source)
            assert difference == 0, (account_key, day, reported, derived)
            statement_closings += 1
    assert compared >= len(single) * (WINDOW_DAYS - 2)
    assert statement_closings == len(STATEMENT_ACCOUNTS) * STATEMENT_DAYS


def test_balances_in_the_reporting_currency_use_the_days_rate(
    run: dg.ExecuteInProcessResult, database_url: str
) -> None:
    rates = ReferenceRates(database_url)
    checked: dict[str, int] = defaultdict(int)
    for currency, day, derived, derived_reporting in rows(
        database_url,
        "select currency, balance_date, derived_balance, derived_balance_reporting"
        " from marts.fct_account_balances_daily order by account_key, balance_date",
    ):
        assert derived_reporting == rates.to_reporting(derived, currency, day), (currency, day)
        checked[currency] += 1
    assert {"EUR", "GBP", "RON", "BGN", "INR"} <= set(checked)


# -- spend, budgets, cash flow -------------------------------------------------------------------------


def test_spend_is_money_out_of_spending_categories_never_a_transfer(
    run: dg.ExecuteInProcessResult, database_url: str
) -> None:
    movements = booked_movements(database_url)
    expected: dict[tuple[str, date, str], dict[str, object]] = {}
    for m in movements:
        if m.kind != "spend":
            continue
        assert m.amount_reporting is not None
        row = expected.setdefault(
            (m.owner, m.month, m.category),
            {"parent": m.parent_category, "gross": ZERO, "refunded": ZERO, "count": 0},
        )
        if m.amount < 0:
            row["gross"] -= m.amount_reporting
        else:
            row["refunded"] += m.amount_reporting
        row["count"] += 1
    got = {
        (owner, month, category): {"parent": parent, "gross": gross, "refunded": refunded, "count": count}
        for owner, month, category, parent, gross, refunded, net, count, unconverted, currency in rows(
            database_url,
            "select owner_name, month_start_date, category, parent_category, gross_spend, refunded_amount,"
            " net_spend, transaction_count, unconverted_count, reporting_currency from marts.mart_spend_monthly",
        )
        if net == gross - refunded and unconverted == 0 and currency == REPORTING_CURRENCY
    }
    assert got == expected
    assert len(expected) >= 30
    # The exclusion bites: internal-transfer legs the categoriser left where money out is spend
    # (uncategorised, or a spending category) are in the window and counted nowhere in spend.
    hidden = [m for m in movements if m.is_internal_transfer and m.kind_by_category == "spend"]
    assert hidden
    assert not {c for _, _, c in expected} & {
        "transfer",
        "salary",
        "sales",
        "interest",
        "income_other",
        "refunds",
    }


def test_budget_status_is_the_cap_against_the_months_net_spend(
    run: dg.ExecuteInProcessResult, database_url: str
) -> None:
    spent: dict[tuple[str, date, str], Decimal] = defaultdict(Decimal)
    first_month: dict[str, date] = {}
    for m in booked_movements(database_url):
        first_month[m.owner] = min(first_month.get(m.owner, m.month), m.month)
        if m.kind == "spend":
            # A budget on a child counts the child; one on a parent counts all its children.
            spent[(m.owner, m.month, m.category)] -= m.amount_reporting
            if m.parent_category:
                spent[(m.owner, m.month, m.parent_category)] -= m.amount_reporting
    (as_of,) = {r[0] for r in rows(database_url, "select as_of_date from marts.mart_budget_status")}
    assert as_of == scalar(database_url, "select current_date")
    current_month = as_of.replace(day=1)

    rates = ReferenceRates(database_url)
    budgets = rows(database_url, "select owner_name, category, monthly_cap, currency from marts.budgets")
    expected = {}
    for owner, category, cap, currency in budgets:
        month = min(first_month.get(owner, current_month), current_month)
        while month <= current_month:
            next_month = (month + timedelta(days=32)).replace(day=1)
            days_in_month = (next_month - month).days
            is_current = month == current_month
            elapsed = (as_of - month).days + 1 if is_current else days_in_month
            cap_reporting = rates.to_reporting(cap, currency, min(next_month - timedelta(days=1), as_of))
            month_spent = spent.get((owner, month, category), ZERO)
            projected = (
                (month_spent * days_in_month / elapsed).quantize(CENT, ROUND_HALF_UP)
                if is_current
                else month_spent
            )
            expected[(owner, category, month)] = (
                cap_reporting,
                month_spent,
                cap_reporting - month_spent,
                month_spent > cap_reporting,
                projected,
                projected > cap_reporting,
                is_current,
                elapsed,
                days_in_month,
            )
            month = next_month
    got = {
        (owner, category, month): values
        for owner, category, month, *values in rows(
            database_url,
            "select owner_name, category, month_start_date, cap_reporting, spent, remaining, is_over_budget,"
            " projected_spend, is_projected_over_budget, is_current_month, days_elapsed, days_in_month"
            " from marts.mart_budget_status",
        )
    }
    assert got == {key: list(values) for key, values in expected.items()}
    # The shipped budgets name the sandbox's owners: some months over the cap, some under, a
    # parent-category budget, and one with nothing spent at all.
    flags = {values[3] for values in expected.values()}
    assert flags == {True, False}
    assert any(values[1] == 0 for values in expected.values())
    assert any(category == "food" for _, category, _ in expected)


def test_cash_flow_puts_every_movement_in_one_column_and_nets_to_the_whole(
    run: dg.ExecuteInProcessResult, database_url: str
) -> None:
    columns = ("income", "spend", "transfer_in", "transfer_out", "other_transfer_in", "other_transfer_out")
    expected: dict[tuple[str, date], dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(columns, ZERO))
    net: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    counts: dict[tuple[str, date], int] = defaultdict(int)
    for m in booked_movements(database_url):
        key = (m.owner, m.month)
        kind = m.kind
        # Money out columns are positive amounts; income and spend are net of their reversals.
        expected[key][kind] += (
            -m.amount_reporting
            if kind in ("spend", "transfer_out", "other_transfer_out")
            else m.amount_reporting
        )
        net[key] += m.amount_reporting
        counts[key] += 1
    spend_mart = defaultdict(Decimal)
    for owner, month, net_spend in rows(
        database_url, "select owner_name, month_start_date, net_spend from marts.mart_spend_monthly"
    ):
        spend_mart[(owner, month)] += net_spend

    got = rows(
        database_url,
        "select owner_name, month_start_date, income, spend, transfers_in, transfers_out, other_transfers_in,"
        " other_transfers_out, net_cashflow, transaction_count, unconverted_count from marts.mart_cashflow_monthly",
    )
    assert {(owner, month) for owner, month, *_ in got} == set(expected)
    for owner, month, income, spend, t_in, t_out, o_in, o_out, net_cashflow, count, unconverted in got:
        key = (owner, month)
        assert dict(zip(columns, (income, spend, t_in, t_out, o_in, o_out), strict=True)) == expected[key], (
            key
        )
        assert net_cashflow == income - spend + t_in - t_out + o_in - o_out, key
        assert net_cashflow == net[key], key
        assert (count, unconverted) == (counts[key], 0), key
        # The two marts agree on what spend is.
        assert spend == spend_mart.get(key, ZERO), key
    assert sum(values["transfer_in"] for values in expected.values()) > 0
