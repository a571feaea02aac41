"""The code location: assembles the domain modules, nothing else."""

from __future__ import annotations

import dagster as dg

from pipelines.jobs import daily_pipeline
from pipelines.quality.checks import gx_fct_transactions
from pipelines.resources import resources_from_env
from pipelines.sources.truelayer.assets import raw_truelayer
from pipelines.transform.assets import dbt_incremental_models, dbt_models

defs = dg.Definitions(
    assets=[raw_truelayer, dbt_models, dbt_incremental_models],
    asset_checks=[gx_fct_transactions],
    jobs=[daily_pipeline],
    resources=resources_from_env(),
)
