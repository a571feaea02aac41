"""Landing a connector's extract in raw, and what every extract asset reports about it."""

from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg

from resources.connections import consent_status
from resources.errors import AuthorizationRequired, ProviderError
from resources.extract import Extract, TableLoad
from resources.vault import TokenVault
from resources.warehouse.loader import LoadResult, land
from resources.warehouse.quarantine import quarantine
from resources.warehouse.resource import WarehouseResource


def raw_asset_specs(tables: Mapping[str, str]) -> list[dg.AssetSpec]:
    """One asset per raw table (`raw_<table>`), described for the UI."""
    return [raw_asset_spec(table, description) for table, description in tables.items()]


QUARANTINE_CHECK = "nothing_quarantined"


def quarantine_check_spec(asset: str, source: str) -> dg.AssetCheckSpec:
    """The warning an extract gives on its main table when it kept records out of raw."""
    return dg.AssetCheckSpec(
        QUARANTINE_CHECK,
        asset=asset,
        description=f"Every record {source} sent in the run's window was landed: none was quarantined "
        "(no id, a date that is not one or outside the window asked for, not a JSON object). "
        "Quarantined records are in ops.quarantine with their reason and original text.",
    )


def raw_asset_spec(table: str, description: str, key: str | None = None) -> dg.AssetSpec:
    """The asset of `raw.<table>` (`raw_<table>`), or under its own `key` one source's rows of a
    table several sources share. Its table name is in the metadata either way."""
    return dg.AssetSpec(
        key or f"raw_{table}",
        description=description,
        group_name="raw",
        kinds={"postgres"},
        # dagster/table_name: the standard key the UI shows as the asset's table.
        metadata={"dagster/table_name": f"raw.{table}"},
    )


@contextmanager
def provider_failures() -> Iterator[None]:
    """Turn a connector's failure into a Dagster failure that says what happened and what to do.

    Needing a person (consent, credentials) is not retried; anything else may be.
    """
    try:
        yield
    except AuthorizationRequired as exc:
        raise dg.Failure(
            description=str(exc),
            metadata={"provider": exc.provider, "error": type(exc).__name__, "fix": exc.fix},
            allow_retries=False,
        ) from None
    except ProviderError as exc:
        raise dg.Failure(
            description=str(exc), metadata={"provider": exc.provider, "error": type(exc).__name__}
        ) from None


def check_consent(
    context: dg.AssetExecutionContext, vault: TokenVault, provider: str, connection_name: str
) -> None:
    """Warn N days before a connection's consent ends (BANKFLOW_CONSENT_WARN_DAYS, default 7);
    after it ended, fail without retrying: only the user can renew it."""
    consent = consent_status(vault.consent_expires_at(connection_name))
    reconnect = f"renew with `bankflow connect {provider}`"
    if consent.state == "expiring":
        context.log.warning(f"{provider} connection {connection_name!r}: {consent.message}; {reconnect}")
    elif consent.state == "expired":
        raise dg.Failure(
            description=f"{provider} connection {connection_name!r}: {consent.message}; {reconnect}",
            metadata={
                "provider": provider,
                "connection": connection_name,
                "fix": f"bankflow connect {provider}",
            },
            allow_retries=False,
        )


def land_extract(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    source: str,
    extract: Extract,
    asset_keys: Mapping[str, str] | None = None,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Replace every table of the extract and store its rejects, all in one transaction, then
    report each table as a materialization (of `raw_<table>`, or of `asset_keys[table]`), and what
    was quarantined as the asset's `nothing_quarantined` check where it has one."""
    fetched_at = datetime.now(UTC)
    run_id = context.run.run_id
    with warehouse.connect() as conn, conn.transaction():
        results = {
            load.table: land(
                conn,
                table=load.table,
                source=source,
                records=load.records,
                scope=load.scope,
                run_id=run_id,
                fetched_at=fetched_at,
            )
            for load in extract.loads
        }
        quarantined = quarantine(conn, source=source, items=extract.quarantined, run_id=run_id)
    if quarantined:
        context.log.warning(f"{quarantined} {source} records quarantined (ops.quarantine, run {run_id})")
    for load in extract.loads:
        yield dg.MaterializeResult(
            asset_key=(asset_keys or {}).get(load.table, f"raw_{load.table}"),
            metadata=_metadata(load, results[load.table], extract, quarantined),
        )
    yield from _quarantine_check(context, source, extract, run_id)


def _quarantine_check(
    context: dg.AssetExecutionContext, source: str, extract: Extract, run_id: str
) -> Iterator[dg.AssetCheckResult]:
    for spec in context.assets_def.check_specs:
        if spec.name != QUARANTINE_CHECK or spec.key not in context.selected_asset_check_keys:
            continue
        reasons = Counter(f"{item.entity}: {item.reason}" for item in extract.quarantined)
        yield dg.AssetCheckResult(
            asset_key=spec.asset_key,
            check_name=QUARANTINE_CHECK,
            passed=not extract.quarantined,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "records_quarantined": dg.MetadataValue.int(len(extract.quarantined)),
                # Reasons name fields and dates, never the record's contents.
                "reasons": dg.MetadataValue.json(dict(reasons)),
                "where": dg.MetadataValue.text(
                    f"ops.quarantine where source = '{source}' and run_id = '{run_id}'"
                ),
            },
            description=(
                f"every record {source} sent was landed"
                if not extract.quarantined
                else f"{len(extract.quarantined)} {source} records quarantined: " + "; ".join(sorted(reasons))
            ),
        )


def _metadata(load: TableLoad, result: LoadResult, extract: Extract, quarantined: int) -> dict[str, object]:
    metadata: dict[str, object] = {
        "rows_landed": dg.MetadataValue.int(result.rows_inserted),
        "rows_replaced": dg.MetadataValue.int(result.rows_deleted),
        "accounts": dg.MetadataValue.int(len(extract.account_refs)),
        "window_fetched": dg.MetadataValue.text(f"{extract.first_day} .. {extract.last_day}"),
        "records_quarantined": dg.MetadataValue.int(quarantined),
        "table": dg.MetadataValue.text(f"raw.{load.table}"),
    }
    if load.preview:
        lines = ["| date | description | amount | currency |", "|---|---|---|---|"]
        lines += [
            " | ".join(["", *(cell.replace("|", "/") for cell in row), ""]).strip() for row in load.preview
        ]
        metadata["preview"] = dg.MetadataValue.md("\n".join(lines))
    return metadata
