"""What each chart of the report shows, read from the marts with SQL.

Money stays numeric: psycopg hands Postgres `numeric` back as Decimal, and the numbers printed beside
a chart are formatted from those Decimals; only the plotting turns them into floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

# Every relation of schema `marts` a chart reads (also the reports asset's dependencies).
REPORT_MARTS = (
    "mart_spend_monthly",
    "mart_budget_status",
    "mart_cashflow_monthly",
    "fct_account_balances_daily",
    "dim_accounts",
    "recon_summary",
    "recon_exceptions",
)
# Who a finance row belongs to, as the charts name it: the holder the banks name (owner_name) and,
# when set, the bankflow owner (a holder's accounts of two owners are two rows, two panels).
HOLDER_LABEL = "concat_ws(' · ', owner_name, owner)"
# recon_exceptions.age_bucket, youngest first.
AGE_BUCKETS = ("0-2 days", "3-7 days", "8-30 days", "over 30 days")
# How an account is named on a chart: its name at its bank, and its currency.
ACCOUNT_LABEL = (
    "concat_ws(' · ', coalesce(accounts.display_name, accounts.provider_account_id), accounts.bank_name)"
    " || ' (' || accounts.currency || ')'"
)


@dataclass(frozen=True)
class Table:
    """Rows as Postgres returned them, under their column names."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(frozen=True)
class ChartData:
    """One chart: what it draws (`points`) and the numbers printed beside it (`numbers`; the same
    rows unless the chart draws more than a table can show)."""

    key: str
    title: str
    marts: tuple[str, ...]
    note: str
    numbers: Table
    points: Table | None = None

    @property
    def plotted(self) -> Table:
        return self.numbers if self.points is None else self.points


def missing_marts(conn: psycopg.Connection) -> list[str]:
    """The marts the report reads that do not exist (yet) in the warehouse."""
    return [
        name
        for (name,) in conn.execute(
            "select name from unnest(%s::text[]) with ordinality as marts(name, position)"
            " where to_regclass('marts.' || quote_ident(name)) is null order by position",
            (list(REPORT_MARTS),),
        )
    ]


def read_charts(conn: psycopg.Connection) -> list[ChartData]:
    """Every chart of the report, in the order it shows them."""
    return [
        spend_by_category(conn),
        budget_vs_cap(conn),
        cash_flow(conn),
        balances(conn),
        recon_match_rate(conn),
        exceptions_by_age(conn),
    ]


def spend_by_category(conn: psycopg.Connection) -> ChartData:
    numbers = _table(
        conn,
        f"""
        select
            {HOLDER_LABEL} as "owner",
            to_char(month_start_date, 'YYYY-MM') as "month",
            category as "category",
            reporting_currency as "currency",
            gross_spend as "gross spend",
            refunded_amount as "refunded",
            net_spend as "net spend"
        from marts.mart_spend_monthly
        order by "owner", month_start_date, category
        """,  # noqa: S608 - a fixed expression, no values
    )
    return ChartData(
        key="spend_by_category",
        title="Monthly spend by category",
        marts=("mart_spend_monthly",),
        note="Net spend (money out less refunds) per owner, month and category, in the reporting"
        " currency; internal transfers, transfers and income are never spend.",
        numbers=numbers,
    )


def budget_vs_cap(conn: psycopg.Connection) -> ChartData:
    numbers = _table(
        conn,
        f"""
        select
            {HOLDER_LABEL} as "owner",
            category as "category",
            to_char(month_start_date, 'YYYY-MM') as "month",
            reporting_currency as "currency",
            cap_reporting as "cap",
            spent as "spent",
            remaining as "remaining",
            projected_spend as "projected"
        from marts.mart_budget_status
        where month_start_date = (select max(month_start_date) from marts.mart_budget_status)
        order by "owner", category
        """,  # noqa: S608 - a fixed expression, no values
    )
    return ChartData(
        key="budget_vs_cap",
        title="Budget vs cap",
        marts=("mart_budget_status",),
        note="Each budget in the latest month (the one running): spent so far and the linear"
        " projection to the month's end, against the monthly cap in the reporting currency.",
        numbers=numbers,
    )


def cash_flow(conn: psycopg.Connection) -> ChartData:
    numbers = _table(
        conn,
        f"""
        select
            {HOLDER_LABEL} as "owner",
            to_char(month_start_date, 'YYYY-MM') as "month",
            reporting_currency as "currency",
            income as "income",
            spend as "spend",
            transfers_in as "own transfers in",
            transfers_out as "own transfers out",
            other_transfers_in as "other transfers in",
            other_transfers_out as "other transfers out",
            net_cashflow as "net"
        from marts.mart_cashflow_monthly
        order by "owner", month_start_date
        """,  # noqa: S608 - a fixed expression, no values
    )
    return ChartData(
        key="cash_flow",
        title="Cash flow",
        marts=("mart_cashflow_monthly",),
        note="Money in and out per owner and month in the reporting currency: income and spend,"
        " transfers between the owner's own accounts apart, and the net change of the owner's money.",
        numbers=numbers,
    )


def balances(conn: psycopg.Connection) -> ChartData:
    points = _table(
        conn,
        f"""
        select
            balances.account_key as "account key",
            {ACCOUNT_LABEL} as "account",
            balances.balance_date as "day",
            balances.derived_balance as "balance"
        from marts.fct_account_balances_daily as balances
        inner join marts.dim_accounts as accounts on accounts.account_key = balances.account_key
        order by "account", balances.account_key, balances.balance_date
        """,  # noqa: S608 - a fixed expression, no values
    )
    numbers = _table(
        conn,
        f"""
        select "account", "currency", "first day", "last day", "closing balance"
        from (
            select distinct on (balances.account_key)
                balances.account_key,
                {ACCOUNT_LABEL} as "account",
                balances.currency as "currency",
                min(balances.balance_date) over (partition by balances.account_key) as "first day",
                balances.balance_date as "last day",
                balances.derived_balance as "closing balance"
            from marts.fct_account_balances_daily as balances
            inner join marts.dim_accounts as accounts on accounts.account_key = balances.account_key
            order by balances.account_key, balances.balance_date desc
        ) as latest
        order by "account", account_key
        """,  # noqa: S608 - a fixed expression, no values
    )
    return ChartData(
        key="balances",
        title="Balances over time per account",
        marts=("fct_account_balances_daily", "dim_accounts"),
        note="Each account's closing booked balance per day in its own currency, derived from the"
        " movements and anchored to the latest balance the bank reported.",
        numbers=numbers,
        points=points,
    )


def recon_match_rate(conn: psycopg.Connection) -> ChartData:
    points = _table(
        conn,
        f"""
        select
            summary.account_key as "account key",
            {ACCOUNT_LABEL} as "account",
            summary.summary_date as "day",
            summary.match_rate as "match rate"
        from marts.recon_summary as summary
        inner join marts.dim_accounts as accounts on accounts.account_key = summary.account_key
        where summary.bank_lines > 0
        order by "account", summary.account_key, summary.summary_date
        """,  # noqa: S608 - a fixed expression, no values
    )
    numbers = _table(
        conn,
        f"""
        select
            {ACCOUNT_LABEL} as "account",
            min(summary.summary_date) as "first day",
            max(summary.summary_date) as "last day",
            sum(summary.bank_lines)::bigint as "bank lines",
            sum(summary.matched_lines)::bigint as "matched lines",
            round(sum(summary.matched_lines) * 100.0 / nullif(sum(summary.bank_lines), 0), 2)
                as "match rate %",
            sum(summary.open_exceptions)::bigint as "open exceptions"
        from marts.recon_summary as summary
        inner join marts.dim_accounts as accounts on accounts.account_key = summary.account_key
        group by summary.account_key, accounts.display_name, accounts.provider_account_id,
            accounts.bank_name, accounts.currency
        order by "account", summary.account_key
        """,  # noqa: S608 - a fixed expression, no values
    )
    return ChartData(
        key="recon_match_rate",
        title="Reconciliation match rate",
        marts=("recon_summary", "dim_accounts"),
        note="Share of each reconciled account's booked bank lines that tied out to a settlement or"
        " a ledger entry, per day (chart) and over all days (table).",
        numbers=numbers,
        points=points,
    )


def exceptions_by_age(conn: psycopg.Connection) -> ChartData:
    numbers = _table(
        conn,
        """
        select age_bucket as "age", reason as "reason", count(*) as "open exceptions"
        from marts.recon_exceptions
        where is_open
        group by age_bucket, reason
        order by array_position(%s::text[], age_bucket), reason
        """,
        (list(AGE_BUCKETS),),
    )
    return ChartData(
        key="exceptions_by_age",
        title="Reconciliation exceptions by age",
        marts=("recon_exceptions",),
        note="Open exceptions (no one has accepted or resolved them) by days since the item's date"
        " and by reason.",
        numbers=numbers,
    )


def _table(conn: psycopg.Connection, query: str, params: tuple[Any, ...] | None = None) -> Table:
    # Without parameters the query is sent as written (a "%" in a column name stays one).
    cursor = conn.execute(query, params)  # type: ignore[arg-type]
    return Table(tuple(column.name for column in cursor.description or ()), cursor.fetchall())
