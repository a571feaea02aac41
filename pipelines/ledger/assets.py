"""The company ledger's export files as a Dagster asset: the books reconciliation matches against,
when the accounting system drops files rather than exposing a table."""

from datetime import UTC, datetime

import dagster as dg

from resources.ledger_drop import LedgerDropResource
from resources.ledger_export import LEDGER_EXPORT_TABLE, export_files, land_ledger_export
from resources.warehouse.resource import WarehouseResource


@dg.asset(
    key="raw_ledger_export_entries",
    group_name="ledger",
    kinds={"python", "postgres"},
    metadata={"dagster/table_name": f"raw.{LEDGER_EXPORT_TABLE}"},
)
def raw_ledger_export_entries(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, ledger_drop: LedgerDropResource
) -> dg.MaterializeResult:
    """Every CSV/JSON ledger export in BANKFLOW_LEDGER_DROP_DIR, checked row by row and landed
    untouched in raw.ledger_export_entries (a file replaces its own earlier landing). Bad rows, and
    files that are not ledger exports, go to ops.quarantine with the reason; the run goes on."""
    folder = ledger_drop.path()
    files = export_files(folder)
    fetched_at = datetime.now(UTC)
    landings = []
    with warehouse.connect() as conn:
        for index, path in enumerate(files, start=1):
            landing = land_ledger_export(conn, path, run_id=context.run.run_id, fetched_at=fetched_at)
            landings.append(landing)
            if landing.error:
                context.log.warning(f"Quarantined {landing.error}")
            context.log.info(
                f"[{index}/{len(files)}] {path.name}: {landing.rows_landed} entries landed,"
                f" {landing.rows_quarantined} rows quarantined"
            )
    return dg.MaterializeResult(
        metadata={
            "folder": str(folder),
            "files": len(files),
            "entries_landed": sum(landing.rows_landed for landing in landings),
            "rows_quarantined": sum(landing.rows_quarantined for landing in landings),
            "files_quarantined": dg.MetadataValue.json(
                [landing.error for landing in landings if landing.error]
            ),
            "per_file": dg.MetadataValue.md(
                "| file | format | entries | quarantined |\n|---|---|---|---|\n"
                + "".join(
                    f"| {landing.path.name} | {landing.format or 'not a ledger export'} |"
                    f" {landing.rows_landed} | {landing.rows_quarantined} |\n"
                    for landing in landings
                )
            ),
        }
    )
