"""TrueLayer extract: one run fetches its booking window and lands four raw tables atomically."""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from pipelines.partitions import booking_window, daily_partitions
from resources.errors import AuthorizationRequired, ProviderError
from resources.http import loads_exact
from resources.providers.truelayer import PROVIDER, TableLoad, WindowExtract, extract_window
from resources.providers.truelayer_resource import TrueLayerResource
from resources.warehouse.loader import LoadResult, land
from resources.warehouse.quarantine import quarantine
from resources.warehouse.resource import WarehouseResource

RAW_TABLES = {
    "truelayer_transactions": "Booked TrueLayer transactions, one row per record, partitioned by posting date.",
    "truelayer_pending_transactions": "TrueLayer pending transactions; each run replaces an account's pending set.",
    "truelayer_accounts": "TrueLayer accounts, latest report of each.",
    "truelayer_balances": "TrueLayer balance snapshots, one per account and fetch day.",
}
PREVIEW_ROWS = 10


@dg.multi_asset(
    specs=[
        dg.AssetSpec(f"raw_{table}", description=description, group_name="raw", kinds={"postgres"})
        for table, description in RAW_TABLES.items()
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool=PROVIDER,
    name="raw_truelayer",
)
def raw_truelayer(
    context: dg.AssetExecutionContext, truelayer: TrueLayerResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    """Fetch accounts, balances, booked transactions for the partition window (plus lookback)
    and pending transactions from TrueLayer, and land them in raw in one transaction: either
    every table is replaced or none is."""
    window = booking_window(*context.partition_time_window)
    fetched_at = datetime.now(UTC)
    try:
        with truelayer.open_client(warehouse.vault()) as client:
            extract = extract_window(client, window.first_day, window.last_day, fetched_at.date())
    except AuthorizationRequired as exc:
        raise dg.Failure(description=str(exc), metadata={"provider": PROVIDER}, allow_retries=False) from None
    except ProviderError as exc:
        raise dg.Failure(description=str(exc), metadata={"provider": PROVIDER}) from None

    with warehouse.connect() as conn, conn.transaction():
        results = {
            load.table: land(
                conn,
                table=load.table,
                source=PROVIDER,
                records=load.records,
                scope=load.scope,
                run_id=context.run.run_id,
                fetched_at=fetched_at,
            )
            for load in extract.loads
        }
        quarantined = quarantine(conn, source=PROVIDER, items=extract.quarantined, run_id=context.run.run_id)
    if quarantined:
        context.log.warning(
            f"{quarantined} TrueLayer records quarantined (ops.quarantine, run {context.run_id})"
        )

    for table, result in results.items():
        yield dg.MaterializeResult(
            asset_key=f"raw_{table}",
            metadata=_metadata(table, result, extract, quarantined),
        )


def _metadata(table: str, result: LoadResult, extract: WindowExtract, quarantined: int) -> dict[str, object]:
    metadata: dict[str, object] = {
        "rows_landed": dg.MetadataValue.int(result.rows_inserted),
        "rows_replaced": dg.MetadataValue.int(result.rows_deleted),
        "accounts": dg.MetadataValue.int(len(extract.accounts)),
        "window_fetched": dg.MetadataValue.text(f"{extract.first_day} .. {extract.last_day}"),
        "records_quarantined": dg.MetadataValue.int(quarantined),
        "table": dg.MetadataValue.text(f"raw.{table}"),
    }
    if table in ("truelayer_transactions", "truelayer_pending_transactions"):
        metadata["preview"] = dg.MetadataValue.md(
            _preview(next(x for x in extract.loads if x.table == table))
        )
    return metadata


def _preview(load: TableLoad) -> str:
    lines = ["| date | description | amount | currency |", "|---|---|---|---|"]
    for record in load.records[:PREVIEW_ROWS]:
        txn = loads_exact(record.payload)
        description = str(txn.get("description", "")).replace("|", "/")
        lines.append(
            f"| {record.partition_key} | {description} | {txn.get('amount')} | {txn.get('currency')} |"
        )
    return "\n".join(lines)
