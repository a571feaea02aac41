"""Berlin Group NextGenPSD2 extract: one run fetches its booking window and lands four raw tables atomically."""

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
from resources.providers.berlin_group import PROVIDER, extract_window
from resources.providers.berlin_group_resource import BerlinGroupResource
from resources.warehouse.resource import WarehouseResource

RAW_TABLES = {
    "berlin_group_transactions": "Booked Berlin Group (PSD2) transactions, one row per record, partitioned by bookingDate.",
    "berlin_group_pending_transactions": "Berlin Group pending transactions; each run replaces an account's pending set.",
    "berlin_group_accounts": "Berlin Group accounts, latest report of each (keyed by IBAN).",
    "berlin_group_balances": "Berlin Group balances responses, one per account and fetch day.",
}


@dg.multi_asset(
    specs=raw_asset_specs(RAW_TABLES),
    check_specs=[quarantine_check_spec("raw_berlin_group_transactions", PROVIDER)],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=PROVIDER,
    name="raw_berlin_group",
)
def raw_berlin_group(
    context: dg.AssetExecutionContext, berlin_group: BerlinGroupResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Fetch accounts, balances, booked and pending transactions (bookingStatus=both) for the
    partition window (plus lookback) from a Berlin Group bank and land them in raw in one
    transaction. Reads are planned against frequencyPerDay (stalest accounts first); an account
    whose daily budget is spent keeps its previous rows until tomorrow's run."""
    window = booking_window(*context.partition_time_window)
    today = datetime.now(UTC).date()
    vault = warehouse.vault()
    check_consent(context, vault, PROVIDER, berlin_group.connection_name)
    with provider_failures(), berlin_group.open_client(vault) as client:
        extract = extract_window(
            client, window.first_day, window.last_day, today, berlin_group.call_budget(warehouse.url)
        )
    if extract.deferred and not extract.account_refs:
        raise dg.Failure(
            description=(
                f"{PROVIDER}: the daily access limit (frequencyPerDay) is used up; nothing was fetched "
                "and the previous data is unchanged. The next run after 00:00 UTC fetches again."
            ),
            metadata={"provider": PROVIDER, "accounts_deferred": len(extract.deferred)},
            allow_retries=False,
        )
    if extract.deferred:
        context.log.warning(
            f"{len(extract.deferred)} {PROVIDER} account(s) deferred to tomorrow: daily access limit reached"
        )
    if extract.first_day != extract.requested_first_day:
        context.log.warning(
            f"{PROVIDER}: the bank serves transactions only from {extract.first_day} (PERIOD_INVALID for "
            f"{extract.requested_first_day}); earlier days were left as they were"
        )
    yield from land_extract(context, warehouse, PROVIDER, extract)
