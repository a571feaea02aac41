"""Statement files: fetch each file of the run's partitions, land it once, quarantine what cannot be read."""

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from pipelines.files.partitions import statement_file_partitions
from pipelines.sources.landing import raw_asset_specs
from resources.files.connections import parse_file_partition_key
from resources.files.files_resource import StatementFilesResource
from resources.files.landing import ENTRIES_TABLE, STATEMENTS_TABLE, FileLandResult, fetch_and_land
from resources.files.sources import ListedFile
from resources.warehouse.resource import WarehouseResource

RAW_TABLES = {
    ENTRIES_TABLE: "Entries of every statement file (camt.053/052/054, MT940/942, CSV, JSON, OFX) as the "
    "format's parser read them: signed exact amounts, dates, references, parties, remittance, and the "
    "format's own fields under `details`; source = format, file_id = the file's sha256.",
    STATEMENTS_TABLE: "One row per statement of a file: account, period, every balance the file "
    "reports, and the balance check (opening + entries = closing) with its difference.",
}
# Per-file partitions cannot share a run with daily ones: the daily job leaves these assets out by it.
PER_FILE_TAG = {"bankflow/partitioning": "per_file"}
BALANCE_CHECK = "statement_balances_continuous"
PARSED_CHECK = "statement_files_parsed"


@dg.multi_asset(
    specs=[spec.merge_attributes(tags=PER_FILE_TAG) for spec in raw_asset_specs(RAW_TABLES)],
    check_specs=[
        dg.AssetCheckSpec(
            BALANCE_CHECK,
            asset=f"raw_{STATEMENTS_TABLE}",
            description="Every statement of the run's files reconciles: opening + sum of entries = "
            "closing. A mismatch is a warning with the difference (several real banks' files do not).",
        ),
        dg.AssetCheckSpec(
            PARSED_CHECK,
            asset=f"raw_{ENTRIES_TABLE}",
            description="Every file of the run was parsed; a quarantined file is named with its reason "
            "(its original is kept in the local store, see ops.file_ledger).",
        ),
    ],
    partitions_def=statement_file_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="statement_files",
    name="raw_statement_files",
)
def raw_statement_files(
    context: dg.AssetExecutionContext, statement_files: StatementFilesResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Fetch each file of the run (one partition per file sighting) from its drop into the local
    store, register it in ops.file_ledger by sha256 (a re-dropped, renamed or re-listed file lands
    nothing), parse it with the format's parser and replace its rows in raw in one transaction;
    an unreadable file is quarantined with the reason and the run goes on."""
    by_source: dict[str, list[tuple[str, ListedFile]]] = defaultdict(list)
    for key in context.partition_keys:
        connection, path, mtime, size = parse_file_partition_key(key)
        by_source[connection].append((key, ListedFile(path, size, datetime.fromtimestamp(mtime, UTC))))
    store = statement_files.store()
    results: list[tuple[str, FileLandResult]] = []
    fetched_at = datetime.now(UTC)
    with warehouse.connect() as conn:
        for name, files in by_source.items():
            parsers = statement_files.parsers(name)
            bank = statement_files.bank_of(name)
            with statement_files.open_source(name) as source:
                for number, (key, listed) in enumerate(files, start=1):
                    result = fetch_and_land(
                        conn,
                        source,
                        listed,
                        store=store,
                        parsers=parsers,
                        run_id=context.run.run_id,
                        fetched_at=fetched_at,
                        bank=bank,
                    )
                    results.append((key, result))
                    _log(context, name, listed.path, result, number, len(files))
    report = run_report(results)
    for table in (ENTRIES_TABLE, STATEMENTS_TABLE):
        yield dg.MaterializeResult(asset_key=f"raw_{table}", metadata=report)
    mismatches = [
        {"file": key, **_plain(check)} for key, result in results for check in result.balance_mismatches
    ]
    yield dg.AssetCheckResult(
        asset_key=f"raw_{STATEMENTS_TABLE}",
        check_name=BALANCE_CHECK,
        passed=not mismatches,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"mismatches": dg.MetadataValue.json(mismatches[:50]), "count": len(mismatches)},
    )
    quarantined = {key: result.reason for key, result in results if result.outcome == "quarantined"}
    yield dg.AssetCheckResult(
        asset_key=f"raw_{ENTRIES_TABLE}",
        check_name=PARSED_CHECK,
        passed=not quarantined,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantined_files": dg.MetadataValue.json(quarantined)},
    )


def run_report(results: list[tuple[str, FileLandResult]]) -> dict[str, dg.MetadataValue]:
    """What a files run says in the UI: outcomes, entries, accounts, days, quarantine, a preview."""
    outcomes: dict[str, int] = defaultdict(int)
    for _, result in results:
        outcomes[result.outcome] += 1
    parsed = [result for _, result in results if result.outcome == "parsed"]
    # The files' own days and those of the versions they replaced (their entries leave raw).
    days = [
        d for r in parsed for d in (r.period_start, r.period_end, *(r.replaced_days or ())) if d is not None
    ]
    lines = ["| file | format | statements | entries | balance check |", "|---|---|---|---|---|"]
    for key, result in results[:20]:
        status = result.reason if result.outcome == "quarantined" else _balance_summary(result)
        lines.append(
            f"| {key.split(':', 1)[1].rsplit('@', 1)[0]} | {result.format or ''} | {result.statements} "
            f"| {result.entries} | {result.outcome}: {(status or '').replace('|', '/')[:80]} |"
        )
    metadata: dict[str, dg.MetadataValue] = {
        "files": dg.MetadataValue.int(len(results)),
        "files_parsed": dg.MetadataValue.int(outcomes["parsed"]),
        "files_quarantined": dg.MetadataValue.int(outcomes["quarantined"]),
        "files_duplicate": dg.MetadataValue.int(outcomes["duplicate"] + outcomes["seen"]),
        "entries_landed": dg.MetadataValue.int(sum(r.entries for r in parsed)),
        "records_quarantined": dg.MetadataValue.int(sum(r.records_quarantined for r in parsed)),
        "accounts": dg.MetadataValue.json(sorted({a for r in parsed for a in r.accounts})),
        "files_summary": dg.MetadataValue.md("\n".join(lines)),
    }
    if days:
        # The marts refresh after a files run rebuilds these booking days.
        metadata["first_day"] = dg.MetadataValue.text(min(days).isoformat())
        metadata["last_day"] = dg.MetadataValue.text(max(days).isoformat())
    return metadata


def _balance_summary(result: FileLandResult) -> str:
    if not result.balance_checks:
        return ""
    mismatches = result.balance_mismatches
    if mismatches:
        return "mismatch " + ", ".join(str(check["difference"]) for check in mismatches[:3])
    return result.balance_checks[0]["status"] if len(result.balance_checks) == 1 else "reconciled"


def _log(
    context: dg.AssetExecutionContext,
    connection: str,
    path: str,
    result: FileLandResult,
    number: int,
    total: int,
) -> None:
    where = f"[{number}/{total}] {connection}:{path}"
    if result.outcome == "quarantined":
        context.log.warning(f"{where} quarantined: {result.reason}")
    elif result.outcome == "parsed":
        context.log.info(f"{where} {result.format}: {result.statements} statements, {result.entries} entries")
        for check in result.balance_mismatches:
            context.log.warning(
                f"{where} statement {check['statement_id'] or check['statement_index']} of {check['account_id']} "
                f"does not reconcile: opening + entries - closing = {check['difference']}"
            )
    else:
        context.log.info(f"{where} already landed ({result.outcome}), nothing to do")


def _plain(check: dict[str, object]) -> dict[str, object]:
    return {
        key: (str(value) if value is not None and not isinstance(value, int | str) else value)
        for key, value in check.items()
    }
