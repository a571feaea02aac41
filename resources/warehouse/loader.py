"""The one loader into `raw`: replace a scope of a raw table with new records, atomically.

Every raw table has the same shape (the source's payload as JSONB plus lineage columns), so
one function lands any source. A load deletes the scope it replaces and COPYs the new rows in
the same transaction: a failed load leaves the previous rows in place, and re-running a load
gives the same table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

RAW_SCHEMA = "raw"
COPY_COLUMNS = (
    "payload",
    "source",
    "account_ref",
    "partition_key",
    "record_key",
    "fetched_at",
    "run_id",
    "file_id",
)
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


# slots: an extract holds one per record (100,000 in a large pull); without __dict__ they are a
# third of the size and the garbage collector has less to walk.
@dataclass(frozen=True, slots=True)
class RawRecord:
    """One source record. `payload` is the record's JSON text, numbers exactly as the source sent them."""

    payload: str
    partition_key: str
    record_key: str
    account_ref: str | None = None


@dataclass(frozen=True)
class ReplaceScope:
    """Which existing rows a load replaces: rows in these partitions, of these accounts and/or from
    these files (a statement file is replaced whole, whatever days its entries fall on).

    All None replaces the whole table (a snapshot source). Either way only the loading source's
    own rows: several sources may share a table (the declarative REST banks share raw.rest_*).
    """

    partition_keys: Sequence[str] | None = None
    account_refs: Sequence[str] | None = None
    file_ids: Sequence[str] | None = None

    def admits(self, record: RawRecord) -> bool:
        in_partitions = self.partition_keys is None or record.partition_key in self.partition_keys
        in_accounts = self.account_refs is None or record.account_ref in self.account_refs
        return in_partitions and in_accounts


@dataclass(frozen=True)
class LoadResult:
    table: str
    rows_deleted: int
    rows_inserted: int


class ScopeViolation(ValueError):
    """A record outside the replace scope: landing it would duplicate it on the next run."""


def raw_table_ddl(table: str) -> sql.Composed:
    return sql.SQL(
        """
        create table if not exists {table} (
            raw_id bigint generated always as identity primary key,
            payload jsonb not null,
            source text not null,
            account_ref text,
            partition_key text not null,
            record_key text not null,
            fetched_at timestamptz not null,
            run_id text not null,
            file_id text
        );
        create index if not exists {partition_index} on {table} (partition_key, account_ref);
        -- dbt's incremental staging restages a record key from all its landings (macros/restaging.sql).
        create index if not exists {record_key_index} on {table} (record_key);
        """
    ).format(
        table=_qualified(table),
        partition_index=sql.Identifier(f"{table}__partition_key_idx"),
        record_key_index=sql.Identifier(f"{table}__record_key_idx"),
    )


def ensure_raw_table(conn: psycopg.Connection, table: str) -> None:
    conn.execute(raw_table_ddl(table))


def land(
    conn: psycopg.Connection,
    *,
    table: str,
    source: str,
    records: Iterable[RawRecord],
    scope: ReplaceScope,
    run_id: str,
    fetched_at: datetime,
    file_id: str | None = None,
) -> LoadResult:
    """Replace `scope` of `source`'s rows in `raw.<table>` with `records` in one transaction.

    Raises ScopeViolation (and lands nothing) if a record falls outside the scope.
    """
    with conn.transaction(), conn.cursor() as cur:
        # One load of a source's table at a time (a schedule's run and a backfill overlapping): a
        # second load's delete must see the first one's rows, or both sets stay and rows double.
        # Taken before the table is touched: ensure_raw_table's CREATE INDEX IF NOT EXISTS holds a
        # share lock on it to the end of the transaction, and a second load waiting here with that
        # lock would block the first one's delete, each waiting for the other (a deadlock).
        cur.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"raw.{table}/{source}",))
        ensure_raw_table(conn, table)
        deleted = cur.execute(_delete_statement(table, scope), _scope_params(scope, source)).rowcount
        inserted = 0
        copy_sql = sql.SQL("copy {} ({}) from stdin").format(
            _qualified(table), sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS))
        )
        with cur.copy(copy_sql) as copy:
            for record in records:
                if not scope.admits(record):
                    raise ScopeViolation(
                        f"record {record.record_key!r} (partition {record.partition_key!r}, account "
                        f"{record.account_ref!r}) is outside the replace scope of raw.{table}"
                    )
                copy.write_row(
                    (
                        record.payload,
                        source,
                        record.account_ref,
                        record.partition_key,
                        record.record_key,
                        fetched_at,
                        run_id,
                        file_id,
                    )
                )
                inserted += 1
    return LoadResult(table=table, rows_deleted=deleted, rows_inserted=inserted)


def _qualified(table: str) -> sql.Identifier:
    if not _TABLE_NAME.match(table):
        raise ValueError(f"not a raw table name: {table!r}")
    return sql.Identifier(RAW_SCHEMA, table)


def _delete_statement(table: str, scope: ReplaceScope) -> sql.Composed:
    conditions = [sql.SQL("source = %(source)s")]
    if scope.partition_keys is not None:
        conditions.append(sql.SQL("partition_key = any(%(partition_keys)s)"))
    if scope.account_refs is not None:
        conditions.append(sql.SQL("account_ref = any(%(account_refs)s)"))
    if scope.file_ids is not None:
        conditions.append(sql.SQL("file_id = any(%(file_ids)s)"))
    return sql.SQL("delete from {} where {}").format(_qualified(table), sql.SQL(" and ").join(conditions))


def _scope_params(scope: ReplaceScope, source: str) -> dict[str, str | list[str]]:
    params: dict[str, str | list[str]] = {"source": source}
    if scope.partition_keys is not None:
        params["partition_keys"] = list(scope.partition_keys)
    if scope.account_refs is not None:
        params["account_refs"] = list(scope.account_refs)
    if scope.file_ids is not None:
        params["file_ids"] = list(scope.file_ids)
    return params
