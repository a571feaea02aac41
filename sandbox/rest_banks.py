"""HDFC-, ICICI- and SBI-style bank REST APIs over real HTTP, from the world (one app per bank).

Each app serves ``world.accounts_for(<bank>)`` — whatever accounts the world tags with the bank —
in the bank's style (sandbox.rest_banks_json): auth, paths, window parameters, paging and records.

| bank  | auth                                   | window params                      | paging                         |
|-------|----------------------------------------|------------------------------------|--------------------------------|
| hdfc  | Bearer <client_secret>                 | fromDate/toDate YYYY-MM-DD         | page/pageSize + totalPages     |
| icici | apikey: <client_id> + Bearer <secret>  | fromDate/toDate dd-mm-yyyy, 31 max | offset/limit + total           |
| sbi   | OAuth2 client credentials (Basic)      | from_date/to_date YYYY-MM-DD       | links.next (cursor in the URL) |

``BankStyle`` holds all of that, so a test can serve a fourth bank in another style.

Fault switches: the shared ones on ``SandboxState`` (path prefix = the style's ``prefix``:
rate_limit answers 429 with Retry-After, server_error, unauthorized, malformed_json, slow) plus
``RestBankOptions``: ``drop_required_every`` (every n-th record loses a required field; the ids are
kept in ``dropped``), ``repeat_page_border`` (page-numbered lists repeat the previous page's last
record, as when rows shift while a client pages) and ``expire_tokens()`` (OAuth2 banks).
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.admin import admin_routes
from sandbox.faults import FaultMiddleware, correlation_headers
from sandbox.jsonbody import ExactJSONResponse
from sandbox.layout import stable_hex
from sandbox.model import Account
from sandbox.rest_banks_json import (
    AccountEncoder,
    TransactionEncoder,
    hdfc_account,
    hdfc_transaction,
    icici_account,
    icici_transaction,
    sbi_account,
    sbi_transaction,
    served_transactions,
)
from sandbox.state import FaultMode, SandboxState
from sandbox.world import World

AuthKind = Literal["bearer", "api_key", "api_key_bearer", "oauth2_client_credentials"]
Paging = Literal["page", "offset", "cursor", "next_link"]


@dataclass(frozen=True)
class BankStyle:
    """How one bank's API looks. Paths are absolute; ``{account}`` in transactions_path is the account number."""

    provider: str  # the world's tag for the bank's accounts
    auth: AuthKind
    prefix: str  # every API path starts here; fault switches match it
    accounts_path: str
    transactions_path: str
    accounts_key: str  # dotted path of the account list in the body
    records_key: str  # dotted path of the transaction list in the body
    account_json: AccountEncoder
    transaction_json: TransactionEncoder
    required_keys: tuple[
        str, ...
    ]  # the record's keys for txn_id, amount, currency, status, timestamp, account
    paging: Paging
    from_param: str = "fromDate"
    to_param: str = "toDate"
    account_param: str | None = None  # the account as a query parameter instead of in the path
    date_format: str = "%Y-%m-%d"
    end_exclusive: bool = False  # to_param is the day after the last one
    max_days: int | None = None
    page_param: str = "page"
    size_param: str = "pageSize"
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    next_key: str = "links.next"  # cursor or next link
    first_page: int = 1
    max_page_size: int = 100
    envelope: tuple[tuple[str, Any], ...] = ()  # constant fields of every answer
    api_key_header: str = "apikey"
    token_path: str = "/oauth2/token"


HDFC = BankStyle(
    provider="hdfc",
    auth="bearer",
    prefix="/openapi/v1",
    accounts_path="/openapi/v1/accounts",
    transactions_path="/openapi/v1/accounts/{account}/transactions",
    accounts_key="data",
    records_key="data",
    account_json=hdfc_account,
    transaction_json=hdfc_transaction,
    required_keys=("transactionId", "amount", "currency", "status", "transactionDateTime", "accountNumber"),
    paging="page",
    envelope=(("status", "SUCCESS"),),
)
ICICI = BankStyle(
    provider="icici",
    auth="api_key_bearer",
    prefix="/api/v2",
    accounts_path="/api/v2/accounts",
    transactions_path="/api/v2/accounts/statement",
    account_param="accountNo",
    accounts_key="accounts",
    records_key="transactions",
    account_json=icici_account,
    transaction_json=icici_transaction,
    required_keys=("txnId", "txnAmount", "currency", "txnStatus", "txnDate", "accountNo"),
    paging="offset",
    date_format="%d-%m-%Y",
    max_days=31,
    size_param="limit",
    envelope=(("success", True),),
)
SBI = BankStyle(
    provider="sbi",
    auth="oauth2_client_credentials",
    prefix="/sbi/v1",
    accounts_path="/sbi/v1/accounts",
    transactions_path="/sbi/v1/accounts/{account}/transactions",
    accounts_key="data",
    records_key="data",
    account_json=sbi_account,
    transaction_json=sbi_transaction,
    required_keys=("transaction_id", "amount", "currency", "status", "booked_at", "account_id"),
    paging="next_link",
    from_param="from_date",
    to_param="to_date",
    size_param="limit",
    max_page_size=50,
)
STYLES: dict[str, BankStyle] = {style.provider: style for style in (HDFC, ICICI, SBI)}


@dataclass
class RestBankOptions:
    """Sandbox switches of one bank app; plain attributes, set from the test thread."""

    retry_after_seconds: int = 1
    token_seconds: int = 900
    drop_required_every: int = 0
    repeat_page_border: bool = False
    dropped: set[str] = field(default_factory=set)  # world keys of records served without a required field
    clock: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _tokens: dict[str, float] = field(default_factory=dict, repr=False)

    def issue_token(self) -> str:
        token = "sbx_" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = self.clock() + self.token_seconds
        return token

    def token_valid(self, token: str) -> bool:
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and expires > self.clock()

    def expire_tokens(self) -> None:
        """Every issued access token is expired from now on."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def reset(self) -> None:
        self.drop_required_every, self.repeat_page_border = 0, False
        with self._lock:
            self.dropped.clear()


def error_body(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> ExactJSONResponse:
    return ExactJSONResponse({"status": "FAILURE", "error": code, "message": message}, status, headers)


class _BadRequest(Exception):
    pass


def build_rest_bank_app(
    world: World, state: SandboxState, style: BankStyle, options: RestBankOptions | None = None
) -> Starlette:
    """The bank's accounts and transactions endpoints (and token endpoint, for OAuth2 banks)."""
    opts = options or RestBankOptions()

    def accounts() -> dict[str, Account]:
        return {
            account.number or account.account_id: account for account in world.accounts_for(style.provider)
        }

    def fault_response(mode: FaultMode) -> Response:
        if mode == "rate_limit":
            return error_body(
                429,
                "TOO_MANY_REQUESTS",
                "Rate limit exceeded.",
                {"Retry-After": str(opts.retry_after_seconds)},
            )
        if mode == "server_error":
            return error_body(500, "INTERNAL_ERROR", "Something went wrong.")
        return error_body(401, "UNAUTHORIZED", "Invalid or expired credentials.")

    def authorised(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not _authorised(request):
                return error_body(401, "UNAUTHORIZED", "Invalid or expired credentials.")
            try:
                return await handler(request)
            except _BadRequest as exc:
                return error_body(400, "BAD_REQUEST", str(exc))

        return endpoint

    def _authorised(request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        key_ok = request.headers.get(style.api_key_header) == state.client_id
        if style.auth == "bearer":
            return bearer == state.client_secret
        if style.auth == "api_key":
            return key_ok
        if style.auth == "api_key_bearer":
            return key_ok and bearer == state.client_secret
        return bearer is not None and opts.token_valid(bearer)

    async def token(request: Request) -> Response:
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        client = (form.get("client_id"), form.get("client_secret"))
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                user, password = "", ""
            client = (user, password)
        if form.get("grant_type") != "client_credentials":
            return ExactJSONResponse({"error": "unsupported_grant_type"}, 400)
        if client != (state.client_id, state.client_secret):
            return ExactJSONResponse({"error": "invalid_client", "error_description": "Unknown client."}, 401)
        body = {"access_token": opts.issue_token(), "token_type": "Bearer", "expires_in": opts.token_seconds}
        return ExactJSONResponse(body, headers={"Cache-Control": "no-store"})

    async def list_accounts(request: Request) -> Response:
        served = [
            style.account_json(a, world.balance(a.account_id, world.today)) for a in accounts().values()
        ]
        return ExactJSONResponse(_body(style, style.accounts_key, served))

    async def list_transactions(request: Request) -> Response:
        query = request.query_params
        number = request.path_params.get("account") or query.get(style.account_param or "", "")
        account = accounts().get(number)
        if account is None:
            return error_body(404, "ACCOUNT_NOT_FOUND", "No such account.")
        first, last = _window(style, query.get(style.from_param), query.get(style.to_param))
        rows = []
        for row in served_transactions(world, account, first, last):
            record = style.transaction_json(row, account)
            if (
                opts.drop_required_every
                and int(stable_hex("drop", row.key), 16) % opts.drop_required_every == 0
            ):
                # Which field goes missing varies by record, as it would across a bank's bugs.
                del record[
                    style.required_keys[int(stable_hex("which", row.key), 16) % len(style.required_keys)]
                ]
                with opts._lock:
                    opts.dropped.add(row.key)
            rows.append(record)
        return ExactJSONResponse(_page(style, opts, request, rows))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return error_body(status, "NOT_FOUND", "No such endpoint.")

    routes = [
        Route(style.accounts_path, authorised(list_accounts)),
        Route(style.transactions_path, authorised(list_transactions)),
        *admin_routes(state),
    ]
    if style.auth == "oauth2_client_credentials":
        routes.append(Route(style.token_path, token, methods=["POST"]))
    middleware = [
        Middleware(
            FaultMiddleware,
            state=state,
            fault_response=fault_response,
            response_headers=correlation_headers("X-Request-Id"),
        )
    ]
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers={404: not_found, 405: not_found}
    )


def _window(style: BankStyle, start: str | None, end: str | None) -> tuple[dt.date, dt.date]:
    try:
        first = dt.datetime.strptime(start or "", style.date_format).date()
        last = dt.datetime.strptime(end or "", style.date_format).date()
    except ValueError:
        raise _BadRequest(
            f"{style.from_param} and {style.to_param} are required, as {style.date_format}"
        ) from None
    if style.end_exclusive:
        last -= dt.timedelta(days=1)
    if last < first:
        raise _BadRequest(f"{style.to_param} is before {style.from_param}")
    if style.max_days and (last - first).days + 1 > style.max_days:
        raise _BadRequest(f"at most {style.max_days} days per request")
    return first, last


def _size(style: BankStyle, request: Request, default: int) -> int:
    text = request.query_params.get(style.size_param)
    try:
        size = int(text) if text is not None else default
    except ValueError:
        raise _BadRequest(f"{style.size_param} must be an integer") from None
    if not 1 <= size <= style.max_page_size:
        raise _BadRequest(f"{style.size_param} must be between 1 and {style.max_page_size}")
    return size


def _int_param(request: Request, name: str, default: int) -> int:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        raise _BadRequest(f"{name} must be an integer") from None


def _page(
    style: BankStyle, opts: RestBankOptions, request: Request, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """One page of `rows` in the style's paging, with the style's paging fields."""
    size = _size(style, request, min(50, style.max_page_size))
    if style.paging == "page":
        page = _int_param(request, style.page_param, style.first_page)
        index = page - style.first_page
        if index < 0:
            raise _BadRequest(f"{style.page_param} starts at {style.first_page}")
        chunk = rows[index * size : (index + 1) * size]
        if opts.repeat_page_border and index > 0 and index * size <= len(rows):
            chunk = [rows[index * size - 1], *chunk]
        body = _body(style, style.records_key, chunk)
        total_pages = max(1, -(-len(rows) // size))
        body["pagination"] = {
            "page": page,
            "pageSize": size,
            "totalPages": total_pages,
            "totalRecords": len(rows),
        }
        return body
    if style.paging == "offset":
        offset = _int_param(request, style.offset_param, 0)
        body = _body(style, style.records_key, rows[offset : offset + size])
        return body | {"total": len(rows), "offset": offset, "limit": size}
    cursor = request.query_params.get(style.cursor_param)
    offset = _decode_cursor(cursor) if cursor else 0
    chunk = rows[offset : offset + size]
    body = _body(style, style.records_key, chunk)
    following = _encode_cursor(offset + size) if offset + size < len(rows) else None
    if style.paging == "next_link" and following is not None:
        params = {key: value for key, value in request.query_params.items() if key != style.cursor_param}
        following = f"{request.url.path}?{urlencode({**params, style.cursor_param: following})}"
    _put(body, style.next_key, following)
    return body


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(text.removeprefix("o:"))
    except ValueError:
        raise _BadRequest("unknown cursor") from None


def _body(style: BankStyle, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = dict(style.envelope)
    _put(body, key, items)
    return body


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[last] = value


def _factory(style: BankStyle) -> Callable[..., Starlette]:
    def build(world: World, state: SandboxState, options: RestBankOptions | None = None) -> Starlette:
        return build_rest_bank_app(world, state, style, options)

    build.__name__ = f"build_{style.provider}_app"
    build.__doc__ = f"The {style.provider.upper()}-style bank API for ``world``."
    return build


build_hdfc_app = _factory(HDFC)
build_icici_app = _factory(ICICI)
build_sbi_app = _factory(SBI)
