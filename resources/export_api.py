"""A read-only HTTP export of the marts for spreadsheet tools (Airtable, Google Sheets, Excel's
"From Web"): JSON or CSV, paged, filtered by date, behind a bearer token.

    GET /marts                                   the marts, the date column each filters on
                                                 and the columns its pages are ordered by
    GET /marts/{name}?from=&to=&limit=&cursor=   one page of a mart (format=csv for CSV)
    GET /transactions?...                        fct_transactions

The next page is asked for with the `cursor` of the page before (JSON's `next` link carries it,
CSV sends it as `X-Next-Cursor`): a seek past the last row's key, as fast at the end of a mart as
at its start. `offset` still works for clients that page by it (`X-Next-Offset`), at a cost that
grows with the offset; a mart without a unique key (`cursor_paging` false) pages by offset only.
Amounts are sent as decimal strings in JSON ("-12.30"), never as floats.
"""

from __future__ import annotations

import hmac
import io
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from resources.export_files import write_csv
from resources.marts_export import ExportError, Page, list_marts, read_page

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


def export_app(database_url: str, token: str) -> Starlette:
    if not token:
        raise ValueError("the export needs a bearer token (BANKFLOW_EXPORT_TOKEN)")
    expected = token.encode()

    def authorised(request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # Constant time: how much of a guess was right must not show in the response time.
        return hmac.compare_digest(given.strip().encode(), expected) and scheme.lower() == "bearer"

    def connect() -> psycopg.Connection:
        conn = psycopg.connect(database_url)
        conn.read_only = True
        return conn

    # Plain functions: Starlette runs them in its thread pool, so a query never blocks the loop.
    def marts(request: Request) -> Response:
        if not authorised(request):
            return _unauthorised()
        with connect() as conn:
            found = list_marts(conn)
        return JSONResponse(
            {
                "marts": [
                    {
                        "name": m.name,
                        "date_column": m.date_column,
                        "order_by": list(m.order),
                        "cursor_paging": bool(m.seek_key),
                    }
                    for m in found.values()
                ]
            }
        )

    def mart(request: Request) -> Response:
        if not authorised(request):
            return _unauthorised()
        name = request.path_params.get("name", "fct_transactions")
        try:
            options = _page_options(request.query_params)
            with connect() as conn:
                page = read_page(conn, name, **options)
        except ExportError as error:
            status = 404 if str(error).startswith("no mart named") else 400
            return JSONResponse({"error": str(error)}, status_code=status)
        if request.query_params.get("format", "json") == "csv":
            return _csv(page)
        return _json(request, page)

    return Starlette(
        routes=[
            Route("/marts", marts),
            Route("/marts/{name}", mart),
            Route("/transactions", mart),
        ]
    )


def _page_options(query: Mapping[str, str]) -> dict[str, Any]:
    unknown = set(query) - {"from", "to", "limit", "offset", "cursor", "format"}
    if unknown:
        raise ExportError(f"unknown parameters: {', '.join(sorted(unknown))}")
    if query.get("format", "json") not in ("json", "csv"):
        raise ExportError("format is json or csv")
    try:
        limit = int(query.get("limit", DEFAULT_LIMIT))
        offset = int(query.get("offset", 0))
    except ValueError:
        raise ExportError("limit and offset are whole numbers") from None
    if limit > MAX_LIMIT:
        raise ExportError(f"limit is at most {MAX_LIMIT}")
    days = {}
    for key in ("from", "to"):
        if value := query.get(key):
            try:
                days[key] = date.fromisoformat(value)
            except ValueError:
                raise ExportError(f"{key} is a day as YYYY-MM-DD, not {value!r}") from None
    return {
        "date_from": days.get("from"),
        "date_to": days.get("to"),
        "limit": limit,
        "offset": offset,
        "cursor": query.get("cursor"),
    }


def _unauthorised() -> Response:
    return JSONResponse(
        {"error": "a bearer token is required (Authorization: Bearer <BANKFLOW_EXPORT_TOKEN>)"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _text(value: Any) -> Any:
    # Decimal as its exact text; dates and timestamps as ISO 8601.
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _next_offset(page: Page) -> int | None:
    # Only a page read at an offset knows the next one's.
    return page.offset + page.limit if page.has_more and page.offset is not None else None


def _json(request: Request, page: Page) -> Response:
    next_url = None
    if page.next_cursor:
        next_url = request.url.remove_query_params("offset").include_query_params(
            cursor=page.next_cursor, limit=page.limit
        )
    elif (next_offset := _next_offset(page)) is not None:
        next_url = request.url.include_query_params(offset=next_offset, limit=page.limit)
    return JSONResponse(
        {
            "mart": page.mart.name,
            "date_column": page.mart.date_column,
            "order_by": list(page.mart.order),
            "offset": page.offset,
            "limit": page.limit,
            "rows": [{c: _text(v) for c, v in zip(page.mart.columns, row, strict=True)} for row in page.rows],
            "next_cursor": page.next_cursor,
            "next": str(next_url) if next_url else None,
        }
    )


def _csv(page: Page) -> Response:
    out = io.StringIO()
    write_csv(page, out)
    headers = {}
    if page.next_cursor:
        headers["X-Next-Cursor"] = page.next_cursor
    if (next_offset := _next_offset(page)) is not None:
        headers["X-Next-Offset"] = str(next_offset)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
