"""The Dagster instance (runs, events) lives on Postgres, in its own database, via dagster.yaml."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest
from pydantic import SecretStr

from bankflow_cli.runtime import prepare_runtime
from resources.settings import Settings


@dg.op
def hello() -> int:
    return 1


@dg.job
def instance_probe() -> None:
    hello()


def test_runs_are_stored_on_postgres(database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BANKFLOW_DATABASE_URL", "BANKFLOW_DAGSTER_DATABASE_URL", "DAGSTER_HOME", "BANKFLOW_HOME"):
        monkeypatch.setenv(name, "")  # prepare_runtime exports these; monkeypatch restores them
    runtime = prepare_runtime(Settings(database_url=SecretStr(database_url), home=tmp_path))

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        # One extract per provider pool at a time: a bank's limits hold across runs and backfills.
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        run_id = instance_probe.execute_in_process(instance=instance).run_id

    with psycopg.connect(runtime.dagster_database_url) as conn:
        stored = conn.execute("select status from runs where run_id = %s", (run_id,)).fetchone()
        events = conn.execute("select count(*) from event_logs where run_id = %s", (run_id,)).fetchone()[0]
    assert stored == ("SUCCESS",)
    assert events > 0
