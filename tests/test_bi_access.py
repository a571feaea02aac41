"""BI access: the read-only role sees the marts only, and the HTTP export serves them over real
HTTP behind a bearer token, paged and filtered by date, amounts exact."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import dagster as dg
import httpx
import openpyxl
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pipeline_runs import rows
from typer.testing import CliRunner

from bankflow_cli.main import app
from pipelines.transform.project import DBT_PROJECT_DIR
from resources.export_api import export_app
from resources.marts_export import (
    OFFSET_ONLY,
    SEEK_KEYS,
    ExportError,
    Mart,
    decode_cursor,
    encode_cursor,
    list_marts,
)
from resources.warehouse.bi_access import ensure_bi_reader
from sandbox.server import serve

BI_ROLE = "bankflow_bi_test"
BI_PASSWORD = "bi-test-password"  # noqa: S105 - a test role's
TOKEN = "export-test-token-0123456789"  # noqa: S105 - the test server's


@pytest.fixture(scope="module")
def bi_reader(database_url: str) -> Iterator[psycopg.Connection]:
    ensure_bi_reader(database_url, BI_PASSWORD, BI_ROLE)
    with psycopg.connect(database_url, user=BI_ROLE, password=BI_PASSWORD, autocommit=True) as conn:
        yield conn


def test_the_bi_role_reads_the_marts_and_nothing_else(
    categorisation_run: dg.ExecuteInProcessResult, database_url: str, bi_reader: psycopg.Connection
) -> None:
    ((expected,),) = rows(database_url, "select count(*) from marts.fct_transactions")
    assert expected > 0
    assert bi_reader.execute("select count(*) from marts.fct_transactions").fetchone() == (expected,)

    for table in ("ops.connections", "raw.truelayer_transactions", "staging.stg_truelayer__transactions"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            bi_reader.execute(f"select 1 from {table} limit 1")  # noqa: S608 - fixed names
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        bi_reader.execute("create table marts.bi_was_here (x int)")


def test_a_mart_built_after_the_grant_is_readable_too(
    database_url: str, bi_reader: psycopg.Connection
) -> None:
    # dbt re-creates every table mart on each build: the grant has to reach tables made later.
    with psycopg.connect(database_url) as owner:
        owner.execute("drop table if exists marts.bi_rebuilt")
        owner.execute("create table marts.bi_rebuilt as select 1 as x")
    try:
        assert bi_reader.execute("select x from marts.bi_rebuilt").fetchone() == (1,)
    finally:
        with psycopg.connect(database_url) as owner:
            owner.execute("drop table marts.bi_rebuilt")


@pytest.fixture(scope="module")
def export(database_url: str) -> Iterator[httpx.Client]:
    with (
        serve(export_app(database_url, TOKEN)) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client,
    ):
        yield client


def test_the_export_refuses_a_missing_or_wrong_token(export: httpx.Client) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        response = export.get("/transactions", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "rows" not in response.json()


def test_the_export_pages_a_date_range_of_transactions_exactly(
    categorisation_run: dg.ExecuteInProcessResult,
    categorisation_window: tuple[date, date],
    database_url: str,
    export: httpx.Client,
) -> None:
    # By offset, as clients written before the cursor page.
    first, last = categorisation_window
    expected = rows(
        database_url,
        "select transaction_key, amount::text from marts.fct_transactions"
        " where booking_date between %s and %s",
        (first, last),
    )
    assert len(expected) > 100

    served: list[dict] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = export.get(f"/transactions?from={first}&to={last}&limit=100&offset={offset}")
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["offset"] == offset
        assert len(body["rows"]) <= 100
        served += body["rows"]
        offset = offset + 100 if body["next"] else None
        pages += 1
    assert pages == -(-len(expected) // 100)
    # No row skipped or sent twice across pages, and each amount is the exact decimal text.
    assert sorted((r["transaction_key"], r["amount"]) for r in served) == sorted(expected)
    assert all(first.isoformat() <= r["booking_date"] <= last.isoformat() for r in served)


@dataclass(frozen=True)
class ExportWindow:
    first: date
    last: date
    # (transaction_key, amount) of the window's rows, in the export's order, from SQL.
    expected: list[tuple[str, str]]


@pytest.fixture(scope="module")
def export_window(
    categorisation_run: dg.ExecuteInProcessResult, categorisation_window: tuple[date, date], database_url: str
) -> ExportWindow:
    first, last = categorisation_window
    expected = rows(
        database_url,
        "select transaction_key, amount::text from marts.fct_transactions"
        " where booking_date between %s and %s order by booking_date, transaction_key",
        (first, last),
    )
    assert len(expected) > 100
    return ExportWindow(first, last, expected)


def test_the_export_pages_a_date_range_by_cursor_exactly(
    export_window: ExportWindow, export: httpx.Client
) -> None:
    first, last, expected = export_window.first, export_window.last, export_window.expected

    served: list[dict] = []
    url: str | None = f"/transactions?from={first}&to={last}&limit=100"
    pages = 0
    while url:
        page = export.get(url)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["order_by"] == ["booking_date", "transaction_key"]
        assert len(body["rows"]) <= 100
        served += body["rows"]
        url = body["next"]
        if url:
            # The next link seeks: the cursor of this page's last row, no offset.
            assert f"cursor={body['next_cursor']}" in url and "offset" not in url
            cursor = body["next_cursor"]
            assert json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))) == [
                body["rows"][-1]["booking_date"],
                body["rows"][-1]["transaction_key"],
            ]
        else:
            assert body["next_cursor"] is None
        pages += 1
    assert pages == -(-len(expected) // 100)
    # Exactly the SQL's rows in the SQL's order: none skipped, none twice, amounts exact.
    assert [(r["transaction_key"], r["amount"]) for r in served] == expected
    assert len({r["transaction_key"] for r in served}) == len(served)
    assert all(first.isoformat() <= r["booking_date"] <= last.isoformat() for r in served)


def test_the_export_pages_csv_by_cursor_exactly(export_window: ExportWindow, export: httpx.Client) -> None:
    first, last, expected = export_window.first, export_window.last, export_window.expected

    served: list[dict] = []
    params: dict[str, str | int] = {"from": str(first), "to": str(last), "limit": 100, "format": "csv"}
    cursors: list[str] = []
    while True:
        response = export.get("/transactions", params=params)
        assert response.status_code == 200, response.text
        served += csv.DictReader(io.StringIO(response.text))
        cursor = response.headers.get("x-next-cursor")
        # Only a page asked for by offset (the first) knows the next offset.
        assert ("x-next-offset" in response.headers) == (not cursors and cursor is not None)
        if cursor is None:
            break
        cursors.append(cursor)
        params["cursor"] = cursor
    assert len(cursors) == -(-len(expected) // 100) - 1
    assert [(r["transaction_key"], r["amount"]) for r in served] == expected


def test_the_export_refuses_a_bad_cursor(export: httpx.Client, categorisation_run) -> None:
    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    good = export.get("/transactions?limit=1").json()["next_cursor"]
    assert good
    bad = {
        "cursor=not%20base64!": "cursor is not base64url",
        f"cursor={b64('{oops')}": "cursor does not decode to a key",
        f"cursor={b64('[1, 2]')}": "cursor is not a key of fct_transactions",
        f"cursor={b64(json.dumps(['2026-01-01']))}": "cursor is not a key of fct_transactions",
        f"cursor={b64(json.dumps(['2026-02-30', 'k']))}": "cursor's booking_date is not a date",
        f"cursor={good}&offset=5": "give cursor or offset, not both",
    }
    for query, reason in bad.items():
        response = export.get(f"/transactions?{query}")
        assert response.status_code == 400, query
        error = response.json()["error"]
        assert reason in error and "\n" not in error, (query, error)

    response = export.get(f"/marts/provider_category_map?cursor={b64(json.dumps(['x']))}")
    assert response.status_code == 400
    assert "no unique key to page by cursor" in response.json()["error"]


def test_a_cursor_round_trips_dates_and_decimals_exactly() -> None:
    mart = Mart(
        "m",
        ("day", "amount", "key"),
        "day",
        ("day", "amount", "key"),
        ("day", "amount", "key"),
        ("date", "numeric", "text"),
    )
    values = [date(2026, 2, 28), Decimal("-12.300"), "k/é+="]
    cursor = encode_cursor(values)
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor, mart) == values
    assert str(decode_cursor(cursor, mart)[1]) == "-12.300"
    with pytest.raises(ExportError, match="cursor's amount is not a numeric"):
        decode_cursor(encode_cursor(["2026-01-01", "twelve", "k"]), mart)


def test_every_mart_pages_by_a_unique_not_null_key_of_its_dbt_tests(
    categorisation_run: dg.ExecuteInProcessResult, database_url: str
) -> None:
    # SEEK_KEYS against the dbt manifest's blocking tests and the built marts' columns.
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    in_marts = {
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed") and node["schema"] == "marts"
    }
    unique: dict[str, list[set[str]]] = {}
    not_null: dict[str, set[str]] = {}
    for node in manifest["nodes"].values():
        test = node.get("test_metadata") or {}
        if node["resource_type"] != "test" or node["config"]["severity"].lower() != "error":
            continue
        model = manifest["nodes"].get(node.get("attached_node") or "", {}).get("name")
        if test.get("name") == "unique":
            unique.setdefault(model, []).append({test["kwargs"]["column_name"]})
        elif test.get("name") == "unique_combination_of_columns":
            unique.setdefault(model, []).append(set(test["kwargs"]["columns"]))
        elif test.get("name") == "not_null":
            not_null.setdefault(model, set()).add(test["kwargs"]["column_name"])

    assert in_marts == SEEK_KEYS.keys() | OFFSET_ONLY, "every mart pages by a key or by offset only"
    with psycopg.connect(database_url) as conn:
        built = list_marts(conn)
    for name, key in SEEK_KEYS.items():
        assert built[name].seek_key == key, name
        assert set(key) <= not_null.get(name, set()), f"{name}: a paging key column may be null"
        assert any(columns <= set(key) for columns in unique.get(name, [])), f"{name}: not unique"
        date_column = built[name].date_column
        if date_column in not_null.get(name, set()):
            assert key[0] == date_column, f"{name}: the key starts with the date"
    for name in OFFSET_ONLY:
        assert not any(columns <= not_null.get(name, set()) for columns in unique.get(name, [])), name
        assert built[name].seek_key == ()


def test_an_index_serves_the_seek_on_fct_transactions(
    categorisation_run: dg.ExecuteInProcessResult, database_url: str
) -> None:
    # The plan, not a time: the next page is an index range from the cursor, in index order.
    with psycopg.connect(database_url) as conn:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_incremental_sort"):
            conn.execute(f"set local {setting} = off")
        plan = "\n".join(
            line
            for (line,) in conn.execute(
                "explain select * from marts.fct_transactions"
                " where booking_date >= %s and booking_date <= %s"
                " and (booking_date, transaction_key) > (%s, %s)"
                " order by booking_date, transaction_key limit 101",
                (date(2026, 1, 1), date(2026, 2, 1), date(2026, 1, 10), "k"),
            )
        )
    assert "Index Cond" in plan and "ROW(booking_date, transaction_key) >" in plan, plan
    assert "Sort" not in plan, plan


def test_the_export_serves_csv_with_the_same_rows(export: httpx.Client, categorisation_run) -> None:
    as_json = export.get("/marts/fct_transactions?limit=20").json()["rows"]
    response = export.get("/marts/fct_transactions?limit=20&format=csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-next-offset"] == "20"
    as_csv = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["transaction_key"] for r in as_csv] == [r["transaction_key"] for r in as_json]
    assert [r["amount"] for r in as_csv] == [r["amount"] for r in as_json]


def test_the_export_lists_marts_and_refuses_anything_else(export: httpx.Client, categorisation_run) -> None:
    marts = {m["name"]: m["date_column"] for m in export.get("/marts").json()["marts"]}
    assert marts["fct_transactions"] == "booking_date"
    assert {"mart_spend_monthly", "recon_matches", "dim_accounts"} <= marts.keys()

    assert export.get("/marts/connections").status_code == 404
    assert export.get("/marts/ops.connections").status_code == 404
    bad = {
        "/transactions?from=2026-13-01": "from is a day as YYYY-MM-DD",
        "/transactions?from=2026-02-01&to=2026-01-01": "is after to",
        "/transactions?limit=0": "limit must be at least 1",
        "/transactions?limit=100000": "limit is at most",
        "/transactions?format=xml": "format is json or csv",
        "/transactions?sort=amount": "unknown parameters: sort",
    }
    for url, reason in bad.items():
        response = export.get(url)
        assert response.status_code == 400, url
        assert reason in response.json()["error"], url


@pytest.mark.parametrize("file_format", ["csv", "xlsx", "parquet"])
def test_export_writes_the_transactions_of_the_days_exactly(
    categorisation_run: dg.ExecuteInProcessResult,
    categorisation_window: tuple[date, date],
    database_url: str,
    file_format: str,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, last = categorisation_window[0], categorisation_window[0] + timedelta(days=6)
    expected = sorted(
        rows(
            database_url,
            "select transaction_key, amount from marts.fct_transactions where booking_date between %s and %s",
            (first, last),
        )
    )
    assert expected
    path = tmp_path / f"out.{file_format}"
    monkeypatch.setenv("BANKFLOW_DATABASE_URL", database_url)
    args = ["export", "--format", file_format, "--from", str(first), "--to", str(last), "--output", str(path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{len(expected)} rows of fct_transactions" in result.output

    if file_format == "csv":
        with path.open(newline="") as handle:
            got = [(r["transaction_key"], Decimal(r["amount"])) for r in csv.DictReader(handle)]
    elif file_format == "xlsx":
        sheet = openpyxl.load_workbook(path, read_only=True)["fct_transactions"]
        header, *body = sheet.iter_rows(values_only=True)
        key, amount = header.index("transaction_key"), header.index("amount")
        # Excel reads numbers as binary floats; the file holds each amount's exact text.
        got = [(r[key], Decimal(str(r[amount]))) for r in body]
    else:
        table = pq.read_table(path)
        assert pa.types.is_decimal(table.schema.field("amount").type)
        got = list(
            zip(table.column("transaction_key").to_pylist(), table.column("amount").to_pylist(), strict=True)
        )
    assert sorted(got) == expected


def test_export_refuses_a_bad_format_or_mart(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("BANKFLOW_DATABASE_URL", database_url)
    bad_format = CliRunner().invoke(app, ["export", "--format", "xml"])
    assert bad_format.exit_code == 2 and "--format is one of csv, xlsx, parquet" in bad_format.output
    bad_mart = CliRunner().invoke(app, ["export", "--mart", "connections"])
    assert bad_mart.exit_code == 2 and "no mart named 'connections'" in bad_mart.output
