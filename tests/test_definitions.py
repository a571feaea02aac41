"""The code location loads with placeholder configuration: every asset, check and job is there."""

from __future__ import annotations

import importlib

import pytest

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
}


def test_definitions_load(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PLACEHOLDER_ENV.items():
        monkeypatch.setenv(name, value)
    definitions = importlib.import_module("pipelines.definitions")
    repository = definitions.defs.get_repository_def()
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
    assert repository.get_job("daily_pipeline")
    graph = repository.asset_graph
    fct = next(k for k in graph.get_all_asset_keys() if k.to_user_string() == "fct_transactions")
    assert graph.get(fct).partitions_def is not None
    assert "raw_truelayer_transactions" in _ancestors(graph, fct)


def test_every_rest_bank_feeds_the_marts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each connectors/rest/ bank's extract is upstream of its staging and the marts (so a run orders
    it before dbt), with its own pool; the shared table itself is no asset of its own."""
    for name, value in PLACEHOLDER_ENV.items():
        monkeypatch.setenv(name, value)
    definitions = importlib.import_module("pipelines.definitions")
    repository = definitions.defs.get_repository_def()
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


def _ancestors(graph, key) -> set[str]:  # noqa: ANN001 - Dagster's asset graph and key
    seen: set[str] = set()
    frontier = [key]
    while frontier:
        for parent in graph.get(frontier.pop()).parent_keys:
            if parent.to_user_string() not in seen:
                seen.add(parent.to_user_string())
                frontier.append(parent)
    return seen
