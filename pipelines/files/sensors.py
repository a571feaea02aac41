"""Sensors for statement files: one run per new file, then the marts for the days it touched."""

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import dagster as dg
import psycopg

from pipelines.files.partitions import statement_file_partitions
from pipelines.partitions import PARTITIONS_START
from resources.files.connections import file_partition_key
from resources.files.files_resource import StatementFilesResource
from resources.files.ledger import seen_sightings
from resources.warehouse.resource import WarehouseResource

statement_files_job = dg.define_asset_job(
    name="statement_files_job",
    selection=dg.AssetSelection.tag("bankflow/partitioning", "per_file"),
    description="Land statement files (one partition per file sighting) in raw.",
)
marts_refresh_job = dg.define_asset_job(
    name="marts_refresh_job",
    # The seeds too: on a warehouse that never ran the daily pipeline they do not exist yet.
    selection=dg.AssetSelection.groups("seeds", "staging", "intermediate", "marts"),
    description="Rebuild the dbt models for a range of booking days (after statement files landed).",
)


@dataclass
class DropListing:
    """Per drop: how many files it lists, the partition keys of those the ledger has not seen,
    and the drops that could not be listed (with why)."""

    listed: dict[str, int] = field(default_factory=dict)
    new: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def unseen_files(statement_files: StatementFilesResource, conn: psycopg.Connection) -> DropListing:
    """List every configured drop and the watched folder; keep what the ledger has not seen."""
    listing = DropListing()
    for name in statement_files.source_names():
        try:
            with statement_files.open_source(name) as source:
                files = source.list_files()
        except Exception as exc:  # one drop's outage must not stop the others' files
            listing.errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        seen = seen_sightings(conn, name)
        listing.listed[name] = len(files)
        listing.new[name] = [
            file_partition_key(name, f.path, f.mtime_epoch, f.size)
            for f in files
            if (f.path, f.size, f.mtime) not in seen
        ]
    return listing


@dg.sensor(
    job=statement_files_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
)
def statement_files_sensor(
    context: dg.SensorEvaluationContext, statement_files: StatementFilesResource, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    """List every configured drop (and the watched local folder); request one run per file the
    ledger has not seen. The cursor keeps, per drop, when it was last listed and what was new;
    the ledger, not the cursor, decides what is new, so a lost cursor requests nothing twice."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    known = set(context.instance.get_dynamic_partitions(statement_file_partitions.name))
    with warehouse.connect() as conn:
        listing = unseen_files(statement_files, conn)
    for name, error in listing.errors.items():
        context.log.warning(f"statement drop {name!r} not listed: {error}")
    keys = [key for keys in listing.new.values() for key in keys]
    requests = [dg.RunRequest(run_key=key, partition_key=key) for key in keys]
    new_keys = [key for key in keys if key not in known]
    for name, files in listing.listed.items():
        cursor[name] = {
            "listed_at": datetime.now(UTC).isoformat(),
            "files": files,
            "new": len(listing.new.get(name, [])),
        }
    errors = listing.errors
    cursor["errors"] = errors
    if not requests and not errors:
        return dg.SkipReason("no new statement files")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[statement_file_partitions.build_add_request(new_keys)]
        if new_keys
        else [],
        cursor=json.dumps(cursor),
    )


@dg.asset_sensor(
    asset_key=dg.AssetKey("raw_file_entries"),
    job=marts_refresh_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def statement_days_sensor(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
) -> dg.RunRequest | dg.SkipReason:
    """After files landed, rebuild the marts for the booking days they hold (one run, all days)."""
    materialization = asset_event.asset_materialization
    metadata = materialization.metadata if materialization else {}
    first, last = metadata.get("first_day"), metadata.get("last_day")
    if first is None or last is None:
        return dg.SkipReason("the files run landed no entries")
    start = max(date.fromisoformat(first.value), date.fromisoformat(PARTITIONS_START))
    today = datetime.now(UTC).date()
    end = min(date.fromisoformat(last.value), today)
    if end < start:
        return dg.SkipReason(f"entries on {first.value}..{last.value} are outside the partitions")
    return dg.RunRequest(
        run_key=f"files:{asset_event.run_id}",
        tags={
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": end.isoformat(),
            "bankflow/trigger": "statement_files",
        },
    )
