"""Benchmark: reconciliation of N bank lines against N ledger entries, matched in Postgres.

    python -m bench.recon [--sizes 100000,1000000] [--accounts 50] [--keep] [--json]

For each size, in a scratch database of its own on the warehouse server (`BANKFLOW_DATABASE_URL`,
else the embedded one):

1. generate, in SQL on the server, N booked bank lines over `--accounts` accounts and a year of
   days, and the ledger that explains them. Of the entries:
   - 70% carry the reference that is in the line's text;
   - 10% carry it typed differently;
   - 15% carry no reference and the name in another case;
   - 2% are three invoices paid by one line;
   - 3% of the lines are in no entry, and 3% more entries are never paid.

   The tables the recon models read (`fct_transactions`, `dim_accounts`, the Razorpay staging
   tables, the daily balances) are created as plain tables with only the columns they use;
2. run the recon models as the pipeline builds them (`dbt seed` of the rules, then `dbt run` of
   the recon models, without tests), timed;
3. while dbt runs, sample memory every 0.2 s: the Postgres server processes' private memory
   (USS, summed) and dbt's peak RSS.

The reference for the ratio is the cheapest possible match of the same data: one hash join of
lines and entries on the reference. It prints time, memory and matched pairs per size, and how
time grows from the smallest size to the largest (linear: the ratio of sizes). The issue's target
is under 120 s for 1,000,000 against 1,000,000 on a 2-core machine.

A benchmark, not a test: it never asserts on times. It exits non-zero when a dbt step fails or
when fewer than 90% of the generated matches are found, so a broken run cannot pass for a fast one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import psycopg

from bench.dbt_scale import dbt, slowest_nodes
from resources.warehouse.database import bootstrap_schemas, resolve_database, scratch_database, with_database

RECON_MODELS = (
    "stg_ledger__entries",
    "stg_ledger__export_entries",
    "stg_ops__recon_verdicts",
    "stg_ops__recon_resolutions",
    "int_recon_bank_lines+",
    "int_recon_ledger_entries+",
)
TARGET_SECONDS = 120
MIN_MATCHED_SHARE = 0.9

# The recon models' inputs from the rest of the pipeline, reduced to the columns they read.
INPUTS_SQL = """
create schema if not exists marts;
create schema if not exists staging;
create table marts.dim_accounts (account_key text primary key, iban text, provider_account_id text);
create table marts.fct_transactions (
    transaction_key text primary key, account_key text, source text, status text, booking_date date,
    amount numeric(18, 2), currency text, counterparty_name text, merchant_name text,
    entry_reference text, end_to_end_id text, description text, is_internal_transfer boolean
);
create table staging.stg_razorpay__settlements (
    settlement_id text, status text, amount numeric, currency text, utr text, created_date date
);
create table staging.stg_razorpay__settlement_recon_items (settlement_id text, net_amount numeric);
create table marts.fct_account_balances_daily (
    account_key text, balance_date date, currency text, reported_balance numeric,
    derived_balance numeric, balance_difference numeric, reported_source text
);
"""

GENERATE_SQL = """
select setseed(0.42);
insert into marts.dim_accounts
select md5('account' || a), 'GB' || lpad((a % 97)::text, 2, '0') || 'BENCH' || lpad(a::text, 14, '0'), null
from generate_series(1, {accounts}) as a;

create temporary table lines_plan as
select
    i,
    md5('line' || i) as transaction_key,
    md5('account' || (1 + i % {accounts})) as account_key,
    date '2026-01-01' + (i % 365) as booking_date,
    (case when i % 3 = 0 then -1 else 1 end) * round((10 + random() * 4990)::numeric, 2) as amount,
    'CUSTOMER ' || (i % 5000) || ' TRADING' as party,
    'INV-' || i as reference,
    random() as fate
from generate_series(1, {size}) as i;

insert into marts.fct_transactions
select
    transaction_key, account_key, 'bench', 'booked', booking_date, amount, 'GBP', null, null,
    null, null,
    case when amount > 0 then 'FPS CREDIT ' else 'FPS PAYMENT ' end || party || ' ' || reference,
    false
from lines_plan;

-- The ledger: by the line's fate, a clean, mangled, name-only or batched entry, or none.
insert into ledger.entries
select
    'e' || i, (select iban from marts.dim_accounts where account_key = lines_plan.account_key),
    case when amount > 0 then 'receivable' else 'payable' end, reference,
    case when fate < 0.70 then reference when fate < 0.80 then lower(replace(reference, '-', ' ')) end,
    case when fate < 0.80 then party else initcap(party) end,
    amount, 'GBP', booking_date - (i % 4)
from lines_plan
where fate < 0.95;

insert into ledger.entries
select
    'e' || i || '-' || part, (select iban from marts.dim_accounts where account_key = lines_plan.account_key),
    case when amount > 0 then 'receivable' else 'payable' end, reference || '/' || part, null, party,
    case part when 3 then amount - 2 * round(amount / 3, 2) else round(amount / 3, 2) end,
    'GBP', booking_date - 1
from lines_plan
cross join generate_series(1, 3) as part
where fate >= 0.95 and fate < 0.97;

insert into ledger.entries
select
    'unpaid' || i, (select iban from marts.dim_accounts where account_key = md5('account' || (1 + i % {accounts}))),
    'receivable', 'UNPAID-' || i, null, 'NEVER PAYS LTD', round((10 + random() * 4990)::numeric, 2), 'GBP',
    date '2026-01-01' + (i % 365)
from generate_series(1, {size} * 3 / 100) as i;
analyze;
"""

LEDGER_DDL = """
create schema if not exists ledger;
create table ledger.entries (
    entry_id text primary key, bank_account text, entry_type text, document_number text,
    payment_reference text, counterparty_name text, amount numeric(18, 2), currency text, expected_date date
);
"""


@dataclass
class SizeResult:
    size: int
    ledger_entries: int
    generate_seconds: float
    recon_seconds: float
    reference_join_seconds: float
    matched_pairs: int
    matched_lines: int
    exceptions: int
    postgres_peak_uss_mb: float
    dbt_peak_rss_mb: float
    slowest_models: list[tuple[str, float]]


class MemorySampler(threading.Thread):
    """Peak summed private memory (USS) of the Postgres server processes, sampled every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_bytes = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            total = 0
            for process in psutil.process_iter(["name"]):
                if "postgres" not in (process.info["name"] or ""):
                    continue
                try:
                    total += process.memory_full_info().uss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            self.peak_bytes = max(self.peak_bytes, total)
            self._done.wait(0.2)

    def stop(self) -> float:
        self._done.set()
        self.join()
        return self.peak_bytes / 2**20


def reference_join_seconds(url: str) -> float:
    """The cheapest match of the same data: lines and entries hash-joined on the reference word."""
    with psycopg.connect(url) as conn:
        started = time.monotonic()
        conn.execute(
            "select count(*) from ledger.entries as entries"
            " inner join (select transaction_key, split_part(description, ' ', -1) as reference"
            "  from marts.fct_transactions) as lines on lines.reference = entries.payment_reference"
        ).fetchone()
        return time.monotonic() - started


def measure(server_url: str, size: int, accounts: int, keep: bool) -> SizeResult:
    with scratch_database(server_url, f"bankflow_bench_recon_{size}", keep=keep) as url:
        bootstrap_schemas(url)
        started = time.monotonic()
        with psycopg.connect(url) as conn:
            conn.execute(INPUTS_SQL)
            conn.execute(LEDGER_DDL)
            # Integers only, formatted in: several statements cannot be sent with bound parameters.
            conn.execute(GENERATE_SQL.format(size=int(size), accounts=int(accounts)))
            entries = conn.execute("select count(*) from ledger.entries").fetchone()[0]
        generated = time.monotonic() - started
        print(
            f"{size:,} lines, {entries:,} entries generated in {generated:.1f} s; matching ...",
            file=sys.stderr,
        )
        dbt(url, "seed", "--select", "recon_rules")
        sampler = MemorySampler()
        sampler.start()
        seconds = dbt(url, "run", "--select", *RECON_MODELS)
        postgres_mb = sampler.stop()
        slowest = slowest_nodes()
        with psycopg.connect(url) as conn:
            pairs, lines = conn.execute(
                "select count(*), count(distinct transaction_key) from marts.recon_matches"
            ).fetchone()
            exceptions = conn.execute("select count(*) from marts.recon_exceptions").fetchone()[0]
        reference = reference_join_seconds(url)
    return SizeResult(
        size=size,
        ledger_entries=entries,
        generate_seconds=round(generated, 1),
        recon_seconds=round(seconds, 1),
        reference_join_seconds=round(reference, 2),
        matched_pairs=pairs,
        matched_lines=lines,
        exceptions=exceptions,
        postgres_peak_uss_mb=round(postgres_mb, 1),
        # ru_maxrss is in KiB on Linux: the largest child, i.e. the biggest dbt process.
        dbt_peak_rss_mb=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        slowest_models=slowest,
    )


def print_report(results: list[SizeResult]) -> None:
    print(
        f"{'lines':>10} {'entries':>10} {'recon s':>8} {'x ref join':>10} {'pairs':>10} {'pg USS MB':>9} {'dbt MB':>7}"
    )
    for r in results:
        ratio = r.recon_seconds / r.reference_join_seconds if r.reference_join_seconds else float("inf")
        print(
            f"{r.size:>10,} {r.ledger_entries:>10,} {r.recon_seconds:>8.1f} {ratio:>10.1f}"
            f" {r.matched_pairs:>10,} {r.postgres_peak_uss_mb:>9.0f} {r.dbt_peak_rss_mb:>7.0f}"
        )
        print(f"{'':>10} slowest models: {', '.join(f'{name} {s}s' for name, s in r.slowest_models)}")
    small, large = results[0], results[-1]
    if large.size > small.size:
        growth = large.recon_seconds / small.recon_seconds
        print(
            f"time grows {growth:.1f}x for {large.size / small.size:.0f}x the rows"
            f" ({growth / (large.size / small.size):.2f} of linear)"
        )
    verdict = "meets" if large.recon_seconds < TARGET_SECONDS else "misses"
    print(
        f"{large.size:,} x {large.ledger_entries:,}: {large.recon_seconds:.1f} s ({verdict} the {TARGET_SECONDS} s target)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="bank lines per run, comma-separated")
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    home = Path(os.environ.setdefault("BANKFLOW_HOME", ".bankflow")).resolve()
    target = resolve_database(os.environ.get("BANKFLOW_DATABASE_URL"), home)
    server = with_database(target.url, "postgres")
    results = []
    for size in sorted(int(value) for value in args.sizes.split(",")):
        result = measure(server, size, args.accounts, args.keep)
        results.append(result)
        expected = size * 0.95
        if result.matched_lines < MIN_MATCHED_SHARE * expected:
            print(
                f"only {result.matched_lines:,} of ~{expected:,.0f} lines matched: the run is broken",
                file=sys.stderr,
            )
            return 1
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
