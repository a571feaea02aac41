"""The project's view materialization (macros/materializations/view_in_place.sql) against real Postgres.

Rebuilding a staging view must leave the intermediate views on it in place: dbt's default
swap-and-drop CASCADE removed them, and two threads doing it at once deadlocked in CI.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from pipeline_runs import run_dbt

from resources.warehouse.resource import WarehouseResource

STAGING = "stg_rest__accounts"
DEPENDENT = "int_accounts_unified"


def dbt(warehouse: WarehouseResource, *args: str) -> None:
    run_dbt(warehouse, "dbt_views_test", *args)


def view_oid(database_url: str, schema: str, name: str) -> int | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = %s and c.relname = %s",
            (schema, name),
        ).fetchone()
    return None if row is None else int(row[0])


def columns(database_url: str, schema: str, name: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        found = conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = %s and table_name = %s order by ordinal_position",
            (schema, name),
        ).fetchall()
    return [column for (column,) in found]


@pytest.fixture
def built(warehouse: WarehouseResource) -> Iterator[None]:
    dbt(warehouse, "run", "--select", f"+{DEPENDENT}")
    yield
    # Whatever a test did to the views, the next module finds them as dbt builds them.
    dbt(warehouse, "run", "--select", f"+{DEPENDENT}")


def test_rebuilding_a_staging_view_keeps_the_views_built_on_it(
    built: None, warehouse: WarehouseResource, database_url: str
) -> None:
    staging_before = view_oid(database_url, "staging", STAGING)
    dependent_before = view_oid(database_url, "intermediate", DEPENDENT)
    assert staging_before is not None and dependent_before is not None

    dbt(warehouse, "run", "--select", STAGING)

    # Same objects: replaced in place, not dropped and recreated.
    assert view_oid(database_url, "staging", STAGING) == staging_before
    assert view_oid(database_url, "intermediate", DEPENDENT) == dependent_before
    with psycopg.connect(database_url) as conn:
        conn.execute(f"select count(*) from intermediate.{DEPENDENT}").fetchone()  # noqa: S608


def test_a_view_whose_columns_changed_is_swapped_and_gets_the_models_columns(
    built: None, warehouse: WarehouseResource, database_url: str
) -> None:
    expected = columns(database_url, "staging", STAGING)
    with psycopg.connect(database_url) as conn:
        # A stale definition whose columns CREATE OR REPLACE VIEW could not turn into the model's.
        conn.execute(f"drop view staging.{STAGING} cascade")
        conn.execute(f"create view staging.{STAGING} as select 1 as stale_column")

    dbt(warehouse, "run", "--select", STAGING)

    assert columns(database_url, "staging", STAGING) == expected
    assert view_oid(database_url, "staging", f"{STAGING}__dbt_backup") is None
    assert view_oid(database_url, "staging", f"{STAGING}__dbt_tmp") is None
