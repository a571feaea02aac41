"""Jobs: the daily pipeline for one partition window (extract -> dbt -> checks)."""

from __future__ import annotations

import dagster as dg

daily_pipeline = dg.define_asset_job(
    name="daily_pipeline",
    # Statement files have a partition per file, not per day: their own job and sensor land them.
    selection=dg.AssetSelection.all() - dg.AssetSelection.tag("bankflow/partitioning", "per_file"),
    description="Extract every source for the partition window, build the dbt models, run the checks.",
)
