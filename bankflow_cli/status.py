"""`bankflow status`: per source, the last good fetch, its rows in the marts, freshness against the
source's cadence, consent expiry, and the checks failing on its tables now.

Read from the Dagster instance (materialisations, latest check results) and the warehouse (rows,
consents); nothing is run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg
import psycopg

from pipelines.quality.source_health import freshness_hours
from resources.connections import list_connections


@dataclass(frozen=True)
class SourceStatus:
    source: str
    last_fetch_at: datetime | None
    fresh: bool
    cadence_hours: int
    transactions: int | None  # rows of marts.fct_transactions from the source; None before the marts exist
    consent: str  # the worst of the source's connections, or "" where the source has no consent
    failing_checks: tuple[str, ...]


def source_status(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    extracts: Mapping[str, dg.AssetsDefinition],
    database_url: str,
    environ: Mapping[str, str],
    now: datetime,
) -> list[SourceStatus]:
    transactions = _transactions_by_source(database_url)
    consents = _worst_consent_by_provider(database_url)
    check_keys = defs.resolve_asset_graph().asset_check_keys
    statuses = []
    for source, extract in sorted(extracts.items()):
        last = max(
            (
                datetime.fromtimestamp(event.timestamp, tz=now.tzinfo)
                for key in extract.keys
                if (event := instance.get_latest_materialization_event(key)) is not None
            ),
            default=None,
        )
        hours = freshness_hours(source, environ)
        own_checks = [key for key in check_keys if key.asset_key in extract.keys]
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(own_checks)
        failing = tuple(
            sorted(
                f"{key.asset_key.to_user_string()}:{key.name}"
                for key, record in latest.items()
                if record.event is not None
                and (evaluation := record.event.dagster_event.asset_check_evaluation_data) is not None
                and not evaluation.passed
            )
        )
        statuses.append(
            SourceStatus(
                source=source,
                last_fetch_at=last,
                fresh=last is not None and now - last <= timedelta(hours=hours),
                cadence_hours=hours,
                transactions=None if transactions is None else transactions.get(source, 0),
                consent=consents.get(source, ""),
                failing_checks=failing,
            )
        )
    return statuses


def _transactions_by_source(database_url: str) -> dict[str, int] | None:
    with psycopg.connect(database_url) as conn:
        if conn.execute("select to_regclass('marts.fct_transactions')").fetchone()[0] is None:
            return None
        counts = conn.execute(
            "select source, count(*) from marts.fct_transactions group by source"
        ).fetchall()
    # The REST banks' rows are sourced `rest_<bank>`; their schedules and extracts are named by the bank.
    return {source.removeprefix("rest_"): count for source, count in counts}


def _worst_consent_by_provider(database_url: str) -> dict[str, str]:
    order = {"expired": 0, "expiring": 1, "unknown": 2, "ok": 3}
    worst: dict[str, tuple[int, str]] = {}
    for connection in list_connections(database_url):
        rank = order[connection.consent.state]
        if connection.provider not in worst or rank < worst[connection.provider][0]:
            worst[connection.provider] = (rank, f"{connection.name}: {connection.consent.message}")
    return {provider: message for provider, (_, message) in worst.items()}
