"""dbt models as Dagster assets: the daily-partitioned incremental models, the unpartitioned models
before them, and the models built on them."""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from pipelines.partitions import booking_window, daily_partitions
from pipelines.sources.rest.assets import REST_BANKS, rest_bank_sources
from pipelines.transform.parse_cache import parse_for_current_connection
from pipelines.transform.project import DBT_PROJECT_DIR, dbt_project
from pipelines.transform.translator import BankflowDbtTranslator
from resources.warehouse.database import dbt_connection, environment
from resources.warehouse.resource import WarehouseResource

INCREMENTAL = "config.materialized:incremental"
# The incremental models and everything built on them.
ON_INCREMENTAL = "config.materialized:incremental+"
# Models on the shared raw.rest_* tables depend on each connectors/rest/ bank's extract asset.
TRANSLATOR = BankflowDbtTranslator(rest_bank_sources(REST_BANKS))


def dbt_target_dir() -> Path:
    """Where the dbt steps' own target folders go: the target path dbt and dagster-dbt read
    (DBT_TARGET_PATH, relative to the project), else the project's target/."""
    return DBT_PROJECT_DIR / os.environ.get("DBT_TARGET_PATH", "target")


@dbt_assets(
    manifest=dbt_project().manifest_path,
    select=INCREMENTAL,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    dagster_dbt_translator=TRANSLATOR,
    name="dbt_incremental_models",
)
def dbt_incremental_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """The incremental models (staging, the union, rule matches, transfer pairs, fct_transactions),
    rebuilt for the run's partition window (plus lookback), and the monthly and daily totals kept
    from fct_transactions' change log; Dagster runs them in two steps, around the categorisation
    views between them."""
    window = booking_window(*context.partition_time_window)
    with _dbt_connection(warehouse, dbt), _buildable_test_selection(), environment(window.dbt_environment):
        yield from _dbt_build(context, dbt, ["build"])


@dbt_assets(
    manifest=dbt_project().manifest_path,
    exclude=ON_INCREMENTAL,
    dagster_dbt_translator=TRANSLATOR,
    name="dbt_models",
)
def dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """Staging and intermediate views, seeds and the unpartitioned marts not built on the
    incremental ones (dimensions, reported balances)."""
    with _dbt_connection(warehouse, dbt), _buildable_test_selection():
        yield from _dbt_build(context, dbt, ["build"])


# Their own asset, not part of dbt_models: Dagster would otherwise split dbt_models into a step
# before and one after the incremental models, and dbt's eager test selection in the step before
# runs tests on the incremental models before those exist.
@dbt_assets(
    manifest=dbt_project().manifest_path,
    select=ON_INCREMENTAL,
    exclude=INCREMENTAL,
    dagster_dbt_translator=TRANSLATOR,
    name="dbt_marts_on_incremental",
)
def dbt_marts_on_incremental(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """Models built on the incremental ones: the categorisation views over the kept rule matches,
    and the unpartitioned marts (daily balances, spend, budgets, cash flow, categorisation quality),
    rebuilt whole after them from the kept monthly and daily totals."""
    with _dbt_connection(warehouse, dbt), _buildable_test_selection():
        yield from _dbt_build(context, dbt, ["build"])


def _dbt_build(context: dg.AssetExecutionContext, dbt: DbtCliResource, args: list[str]) -> Iterator[Any]:
    # dagster-dbt gives each invocation its own target folder (manifest, compiled SQL, run results:
    # 5-20 MB) and never removes it: a schedule every few minutes fills the disk. Removed once its
    # events are streamed; a failed invocation keeps it, since dbt's error names the compiled SQL there.
    target_dir = dbt_target_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f"{context.op_execution_context.op_def.name}-", dir=target_dir))
    yield from dbt.cli(args, context=context, target_path=target).stream()
    shutil.rmtree(target, ignore_errors=True)


def _buildable_test_selection() -> contextlib.AbstractContextManager[None]:
    # A job runs these models in several steps: around the category_predictions asset (it reads
    # int_transactions_rule_categorised, which is built on the incremental rule matches), and the
    # incremental models in a step before those views and one after them. A step selects its models
    # by name, and dbt's default (eager) test selection would add every test touching one of them:
    # fct_transactions' relationships tests to dim_accounts and int_transfers_paired, before
    # fct_transactions is built. Buildable keeps a test when each of its parents is in the step or
    # built before it (an ancestor of one that is), so those run in fct_transactions' step.
    # dagster-dbt reads this variable (and still overrides it when it lists the tests itself).
    return environment({"DBT_INDIRECT_SELECTION": "buildable"})


@contextmanager
def _dbt_connection(warehouse: WarehouseResource, dbt: DbtCliResource) -> Iterator[None]:
    # dagster-dbt hands os.environ to the dbt subprocess; profiles.yml reads the connection there.
    with dbt_connection(warehouse.url):
        parse_for_current_connection(dbt)
        yield
