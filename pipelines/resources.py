"""Resource instances for the code location, every value from the environment."""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from pipelines.transform.project import dbt_project
from resources.providers.truelayer_resource import TrueLayerResource
from resources.warehouse.resource import WarehouseResource


def resources_from_env() -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(
            database_url=dg.EnvVar("BANKFLOW_DATABASE_URL"),
            home=dg.EnvVar("BANKFLOW_HOME"),
            secret_key=dg.EnvVar("BANKFLOW_SECRET_KEY"),
        ),
        "truelayer": TrueLayerResource(
            environment=dg.EnvVar("BANKFLOW_TRUELAYER_ENVIRONMENT"),
            client_id=dg.EnvVar("BANKFLOW_TRUELAYER_CLIENT_ID"),
            client_secret=dg.EnvVar("BANKFLOW_TRUELAYER_CLIENT_SECRET"),
        ),
        # The dbt of this environment, whether or not its bin/ is on PATH.
        "dbt": DbtCliResource(
            project_dir=dbt_project(), dbt_executable=str(Path(sys.executable).parent / "dbt")
        ),
    }
