"""Each source refreshes today on its own schedule (retried with backoff), and yesterday is
finalised at night by the daily pipeline; cadences and retries come from the environment."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from pipelines.sources.schedules import ScheduleConfigError, source_schedules
from pipelines.sources.truelayer.assets import raw_truelayer

TICK = datetime(2026, 12, 7, 10, 5, tzinfo=UTC)


def run_request(definitions: dg.Definitions, name: str) -> dg.RunRequest:
    schedule = definitions.get_repository_def().get_schedule_def(name)
    request = schedule(dg.build_schedule_context(scheduled_execution_time=TICK))
    assert isinstance(request, dg.RunRequest)
    return request


def test_each_source_refreshes_today_and_yesterday_is_finalised_at_night(definitions: dg.Definitions) -> None:
    repository = definitions.get_repository_def()
    names = {schedule.name for schedule in repository.schedule_defs}
    assert {
        "refresh_truelayer_today",
        "refresh_revolut_today",
        "refresh_hdfc_today",
        "finalise_yesterday",
    } <= names

    refresh = repository.get_schedule_def("refresh_truelayer_today")
    assert (refresh.cron_schedule, refresh.job_name) == ("*/5 * * * *", "refresh_truelayer")
    assert refresh.default_status == dg.DefaultScheduleStatus.STOPPED
    assert run_request(definitions, "refresh_truelayer_today").partition_key == "2026-12-07"

    finalise = repository.get_schedule_def("finalise_yesterday")
    assert (finalise.cron_schedule, finalise.job_name) == ("30 2 * * *", "daily_pipeline")
    assert run_request(definitions, "finalise_yesterday").partition_key == "2026-12-06"

    job = definitions.resolve_job_def("refresh_truelayer")
    assert {key.path[-1] for key in job.asset_layer.executable_asset_keys} == {
        key.path[-1] for key in raw_truelayer.keys
    }


def test_a_scheduled_refresh_fetches_its_day(definitions: dg.Definitions) -> None:
    request = run_request(definitions, "refresh_truelayer_today")
    with dg.DagsterInstance.ephemeral() as instance:
        result = definitions.resolve_job_def("refresh_truelayer").execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags
        )
        assert result.success
        materialised = instance.get_materialized_partitions(dg.AssetKey("raw_truelayer_transactions"))
    assert materialised == {"2026-12-07"}


def test_cadence_and_retries_come_from_the_environment() -> None:
    environ = {"BANKFLOW_TRUELAYER_REFRESH_CRON": "*/15 7-19 * * *", "BANKFLOW_EXTRACT_RETRIES": "5"}
    jobs, schedules = source_schedules({"truelayer": raw_truelayer}, environ)
    assert {s.name: s.cron_schedule for s in schedules} == {
        "refresh_truelayer_today": "*/15 7-19 * * *",
        "finalise_yesterday": "30 2 * * *",
    }
    policy = jobs[0].op_retry_policy
    assert (policy.max_retries, policy.backoff) == (5, dg.Backoff.EXPONENTIAL)

    with pytest.raises(ScheduleConfigError, match="BANKFLOW_TRUELAYER_REFRESH_CRON='every 5' is not a cron"):
        source_schedules({"truelayer": raw_truelayer}, {"BANKFLOW_TRUELAYER_REFRESH_CRON": "every 5"})
    with pytest.raises(ScheduleConfigError, match="BANKFLOW_EXTRACT_RETRIES='three' is not a whole number"):
        source_schedules({"truelayer": raw_truelayer}, {"BANKFLOW_EXTRACT_RETRIES": "three"})


def test_the_models_follow_a_refreshed_source(definitions: dg.Definitions) -> None:
    today = datetime.now(UTC).date().isoformat()
    with dg.DagsterInstance.ephemeral() as instance:
        before = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
        instance.report_runless_asset_event(
            dg.AssetMaterialization("raw_truelayer_transactions", partition=today)
        )
        after = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=before.cursor)
    assert before.total_requested == 0
    assert after.get_requested_partitions(dg.AssetKey("stg_truelayer__transactions")) == {today}
    # Only what is downstream of the refreshed source, and nothing whose inputs are still missing.
    assert after.total_requested == 1
