"""Jobs: the daily pipeline for one partition window (extract -> dbt -> checks), and the audit."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

daily_pipeline = dg.define_asset_job(
    name="daily_pipeline",
    # Statement files have a partition per file, not per day: their own job and sensor land them.
    # The reports render once a day on their own (pipelines/reports/assets.py) and on `bankflow report`.
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.tag("bankflow/partitioning", "per_file")
    - dg.AssetSelection.groups("reports"),
    # The dbt models run in one step per phase (pipelines/transform/phases.py): layers 1-4 first,
    # then the model trains and predicts, then the views and marts that read its predictions.
    description=(
        "Extract every source for the partition window, build the dbt models (categorisation layer 5"
        " trained and applied between them), run the checks."
    ),
)


def quality_audit_job(checks: Sequence[dg.AssetChecksDefinition]) -> dg.UnresolvedAssetJobDefinition:
    """Every quality check (the GX suites over whole tables, each source's freshness and consent),
    materialising nothing: for audits, and after a backfill or a full refresh."""
    return dg.define_asset_job(
        name="quality_audit",
        selection=dg.AssetSelection.checks(*checks),
        description="Validate every GX suite (raw, staging, marts) over all history, and each source's"
        " freshness and consent; materialises nothing.",
    )
