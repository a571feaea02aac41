"""`bankflow status`: each source's last good fetch and freshness from the Dagster instance, its
consent and rows from the warehouse, and the checks failing on its tables now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from bankflow_cli.runs import run_days
from bankflow_cli.status import source_status
from pipelines.definitions import configured_extracts
from pipelines.quality.source_health import CONSENT_CHECK

DAY = datetime.now(UTC).date() - timedelta(days=12)


def test_status_shows_fetches_freshness_consent_and_failing_checks(
    definitions: dg.Definitions, database_url: str
) -> None:
    extracts = configured_extracts(definitions.resources, {})
    truelayer = sorted(extracts["truelayer"].keys)
    consent_check = next(
        key
        for key in definitions.resolve_asset_graph().asset_check_keys
        if key.name == CONSENT_CHECK and key.asset_key.path[-1] == "raw_truelayer_transactions"
    )
    with psycopg.connect(database_url) as conn:
        (expires,) = conn.execute(
            "select consent_expires_at from ops.connections where connection_name = 'truelayer'"
        ).fetchone()
    with dg.DagsterInstance.ephemeral() as instance:
        assert run_days(definitions, instance, DAY, DAY, assets=truelayer, trigger="test").success
        try:
            with psycopg.connect(database_url) as conn:
                conn.execute(
                    "update ops.connections set consent_expires_at = now() - interval '1 hour'"
                    " where connection_name = 'truelayer'"
                )
            job = dg.define_asset_job("consent_only", selection=dg.AssetSelection.checks(consent_check))
            resolved = dg.Definitions.merge(definitions, dg.Definitions(jobs=[job])).resolve_job_def(job.name)
            [evaluation] = resolved.execute_in_process(instance=instance).get_asset_check_evaluations()
            assert not evaluation.passed
            statuses = {
                s.source: s
                for s in source_status(instance, definitions, extracts, database_url, {}, datetime.now(UTC))
            }
        finally:
            with psycopg.connect(database_url) as conn:
                conn.execute(
                    "update ops.connections set consent_expires_at = %s where connection_name = 'truelayer'",
                    (expires,),
                )

    fetched = statuses["truelayer"]
    assert fetched.last_fetch_at is not None and fetched.fresh
    assert datetime.now(UTC) - fetched.last_fetch_at < timedelta(minutes=30)
    assert fetched.failing_checks == ("raw_truelayer_transactions:consent_current",)
    assert fetched.consent.startswith("truelayer:") and "expired" in fetched.consent

    never = statuses["revolut"]
    assert never.last_fetch_at is None and not never.fresh and never.failing_checks == ()
    assert set(statuses) == set(extracts)
