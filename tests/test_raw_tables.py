"""The raw table registry, the dbt sources and the Dagster raw assets name the same tables."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from pipelines.transform.project import DBT_PROJECT_DIR
from resources.warehouse.raw_tables import all_raw_tables


def test_every_dbt_source_is_a_registered_raw_table() -> None:
    manifest = json.loads((Path(DBT_PROJECT_DIR) / "target" / "manifest.json").read_text())
    sources = {s["identifier"] for s in manifest["sources"].values() if s["schema"] == "raw"}
    assert sources == set(all_raw_tables())


def test_every_raw_asset_is_a_registered_raw_table(monkeypatch) -> None:
    from test_definitions import PLACEHOLDER_ENV

    for name, value in PLACEHOLDER_ENV.items():
        monkeypatch.setenv(name, value)
    from pipelines.definitions import defs

    keys = {k.to_user_string() for k in defs.get_repository_def().asset_graph.get_all_asset_keys()}
    raw_assets = {key.removeprefix("raw_") for key in keys if key.startswith("raw_")}
    assert raw_assets <= set(all_raw_tables())


def test_bootstrap_creates_every_raw_table(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            )
        }
    assert set(all_raw_tables()) <= tables
