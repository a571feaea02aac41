"""The code location: assembles the domain modules, nothing else."""

from collections.abc import Mapping

import dagster as dg

from pipelines.jobs import daily_pipeline
from pipelines.quality.checks import gx_fct_transactions
from pipelines.resources import resources_from_env
from pipelines.sources.berlin_group.assets import raw_berlin_group
from pipelines.sources.fibank.assets import raw_fibank
from pipelines.sources.gocardless.assets import raw_gocardless
from pipelines.sources.razorpay.assets import raw_razorpay
from pipelines.sources.rest.assets import raw_rest_banks
from pipelines.sources.revolut.assets import raw_revolut
from pipelines.sources.truelayer.assets import raw_truelayer
from pipelines.transform.assets import dbt_incremental_models, dbt_models


def build_definitions(resources: Mapping[str, object]) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            raw_truelayer,
            raw_berlin_group,
            raw_revolut,
            raw_gocardless,
            raw_razorpay,
            *raw_rest_banks,
            raw_fibank,
            dbt_models,
            dbt_incremental_models,
        ],
        asset_checks=[gx_fct_transactions],
        jobs=[daily_pipeline],
        resources=dict(resources),
    )


defs = build_definitions(resources_from_env())
