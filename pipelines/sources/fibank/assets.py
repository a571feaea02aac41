"""Fibank e-banking extract: one run signs in, reads its booking window in 30-day statements and
lands three raw tables atomically; an account the bank fails to serve keeps its previous rows."""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from pipelines.partitions import booking_window, daily_partitions
from pipelines.sources.landing import land_extract, provider_failures, quarantine_check_spec, raw_asset_specs
from resources.providers.fibank import PROVIDER, SUMMARY_TYPES, FibankExtract, extract_window
from resources.providers.fibank_resource import FibankResource
from resources.warehouse.resource import WarehouseResource

RAW_TABLES = {
    "fibank_transactions": "Fibank e-banking statement movements (GetCustBal), one row per acEntrySrNo, "
    "partitioned by the Europe/Sofia day of dateTime. Summary rows (OP/CL/DT/CT) are not landed.",
    "fibank_accounts": "Fibank accounts from getFilteredAccounts, latest report of each.",
    "fibank_balances": "Fibank balances: the closing (CL) row of a statement reaching today, one per "
    "account and fetch day.",
}
ACCOUNTS_CHECK = "every_account_read"


@dg.multi_asset(
    specs=raw_asset_specs(RAW_TABLES),
    check_specs=[
        quarantine_check_spec("raw_fibank_transactions", PROVIDER),
        dg.AssetCheckSpec(
            ACCOUNTS_CHECK,
            asset="raw_fibank_transactions",
            description="Every Fibank account listed was read; a failed one kept its previous rows "
            "and is read again by the next run.",
        ),
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=PROVIDER,
    name="raw_fibank",
)
def raw_fibank(
    context: dg.AssetExecutionContext, fibank: FibankResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Sign in to Fibank e-banking, read accounts, statements for the partition window (plus
    lookback) in periods of at most 30 days, and today's closing balances, and land them in raw
    in one transaction. Statement summary rows are counted, not landed; an account whose
    statements fail is reported (warning, metadata, check) and keeps its previous rows."""
    window = booking_window(*context.partition_time_window)
    with provider_failures(), fibank.open_client() as client:
        extract = extract_window(client, window.first_day, window.last_day, datetime.now(UTC))
    for iban, reason in extract.failed_accounts.items():
        context.log.warning(f"fibank account {iban} not read, its previous rows are kept: {reason}")
    report = run_report(extract)
    for result in land_extract(context, warehouse, PROVIDER, extract):
        if isinstance(result, dg.MaterializeResult):
            result = dg.MaterializeResult(
                asset_key=result.asset_key, metadata={**(result.metadata or {}), **report}
            )
        yield result
    yield dg.AssetCheckResult(
        asset_key="raw_fibank_transactions",
        check_name=ACCOUNTS_CHECK,
        passed=not extract.failed_accounts,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"accounts_failed": dg.MetadataValue.json(extract.failed_accounts)},
    )


def run_report(extract: FibankExtract) -> dict[str, dg.MetadataValue]:
    """What a Fibank run adds to every table's metadata: chunking, failures, summary rows dropped."""
    return {
        "statement_periods": dg.MetadataValue.int(len(extract.query_windows)),
        "statement_calls": dg.MetadataValue.int(extract.statement_calls),
        "accounts_failed": dg.MetadataValue.int(len(extract.failed_accounts)),
        "failed_accounts": dg.MetadataValue.json(extract.failed_accounts),
        "summary_rows_dropped": dg.MetadataValue.int(sum(extract.summary_rows.values())),
        "summary_rows_by_type": dg.MetadataValue.json(
            {kind: extract.summary_rows.get(kind, 0) for kind in SUMMARY_TYPES}
        ),
    }
