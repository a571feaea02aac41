"""The raw table registry, the dbt sources and the Dagster raw assets name the same tables."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import psycopg

from pipelines.transform.project import DBT_PROJECT_DIR
from resources.warehouse.raw_tables import RAW_TABLES, all_raw_tables


def test_every_dbt_source_is_a_registered_raw_table() -> None:
    manifest = json.loads((Path(DBT_PROJECT_DIR) / "target" / "manifest.json").read_text())
    sources = {s["identifier"] for s in manifest["sources"].values() if s["schema"] == "raw"}
    assert sources == set(all_raw_tables())


def test_every_raw_asset_is_a_registered_raw_table(monkeypatch) -> None:
    from test_definitions import PLACEHOLDER_ENV

    for name, value in PLACEHOLDER_ENV.items():
        monkeypatch.setenv(name, value)
    defs = _definitions_with_placeholders()

    graph = defs.get_repository_def().asset_graph
    raw_assets = {
        key.to_user_string(): graph.get(key).metadata.get("dagster/table_name")
        for key in graph.get_all_asset_keys()
        if key.to_user_string().startswith("raw_") and graph.get(key).is_materializable
    }
    # Every extract asset names the table it lands in; several (the REST banks') may share one.
    assert all(raw_assets.values()), [key for key, table in raw_assets.items() if not table]
    assert {table.removeprefix("raw.") for table in raw_assets.values()} <= set(all_raw_tables())
    # An asset named after its own table lands there (raw_<table> -> raw.<table>).
    for key, table in raw_assets.items():
        if key.removeprefix("raw_") in all_raw_tables():
            assert table == f"raw.{key.removeprefix('raw_')}", key


def test_every_rest_bank_has_its_assets_on_the_shared_tables(monkeypatch) -> None:
    """Banks come from connectors/rest/*.yaml: each gets one asset per shared raw.rest_* table."""
    from test_definitions import PLACEHOLDER_ENV

    for name, value in PLACEHOLDER_ENV.items():
        monkeypatch.setenv(name, value)
    defs = _definitions_with_placeholders()
    from pipelines.sources.rest.assets import raw_asset_key
    from resources.providers.rest_bank_config import configured_rest_banks

    banks = configured_rest_banks()
    assert {"hdfc", "icici", "sbi"} <= {bank.name for bank in banks}
    graph = defs.get_repository_def().asset_graph
    for bank in banks:
        for table in RAW_TABLES["rest"]:
            node = graph.get(dg.AssetKey(raw_asset_key(bank, table)))
            assert node.metadata["dagster/table_name"] == f"raw.{table}"


def test_bootstrap_creates_every_raw_table(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            )
        }
    assert set(all_raw_tables()) <= tables


def _definitions_with_placeholders():
    # The module was imported (by conftest) before the placeholders were set: build it again.
    import importlib

    import pipelines.definitions

    return importlib.reload(pipelines.definitions).defs
