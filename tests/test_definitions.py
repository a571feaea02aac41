"""The code location loads with placeholder configuration: every asset, check and job is there."""

from __future__ import annotations

import importlib

import pytest
from dagster._core.execution.api import create_execution_plan

from pipelines.transform.assets import DBT_ASSETS

PLACEHOLDER_ENV = {
    "BANKFLOW_DATABASE_URL": "postgresql://placeholder@127.0.0.1:1/placeholder",
    "BANKFLOW_HOME": ".bankflow",
    "BANKFLOW_SECRET_KEY": "placeholder",
    "BANKFLOW_TRUELAYER_ENVIRONMENT": "live",
    "BANKFLOW_TRUELAYER_CLIENT_ID": "placeholder",
    "BANKFLOW_TRUELAYER_CLIENT_SECRET": "placeholder",
    "BANKFLOW_BERLIN_GROUP_BASE_URL": "https://bg.example",
    "BANKFLOW_BERLIN_GROUP_TOKEN_URL": "https://bg.example/oauth/token",
    "BANKFLOW_BERLIN_GROUP_CLIENT_ID": "placeholder",
    "BANKFLOW_BERLIN_GROUP_CLIENT_SECRET": "placeholder",
    "BANKFLOW_REVOLUT_API_URL": "https://revolut.example/api/1.0",
    "BANKFLOW_REVOLUT_CONSENT_URL": "https://revolut.example/app-confirm",
    "BANKFLOW_REVOLUT_CLIENT_ID": "placeholder",
    "BANKFLOW_REVOLUT_PRIVATE_KEY_PEM": "placeholder",
    "BANKFLOW_GOCARDLESS_BASE_URL": "https://gocardless.example/api/v2",
    "BANKFLOW_GOCARDLESS_SECRET_ID": "placeholder",
    "BANKFLOW_GOCARDLESS_SECRET_KEY": "placeholder",
    "BANKFLOW_RAZORPAY_BASE_URL": "https://razorpay.example/v1",
    "BANKFLOW_RAZORPAY_KEY_ID": "placeholder",
    "BANKFLOW_RAZORPAY_KEY_SECRET": "placeholder",
    "BANKFLOW_FIBANK_BASE_URL": "https://fibank.example",
    "BANKFLOW_FIBANK_USERNAME": "placeholder",
    "BANKFLOW_FIBANK_PASSWORD": "placeholder",
    "BANKFLOW_HDFC_TOKEN": "placeholder",
    "BANKFLOW_ICICI_API_KEY": "placeholder",
    "BANKFLOW_ICICI_TOKEN": "placeholder",
    "BANKFLOW_SBI_CLIENT_ID": "placeholder",
    "BANKFLOW_SBI_CLIENT_SECRET": "placeholder",
}


def test_definitions_load(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PLACEHOLDER_ENV.items():
        monkeypatch.setenv(name, value)
    repository = _code_location().get_repository_def()
    keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert {
        "raw_truelayer_transactions",
        "raw_truelayer_pending_transactions",
        "raw_truelayer_accounts",
        "raw_truelayer_balances",
        "raw_berlin_group_transactions",
        "raw_revolut_transactions",
        "raw_gocardless_transactions",
        "raw_razorpay_payments",
        "raw_razorpay_settlement_recon",
        "raw_fibank_transactions",
        "raw_fibank_accounts",
        "raw_fibank_balances",
        "stg_fibank__transactions",
        "stg_razorpay__settlement_recon_items",
        "stg_truelayer__transactions",
        "int_transactions_unioned",
        "fct_transactions",
        "dim_accounts",
    } <= keys
    checks = {key.name for key in repository.asset_graph.asset_check_keys}
    assert "gx_fct_transactions" in checks
    assert "unique_fct_transactions_transaction_key" in checks
    assert {"gx_raw", "gx_staging", "nothing_quarantined", "consent_current", "freshness_check"} <= checks
    assert repository.get_job("daily_pipeline")
    assert repository.get_job("quality_audit")
    assert repository.has_sensor_def("source_freshness")
    assert repository.has_sensor_def("run_failure_alert")
    # Raw and staging suites stop the models after them; the marts' only report.
    graph = repository.asset_graph
    specs = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert specs["gx_raw"].blocking and specs["gx_staging"].blocking
    assert not specs["gx_fct_transactions"].blocking
    graph = repository.asset_graph
    fct = next(k for k in graph.get_all_asset_keys() if k.to_user_string() == "fct_transactions")
    assert graph.get(fct).partitions_def is not None
    assert "raw_truelayer_transactions" in _ancestors(graph, fct)
    # What `dagster definitions validate`, backfills and the automation sensor check: every
    # dependency maps its partitions (a day of the models reads every statement file).
    graph.validate_partitions()


def test_a_run_builds_the_dbt_models_in_one_step_per_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seven dbt steps a run, none split by Dagster; the blocking suites sit between the layers
    they guard, and the categoriser between the rule-categorised and the categorised rows."""
    for name, value in PLACEHOLDER_ENV.items():
        monkeypatch.setenv(name, value)
    job = _code_location().get_repository_def().get_job("daily_pipeline")
    window = {
        "dagster/asset_partition_range_start": "2026-12-01",
        "dagster/asset_partition_range_end": "2026-12-02",
    }
    plan = create_execution_plan(job, tags=window)
    upstream = {
        step.key: {
            handle.step_key
            for step_input in step.step_inputs
            for handle in step_input.get_step_output_handle_dependencies()
        }
        for step in plan.get_steps_to_execute_in_topo_order()
    }
    assert sorted(key for key in upstream if key.startswith("dbt_")) == sorted(a.op.name for a in DBT_ASSETS)
    assert len(DBT_ASSETS) == 7
    assert sorted(key for key in upstream if key.startswith("gx_")) == [
        "gx_marts_suites",
        "gx_raw_suites",
        "gx_staging_suites",
    ]
    assert "gx_raw_suites" in upstream["dbt_reference_models"] & upstream["dbt_incremental_staging"]
    assert upstream["gx_staging_suites"] == {"dbt_incremental_staging"}
    assert "gx_staging_suites" in upstream["dbt_incremental_intermediate"]
    assert "dbt_rule_categorised" in upstream["category_predictions"]
    assert "category_predictions" in upstream["dbt_categorised"]
    assert upstream["dbt_marts"] >= {"dbt_incremental_facts"}


def test_every_rest_bank_feeds_the_marts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each connectors/rest/ bank's extract is upstream of its staging and the marts (so a run orders
    it before dbt), with its own pool; the shared table itself is no asset of its own."""
    for name, value in PLACEHOLDER_ENV.items():
        monkeypatch.setenv(name, value)
    repository = _code_location().get_repository_def()
    graph = repository.asset_graph
    keys = {key.to_user_string(): key for key in graph.get_all_asset_keys()}
    assert "raw_rest_transactions" not in keys
    for model in ("stg_rest__transactions", "fct_transactions", "dim_accounts", "fct_balances"):
        ancestors = _ancestors(graph, keys[model])
        for bank in ("hdfc", "icici", "sbi"):
            assert {f"raw_rest_{bank}_transactions", f"raw_rest_{bank}_accounts"} & ancestors, (model, bank)
    for bank in ("hdfc", "icici", "sbi"):
        node = graph.get(keys[f"raw_rest_{bank}_transactions"])
        assert node.partitions_def is not None
        assert repository.assets_defs_by_key[keys[f"raw_rest_{bank}_transactions"]].op.pools == {
            f"rest_{bank}"
        }


def _code_location():  # noqa: ANN202 - Dagster's Definitions
    """The code location as `dagster` loads it: `defs`, built from the environment as it is now
    (the module may have been imported earlier, e.g. by conftest, under another environment)."""
    definitions = importlib.reload(importlib.import_module("pipelines.definitions"))
    return definitions.defs


def _ancestors(graph, key) -> set[str]:  # noqa: ANN001 - Dagster's asset graph and key
    seen: set[str] = set()
    frontier = [key]
    while frontier:
        for parent in graph.get(frontier.pop()).parent_keys:
            if parent.to_user_string() not in seen:
                seen.add(parent.to_user_string())
                frontier.append(parent)
    return seen


def test_unconfigured_sources_are_left_out_not_failed() -> None:
    """With only TrueLayer set up, the code location holds TrueLayer's extract and the dbt models,
    and the daily job needs no resource of a source nobody configured."""
    from pipelines.definitions import build_definitions
    from pipelines.resources import resources_from_env

    environ = {
        name: value
        for name, value in PLACEHOLDER_ENV.items()
        if not name.startswith(
            (
                "BANKFLOW_BERLIN",
                "BANKFLOW_REVOLUT",
                "BANKFLOW_GOCARDLESS",
                "BANKFLOW_RAZORPAY",
                "BANKFLOW_FIBANK",
            )
        )
        and not name.startswith(("BANKFLOW_HDFC", "BANKFLOW_ICICI", "BANKFLOW_SBI_CLIENT_SECRET"))
    }
    resources = resources_from_env(environ)
    assert {"truelayer", "warehouse", "dbt", "rest_banks"} <= resources.keys()
    assert not {"berlin_group", "revolut", "gocardless", "razorpay", "fibank"} & resources.keys()
    repository = build_definitions(resources, environ).get_repository_def()
    graph = repository.asset_graph
    # Sources the dbt models read stay in the graph as stubs; only configured ones materialise.
    keys = {key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    assert "raw_truelayer_transactions" in keys and "fct_transactions" in keys
    # SBI has its client id but not its secret: not configured either.
    assert not {k for k in keys if k.startswith(("raw_revolut", "raw_fibank", "raw_rest_", "raw_razorpay"))}
    job = repository.get_job("daily_pipeline")
    assert job.required_resource_keys <= {*resources.keys(), "io_manager"}
    # A source left out takes its checks with it.
    checked = {key.asset_key.to_user_string() for key in graph.asset_check_keys}
    assert "raw_truelayer_transactions" in checked
    assert not {
        k for k in checked if k.startswith(("raw_revolut", "raw_fibank", "raw_rest_", "raw_razorpay"))
    }
