"""Jobs: the daily pipeline for one partition window (extract -> dbt -> checks)."""

from __future__ import annotations

import dagster as dg

daily_pipeline = dg.define_asset_job(
    name="daily_pipeline",
    selection=dg.AssetSelection.all(),
    description="Extract every source for the partition window, build the dbt models, run the checks.",
)
