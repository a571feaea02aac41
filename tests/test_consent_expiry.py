"""Every extract asset warns before its connection's consent ends and stops after, data intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest
from pipeline_runs import raw_snapshot

from pipelines.sources.berlin_group.assets import raw_berlin_group
from pipelines.sources.gocardless.assets import raw_gocardless
from pipelines.sources.revolut.assets import raw_revolut
from pipelines.sources.truelayer.assets import raw_truelayer

ASSETS = {
    "truelayer": raw_truelayer,
    "berlin_group": raw_berlin_group,
    "revolut": raw_revolut,
    "gocardless": raw_gocardless,
}


@pytest.fixture
def resources(warehouse, connected_truelayer, bank_resources) -> dict[str, object]:
    return {"warehouse": warehouse, "truelayer": connected_truelayer, **bank_resources}


def _set_expiry(database_url: str, connection: str, expires_at: datetime | None) -> datetime | None:
    with psycopg.connect(database_url) as conn:
        (before,) = conn.execute(
            "select consent_expires_at from ops.connections where connection_name = %s", (connection,)
        ).fetchone()
        conn.execute(
            "update ops.connections set consent_expires_at = %s where connection_name = %s",
            (expires_at, connection),
        )
    return before


def _materialize(provider: str, resources: dict[str, object], instance: dg.DagsterInstance):
    day = (datetime.now(UTC).date() - timedelta(days=20)).isoformat()
    return dg.materialize(
        [ASSETS[provider]],
        resources=resources,
        partition_key=day,
        instance=instance,
        raise_on_error=False,
    )


@pytest.mark.parametrize("provider", sorted(ASSETS))
def test_consent_near_its_end_is_a_warning_and_past_it_a_stop(
    provider: str, resources: dict[str, object], database_url: str
) -> None:
    connection = resources[provider].connection_name  # type: ignore[attr-defined]
    original = _set_expiry(database_url, connection, datetime.now(UTC) + timedelta(days=3, hours=1))
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            result = _materialize(provider, resources, instance)
            assert result.success
            warnings = [
                entry.user_message
                for entry in instance.all_logs(result.run_id)
                if entry.level == 30 and "consent expires in 3 days" in entry.user_message
            ]
        assert len(warnings) == 1 and f"bankflow connect {provider}" in warnings[0]

        before = raw_snapshot(database_url)
        _set_expiry(database_url, connection, datetime.now(UTC) - timedelta(hours=1))
        with dg.DagsterInstance.ephemeral() as instance:
            result = _materialize(provider, resources, instance)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert "consent expired" in str(failure.event_specific_data.error)
        assert f"bankflow connect {provider}" in str(failure.event_specific_data.error)
        assert raw_snapshot(database_url) == before
    finally:
        _set_expiry(database_url, connection, original)
