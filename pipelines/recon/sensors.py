"""The balance-gap sensor: re-requests from the sources exactly the days a balance break was
located in (marts.recon_balance_gaps), so a missed page or a late booking heals on the next run."""

from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from pipelines.jobs import daily_pipeline
from pipelines.partitions import PARTITIONS_START
from resources.recon_refetch import plan_refetches
from resources.warehouse.resource import WarehouseResource


def balance_gap_sensor(extracts: Mapping[str, dg.AssetsDefinition]) -> dg.SensorDefinition:
    """The sensor for these extracts (source name, as dim_accounts.sources names it -> its
    extract asset); an account whose sources are none of them is recorded as not refetchable."""

    @dg.sensor(
        name="balance_gap_sensor",
        job=daily_pipeline,
        minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Records each balance gap marts.recon_balance_gaps locates in ops.recon_refetch_requests"
            " and requests the gap's daily partitions of the account's source extracts; marks healed"
            " the gaps a later run no longer shows."
        ),
    )
    def _sensor(
        context: dg.SensorEvaluationContext, warehouse: WarehouseResource
    ) -> dg.SensorResult | dg.SkipReason:
        with warehouse.connect() as conn:
            if conn.execute("select to_regclass('marts.recon_balance_gaps')").fetchone()[0] is None:
                return dg.SkipReason("marts.recon_balance_gaps does not exist yet: run the pipeline first")
            plan = plan_refetches(conn, extracts.keys())
        first_partition = datetime.fromisoformat(PARTITIONS_START).date()
        today = datetime.now(UTC).date()
        requests = [
            dg.RunRequest(
                run_key=f"refetch:{refetch.balance_gap_key}:{source}:{day.isoformat()}",
                partition_key=day.isoformat(),
                asset_selection=list(extracts[source].keys),
                tags={"bankflow/refetch": refetch.balance_gap_key, "bankflow/source": source},
            )
            for refetch in plan.requested
            for source in refetch.sources
            for day in refetch.days()
            if first_partition <= day <= today
        ]
        for refetch in plan.requested:
            context.log.info(
                f"Balance gap {refetch.balance_gap_key}: {refetch.unexplained_amount} {refetch.currency}"
                f" unexplained; asking {', '.join(refetch.sources)} for {refetch.first_day}..{refetch.last_day} again"
            )
        for refetch in plan.not_refetchable:
            context.log.warning(
                f"Balance gap {refetch.balance_gap_key}: no source of the account can be asked again"
                " (statement files): see recon_exceptions"
            )
        for key in plan.healed:
            context.log.info(f"Balance gap {key} healed")
        if not requests and not plan.not_refetchable and not plan.healed:
            return dg.SkipReason("no new balance gap")
        return dg.SensorResult(run_requests=requests)

    return _sensor
