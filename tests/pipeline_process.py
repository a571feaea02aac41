"""A TrueLayer run of the daily pipeline in an OS process of its own, for the reliability tests to
kill with SIGKILL or to run beside another: `python tests/pipeline_process.py '<request JSON>'`.

The request names the warehouse (`database_url`, `secret_key`), the TrueLayer server
(`truelayer_url`, `client_id`, `client_secret`), the `day`, what to run (`"extract"`: TrueLayer's
raw tables; `"pipeline"`: them and everything downstream, as `bankflow backfill --source
truelayer` runs it) and the run's `trigger` tag. With `"wait": true` the process reads a line from
stdin before it starts the run, its imports and definitions done: a test starts it ahead and lets
it go at the moment it chooses. The outcome goes to `result_path` as JSON (stdout carries dbt's
output).
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from bankflow_cli.runs import run_days, selected_assets
from pipelines.definitions import build_definitions, configured_extracts
from pipelines.transform.project import dbt_project
from resources.providers.truelayer_resource import TrueLayerResource
from resources.warehouse.resource import WarehouseResource

EXTRACT = "raw_truelayer"


def pipeline_definitions(request: dict) -> dg.Definitions:
    """TrueLayer alone (with the retries and timeout of the tests' conftest), the warehouse, dbt."""
    return build_definitions(
        {
            "warehouse": WarehouseResource(
                database_url=request["database_url"], home=request["home"], secret_key=request["secret_key"]
            ),
            "truelayer": TrueLayerResource(
                environment=request["truelayer_url"],
                client_id=request["client_id"],
                client_secret=request["client_secret"],
                timeout_seconds=5.0,
                max_attempts=2,
                backoff_initial_seconds=0.01,
            ),
            "dbt": DbtCliResource(
                project_dir=dbt_project(), dbt_executable=str(Path(sys.executable).parent / "dbt")
            ),
        },
        environ={},
    )


def assets_to_run(definitions: dg.Definitions, run: str) -> list[dg.AssetKey]:
    if run == "pipeline":
        assets = selected_assets(definitions, configured_extracts(definitions.resources, {}), ["truelayer"])
        assert assets is not None
        return assets
    job = definitions.resolve_job_def("daily_pipeline")
    return [key for key in job.asset_layer.executable_asset_keys if key.path[-1].startswith(EXTRACT)]


def main() -> None:
    request = json.loads(sys.argv[1])
    definitions = pipeline_definitions(request)
    assets = assets_to_run(definitions, request["run"])
    day = date.fromisoformat(request["day"])
    if request.get("wait"):
        sys.stdin.readline()
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_days(definitions, instance, day, day, assets=assets, trigger=request["trigger"])
    failures = [
        {"step": event.step_key, "error": str(event.event_specific_data.error)}
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE"
    ]
    outcome = {"success": result.success, "run_id": result.run_id, "failures": failures}
    Path(request["result_path"]).write_text(json.dumps(outcome))


if __name__ == "__main__":
    main()
