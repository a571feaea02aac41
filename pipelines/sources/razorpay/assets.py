"""Razorpay extract: one run fetches its IST days and lands four raw tables atomically."""

from collections.abc import Iterator

import dagster as dg

from pipelines.partitions import booking_window, daily_partitions
from pipelines.sources.landing import land_extract, provider_failures, quarantine_check_spec, raw_asset_specs
from resources.providers.razorpay import PROVIDER, TABLES, extract_window
from resources.providers.razorpay_resource import RazorpayResource
from resources.warehouse.resource import WarehouseResource

RAW_TABLES = {
    TABLES[
        "payments"
    ]: "Razorpay payments (the merchant's gateway records, amounts in paise), partitioned by "
    "the IST date of created_at.",
    TABLES["refunds"]: "Razorpay refunds, partitioned by the IST date of created_at.",
    TABLES["settlements"]: "Razorpay settlements (net payouts to the merchant's bank, with their UTR), "
    "partitioned by the IST date of created_at.",
    TABLES["recon"]: "Razorpay combined settlement recon items (payments, refunds, adjustments of each "
    "settlement), partitioned by the IST day they were settled.",
}


@dg.multi_asset(
    specs=raw_asset_specs(RAW_TABLES),
    check_specs=[quarantine_check_spec("raw_razorpay_payments", PROVIDER)],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=PROVIDER,
    name="raw_razorpay",
)
def raw_razorpay(
    context: dg.AssetExecutionContext, razorpay: RazorpayResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Fetch the payments, refunds and settlements Razorpay created on the partition window's IST
    days (plus lookback) and the recon items settled on them, and land them in raw in one
    transaction: either every table is replaced for those days or none is."""
    window = booking_window(*context.partition_time_window)
    with provider_failures(), razorpay.open_client() as client:
        extract = extract_window(client, window.first_day, window.last_day)
    yield from land_extract(context, warehouse, PROVIDER, extract)
