"""Revolut Business extract: one run fetches its booking window and lands four raw tables atomically."""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from pipelines.partitions import booking_window, daily_partitions
from pipelines.sources.landing import (
    check_consent,
    land_extract,
    provider_failures,
    quarantine_check_spec,
    raw_asset_specs,
)
from resources.extract import window_days
from resources.providers.revolut import PROVIDER, HeldRows, extract_window
from resources.providers.revolut_resource import RevolutResource
from resources.warehouse.resource import WarehouseResource

RAW_TABLES = {
    "revolut_transactions": "Revolut Business transactions (all legs in one row), partitioned by the UTC date "
    "of completed_at; declined/failed/reverted ones by created_at.",
    "revolut_pending_transactions": "Revolut Business pending transactions; each run replaces the pending set.",
    "revolut_accounts": "Revolut Business accounts with their bank details, latest report of each.",
    "revolut_balances": "Revolut Business account balances, one snapshot per account and fetch day.",
}


@dg.multi_asset(
    specs=raw_asset_specs(RAW_TABLES),
    check_specs=[quarantine_check_spec("raw_revolut_transactions", PROVIDER)],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=PROVIDER,
    name="raw_revolut",
)
def raw_revolut(
    context: dg.AssetExecutionContext, revolut: RevolutResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Fetch accounts, balances, transactions booked in the partition window (plus lookback) and
    pending transactions from Revolut Business, and land them in raw in one transaction: either
    every table is replaced or none is."""
    window = booking_window(*context.partition_time_window)
    held = held_rows(warehouse, window_days(window.first_day, window.last_day))
    vault = warehouse.vault()
    check_consent(context, vault, PROVIDER, revolut.connection_name)
    with provider_failures(), revolut.open_client(vault) as client:
        extract = extract_window(
            client, window.first_day, window.last_day, datetime.now(UTC).date(), held=held
        )
    yield from land_extract(context, warehouse, PROVIDER, extract)


def held_rows(warehouse: WarehouseResource, days: list[str]) -> HeldRows:
    """The held rows whose created_at may lie before the usual lookback (see HeldRows)."""
    with warehouse.connect() as conn:
        pending = conn.execute(
            "select record_key, (payload ->> 'created_at')::timestamptz"
            " from raw.revolut_pending_transactions where payload ->> 'created_at' is not null"
        ).fetchall()
        (earliest,) = conn.execute(
            "select min((payload ->> 'created_at')::timestamptz) from raw.revolut_transactions"
            " where partition_key = any(%s)",
            (days,),
        ).fetchone()
    return HeldRows(pending_created=dict(pending), booked_earliest_created=earliest)
