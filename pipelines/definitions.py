"""The code location: assembles the domain modules, nothing else."""

import os
from collections.abc import Mapping

import dagster as dg

from pipelines.alerts.sensors import run_failure_alert
from pipelines.files.assets import raw_statement_files
from pipelines.files.sensors import (
    marts_refresh_job,
    statement_days_sensor,
    statement_files_job,
    statement_files_sensor,
)
from pipelines.jobs import daily_pipeline, quality_audit_job
from pipelines.ledger.assets import raw_ledger_export_entries
from pipelines.quality.checks import build_suite_checks
from pipelines.quality.source_health import consent_checks, freshness_checks
from pipelines.recon.sensors import balance_gap_sensor
from pipelines.reports.assets import reports
from pipelines.resources import resources_from_env
from pipelines.sources.berlin_group.assets import raw_berlin_group
from pipelines.sources.fibank.assets import raw_fibank
from pipelines.sources.gocardless.assets import raw_gocardless
from pipelines.sources.razorpay.assets import raw_razorpay
from pipelines.sources.rest.assets import REST_BANK_ASSETS, REST_BANKS
from pipelines.sources.revolut.assets import raw_revolut
from pipelines.sources.schedules import source_schedules
from pipelines.sources.truelayer.assets import raw_truelayer
from pipelines.transform.assets import DBT_ASSETS
from pipelines.transform.category_model import category_predictions
from resources.alerts import AlertsResource
from resources.quality.gx_suites import load_suites

# Extract assets of the Python connectors, by the source name the marts give their rows; each
# needs its provider's resource.
EXTRACTS_BY_SOURCE = {
    "truelayer": raw_truelayer,
    "berlin_group": raw_berlin_group,
    "revolut": raw_revolut,
    "gocardless": raw_gocardless,
    "razorpay": raw_razorpay,
    "fibank": raw_fibank,
}


def configured_extracts(
    resources: Mapping[str, object], environ: Mapping[str, str]
) -> dict[str, dg.AssetsDefinition]:
    """The extract asset of each source these resources (and, for REST banks, `environ`) configure."""
    # io_manager is Dagster's own default, never a source's.
    provided = {*resources.keys(), "io_manager"}
    extracts = {
        name: asset for name, asset in EXTRACTS_BY_SOURCE.items() if asset.required_resource_keys <= provided
    }
    if "rest_banks" in resources:
        extracts |= {
            bank.name: REST_BANK_ASSETS[bank.name] for bank in REST_BANKS if bank.is_configured(environ)
        }
    return extracts


def build_definitions(
    resources: Mapping[str, object], environ: Mapping[str, str] | None = None
) -> dg.Definitions:
    """The code location for the sources `resources` configure (and the REST banks whose
    credentials `environ` holds): a source left unconfigured is left out, not failed."""
    environ = os.environ if environ is None else environ
    extracts = configured_extracts(resources, environ)
    sources = list(extracts.values())
    files = [raw_statement_files] if "statement_files" in resources else []
    ledger = [raw_ledger_export_entries] if "ledger_drop" in resources else []
    sensors = [statement_files_sensor, statement_days_sensor] if files else []
    assets = [
        *sources,
        *files,
        *ledger,
        *DBT_ASSETS,
        category_predictions,
        reports,
    ]
    # A source left out takes its suites with it.
    defined = {key for asset in assets for key in asset.keys}
    suite_checks = build_suite_checks([s for s in load_suites() if dg.AssetKey(s.asset) in defined])
    freshness = freshness_checks(extracts, environ)
    quality_checks = [*suite_checks, *freshness, *consent_checks(extracts)]
    if freshness:
        sensors.append(
            dg.build_sensor_for_freshness_checks(freshness_checks=freshness, name="source_freshness")
        )
    refresh_jobs, schedules = source_schedules(extracts, environ)
    return dg.Definitions(
        assets=assets,
        asset_checks=quality_checks,
        jobs=[
            daily_pipeline,
            quality_audit_job(quality_checks),
            *([statement_files_job, marts_refresh_job] if files else []),
            *refresh_jobs,
        ],
        schedules=schedules,
        sensors=[
            *sensors,
            balance_gap_sensor(extracts, [*DBT_ASSETS, category_predictions]),
            run_failure_alert,
        ],
        # Without a webhook configured, failed runs are still logged by the alert sensor.
        resources={"alerts": AlertsResource(), **resources},
    )


defs = build_definitions(resources_from_env())
