"""The marts' Great Expectations suite on a 1M-row fct_transactions: time and SQL queries issued.

    python -m bench.quality [--rows 1000000] [--keep]

Builds the tables the marts suite reads (quality/suites/marts.json: fct_transactions,
dim_accounts, recon_balance_checks, recon_matches, recon_exceptions) with the marts' column names
and types in a scratch database (BANKFLOW_DATABASE_URL's server, else the embedded one), then:

- validates the whole suite over all rows (the `quality_audit` job's work), and over one day (a
  daily run's), counting every SQL statement GX sends;
- runs the reference: each suite table's expectations written by hand as one aggregate query
  (the least SQL a check can send), and prints GX's time as a multiple of it.

Target (issue 9): the full suite under 60 s at 1M rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine

from resources.quality.gx_suites import load_parameters, load_suites, validate_suites
from resources.warehouse.database import resolve_database, scratch_database, sqlalchemy_url, with_database

TARGET_SECONDS = 60
ACCOUNTS = 1000

GENERATE_SQL = """
create schema if not exists marts;
create table marts.dim_accounts as
select 'acct_' || a as account_key, (array['EUR', 'GBP', 'RON', 'INR', 'USD'])[1 + a % 5] as currency
from generate_series(1, {accounts}) as a;
create table marts.fct_transactions as
select
    md5(i::text) as transaction_key,
    'acct_' || (1 + i % {accounts}) as account_key,
    case when i % 50 = 0 then 'pending' else 'booked' end as status,
    current_date - (i % 730) as booking_date,
    round(((i % 20000) - 12000) / 100.0, 2)::numeric(18, 2) as amount,
    (array['EUR', 'GBP', 'RON', 'INR', 'USD'])[1 + (i % {accounts}) % 5] as currency,
    (array['groceries', 'rent', 'transport', 'eating_out', 'uncategorised'])[1 + i % 5] as category
from generate_series(1, {rows}) as i;
create table marts.recon_balance_checks as
select
    'acct_' || (1 + i % {accounts}) as account_key,
    current_date - (i / {accounts}) as balance_date,
    case when i % 97 = 0 then 'intraday' else 'agrees' end as check_status
from generate_series(0, {accounts} * 365 - 1) as i;
create table marts.recon_matches as
select md5(i::text) as transaction_key from generate_series(1, {rows}, 2) as i;
create table marts.recon_exceptions as
select 'x' || i as exception_key, (array['missing_in_bank', 'missing_in_ledger'])[1 + i % 2] as reason,
    i % 3 <> 0 as is_open
from generate_series(1, {rows} / 100) as i;
analyze;
"""

# The marts suite's expectations, by hand: one query per suite table.
REFERENCE_SQL = [
    """select count(*) - count(distinct transaction_key), count(*) filter (where amount is null),
        count(*) filter (where currency is null), count(*) filter (where booking_date is null),
        count(*) filter (where currency <> all(%(currencies)s)), count(*) filter (where booking_date > %(today)s)
       from marts.fct_transactions""",
    """select count(*) filter (where a.account_key is null)
       from marts.fct_transactions f left join marts.dim_accounts a using (account_key)""",
    """select count(*) filter (where category is null) from marts.fct_transactions
       where status = 'booked' and amount < 0""",
    """select count(*) - count(distinct account_key), count(*) filter (where currency is null),
        count(*) filter (where currency <> all(%(currencies)s)) from marts.dim_accounts""",
    """select count(*) filter (where check_status not in ('agrees', 'intraday')) from marts.recon_balance_checks""",
    """select count(*) - count(distinct transaction_key) from marts.recon_matches""",
    """select count(*) filter (where reason = 'settlement_sum_break') from marts.recon_exceptions where is_open""",
]


class StatementCounter:
    """Counts the SQL statements every SQLAlchemy engine in the process sends (GX's included)."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> StatementCounter:
        event.listen(Engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: object) -> None:
        self.count += 1


def validate(url: str, window: tuple | None) -> tuple[float, int, bool]:
    suites = load_suites("marts")
    parameters = {**load_parameters(), "today": datetime.now(UTC).date().isoformat()}
    with StatementCounter() as counter:
        started = time.monotonic()
        outcomes = validate_suites(sqlalchemy_url(url), suites, window=window, parameters=parameters)
        seconds = time.monotonic() - started
    return seconds, counter.count, all(o.success for o in outcomes)


def reference_seconds(url: str) -> float:
    parameters = {"currencies": load_parameters()["iso_currencies"], "today": datetime.now(UTC).date()}
    with psycopg.connect(url) as conn:
        started = time.monotonic()
        for query in REFERENCE_SQL:
            conn.execute(query, parameters).fetchall()
        return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of fct_transactions")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)

    home = Path(os.environ.setdefault("BANKFLOW_HOME", ".bankflow")).resolve()
    server = with_database(resolve_database(os.environ.get("BANKFLOW_DATABASE_URL"), home).url, "postgres")
    with scratch_database(server, "bankflow_bench_quality", keep=args.keep) as url:
        started = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            # Integers only, formatted in: several statements cannot be sent with bound parameters.
            conn.execute(GENERATE_SQL.format(rows=int(args.rows), accounts=ACCOUNTS))
        print(f"{args.rows:,} rows generated in {time.monotonic() - started:.1f} s", file=sys.stderr)
        # The first validation pays for importing GX; time it apart from the measured ones.
        warmup, _, _ = validate(url, (datetime.now(UTC).date(), datetime.now(UTC).date()))
        full, full_queries, full_ok = validate(url, None)
        today = datetime.now(UTC).date()
        day, day_queries, _ = validate(url, (today - timedelta(days=3), today))
        reference = min(reference_seconds(url) for _ in range(3))

    print(f"\nmarts suite on {args.rows:,} rows of fct_transactions ({len(load_suites('marts'))} tables)")
    print(f"  first validation (GX import, one day): {warmup:6.1f} s")
    print(
        f"  all rows (quality_audit):              {full:6.1f} s, {full_queries} SQL statements, passed: {full_ok}"
    )
    print(f"  one daily run's days (4 days):         {day:6.1f} s, {day_queries} SQL statements")
    print(f"  reference, one hand-written query per table: {reference:6.2f} s")
    print(f"  GX all rows / reference: {full / reference:4.1f}x")
    print(f"  target: all rows under {TARGET_SECONDS} s: {'met' if full < TARGET_SECONDS else 'NOT met'}")
    return 0 if full_ok else 1


if __name__ == "__main__":
    sys.exit(main())
