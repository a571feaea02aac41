"""Benchmark: the HTTP export of fct_transactions, every page, against `psql \\copy` of the same rows.

    python -m bench.export [--rows N] [--days D] [--limit L] [--format csv|json]
        [--paging cursor|offset] [--repeat K] [--json]

Builds a scratch database with `marts.fct_transactions` (the mart's columns and indexes, N rows
generated in SQL over D booking days), serves it with the export's app (`resources.export_api`,
the app `bankflow serve` runs) under uvicorn in its own process, and times a client that fetches
`/transactions?from=...&to=...&limit=L` page after page until the last page: with `--paging
cursor` (the default) CSV follows `X-Next-Cursor` and JSON its `next` link (which carries the
cursor); with `--paging offset` both follow the offset (`X-Next-Offset`, `offset=` in the query),
as clients written before the cursor do. The reference is `psql \\copy (select ... order by ...)
to stdout csv` of the same rows in the same order (the export's order: booking_date, then
transaction_key), psql's start and connection included. Also timed: the same rows as one query through
`read_page(limit=None)` (no HTTP, no paging), which separates what the paging costs from what the
rows cost.

Both sides are checked afterwards: the same transaction keys in the same order and the same sum of
amounts. A benchmark, not a test: it prints times and never asserts on them; it exits non-zero
only when the two sides disagree. Uses BANKFLOW_DATABASE_URL if set, else the embedded server.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from bench.load import find_psql
from resources.marts_export import list_marts, read_page
from resources.warehouse.database import libpq_params, resolve_database, scratch_database, with_database

DBNAME = "bankflow_bench_export"
FIRST_DAY = date(2024, 1, 1)

# marts.fct_transactions as dbt builds it (column order and types read from a demo warehouse).
FCT_TRANSACTIONS_DDL = """
create table marts.fct_transactions (
    transaction_key text,
    source text,
    reported_by text,
    account_key text,
    source_transaction_id text,
    entry_reference text,
    end_to_end_id text,
    status text,
    supersedes_transaction_key text,
    booking_date date,
    value_date date,
    booked_at timestamptz,
    amount numeric,
    currency text,
    amount_reporting numeric,
    fx_rate numeric,
    counterparty_name text,
    counterparty_iban text,
    merchant_name text,
    mcc text,
    description text,
    bank_transaction_code text,
    category text,
    category_source text,
    is_internal_transfer boolean,
    transfer_group_key text,
    balance_after numeric,
    raw_record_key text
)
"""

# Deterministic rows: amounts with two decimals (exact numerics), a few currencies and categories.
GENERATE_SQL = """
insert into marts.fct_transactions
select
    md5('txn' || n) as transaction_key,
    (array['truelayer', 'revolut', 'gocardless', 'berlin_group'])[1 + n %% 4] as source,
    (array['truelayer', 'revolut', 'gocardless', 'berlin_group'])[1 + n %% 4] as reported_by,
    md5('acct' || n %% 40) as account_key,
    'src-' || n as source_transaction_id,
    case when n %% 3 = 0 then 'ref-' || n end as entry_reference,
    case when n %% 5 = 0 then 'e2e-' || n end as end_to_end_id,
    case when n %% 50 = 0 then 'pending' else 'booked' end as status,
    null as supersedes_transaction_key,
    %(first_day)s::date + n %% %(days)s as booking_date,
    %(first_day)s::date + n %% %(days)s + n %% 2 as value_date,
    (%(first_day)s::date + n %% %(days)s) + (n %% 86400) * interval '1 second' as booked_at,
    round(((n::bigint * 7919) %% 200000 - 100000) / 100.0, 2) as amount,
    (array['EUR', 'GBP', 'USD', 'RON'])[1 + n %% 4] as currency,
    round(((n::bigint * 7919) %% 200000 - 100000) / 100.0 * 1.1, 2) as amount_reporting,
    1.1 as fx_rate,
    'Counterparty ' || n %% 500 as counterparty_name,
    case when n %% 7 = 0 then 'GB33BUKB2020155555' || lpad((n %% 10000)::text, 4, '0') end as counterparty_iban,
    case when n %% 2 = 0 then 'Merchant ' || n %% 300 end as merchant_name,
    case when n %% 2 = 0 then (5000 + n %% 900)::text end as mcc,
    'CARD PAYMENT TO MERCHANT ' || n %% 300 || ' REF ' || n as description,
    'PMNT' as bank_transaction_code,
    (array['groceries', 'transport', 'eating_out', 'bills', 'income', 'shopping'])[1 + n %% 6] as category,
    (array['rule', 'mcc', 'provider', 'model'])[1 + n %% 4] as category_source,
    n %% 40 = 0 as is_internal_transfer,
    case when n %% 40 = 0 then md5('pair' || n / 2) end as transfer_group_key,
    round((n %% 1000000) / 100.0, 2) as balance_after,
    'raw-' || n as raw_record_key
from generate_series(1, %(rows)s) as n
"""

# The indexes dbt gives the model (models/marts/core/fct_transactions.sql).
INDEXES = (
    ("transaction_key",),
    ("booking_date",),
    ("status",),
    ("transfer_group_key",),
    ("category_source",),
    ("booking_date", "transaction_key"),
)

# The export's app, as `bankflow serve` runs it, in a process of its own.
SERVER = """
import sys, uvicorn
from resources.export_api import export_app
url, token, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
uvicorn.run(export_app(url, token), host="127.0.0.1", port=port, log_level="warning")
"""


@dataclass(frozen=True)
class Round:
    round: int
    export_s: float
    psql_s: float
    one_query_s: float
    pages: int

    @property
    def ratio(self) -> float:
        return self.export_s / self.psql_s


@dataclass(frozen=True)
class Sides:
    keys: list[str]
    amount_sum: Decimal


def build(url: str, rows: int, days: int, *, seek_index: bool = True) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("create schema if not exists marts")
        conn.execute(FCT_TRANSACTIONS_DDL)
        conn.execute(GENERATE_SQL, {"rows": rows, "days": days, "first_day": FIRST_DAY})
        for columns in INDEXES if seek_index else INDEXES[:-1]:
            conn.execute(
                sql.SQL("create index on marts.fct_transactions ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns))
                )
            )
        conn.execute("analyze marts.fct_transactions")


def ordered_select(conn: psycopg.Connection, first: date, last: date) -> str:
    """The export's query without its paging, as literal SQL for psql."""
    mart = list_marts(conn)["fct_transactions"]
    order = mart.order
    query = sql.SQL("select {} from marts.fct_transactions where {} >= {} and {} <= {} order by {}").format(
        sql.SQL(", ").join(map(sql.Identifier, mart.columns)),
        sql.Identifier(mart.date_column),
        sql.Literal(first),
        sql.Identifier(mart.date_column),
        sql.Literal(last),
        sql.SQL(", ").join(map(sql.Identifier, order)),
    )
    return query.as_string(conn)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(url: str, token: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER, url, token, str(port)])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/marts", headers={"Authorization": f"Bearer {token}"}).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("the export server did not answer within 60 s")


def fetch_all(
    client: httpx.Client, fmt: str, paging: str, first: date, last: date, limit: int
) -> tuple[float, list[str]]:
    """Every page, as a spreadsheet tool would follow them; returns the time and the bodies."""
    bodies: list = []
    after: dict[str, str | int] = {}
    start = time.perf_counter()
    while True:
        params = {"from": first, "to": last, "limit": limit, "format": fmt, **after}
        response = client.get("/transactions", params=params)
        response.raise_for_status()
        if fmt == "csv":
            bodies.append(response.text)
            cursor, offset = response.headers.get("x-next-cursor"), response.headers.get("x-next-offset")
        else:
            body = response.json()
            bodies.append(body)
            cursor, offset = body["next_cursor"], body["offset"]
            offset = offset + body["limit"] if body["next"] and offset is not None else None
        if paging == "cursor" and cursor:
            after = {"cursor": cursor}
        elif paging == "offset" and offset is not None:
            after = {"offset": int(offset)}
        else:
            break
    return time.perf_counter() - start, bodies


def export_sides(fmt: str, bodies: list) -> Sides:
    keys: list[str] = []
    total = Decimal(0)
    for body in bodies:
        rows = csv.DictReader(io.StringIO(body)) if fmt == "csv" else body["rows"]
        for row in rows:
            keys.append(row["transaction_key"])
            total += Decimal(row["amount"])
    return Sides(keys, total)


def time_psql(psql: str, url: str, query: str) -> tuple[float, str]:
    params = libpq_params(url)
    env = {**os.environ, "PGHOST": params["host"], "PGPORT": str(params["port"]), "PGUSER": params["user"]}
    env["PGDATABASE"] = params["dbname"]
    if params.get("password"):
        env["PGPASSWORD"] = params["password"]
    start = time.perf_counter()
    done = subprocess.run(
        [
            psql,
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            f"\\copy ({query}) to stdout with (format csv, header)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - start, done.stdout


def psql_sides(text: str) -> Sides:
    keys: list[str] = []
    total = Decimal(0)
    for row in csv.DictReader(io.StringIO(text)):
        keys.append(row["transaction_key"])
        total += Decimal(row["amount"])
    return Sides(keys, total)


def time_one_query(url: str, first: date, last: date) -> tuple[float, int]:
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        page = read_page(conn, "fct_transactions", date_from=first, date_to=last, limit=None)
        return time.perf_counter() - start, len(page.rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=200_000, help="rows in fct_transactions (default 200,000)"
    )
    parser.add_argument("--days", type=int, default=730, help="booking days they spread over (default 730)")
    parser.add_argument(
        "--limit", type=int, default=10_000, help="rows per page (default 10,000, the maximum)"
    )
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument(
        "--paging", choices=("cursor", "offset"), default="cursor", help="how to ask for the next page"
    )
    parser.add_argument(
        "--no-seek-index",
        action="store_true",
        help="leave out the (booking_date, transaction_key) index, as in a warehouse built before it",
    )
    parser.add_argument("--repeat", type=int, default=2, help="timed rounds, order alternating (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--json", action="store_true", help="also print a one-line JSON summary")
    args = parser.parse_args(argv)
    if min(args.rows, args.days, args.limit, args.repeat) < 1:
        parser.error("--rows, --days, --limit and --repeat must be positive")

    target = resolve_database(
        os.environ.get("BANKFLOW_DATABASE_URL"), Path(os.environ.get("BANKFLOW_HOME", ".bankflow"))
    )
    psql = find_psql(use_system=not target.embedded)
    first, last = FIRST_DAY, FIRST_DAY + timedelta(days=args.days - 1)
    token = secrets.token_urlsafe(24)
    rounds: list[Round] = []
    ok = True
    with scratch_database(with_database(target.url, "postgres"), DBNAME, keep=args.keep) as url:
        print(f"building marts.fct_transactions: {args.rows:,} rows over {args.days} days ...", flush=True)
        build_start = time.perf_counter()
        build(url, args.rows, args.days, seek_index=not args.no_seek_index)
        with psycopg.connect(url) as conn:
            server_version = conn.execute("show server_version").fetchone()[0]
            size = conn.execute("select pg_size_pretty(pg_table_size('marts.fct_transactions'))").fetchone()[
                0
            ]
            query = ordered_select(conn, first, last)
        print(f"built in {time.perf_counter() - build_start:.1f} s (table {size}, not timed)")
        print(
            f"server: {'embedded' if target.embedded else 'external'} PostgreSQL {server_version}; psql: {psql}"
        )
        process, base = start_server(url, token)
        try:
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600
            ) as client:
                for index in range(args.repeat):
                    export_first = index % 2 == 0
                    timed: dict[str, float] = {}
                    for side in ("export", "psql") if export_first else ("psql", "export"):
                        if side == "export":
                            timed["export"], bodies = fetch_all(
                                client, args.format, args.paging, first, last, args.limit
                            )
                        else:
                            timed["psql"], text = time_psql(psql, url, query)
                    one_query, one_query_rows = time_one_query(url, first, last)
                    served, reference = export_sides(args.format, bodies), psql_sides(text)
                    if served != reference or one_query_rows != len(reference.keys):
                        ok = False
                        print(
                            f"MISMATCH: export {len(served.keys):,} rows (sum {served.amount_sum}), "
                            f"psql {len(reference.keys):,} rows (sum {reference.amount_sum}), "
                            f"one query {one_query_rows:,} rows"
                        )
                    rounds.append(Round(index + 1, timed["export"], timed["psql"], one_query, len(bodies)))
                    r = rounds[-1]
                    print(
                        f"round {r.round} ({'export' if export_first else 'psql'} first): "
                        f"export {r.export_s:.2f} s in {r.pages} pages, psql \\copy {r.psql_s:.2f} s, "
                        f"ratio {r.ratio:.2f}x; one query (read_page, no limit) {r.one_query_s:.2f} s",
                        flush=True,
                    )
        finally:
            process.terminate()
            process.wait(timeout=30)

    median = statistics.median(r.ratio for r in rounds)
    print(
        f"\nexport of {args.rows:,} rows ({args.format}, {args.limit:,} per page, by {args.paging}) "
        f"vs psql \\copy: "
        f"median {median:.2f}x over {len(rounds)} rounds"
        + ("" if ok else "  -- THE SIDES DISAGREE, see above")
    )
    if args.json:
        summary = {
            "rows": args.rows,
            "days": args.days,
            "limit": args.limit,
            "format": args.format,
            "paging": args.paging,
            "seek_index": not args.no_seek_index,
            "server": f"{'embedded' if target.embedded else 'external'} PostgreSQL {server_version}",
            "rounds": [asdict(r) | {"ratio": round(r.ratio, 2)} for r in rounds],
            "median_ratio": round(median, 2),
            "sides_agree": ok,
        }
        print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
