"""When each source is fetched: today's partition every few minutes per source, and the whole of
yesterday once at night.

- `refresh_<source>_today` runs the source's extract alone for today (default every 5 minutes,
  `BANKFLOW_<SOURCE>_REFRESH_CRON`); the dbt models follow it by their automation conditions
  (pipelines/transform/translator.py), evaluated by Dagster's default automation sensor. A failed extract is retried with exponential backoff
  (`BANKFLOW_EXTRACT_RETRIES`, default 3); a person-needed failure (consent, credentials) is not.
- `finalise_yesterday` runs the daily pipeline for yesterday (`BANKFLOW_FINALISE_CRON`, default
  02:30 UTC): every source and the models once, after the day closed. Its lookback (LOOKBACK_DAYS)
  re-fetches the days before, the overlap that catches late bookings.

Each provider's pool (dagster.yaml) keeps a schedule and a backfill of one bank from running at
once. The schedules start stopped: turn them on in the UI (Automation) once the sources are
connected.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import dagster as dg

from pipelines.jobs import daily_pipeline
from pipelines.partitions import daily_partitions

DEFAULT_REFRESH_CRON = "*/5 * * * *"
DEFAULT_FINALISE_CRON = "30 2 * * *"
DEFAULT_EXTRACT_RETRIES = 3
RETRY_DELAY_SECONDS = 30


class ScheduleConfigError(ValueError):
    """A schedule setting that cannot be used; the message names the variable."""


def refresh_cron_variable(source: str) -> str:
    return f"BANKFLOW_{source.upper()}_REFRESH_CRON"


def source_schedules(
    extracts: Mapping[str, dg.AssetsDefinition], environ: Mapping[str, str]
) -> tuple[list[dg.UnresolvedAssetJobDefinition], list[dg.ScheduleDefinition]]:
    """A refresh job and schedule per source (name -> extract asset), and the nightly finalise."""
    retry = dg.RetryPolicy(
        max_retries=_whole_number(environ, "BANKFLOW_EXTRACT_RETRIES", DEFAULT_EXTRACT_RETRIES),
        delay=RETRY_DELAY_SECONDS,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )
    jobs, schedules = [], []
    for source, extract in extracts.items():
        job = dg.define_asset_job(
            f"refresh_{source}",
            selection=dg.AssetSelection.assets(extract),
            partitions_def=daily_partitions,
            op_retry_policy=retry,
            description=f"Fetch {source} for one day; the models follow by their automation conditions.",
        )
        jobs.append(job)
        schedules.append(
            _day_schedule(
                f"refresh_{source}_today",
                job,
                _cron(environ, refresh_cron_variable(source), DEFAULT_REFRESH_CRON),
                days_back=0,
            )
        )
    if extracts:
        schedules.append(
            _day_schedule(
                "finalise_yesterday",
                daily_pipeline,
                _cron(environ, "BANKFLOW_FINALISE_CRON", DEFAULT_FINALISE_CRON),
                days_back=1,
            )
        )
    return jobs, schedules


def _day_schedule(
    name: str, job: dg.UnresolvedAssetJobDefinition, cron: str, days_back: int
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"{job.name} for {'today' if days_back == 0 else 'yesterday'}'s partition ({cron}, UTC).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = context.scheduled_execution_time.date() - timedelta(days=days_back)
        return dg.RunRequest(partition_key=day.isoformat(), tags={"bankflow/trigger": name})

    return _schedule


def _cron(environ: Mapping[str, str], variable: str, default: str) -> str:
    cron = environ.get(variable) or default
    if len(cron.split()) != 5:
        raise ScheduleConfigError(f"{variable}={cron!r} is not a cron expression of five fields")
    return cron


def _whole_number(environ: Mapping[str, str], variable: str, default: int) -> int:
    value = environ.get(variable)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise ScheduleConfigError(f"{variable}={value!r} is not a whole number")
    return int(value)
