"""Each source's own checks in the Dagster UI: consent expiry (warn before, fail after, naming
`bankflow connect`) and freshness of its last good fetch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest

from pipelines.quality.source_health import CONSENT_CHECK, freshness_hours


def run_checks(definitions: dg.Definitions, check_name: str, instance: dg.DagsterInstance | None = None):
    """Run every check called check_name, materialising nothing; their evaluations by asset."""
    keys = [key for key in definitions.resolve_asset_graph().asset_check_keys if key.name == check_name]
    job = dg.define_asset_job(f"only_{check_name}", selection=dg.AssetSelection.checks(*keys))
    resolved = dg.Definitions.merge(definitions, dg.Definitions(jobs=[job])).resolve_job_def(job.name)
    result = resolved.execute_in_process(instance=instance, raise_on_error=False)
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def truelayer_consent(database_url: str) -> Iterator[callable]:
    with psycopg.connect(database_url) as conn:
        (before,) = conn.execute(
            "select consent_expires_at from ops.connections where provider = 'truelayer'"
        ).fetchone()

    def set_expiry(expires_at: datetime) -> None:
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "update ops.connections set consent_expires_at = %s where provider = 'truelayer'",
                (expires_at,),
            )

    yield set_expiry
    set_expiry(before)


def test_consent_checks_warn_before_the_end_and_fail_after(
    definitions: dg.Definitions, truelayer_consent
) -> None:
    evaluations = run_checks(definitions, CONSENT_CHECK)
    assert set(evaluations) == {
        f"raw_{provider}_transactions" for provider in ("truelayer", "berlin_group", "revolut", "gocardless")
    }
    assert all(e.passed for e in evaluations.values())

    truelayer_consent(datetime.now(UTC) + timedelta(days=3, hours=1))
    expiring = run_checks(definitions, CONSENT_CHECK)["raw_truelayer_transactions"]
    assert not expiring.passed and expiring.severity == dg.AssetCheckSeverity.WARN
    assert "consent expires in 3 days" in expiring.description
    assert "bankflow connect truelayer" in expiring.description

    truelayer_consent(datetime.now(UTC) - timedelta(hours=1))
    evaluations = run_checks(definitions, CONSENT_CHECK)
    expired = evaluations["raw_truelayer_transactions"]
    assert not expired.passed and expired.severity == dg.AssetCheckSeverity.ERROR
    assert "consent expired" in expired.description and "bankflow connect truelayer" in expired.description
    connections = expired.metadata["connections"].value
    assert [c["state"] for c in connections.values()] == ["expired"]
    # The other banks are not held to TrueLayer's consent.
    assert all(e.passed for asset, e in evaluations.items() if asset != "raw_truelayer_transactions")


def test_freshness_warns_until_a_source_is_fetched(definitions: dg.Definitions) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        never = run_checks(definitions, "freshness_check", instance)
        assert {"raw_truelayer_transactions", "raw_fibank_transactions", "raw_rest_hdfc_transactions"} <= set(
            never
        )
        stale = never["raw_truelayer_transactions"]
        assert not stale.passed and stale.severity == dg.AssetCheckSeverity.WARN

        instance.report_runless_asset_event(dg.AssetMaterialization("raw_truelayer_transactions"))
        fresh = run_checks(definitions, "freshness_check", instance)
    assert fresh["raw_truelayer_transactions"].passed
    assert not fresh["raw_revolut_transactions"].passed


def test_each_source_has_its_own_cadence() -> None:
    assert freshness_hours("truelayer", {}) == 26
    assert freshness_hours("hdfc", {"BANKFLOW_HDFC_FRESHNESS_HOURS": "74"}) == 74
