"""Reading a mart for an export: any relation in `marts`, a page at a time, filtered by its date.

Only relations in `marts` can be named (checked against the catalog, then quoted as identifiers),
so an export never reaches `raw`, `ops` (tokens) or `staging`. Money stays numeric: the values
come back as Postgres gave them (Decimal), and each writer keeps them exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

MARTS_SCHEMA = "marts"
DATE_TYPES = ("date",)


class ExportError(ValueError):
    """A request the export cannot answer; the message says what to change."""


@dataclass(frozen=True)
class Mart:
    name: str
    columns: tuple[str, ...]
    # The first date column: the one `date_from` / `date_to` filter on; None if the mart has none.
    date_column: str | None
    # The columns a page is ordered by (json has no ordering in Postgres).
    sortable: tuple[str, ...]


@dataclass(frozen=True)
class Page:
    mart: Mart
    rows: list[tuple[Any, ...]]
    offset: int
    limit: int
    has_more: bool


def list_marts(conn: psycopg.Connection) -> dict[str, Mart]:
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in conn.execute(
        "select c.table_name, c.column_name, c.data_type"
        " from information_schema.columns c"
        " join information_schema.tables t using (table_schema, table_name)"
        " where c.table_schema = %s order by c.table_name, c.ordinal_position",
        (MARTS_SCHEMA,),
    ):
        columns.setdefault(table, []).append((column, data_type))
    return {
        name: Mart(
            name,
            tuple(column for column, _ in typed),
            next((column for column, data_type in typed if data_type in DATE_TYPES), None),
            tuple(column for column, data_type in typed if data_type != "json"),
        )
        for name, typed in columns.items()
    }


def read_page(
    conn: psycopg.Connection,
    mart_name: str,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int | None = 1000,
    offset: int = 0,
) -> Page:
    """Rows `offset`..`offset + limit` of the mart (all with limit None), between the two days
    (both included), in a stable order (its date, then every column), so that consecutive pages
    neither skip nor repeat."""
    mart = list_marts(conn).get(mart_name)
    if mart is None:
        raise ExportError(f"no mart named {mart_name!r} in schema {MARTS_SCHEMA}")
    if (limit is not None and limit < 1) or offset < 0:
        raise ExportError("limit must be at least 1 and offset not negative")
    if (date_from or date_to) and mart.date_column is None:
        raise ExportError(f"{mart_name} has no date column to filter on")
    if date_from and date_to and date_from > date_to:
        raise ExportError(f"from ({date_from}) is after to ({date_to})")
    where = []
    params: list[Any] = []
    if date_from:
        where.append(sql.SQL("{} >= %s").format(sql.Identifier(mart.date_column)))
        params.append(date_from)
    if date_to:
        where.append(sql.SQL("{} <= %s").format(sql.Identifier(mart.date_column)))
        params.append(date_to)
    order = [sql.Identifier(mart.date_column)] if mart.date_column else []
    order += [sql.Identifier(column) for column in mart.sortable]
    query = sql.SQL("select {columns} from {table} {where} order by {order} limit %s offset %s").format(
        columns=sql.SQL(", ").join(map(sql.Identifier, mart.columns)),
        table=sql.Identifier(MARTS_SCHEMA, mart.name),
        where=sql.SQL("where ") + sql.SQL(" and ").join(where) if where else sql.SQL(""),
        order=sql.SQL(", ").join(order),
    )
    # One more row than asked says whether another page follows (limit null: every row).
    rows = conn.execute(query, [*params, None if limit is None else limit + 1, offset]).fetchall()
    if limit is None:
        return Page(mart, rows, offset, len(rows), has_more=False)
    return Page(mart, rows[:limit], offset, limit, has_more=len(rows) > limit)
