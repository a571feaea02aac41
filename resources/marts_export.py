"""Reading a mart for an export: any relation in `marts`, a page at a time, filtered by its date.

Only relations in `marts` can be named (checked against the catalog, then quoted as identifiers),
so an export never reaches `raw`, `ops` (tokens) or `staging`. Money stays numeric: the values
come back as Postgres gave them (Decimal), and each writer keeps them exact.

Pages follow one another by a cursor (keyset paging): each page is ordered by the mart's unique
key (led by its date where that is never null), and the next page is the rows after the last
row's key, `where (key) > (last) order by key limit n`, which an index reads from where the last
page stopped. Paging by `offset` still works, in the same order, but every page then reads all
the rows before it: the pages cost grows with the square of the rows (docs/benchmarks.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

MARTS_SCHEMA = "marts"
DATE_TYPES = ("date",)

# Each mart's paging key: the columns its pages are ordered by and a cursor seeks on. The last of
# them are a unique key (the model's or seed's dbt `unique` or `unique_combination_of_columns`
# test), led by the mart's date column where that column is never null, so that a date range is
# one stretch of the order that an index on the date can seek into. Every column is tested
# `not_null`: a row comparison never passes a null, so a row with a null key would never be sent.
# tests/test_bi_access.py holds this to the dbt manifest and the catalog.
SEEK_KEYS: dict[str, tuple[str, ...]] = {
    "budgets": ("owner_name", "category"),
    "categories": ("category",),
    "category_rules": ("rule_id",),
    "dim_accounts": ("account_key",),
    "fct_account_balances_daily": ("balance_date", "account_balance_day_key"),
    "fct_account_bookings_daily": ("booking_date", "account_booking_day_key"),
    "fct_balances": ("balance_date", "balance_key"),
    "fct_transactions": ("booking_date", "transaction_key"),
    # month_start_date is null for rows without a booking date: the key alone.
    "fct_transactions_monthly": ("transaction_month_key",),
    "fx_rates_daily": ("rate_date", "currency"),
    "mart_budget_status": ("month_start_date", "budget_month_key"),
    "mart_cashflow_monthly": ("month_start_date", "cashflow_month_key"),
    "mart_categorisation_quality": ("category_currency_key",),
    "mart_spend_monthly": ("month_start_date", "spend_month_key"),
    "mcc_codes": ("mcc",),
    "recon_balance_checks": ("balance_date", "balance_check_key"),
    "recon_balance_gaps": ("gap_first_day", "balance_gap_key"),
    "recon_exceptions": ("item_date", "exception_key"),
    "recon_matches": ("booking_date", "match_line_key"),
    "recon_rules": ("rule_id",),
    "recon_summary": ("summary_date", "recon_day_key"),
}
# Marts with no unique key of plain columns, paged by offset only: provider_category_map is unique
# only as an expression over a nullable column (provider_subvalue).
OFFSET_ONLY = frozenset({"provider_category_map"})

# A cursor's values back to the column's type, so the comparison is typed as the column is.
_PARSE: dict[str, Callable[[str], Any]] = {
    "date": date.fromisoformat,
    "timestamp with time zone": datetime.fromisoformat,
    "timestamp without time zone": datetime.fromisoformat,
    "numeric": Decimal,
    "integer": int,
    "bigint": int,
    "smallint": int,
    "text": str,
    "character varying": str,
}
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
MAX_CURSOR_LENGTH = 4096


class ExportError(ValueError):
    """A request the export cannot answer; the message says what to change."""


@dataclass(frozen=True)
class Mart:
    name: str
    columns: tuple[str, ...]
    # The first date column: the one `date_from` / `date_to` filter on; None if the mart has none.
    date_column: str | None
    # The columns a page is ordered by without a paging key (json has no ordering in Postgres).
    sortable: tuple[str, ...]
    # The paging key (SEEK_KEYS); empty where the mart has none: offset paging only.
    seek_key: tuple[str, ...] = ()
    # Each column's type as information_schema names it, in the order of `columns`.
    types: tuple[str, ...] = ()

    @property
    def order(self) -> tuple[str, ...]:
        """The columns the pages are ordered by: the paging key, else the date and every column."""
        if self.seek_key:
            return self.seek_key
        return ((self.date_column,) if self.date_column else ()) + self.sortable


@dataclass(frozen=True)
class Page:
    mart: Mart
    rows: list[tuple[Any, ...]]
    # The offset the page was read at; None for a page read after a cursor.
    offset: int | None
    limit: int
    has_more: bool
    # The cursor of the page after this one (the last row's key); None on the last page and for
    # a mart without a paging key.
    next_cursor: str | None = None


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
    marts = {}
    for name, typed in columns.items():
        names = tuple(column for column, _ in typed)
        seek_key = SEEK_KEYS.get(name, ())
        marts[name] = Mart(
            name,
            names,
            next((column for column, data_type in typed if data_type in DATE_TYPES), None),
            tuple(column for column, data_type in typed if data_type != "json"),
            # A mart rebuilt without one of its key's columns falls back to offset paging.
            seek_key if set(seek_key) <= set(names) else (),
            tuple(data_type for _, data_type in typed),
        )
    return marts


def encode_cursor(values: Sequence[Any]) -> str:
    """The cursor after a row: its key's values as JSON strings (dates ISO 8601, decimals their
    exact text), base64url without padding, so it travels in a query string as it is."""
    text = json.dumps([_cursor_text(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str, mart: Mart) -> list[Any]:
    """The key values a cursor holds, typed as the mart's key columns; ExportError (one line)
    for anything this export did not give."""
    if not mart.seek_key:
        raise ExportError(f"{mart.name} has no unique key to page by cursor; page it by offset")
    if len(cursor) > MAX_CURSOR_LENGTH or not _BASE64URL.fullmatch(cursor):
        raise ExportError("cursor is not base64url; pass the cursor of the previous page unchanged")
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ExportError("cursor does not decode to a key; pass the previous page's unchanged") from None
    key = ", ".join(mart.seek_key)
    if (
        not isinstance(values, list)
        or len(values) != len(mart.seek_key)
        or not all(isinstance(v, str) for v in values)
    ):
        raise ExportError(f"cursor is not a key of {mart.name} (the strings of {key})")
    typed = []
    for column, value in zip(mart.seek_key, values, strict=True):
        data_type = mart.types[mart.columns.index(column)] if mart.types else "text"
        try:
            typed.append(_PARSE.get(data_type, str)(value))
        except (ValueError, ArithmeticError):
            raise ExportError(f"cursor's {column} is not a {data_type}: {value!r}") from None
    return typed


def read_page(
    conn: psycopg.Connection,
    mart_name: str,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: int | None = 1000,
    offset: int = 0,
    cursor: str | None = None,
) -> Page:
    """Up to `limit` rows of the mart (all with limit None) between the two days (both included),
    in the mart's order (`Mart.order`): the rows after `cursor` (a page's `next_cursor`), else
    rows `offset`..`offset + limit`. Consecutive pages neither skip nor repeat a row."""
    mart = list_marts(conn).get(mart_name)
    if mart is None:
        raise ExportError(f"no mart named {mart_name!r} in schema {MARTS_SCHEMA}")
    if (limit is not None and limit < 1) or offset < 0:
        raise ExportError("limit must be at least 1 and offset not negative")
    if cursor is not None and offset:
        raise ExportError("give cursor or offset, not both")
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
    if cursor is not None:
        after = decode_cursor(cursor, mart)
        # A row comparison: the planner seeks an index led by the key's first column to it.
        where.append(
            sql.SQL("({}) > ({})").format(
                sql.SQL(", ").join(map(sql.Identifier, mart.seek_key)),
                sql.SQL(", ").join(sql.Placeholder() * len(after)),
            )
        )
        params += after
    query = sql.SQL("select {columns} from {table} {where} order by {order} limit %s offset %s").format(
        columns=sql.SQL(", ").join(map(sql.Identifier, mart.columns)),
        table=sql.Identifier(MARTS_SCHEMA, mart.name),
        where=sql.SQL("where ") + sql.SQL(" and ").join(where) if where else sql.SQL(""),
        order=sql.SQL(", ").join(map(sql.Identifier, mart.order)),
    )
    # One more row than asked says whether another page follows (limit null: every row).
    rows = conn.execute(query, [*params, None if limit is None else limit + 1, offset]).fetchall()
    at = None if cursor is not None else offset
    if limit is None:
        return Page(mart, rows, at, len(rows), has_more=False)
    rows, has_more = rows[:limit], len(rows) > limit
    next_cursor = None
    if has_more and mart.seek_key:
        last = rows[-1]
        next_cursor = encode_cursor([last[mart.columns.index(column)] for column in mart.seek_key])
    return Page(mart, rows, at, limit, has_more, next_cursor)


def _cursor_text(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)
