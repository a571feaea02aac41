"""dbt models as Dagster assets: one per phase of the dbt graph around the categoriser, the
incremental phases daily-partitioned."""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from dagster_dbt import DbtCliResource, dbt_assets

from pipelines.files.assets import raw_statement_files
from pipelines.partitions import booking_window, daily_partitions
from pipelines.sources.rest.assets import REST_BANKS, rest_bank_sources
from pipelines.transform.parse_cache import parse_for_current_connection
from pipelines.transform.phases import dbt_phases
from pipelines.transform.project import DBT_PROJECT_DIR, dbt_project
from pipelines.transform.translator import BankflowDbtTranslator
from resources.warehouse.database import dbt_connection, environment
from resources.warehouse.resource import WarehouseResource

# Models on the shared raw.rest_* tables depend on each connectors/rest/ bank's extract asset.
TRANSLATOR = BankflowDbtTranslator(rest_bank_sources(REST_BANKS), per_file_sources=raw_statement_files.keys)
PHASES = dbt_phases(json.loads(dbt_project().manifest_path.read_text()))
DBT_LOCK = "bankflow.dbt_build"


def dbt_target_dir() -> Path:
    """Where the dbt steps' own target folders go: the target path dbt and dagster-dbt read
    (DBT_TARGET_PATH, relative to the project), else the project's target/."""
    return DBT_PROJECT_DIR / os.environ.get("DBT_TARGET_PATH", "target")


def _dbt_phase(name: str, select: str, partitioned: bool) -> dg.AssetsDefinition:
    """One phase of the dbt graph (pipelines/transform/phases.py) as one subsettable asset; a
    partitioned one builds its incremental models for the run's partition window (plus lookback)."""

    @dbt_assets(
        manifest=dbt_project().manifest_path,
        select=select,
        partitions_def=daily_partitions if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        dagster_dbt_translator=TRANSLATOR,
        name=name,
    )
    def _phase(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
    ) -> Iterator[Any]:
        window = booking_window(*context.partition_time_window).dbt_environment if partitioned else {}
        with _dbt_connection(warehouse, dbt), _buildable_test_selection(), environment(window):
            yield from _dbt_build(context, dbt, ["build"])

    return _phase


# In the order a run builds them; category_predictions runs between rule_categorised and categorised.
dbt_reference_models = _dbt_phase("dbt_reference_models", PHASES.reference, partitioned=False)
dbt_incremental_staging = _dbt_phase("dbt_incremental_staging", PHASES.incremental_staging, partitioned=True)
dbt_incremental_intermediate = _dbt_phase(
    "dbt_incremental_intermediate", PHASES.incremental_intermediate, partitioned=True
)
dbt_rule_categorised = _dbt_phase("dbt_rule_categorised", PHASES.rule_categorised, partitioned=False)
dbt_categorised = _dbt_phase("dbt_categorised", PHASES.categorised, partitioned=False)
dbt_incremental_facts = _dbt_phase("dbt_incremental_facts", PHASES.incremental_facts, partitioned=True)
dbt_marts = _dbt_phase("dbt_marts", PHASES.marts, partitioned=False)
DBT_ASSETS = (
    dbt_reference_models,
    dbt_incremental_staging,
    dbt_incremental_intermediate,
    dbt_rule_categorised,
    dbt_categorised,
    dbt_incremental_facts,
    dbt_marts,
)


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
    # A run builds the models in one step per phase, and a step selects its models by name: dbt's
    # default (eager) test selection would add every test touching one of them, such as
    # fct_transactions' relationships tests to dim_accounts, in dim_accounts' step, before
    # fct_transactions is built. Buildable keeps a test when each of its parents is in the step or
    # built before it (an ancestor of one that is), so those run in fct_transactions' step.
    # dagster-dbt reads this variable (and still overrides it when it lists the tests itself).
    return environment({"DBT_INDIRECT_SELECTION": "buildable"})


@contextmanager
def _dbt_connection(warehouse: WarehouseResource, dbt: DbtCliResource) -> Iterator[None]:
    # dagster-dbt hands os.environ to the dbt subprocess; profiles.yml reads the connection there.
    with dbt_connection(warehouse.url), _one_dbt_step_at_a_time(warehouse.url):
        parse_for_current_connection(dbt)
        yield


@contextmanager
def _one_dbt_step_at_a_time(url: str) -> Iterator[None]:
    """Hold the warehouse's dbt lock for the block: a dbt step of another run (a schedule's and a
    backfill's at once, on one Dagster instance or two) waits for it. dbt replaces a view or table
    by creating it under a temporary name and renaming it, and two builds of the same model at
    once fail with "relation already exists". A session lock: the server frees it if the process dies."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(hashtextextended(%s, 0))", (DBT_LOCK,))
        yield
