"""TrueLayer extract: one run fetches its booking window and lands four raw tables atomically."""

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
from resources.providers.truelayer import PROVIDER, extract_window
from resources.providers.truelayer_resource import TrueLayerResource
from resources.warehouse.resource import WarehouseResource

RAW_TABLES = {
    "truelayer_transactions": "Booked TrueLayer transactions, one row per record, partitioned by posting date.",
    "truelayer_pending_transactions": "TrueLayer pending transactions; each run replaces an account's pending set.",
    "truelayer_accounts": "TrueLayer accounts, latest report of each.",
    "truelayer_balances": "TrueLayer balance snapshots, one per account and fetch day.",
    "truelayer_card_transactions": "Booked TrueLayer card transactions (purchases positive, as cards report them).",
    "truelayer_card_pending_transactions": "TrueLayer pending card transactions; each run replaces a card's set.",
    "truelayer_cards": "TrueLayer card accounts, latest report of each.",
    "truelayer_card_balances": "TrueLayer card balance snapshots (amount owed, credit limit), one per card and day.",
}


@dg.multi_asset(
    specs=raw_asset_specs(RAW_TABLES),
    check_specs=[quarantine_check_spec("raw_truelayer_transactions", PROVIDER)],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=PROVIDER,
    name="raw_truelayer",
)
def raw_truelayer(
    context: dg.AssetExecutionContext, truelayer: TrueLayerResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Fetch accounts and cards, their balances, booked transactions for the partition window
    (plus lookback) and pending transactions from TrueLayer, and land them in raw in one
    transaction: either every table is replaced or none is."""
    window = booking_window(*context.partition_time_window)
    vault = warehouse.vault()
    check_consent(context, vault, PROVIDER, truelayer.connection_name)
    with provider_failures(), truelayer.open_client(vault) as client:
        extract = extract_window(client, window.first_day, window.last_day, datetime.now(UTC).date())
    yield from land_extract(context, warehouse, PROVIDER, extract)
