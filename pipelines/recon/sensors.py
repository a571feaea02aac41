"""The balance-gap sensor: re-requests from the sources exactly the days a balance break was
located in (marts.recon_balance_gaps) and rebuilds the models for those days, so a missed page or
a late booking heals without anyone asking."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import dagster as dg

from pipelines.jobs import daily_pipeline
from pipelines.partitions import PARTITIONS_START
from resources.recon_refetch import plan_refetches
from resources.warehouse.resource import WarehouseResource


def balance_gap_sensor(
    extracts: Mapping[str, dg.AssetsDefinition], models: Sequence[dg.AssetsDefinition]
) -> dg.SensorDefinition:
    """The sensor for these extracts (source name, as dim_accounts.sources names it -> its
    extract asset) and the model assets a refetch must rebuild (the incremental staging restages
    only the partitions of the run that reads them)."""
    model_keys = [key for asset in models for key in asset.keys]

    @dg.sensor(
        name="balance_gap_sensor",
        job=daily_pipeline,
        minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Records each balance gap marts.recon_balance_gaps locates in ops.recon_refetch_requests;"
            " for each gap still open, one run over the gap's days of the account's source extracts and"
            " the models; marks healed the gaps a later run no longer shows."
        ),
    )
    def _sensor(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        with warehouse.connect() as conn:
            if conn.execute("select to_regclass('marts.recon_balance_gaps')").fetchone()[0] is None:
                return dg.SkipReason("marts.recon_balance_gaps does not exist yet: run the pipeline first")
            plan = plan_refetches(
                conn,
                extracts.keys(),
                datetime.fromisoformat(PARTITIONS_START).date(),
                datetime.now(UTC).date(),
            )
        # The same run key on every tick for a gap still open: Dagster launches it once, and a
        # tick whose runs were never submitted (a preview, a daemon restart) loses nothing.
        requests = [
            dg.RunRequest(
                run_key=f"refetch:{refetch.balance_gap_key}:{source}",
                asset_selection=[*extracts[source].keys, *model_keys],
                tags={
                    "dagster/asset_partition_range_start": refetch.first_day.isoformat(),
                    "dagster/asset_partition_range_end": refetch.last_day.isoformat(),
                    "bankflow/refetch": refetch.balance_gap_key,
                    "bankflow/source": source,
                },
            )
            for refetch in plan.open
            for source in refetch.sources
            if source in extracts
        ]
        for refetch in plan.new:
            context.log.info(
                f"Balance gap {refetch.balance_gap_key}: {refetch.unexplained_amount} {refetch.currency}"
                f" unexplained; asking {', '.join(refetch.sources)} for {refetch.first_day}..{refetch.last_day} again"
            )
        for refetch in plan.not_refetchable:
            context.log.warning(
                f"Balance gap {refetch.balance_gap_key}: no source of the account can be asked for those days"
                " again (statement files, or days before the first partition): see recon_exceptions"
            )
        for key in plan.healed:
            context.log.info(f"Balance gap {key} healed")
        for key in plan.superseded:
            context.log.info(f"Balance gap {key} superseded by a narrower one")
        if not requests:
            return dg.SkipReason("no open balance gap")
        return dg.SensorResult(run_requests=requests)

    return _sensor
