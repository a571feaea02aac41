"""Benchmark: a day's dbt run with a small and a large history, the same day size.

    python -m bench.dbt_scale [--history 1000000,10000000] [--day-rows 2000] [--accounts 50]
                              [--overrides 100] [--keep] [--json]

For each history size, in a scratch database of its own on the warehouse server
(`BANKFLOW_DATABASE_URL`, else the embedded one):

1. generate the history as TrueLayer raw rows (`raw.truelayer_accounts`, `raw.truelayer_transactions`),
   in SQL on the server: `--day-rows` rows per booking day over `--accounts` accounts, as many days
   as the history needs, payloads shaped as the contract's (§3), amounts as JSON number text;
2. build everything from nothing: `dbt build --full-refresh` without tests over all of history
   (timed: the full refresh figure);
3. set the user's category on `--overrides` rows of one old day (`bankflow categorise`: users
   have some, and applying them must not read the history);
4. land one more day of `--day-rows` rows and time the day's run: `dbt build` without tests, with
   that day's window as the daily pipeline passes it (`--vars` min_date/max_date/lookback_days).

It prints the day's run for each size, the ratio of the largest to the smallest (target <= 1.3:
a day's run should cost the day, not the history) and the full refresh of the smallest.

Only seeds, the snapshot and models are timed: the layer-5 model asset (Python, between the dbt steps in the
pipeline) has no predictions here, and dbt tests are left out because each one re-reads its model.
The run exits non-zero only when a dbt step fails, or fct_transactions or its kept monthly totals
miss rows, so a broken build cannot pass for a fast one. A benchmark, not a test: it never asserts on times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from pipelines.partitions import booking_window
from pipelines.transform.project import DBT_PROJECT_DIR
from resources.warehouse.database import dbt_env, resolve_database, scratch_database, with_database

TARGET_RATIO = 1.3
# Seeds, the snapshot and the models in dependency order, as the pipeline's dbt steps build them.
MODELS_ONLY = ("--exclude", "resource_type:test", "resource_type:unit_test")
LAST_DAY = date(2026, 11, 30)
# Day offsets in the generated rows count from here.
EPOCH = date(2000, 1, 1)
DBT = str(Path(sys.executable).parent / "dbt")
# Its own target folder: a pipeline may be using the project's.
TARGET_PATH = f"target/bench-scale-{os.getpid()}"

ACCOUNTS_SQL = """
insert into raw.truelayer_accounts (payload, source, account_ref, partition_key, record_key, fetched_at, run_id)
select
    jsonb_build_object(
        'account_id', 'bench-' || a,
        'account_type', 'TRANSACTION',
        'display_name', 'Bench account ' || a,
        'currency', 'EUR',
        'account_number', jsonb_build_object('number', lpad(a::text, 8, '0'), 'sort_code', '40-47-84'),
        'provider', jsonb_build_object('provider_id', 'ob-bench', 'display_name', 'Bench Bank')
    ),
    'truelayer', 'bench-' || a, %(last_day)s, 'bench-' || a, now(), 'bench'
from generate_series(1, %(accounts)s::integer) as a
"""

# Row i of day d: mostly card purchases, one in 25 a credit; amounts from a fixed cycle so the run is
# deterministic. Each row's JSON amount is the numeric's own text (no float anywhere).
TRANSACTIONS_SQL = """
insert into raw.truelayer_transactions (payload, source, account_ref, partition_key, record_key, fetched_at, run_id)
select
    jsonb_build_object(
        'transaction_id', 'tx-' || d || '-' || i,
        'timestamp', to_char(day, 'YYYY-MM-DD') || 'T12:00:00+00:00',
        'description', (array['TESCO STORES 2041', 'PRET A MANGER', 'TFL TRAVEL CH', 'AMAZON.CO.UK',
                               'BRITISH GAS', 'SALARY ACME LTD'])[1 + i %% 6],
        'merchant_name', (array['Tesco', 'Pret A Manger', 'Transport for London', 'Amazon',
                                'British Gas', ''])[1 + i %% 6],
        'amount', case when i %% 25 = 0 then (1000 + i %% 500)::numeric
                       else -((i * 37 + d) %% 20000 + 1)::numeric / 100 end,
        'currency', 'EUR',
        'transaction_type', case when i %% 25 = 0 then 'CREDIT' else 'DEBIT' end,
        'transaction_category', case when i %% 25 = 0 then 'CREDIT' else 'PURCHASE' end,
        'transaction_classification', jsonb_build_array('Shopping', 'General'),
        'meta', jsonb_build_object('bank_transaction_id', 'b-' || d || '-' || i)
    ),
    'truelayer',
    'bench-' || (1 + i %% %(accounts)s),
    to_char(day, 'YYYY-MM-DD'),
    'tx-' || d || '-' || i,
    now(),
    'bench'
from generate_series(%(first_day)s::integer, %(last_day)s::integer) as d
cross join lateral (select %(epoch)s::date + d as day) as days
cross join generate_series(1, %(day_rows)s::integer) as i
"""


# All on one old day, so both sizes restate the same rows and months.
OVERRIDES_SQL = """
insert into ops.category_overrides (transaction_key, category, note)
select transaction_key, 'eating_out', 'bench'
from marts.fct_transactions
where booking_date = %(day)s
order by transaction_key
limit %(overrides)s
"""


@dataclass
class SizeResult:
    history_rows: int
    history_days: int
    day_rows: int
    full_refresh_seconds: float
    day_run_seconds: float
    fct_rows: int
    slowest_day_run_nodes: list[tuple[str, float]]


def dbt(url: str, *args: str) -> float:
    """Run one dbt command against `url`; its wall time. Raises with dbt's output when it fails."""
    env = {**os.environ, **dbt_env(url)}
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603
        [
            DBT,
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            TARGET_PATH,
        ],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"dbt {' '.join(args)} failed:\n{done.stdout[-4000:]}")
    return elapsed


def slowest_nodes(count: int = 6) -> list[tuple[str, float]]:
    """The last dbt invocation's slowest nodes (name, seconds), from its run_results.json."""
    results = json.loads((DBT_PROJECT_DIR / TARGET_PATH / "run_results.json").read_text())["results"]
    timed = sorted(results, key=lambda r: r["execution_time"], reverse=True)[:count]
    return [(r["unique_id"].split(".")[-1], round(r["execution_time"], 1)) for r in timed]


def window_vars(first: date, last: date) -> str:
    """The --vars the daily pipeline passes for partitions first..last (pipelines.partitions)."""
    start = datetime.combine(first, datetime.min.time(), UTC)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
    return json.dumps(booking_window(start, end).dbt_vars)


def generate(url: str, accounts: int, day_rows: int, first_day: int, last_day: int) -> None:
    """Days first_day..last_day (offsets from the epoch below) of `day_rows` rows each."""
    with psycopg.connect(url) as conn:
        conn.execute(
            TRANSACTIONS_SQL,
            {
                "accounts": accounts,
                "day_rows": day_rows,
                "first_day": first_day,
                "last_day": last_day,
                "epoch": EPOCH,
            },
        )
        conn.execute("analyze raw.truelayer_transactions")


def measure(
    server_url: str, history_rows: int, day_rows: int, accounts: int, overrides: int, keep: bool
) -> SizeResult:
    days = max(1, history_rows // day_rows)
    dbname = f"bankflow_bench_scale_{history_rows}"
    with scratch_database(server_url, dbname, keep=keep) as url:
        history_last = (LAST_DAY - EPOCH).days - 1
        with psycopg.connect(url) as conn:
            conn.execute(ACCOUNTS_SQL, {"accounts": accounts, "last_day": LAST_DAY.isoformat()})
        print(f"[{history_rows:,}] generating {days:,} days x {day_rows:,} rows ...", flush=True)
        generate(url, accounts, day_rows, history_last - days + 1, history_last)
        history_first = EPOCH + timedelta(days=history_last - days + 1)
        print(f"[{history_rows:,}] full refresh ...", flush=True)
        full = dbt(
            url,
            "build",
            *MODELS_ONLY,
            "--full-refresh",
            "--quiet",
            "--vars",
            window_vars(history_first, EPOCH + timedelta(days=history_last)),
        )
        with psycopg.connect(url) as conn:
            conn.execute(OVERRIDES_SQL, {"overrides": overrides, "day": history_first + timedelta(days=10)})
        generate(url, accounts, day_rows, history_last + 1, history_last + 1)
        print(f"[{history_rows:,}] the day's run ...", flush=True)
        day_run = dbt(url, "build", *MODELS_ONLY, "--quiet", "--vars", window_vars(LAST_DAY, LAST_DAY))
        slowest = slowest_nodes()
        print(
            f"[{history_rows:,}] day's run {day_run:.1f} s; slowest: "
            + ", ".join(f"{n} {t}s" for n, t in slowest),
            flush=True,
        )
        with psycopg.connect(url) as conn:
            fct_rows = conn.execute("select count(*) from marts.fct_transactions").fetchone()[0]
            # The kept monthly totals must hold the day too (they rebuild only changed months).
            totalled = conn.execute(
                "select coalesce(sum(transaction_count), 0) from marts.fct_transactions_monthly"
            ).fetchone()[0]
        expected = (days + 1) * day_rows
        if fct_rows != expected:
            raise RuntimeError(f"fct_transactions has {fct_rows:,} rows, expected {expected:,}")
        if totalled != expected:
            raise RuntimeError(f"fct_transactions_monthly counts {totalled:,} rows, expected {expected:,}")
        return SizeResult(history_rows, days, day_rows, round(full, 1), round(day_run, 1), fct_rows, slowest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--history", default="1000000,10000000", help="history sizes in rows, comma-separated"
    )
    parser.add_argument("--day-rows", type=int, default=2000)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--overrides", type=int, default=100, help="user category overrides on old rows")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.history.split(","))

    target = resolve_database(
        os.environ.get("BANKFLOW_DATABASE_URL"), Path(os.environ.get("BANKFLOW_HOME", ".bankflow"))
    )
    server_url = with_database(target.url, "postgres")
    try:
        results = [
            measure(server_url, size, args.day_rows, args.accounts, args.overrides, args.keep)
            for size in sizes
        ]
    finally:
        shutil.rmtree(DBT_PROJECT_DIR / TARGET_PATH, ignore_errors=True)
    ratio = results[-1].day_run_seconds / results[0].day_run_seconds
    if args.json:
        print(json.dumps({"results": [asdict(r) for r in results], "ratio": round(ratio, 2)}, indent=2))
        return 0
    print(f"\n{'history rows':>14} {'days':>6} {'day rows':>9} {'full refresh s':>15} {'day run s':>10}")
    for r in results:
        print(
            f"{r.history_rows:>14,} {r.history_days:>6,} {r.day_rows:>9,} {r.full_refresh_seconds:>15} {r.day_run_seconds:>10}"
        )
    if len(sizes) > 1:
        verdict = "within" if ratio <= TARGET_RATIO else "MISSES"
        print(
            f"\nday's run, {sizes[-1]:,} vs {sizes[0]:,} rows of history: {ratio:.2f}x ({verdict} the {TARGET_RATIO}x target)"
        )
    else:
        print("\none size of history: no ratio (give two sizes, e.g. --history 1000000,10000000)")
    print(f"full refresh at {sizes[0]:,} rows: {results[0].full_refresh_seconds} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
