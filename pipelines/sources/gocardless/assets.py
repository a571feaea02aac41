"""GoCardless extract: one run fetches its booking window within the day's per-account call
budget and lands four raw tables atomically."""

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
from resources.providers.gocardless import PROVIDER, CallBudgetExhausted, extract_window
from resources.providers.gocardless_resource import GoCardlessResource
from resources.warehouse.resource import WarehouseResource

RAW_TABLES = {
    "gocardless_transactions": "Booked GoCardless transactions, one row per record, partitioned by booking date.",
    "gocardless_pending_transactions": "GoCardless pending transactions; each run replaces an account's pending set.",
    "gocardless_accounts": "GoCardless account details (/accounts/{id}/details/), latest report of each.",
    "gocardless_balances": "GoCardless balance reports, one per account and fetch day.",
}


@dg.multi_asset(
    specs=raw_asset_specs(RAW_TABLES),
    check_specs=[quarantine_check_spec("raw_gocardless_transactions", PROVIDER)],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=PROVIDER,
    name="raw_gocardless",
)
def raw_gocardless(
    context: dg.AssetExecutionContext, gocardless: GoCardlessResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Fetch account details, balances and booked + pending transactions for the partition window
    (plus lookback) from GoCardless, one call per account and scope, stalest accounts first and
    within the day's 4-per-scope budget, and land them in raw in one transaction. An account whose
    budget is spent keeps its previous rows and is named in the `accounts_skipped` metadata."""
    window = booking_window(*context.partition_time_window)
    vault = warehouse.vault()
    check_consent(context, vault, PROVIDER, gocardless.connection_name)
    try:
        with provider_failures(), gocardless.open_client(vault) as client:
            requisitions = gocardless.requisitions(vault)
            # The requisition, not the vault, says which accounts are linked now (and whether
            # the consent still holds).
            account_ids = [a for r in requisitions for a in client.linked_accounts(r["requisition_id"])]
            history = [r["max_historical_days"] for r in requisitions if r.get("max_historical_days")]
            extract = extract_window(
                client,
                account_ids,
                window.first_day,
                window.last_day,
                datetime.now(UTC).date(),
                budget=gocardless.budget(warehouse.url),
                max_historical_days=min(history) if history else None,
            )
    except dg.Failure as failure:
        # Nothing to retry today when every budget is spent: the next day's schedule will.
        if isinstance(failure.__context__, CallBudgetExhausted):
            raise dg.Failure(description=failure.description, allow_retries=False) from None
        raise
    for reason in extract.skipped:
        context.log.warning(f"skipped {reason}")
    skipped = dg.MetadataValue.md("\n".join(f"- {r}" for r in extract.skipped) or "none")
    for result in land_extract(context, warehouse, PROVIDER, extract):
        if isinstance(result, dg.MaterializeResult):
            result = dg.MaterializeResult(
                asset_key=result.asset_key, metadata={**(result.metadata or {}), "accounts_skipped": skipped}
            )
        yield result
