"""The warehouse: URL handling, schemas, and the one raw loader (atomic, scoped, idempotent)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest

from resources.warehouse.database import (
    bootstrap_schemas,
    dbt_env,
    environment,
    libpq_params,
    sqlalchemy_url,
    with_database,
)
from resources.warehouse.loader import RawRecord, ReplaceScope, ScopeViolation, land

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def record(key: str, day: str, account: str = "acc-1", amount: str = "1.10") -> RawRecord:
    return RawRecord(
        payload=f'{{"id": "{key}", "amount": {amount}}}',
        partition_key=day,
        record_key=key,
        account_ref=account,
    )


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as connection:
        connection.execute("drop table if exists raw.loader_test")
        connection.commit()
        yield connection
        connection.rollback()
        connection.execute("drop table if exists raw.loader_test")
        connection.commit()


def table_rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "select account_ref, partition_key, record_key, payload ->> 'amount' from raw.loader_test order by 1, 2, 3"
    ).fetchall()


def load(conn: psycopg.Connection, records: list[RawRecord], scope: ReplaceScope) -> None:
    land(conn, table="loader_test", source="test", records=records, scope=scope, run_id="run", fetched_at=NOW)


def test_land_replaces_only_its_scope(conn: psycopg.Connection) -> None:
    load(
        conn,
        [record("a", "2026-01-01"), record("b", "2026-01-02"), record("c", "2026-01-02", "acc-2")],
        ReplaceScope(),
    )
    load(
        conn,
        [record("b2", "2026-01-02")],
        ReplaceScope(partition_keys=["2026-01-02"], account_refs=["acc-1"]),
    )
    assert [r[2] for r in table_rows(conn)] == ["a", "b2", "c"]


def test_land_replaces_only_its_own_sources_rows(conn: psycopg.Connection) -> None:
    """Sources sharing a table (the REST banks in raw.rest_*) never replace each other's rows,
    even when their account ids coincide."""
    scope = ReplaceScope(partition_keys=["2026-01-01"], account_refs=["acc-1"])

    def load_as(source: str, key: str) -> None:
        land(
            conn,
            table="loader_test",
            source=source,
            records=[record(key, "2026-01-01")],
            scope=scope,
            run_id="run",
            fetched_at=NOW,
        )

    load_as("bank_a", "bank_a-1")
    load_as("bank_b", "bank_b-1")
    load_as("bank_a", "bank_a-2")
    assert [r[2] for r in table_rows(conn)] == ["bank_a-2", "bank_b-1"]


def test_landing_twice_gives_the_same_table(conn: psycopg.Connection) -> None:
    records = [record("a", "2026-01-01"), record("b", "2026-01-01")]
    scope = ReplaceScope(partition_keys=["2026-01-01"])
    load(conn, records, scope)
    first = table_rows(conn)
    load(conn, records, scope)
    assert table_rows(conn) == first


def test_numbers_keep_their_exact_text(conn: psycopg.Connection) -> None:
    load(
        conn,
        [record("a", "2026-01-01", amount="1238.60"), record("b", "2026-01-01", amount="0.1")],
        ReplaceScope(),
    )
    amounts = conn.execute(
        "select (payload ->> 'amount')::numeric from raw.loader_test order by record_key"
    ).fetchall()
    assert [a[0] for a in amounts] == [Decimal("1238.60"), Decimal("0.1")]


def test_record_outside_scope_lands_nothing(conn: psycopg.Connection) -> None:
    load(conn, [record("a", "2026-01-01")], ReplaceScope())
    conn.commit()
    with pytest.raises(ScopeViolation, match="outside the replace scope"):
        load(
            conn,
            [record("x", "2026-01-01"), record("y", "2026-01-05")],
            ReplaceScope(partition_keys=["2026-01-01"]),
        )
    assert [r[2] for r in table_rows(conn)] == ["a"]


def test_failure_mid_load_keeps_previous_rows(conn: psycopg.Connection) -> None:
    load(conn, [record("a", "2026-01-01")], ReplaceScope())
    conn.commit()

    def failing_source() -> Iterator[RawRecord]:
        yield record("new", "2026-01-01")
        raise ConnectionError("source dropped mid-stream")

    with pytest.raises(ConnectionError):
        load(conn, failing_source(), ReplaceScope())
    assert [r[2] for r in table_rows(conn)] == ["a"]


def test_overlapping_loads_of_one_scope_leave_one_set_of_rows(
    conn: psycopg.Connection, database_url: str
) -> None:
    # A schedule's run and a backfill landing the same day at once: the second load waits for the
    # first and replaces its rows, as a load after it would.
    day = ReplaceScope(partition_keys=["2026-01-01"])
    load(conn, [record("old", "2026-01-01")], day)
    conn.commit()
    first_is_copying, release_first = threading.Event(), threading.Event()

    def slow_records() -> Iterator[RawRecord]:
        yield record("a", "2026-01-01", amount="1.00")
        first_is_copying.set()
        release_first.wait(timeout=60)
        yield record("b", "2026-01-01", amount="1.00")

    def load_in_own_connection(records: Iterable[RawRecord]) -> None:
        with psycopg.connect(database_url) as own:
            load(own, records, day)

    first = threading.Thread(target=load_in_own_connection, args=(slow_records(),))
    first.start()
    assert first_is_copying.wait(timeout=60)
    second = threading.Thread(
        target=load_in_own_connection,
        args=([record("a", "2026-01-01", amount="2.00"), record("b", "2026-01-01", amount="2.00")],),
    )
    second.start()
    # Only once the second load is waiting on the first does the first go on.
    deadline = time.monotonic() + 60
    while not conn.execute(
        "select exists (select 1 from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database())"
    ).fetchone()[0]:
        conn.rollback()
        assert time.monotonic() < deadline, "the second load never waited for the first"
        time.sleep(0.05)
    release_first.set()
    first.join(timeout=60)
    second.join(timeout=60)
    conn.rollback()
    assert table_rows(conn) == [("acc-1", "2026-01-01", "a", "2.00"), ("acc-1", "2026-01-01", "b", "2.00")]


def test_table_names_are_checked(conn: psycopg.Connection) -> None:
    with pytest.raises(ValueError, match="not a raw table name"):
        land(
            conn,
            table="x; drop table y",
            source="t",
            records=[],
            scope=ReplaceScope(),
            run_id="r",
            fetched_at=NOW,
        )


def test_bootstrap_is_repeatable(database_url: str) -> None:
    bootstrap_schemas(database_url)
    bootstrap_schemas(database_url)
    with psycopg.connect(database_url) as connection:
        schemas = {r[0] for r in connection.execute("select schema_name from information_schema.schemata")}
    assert {"raw", "ops"} <= schemas


def test_url_forms() -> None:
    socket_url = "postgresql://postgres@/bankflow?host=%2Ftmp%2Fpg&port=5432"
    assert libpq_params(socket_url) == {
        "host": "/tmp/pg",
        "port": "5432",
        "user": "postgres",
        "password": "",
        "dbname": "bankflow",
    }
    assert with_database(socket_url, "dagster") == "postgresql://postgres@/dagster?host=%2Ftmp%2Fpg&port=5432"
    assert (
        sqlalchemy_url("postgresql://u:p%40ss@db.example:6543/x", "psycopg2")
        == "postgresql+psycopg2://u:p%40ss@db.example:6543/x"
    )


def test_dbt_sessions_run_without_jit_and_keep_the_users_options(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libpq reads PGOPTIONS from the environment dbt runs in, as psycopg's libpq does here.
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=7MB")
    with environment(dbt_env(database_url)), psycopg.connect(database_url) as session:
        assert session.execute("show jit").fetchone() == ("off",)
        assert session.execute("show work_mem").fetchone() == ("7MB",)
