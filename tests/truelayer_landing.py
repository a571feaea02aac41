"""TrueLayer rows landed through the loader (as an extract lands them) and dbt runs with explicit
windows, on a scratch database: what the incremental-build tests share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from pipelines.partitions import booking_window
from pipelines.transform.project import DBT_PROJECT_DIR
from resources.warehouse.database import dbt_env
from resources.warehouse.loader import RawRecord, ReplaceScope, land

ACCOUNT = "acc-restaging"
DAY_1 = date(2026, 3, 2)


def transaction(txn_id: str, day: date, amount: str, description: str) -> str:
    # Amounts as JSON number text, as the extract lands them.
    fields = {
        "transaction_id": txn_id,
        "timestamp": f"{day.isoformat()}T00:00:00+00:00",
        "description": description,
        "currency": "EUR",
        "transaction_type": "DEBIT",
        "transaction_category": "PURCHASE",
    }
    return json.dumps(fields)[:-1] + f', "amount": {amount}}}'


def land_day(
    url: str, day: date, rows: list[tuple[str, str, str]], fetched_at: datetime, account: str = ACCOUNT
) -> None:
    """Replace the day's partition with `rows` (id, amount, description), as a re-fetch of that day does."""
    records = [
        RawRecord(transaction(txn_id, day, amount, text), day.isoformat(), txn_id, account)
        for txn_id, amount, text in rows
    ]
    with psycopg.connect(url) as conn:
        land(
            conn,
            table="truelayer_transactions",
            source="truelayer",
            records=records,
            scope=ReplaceScope(partition_keys=[day.isoformat()], account_refs=[account]),
            run_id="test",
            fetched_at=fetched_at,
        )


def land_account(url: str, account: str) -> None:
    payload = json.dumps({"account_id": account, "currency": "EUR", "display_name": "Current"})
    record = RawRecord(payload, DAY_1.isoformat(), account, account)
    with psycopg.connect(url) as conn:
        land(
            conn,
            table="truelayer_accounts",
            source="truelayer",
            records=[record],
            scope=ReplaceScope(partition_keys=[DAY_1.isoformat()], account_refs=[account]),
            run_id="test",
            fetched_at=at(0),
        )


def dbt(url: str, *args: str) -> None:
    """`dbt <args>` against the scratch database; fails the test with dbt's output."""
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *args, "--profiles-dir", str(DBT_PROJECT_DIR)]
        # Per test worker, like every dbt target folder of the tests (conftest).
        + ["--target-path", f"target/incremental_build_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **dbt_env(url)},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-4000:]


def window_vars(day: date) -> str:
    """The day's run as the pipeline passes it: partition `day`, lookback included."""
    start = datetime.combine(day, datetime.min.time(), UTC)
    return json.dumps(booking_window(start, start + timedelta(days=1)).dbt_vars)


def at(hour: int) -> datetime:
    return datetime(2026, 3, 20, hour, tzinfo=UTC)
