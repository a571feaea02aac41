"""Fibank retail e-banking (my.fibank.bg) over real HTTP, as its web app talks to it (contract §6).

Not a PSD2 API: a browser login, then the web app's own JSON calls.

- ``GET /oauth2-server/login`` gives an anonymous session (cookie ``JSESSIONID``) and the login page.
- ``GET /oauth2-server/oauth/authorize`` (implicit grant, ``client_id=E_BANK``) keeps the request in
  the session and sends an anonymous session to the login page, whose ``<meta name="_csrf">`` the
  form must echo.
- ``GET .../sywscertificate/fnGetCertsForLogin?userName=`` lists the user's login certificates
  (none: a password login).
- ``POST /oauth2-server/login`` checks session, CSRF token, ``time`` and password. A wrong password
  redirects to ``/oauth2-server/login?error``; a right one gives a new session id and redirects to
  the kept authorize request, which redirects to ``/EBank/#access_token=...&state=...`` (the token
  only ever travels in that fragment).
- ``/EBank/api/v1/...`` wants ``Authorization: Bearer``, ``EBank-Client-Time`` (Sofia time with the
  offset Sofia really has at that moment) and, past ``getCustQuery``, ``EBank-Cust-Id``.
  ``GetCustBal`` serves one IBAN's statement for at most 30 days, as the bank's UI allows: an
  opening row (OP), the movements (``acEntrySrNo``, unsigned ``amount`` with a ``dtkt`` D/C flag,
  running ``acBal``, Europe/Sofia wall-clock times with their real +0200/+0300 offset), then the
  debit and credit turnover (DT, CT) and the closing row (CL).

Switches (``FibankOptions``): HTTP 500 on ``GetCustBal`` for chosen IBANs, expiring every session
token (now, or after N statements: a session that times out mid-run), plus the shared fault
switches (path prefix ``/EBank/api/v1`` or ``/oauth2-server``). Every ``GetCustBal`` call is
logged (``statement_requests``). Served data comes from the world's accounts whose providers
include "fibank"; they all belong to one e-banking customer.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.admin import admin_routes
from sandbox.faults import CONTROL_PREFIX, FaultMiddleware
from sandbox.jsonbody import ExactJSONResponse
from sandbox.layout import stable_hex
from sandbox.model import Account, WorldTransaction
from sandbox.state import FaultMode, SandboxState
from sandbox.world import World

PROVIDER = "fibank"
CLIENT_ID = "E_BANK"
SCOPE = "E_BANK"
REDIRECT_URI = "/EBank/"
LOGIN = "/oauth2-server/login"
AUTHORIZE = "/oauth2-server/oauth/authorize"
CERTIFICATES = "/oauth2-server/api/v1/sywscertificate/fnGetCertsForLogin"
API_PREFIX = "/EBank/api/v1"
CUSTOMER_QUERY = f"{API_PREFIX}/sywsquery/sywsquery/getCustQuery"
FILTERED_ACCOUNTS = f"{API_PREFIX}/sywspicklist/sywspicklist/getFilteredAccounts"
STATEMENT = f"{API_PREFIX}/sywsquery/sywsquery/GetCustBal"
SESSION_COOKIE = "JSESSIONID"
MAX_QUERY_DAYS = 30
TOKEN_TTL_SECONDS = 600
SOFIA = ZoneInfo("Europe/Sofia")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# The overnight batch posts fees and interest at 00:30 Sofia time: in summer that is 21:30 UTC
# of the day before, which is what a UTC-minded client gets wrong.
BATCH_TIME = dt.time(0, 30)
_BATCH_CATEGORIES = frozenset({"FEE_CHARGE", "INTEREST"})

# trnCode and the Bulgarian transaction name (trname) per kind of movement.
_TRANSACTION_KINDS: dict[str, tuple[str, str]] = {
    "PURCHASE": ("POS", "Плащане на ПОС"),
    "ATM": ("ATM", "Теглене от банкомат"),
    "DIRECT_DEBIT": ("DD", "Директен дебит"),
    "STANDING_ORDER": ("SO", "Периодичен превод"),
    "TRANSFER": ("TRF", "Вътрешнобанков превод"),
    "CREDIT": ("CRT", "Получен превод"),
    "FEE_CHARGE": ("FEE", "Такса"),
    "INTEREST": ("INT", "Олихвяване"),
}
_SUMMARY_NAMES = {
    "OP": "Начално салдо",
    "DT": "Дебитен оборот",
    "CT": "Кредитен оборот",
    "CL": "Крайно салдо",
}


@dataclass(frozen=True)
class StatementRequest:
    """One GetCustBal call as the bank saw it (the request log tests assert on)."""

    iban: str
    from_date: str
    to_date: str
    status: int

    @property
    def start(self) -> dt.datetime | None:
        return parse_time(self.from_date)

    @property
    def end(self) -> dt.datetime | None:
        return parse_time(self.to_date)


@dataclass
class _Session:
    csrf: str
    user: str | None = None
    saved_authorize: str | None = None


@dataclass
class FibankOptions:
    """The switches and the bank's own state (sessions, tokens, the statement request log)."""

    failing_ibans: set[str] = field(default_factory=set)
    # The session times out once this many statements have been served (None: it does not).
    expire_sessions_after: int | None = None
    token_ttl_seconds: int = TOKEN_TTL_SECONDS
    max_query_days: int = MAX_QUERY_DAYS
    logins: int = 0
    failed_logins: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _sessions: dict[str, _Session] = field(default_factory=dict, repr=False)
    _tokens: dict[str, dt.datetime] = field(default_factory=dict, repr=False)
    _statements: list[StatementRequest] = field(default_factory=list, repr=False)

    def fail_account(self, iban: str) -> None:
        """GetCustBal answers HTTP 500 for this IBAN until healed (as the real bank does for some)."""
        with self._lock:
            self.failing_ibans.add(iban)

    def heal_accounts(self) -> None:
        with self._lock:
            self.failing_ibans.clear()

    def expire_sessions(self) -> None:
        """Every token issued so far stops working (the e-banking session timed out)."""
        with self._lock:
            self._tokens.clear()

    @property
    def statement_requests(self) -> list[StatementRequest]:
        with self._lock:
            return list(self._statements)

    def clear_statement_requests(self) -> None:
        with self._lock:
            self._statements.clear()

    def reset(self) -> None:
        """Switches off and logs cleared; sessions and tokens stay valid."""
        with self._lock:
            self.failing_ibans.clear()
            self.expire_sessions_after = None
            self._statements.clear()
            self.logins = self.failed_logins = 0

    # -- used by the app ----------------------------------------------------------------------------------

    def _new_session(self, user: str | None = None, saved_authorize: str | None = None) -> str:
        session_id = secrets.token_hex(16).upper()
        with self._lock:
            self._sessions[session_id] = _Session(secrets.token_urlsafe(24), user, saved_authorize)
        return session_id

    def _session(self, session_id: str | None) -> _Session | None:
        with self._lock:
            return self._sessions.get(session_id or "")

    def _drop_session(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _issue_token(self) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.token_ttl_seconds)
        return token

    def _token_valid(self, token: str) -> bool:
        with self._lock:
            expires = self._tokens.get(token)
        return expires is not None and expires > dt.datetime.now(dt.UTC)

    def _log(self, request: StatementRequest) -> None:
        with self._lock:
            self._statements.append(request)
            served = sum(1 for logged in self._statements if logged.status == 200)
            if self.expire_sessions_after is not None and served >= self.expire_sessions_after:
                self.expire_sessions_after = None
                self._tokens.clear()

    def _is_failing(self, iban: str) -> bool:
        with self._lock:
            return iban in self.failing_ibans


def parse_time(text: str | None) -> dt.datetime | None:
    """The bank's date-time text (``2025-07-01T00:30:00+0300``) as an aware datetime; None if not one."""
    try:
        return dt.datetime.strptime(text or "", TIME_FORMAT)
    except ValueError:
        return None


def sofia_text(moment: dt.datetime) -> str:
    return moment.astimezone(SOFIA).strftime(TIME_FORMAT)


def has_sofia_offset(moment: dt.datetime) -> bool:
    """Whether a client time carries the offset Sofia has at that instant (+0300 in summer)."""
    return moment.utcoffset() == moment.astimezone(SOFIA).utcoffset()


def entry_serial(txn: WorldTransaction) -> int:
    """The bank's acEntrySrNo: a stable bigint per movement."""
    return int(stable_hex("fibank-entry", txn.world_id, length=12), 16)


def posted_at(txn: WorldTransaction) -> dt.datetime:
    """When the bank posted the movement, Sofia wall-clock on its booking day: fees and interest
    at 00:30 (the overnight batch), one in ten others after midnight, the rest by day. The hours
    03:00-04:00 (Sofia's daylight-saving switches) are never used."""
    assert txn.booking_date is not None
    draw = int(stable_hex("fibank-time", txn.world_id, length=8), 16)
    if txn.transaction_category in _BATCH_CATEGORIES:
        clock = BATCH_TIME
    else:
        seconds = draw // 10 % (3 * 3600) if draw % 10 == 0 else 7 * 3600 + draw // 10 % (17 * 3600)
        clock = (dt.datetime.min + dt.timedelta(seconds=seconds)).time()
    return dt.datetime.combine(txn.booking_date, clock, tzinfo=SOFIA)


def customer_id(world: World) -> str:
    """The e-banking customer id (ibCustomerId) of the owner of the world's Fibank accounts."""
    accounts = world.accounts_for(PROVIDER)
    owner = accounts[0].owner_party_id if accounts else "nobody"
    return str(1_000_000 + int(stable_hex(world.seed, "fibank-customer", owner), 16) % 9_000_000)


def account_json(account: Account, customer: str) -> dict[str, Any]:
    return {
        "ibanAcNo": account.iban,
        "ccy": account.currency,
        "acDesc": account.display_name,
        "acType": "CA",
        "custId": customer,
        "bic": account.swift_bic,
        "branchName": "ЦУ София",
        "isAccountFromPSD2": False,
    }


def movement_json(txn: WorldTransaction, account: Account, moment: dt.datetime, balance: Decimal) -> dict:
    """One statement row: the amount unsigned, its direction in dtkt (D debit, C credit)."""
    code, name = _TRANSACTION_KINDS.get(txn.transaction_category, ("TRF", "Превод"))
    serial = entry_serial(txn)
    debit = txn.amount < 0
    counterparty = txn.counterparty_name or txn.merchant_name or ""
    value_day = dt.datetime.combine(txn.transaction_date, dt.time(0), tzinfo=SOFIA)
    return {
        "acEntrySrNo": serial,
        "reference": f"{moment:%y%j}{serial % 10**8:08d}",
        "dateTime": sofia_text(moment),
        "valueDt": sofia_text(value_day),
        "amount": abs(txn.amount),
        "dtkt": "D" if debit else "C",
        "acBal": balance,
        "ccy": account.currency,
        "contragent": counterparty,
        "benOrderParty": counterparty,
        "trname": name,
        "trnAccount": txn.counterparty_iban or "",
        "trnType": "TR",
        "trnCode": code,
        "isEbankOper": "Y" if txn.transaction_category in ("TRANSFER", "STANDING_ORDER") and debit else "N",
        "isPayment": "Y" if debit else "N",
        "loadAsNew": "N",
        "remI": txn.description,
        "remIi": "",
        "remIii": "",
    }


def summary_json(
    kind: str, account: Account, moment: dt.datetime, amount: Decimal, balance: Decimal | None
) -> dict:
    """An OP/CL (balance) or DT/CT (turnover) row: shaped like a movement, but not one."""
    return {
        "acEntrySrNo": None,
        "reference": "",
        "dateTime": sofia_text(moment),
        "valueDt": sofia_text(moment),
        "amount": abs(amount),
        "dtkt": "D" if kind == "DT" or amount < 0 else "C",
        "acBal": balance,
        "ccy": account.currency,
        "contragent": "",
        "benOrderParty": "",
        "trname": _SUMMARY_NAMES[kind],
        "trnAccount": "",
        "trnType": kind,
        "trnCode": "",
        "isEbankOper": "N",
        "isPayment": "N",
        "loadAsNew": "N",
        "remI": "",
        "remIi": "",
        "remIii": "",
    }


def statement_json(world: World, account: Account, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """GetCustBal's body for [start, end] (instants, both included)."""
    first_day, last_day = start.astimezone(SOFIA).date(), end.astimezone(SOFIA).date()
    booked = world.booked(account.account_id, first_day, last_day + dt.timedelta(days=1))
    timed = sorted(((posted_at(txn), entry_serial(txn), txn) for txn in booked), key=lambda row: row[:2])
    balance = world.balance(account.account_id, first_day - dt.timedelta(days=1))
    balance += sum((txn.amount for moment, _, txn in timed if moment < start), Decimal(0))
    opening, debits, credits = balance, Decimal(0), Decimal(0)
    rows = [summary_json("OP", account, start, opening, opening)]
    for moment, _, txn in timed:
        if not start <= moment <= end:
            continue
        balance += txn.amount
        if txn.amount < 0:
            debits -= txn.amount
        else:
            credits += txn.amount
        rows.append(movement_json(txn, account, moment, balance))
    rows += [
        summary_json("DT", account, end, debits, None),
        summary_json("CT", account, end, credits, None),
        summary_json("CL", account, end, balance, balance),
    ]
    return {
        "acc": [{"iban": account.iban, "ccy": account.currency, "acDesc": account.display_name, "stmt": rows}]
    }


def eb_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The web app's error body."""
    return JSONResponse({"errorCode": code, "errorMessage": message}, status_code=status, headers=headers)


def _fault_response(mode: FaultMode) -> Response:
    if mode == "server_error":
        return eb_error(500, "SYSTEM_ERROR", "Възникна системна грешка.")
    if mode == "rate_limit":
        return eb_error(429, "TOO_MANY_REQUESTS", "Твърде много заявки.", {"Retry-After": "1"})
    return eb_error(401, "INVALID_TOKEN", "Сесията е изтекла.")


def _page(title: str, meta: dict[str, str], body: str = "") -> HTMLResponse:
    tags = "".join(f'<meta name="{name}" content="{value}">' for name, value in meta.items())
    html = (
        f'<!DOCTYPE html><html lang="bg"><head><meta charset="utf-8">{tags}<title>{title}</title></head>'
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(html)


ApiHandler = Callable[[Request], Awaitable[Response]]


def build_fibank_app(world: World, state: SandboxState, options: FibankOptions | None = None) -> Starlette:
    """Fibank's e-banking for ``world``: login with ``state.client_id`` / ``state.client_secret``
    as the user's username and password."""
    opts = options or FibankOptions()
    customer = customer_id(world)
    accounts = {account.iban: account for account in world.accounts_for(PROVIDER) if account.iban}

    # -- login --------------------------------------------------------------------------------------------

    def with_session(response: Response, session_id: str) -> Response:
        response.set_cookie(SESSION_COOKIE, session_id, path="/oauth2-server", httponly=True, samesite="lax")
        return response

    async def login(request: Request) -> Response:
        if request.method == "POST":
            return await login_submit(request)
        session_id = request.cookies.get(SESSION_COOKIE)
        session = opts._session(session_id)
        if session is None:
            session_id = opts._new_session()
            session = opts._session(session_id)
        assert session is not None and session_id is not None
        form = (
            f'<form method="post" action="{LOGIN}"><input name="username"><input name="password" type="password">'
            f'<input type="hidden" name="_csrf" value="{session.csrf}"></form>'
        )
        page = _page("Fibank - Вход", {"_csrf": session.csrf, "_csrf_header": "X-CSRF-TOKEN"}, form)
        return with_session(page, session_id)

    async def authorize(request: Request) -> Response:
        query = request.query_params
        if (
            query.get("client_id") != CLIENT_ID
            or query.get("response_type") != "token"
            or query.get("redirect_uri") != REDIRECT_URI
            or query.get("scope") != SCOPE
        ):
            return eb_error(400, "invalid_request", "Unknown client, response type, redirect or scope.")
        session_id = request.cookies.get(SESSION_COOKIE)
        session = opts._session(session_id)
        if session is None or session.user is None:
            kept = f"{AUTHORIZE}?{request.url.query}"
            if session is None:
                session_id = opts._new_session(saved_authorize=kept)
            else:
                session.saved_authorize = kept
            assert session_id is not None
            return with_session(RedirectResponse(LOGIN, status_code=302), session_id)
        fragment = {
            "access_token": opts._issue_token(),
            "token_type": "bearer",
            "state": query.get("state", ""),
            "expires_in": str(opts.token_ttl_seconds),
        }
        return RedirectResponse(f"{REDIRECT_URI}#{urlencode(fragment)}", status_code=302)

    async def certificates(request: Request) -> Response:
        if request.query_params.get("client_id") != CLIENT_ID or not request.query_params.get("userName"):
            return eb_error(400, "invalid_request", "client_id and userName are required.")
        return JSONResponse([])

    async def login_submit(request: Request) -> Response:
        session_id = request.cookies.get(SESSION_COOKIE)
        session = opts._session(session_id)
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        if session is None or not secrets.compare_digest(form.get("_csrf", ""), session.csrf):
            return HTMLResponse("<html><body>Invalid CSRF token</body></html>", status_code=403)
        assert session_id is not None
        client_time = parse_time(form.get("time"))
        if form.get("client_id") != CLIENT_ID or client_time is None or not has_sofia_offset(client_time):
            return eb_error(400, "invalid_request", "client_id or time (with Sofia's offset) is wrong.")
        right_user = secrets.compare_digest(form.get("username", ""), state.client_id)
        right_password = secrets.compare_digest(form.get("password", ""), state.client_secret)
        if not (right_user and right_password):
            with opts._lock:
                opts.failed_logins += 1
            return RedirectResponse(f"{LOGIN}?error", status_code=302)
        # A new session id on login (no session fixation), carrying the kept authorize request.
        opts._drop_session(session_id)
        new_id = opts._new_session(user=state.client_id, saved_authorize=session.saved_authorize)
        with opts._lock:
            opts.logins += 1
        return with_session(
            RedirectResponse(session.saved_authorize or REDIRECT_URI, status_code=302), new_id
        )

    async def ebank_page(request: Request) -> Response:
        return _page("Fibank My Fibank", {"EBank_publicToken": secrets.token_hex(8)})

    # -- the web app's API --------------------------------------------------------------------------------

    def api(handler: ApiHandler, needs_customer: bool = True) -> ApiHandler:
        async def endpoint(request: Request) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not opts._token_valid(token.strip()):
                return eb_error(401, "INVALID_TOKEN", "Сесията е изтекла.", {"WWW-Authenticate": "Bearer"})
            client_time = parse_time(request.headers.get("ebank-client-time"))
            if client_time is None or not has_sofia_offset(client_time):
                return eb_error(
                    400, "INVALID_CLIENT_TIME", "EBank-Client-Time must be Sofia time with its offset."
                )
            if needs_customer and request.headers.get("ebank-cust-id") != customer:
                return eb_error(
                    403, "CUSTOMER_MISMATCH", "EBank-Cust-Id does not name this session's customer."
                )
            return await handler(request)

        return endpoint

    async def customer_query(request: Request) -> Response:
        owner = next(iter(accounts.values())).owner_name if accounts else ""
        return JSONResponse({"customer": [{"ibCustomerId": customer, "custName": owner, "custType": "P"}]})

    async def filtered_accounts(request: Request) -> Response:
        return ExactJSONResponse([account_json(account, customer) for account in accounts.values()])

    async def statement(request: Request) -> Response:
        query = request.query_params
        iban = query.get("Iban", "")
        from_text, to_text = query.get("FromDate", ""), query.get("ToDate", "")

        def answer(response: Response) -> Response:
            opts._log(StatementRequest(iban, from_text, to_text, response.status_code))
            return response

        account = accounts.get(iban)
        if account is None:
            return answer(eb_error(404, "ACCOUNT_NOT_FOUND", "Няма такава сметка."))
        if opts._is_failing(iban):
            return answer(eb_error(500, "SYSTEM_ERROR", "Възникна системна грешка."))
        start, end = parse_time(from_text), parse_time(to_text)
        if start is None or end is None:
            return answer(
                eb_error(400, "INVALID_DATE", "FromDate and ToDate must look like 2025-02-21T00:00:00+0200.")
            )
        if query.get("StmtType") != "T":
            return answer(eb_error(400, "INVALID_STMT_TYPE", "StmtType must be T."))
        if end < start:
            return answer(eb_error(400, "INVALID_PERIOD", "ToDate is before FromDate."))
        days = (end.astimezone(SOFIA).date() - start.astimezone(SOFIA).date()).days + 1
        if days > opts.max_query_days:
            return answer(
                eb_error(
                    400, "PERIOD_TOO_LONG", f"Периодът не може да бъде по-дълъг от {opts.max_query_days} дни."
                )
            )
        return answer(ExactJSONResponse(statement_json(world, account, start, end)))

    # -- the sandbox's own controls -----------------------------------------------------------------------

    async def failing_accounts(request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            opts.fail_account(str(body.get("iban", "")))
        elif request.method == "DELETE":
            opts.heal_accounts()
        return JSONResponse({"failing_ibans": sorted(opts.failing_ibans)})

    async def expire_sessions(request: Request) -> Response:
        opts.expire_sessions()
        return JSONResponse({"expired": True})

    async def statement_log(request: Request) -> Response:
        if request.method == "DELETE":
            opts.clear_statement_requests()
        return JSONResponse(
            {
                "requests": [
                    {"iban": r.iban, "FromDate": r.from_date, "ToDate": r.to_date, "status": r.status}
                    for r in opts.statement_requests
                ]
            }
        )

    controls: list[BaseRoute] = [
        Route(
            f"{CONTROL_PREFIX}/fibank/failing-accounts", failing_accounts, methods=["GET", "POST", "DELETE"]
        ),
        Route(f"{CONTROL_PREFIX}/fibank/expire-sessions", expire_sessions, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/fibank/statement-requests", statement_log, methods=["GET", "DELETE"]),
    ]
    routes = [
        Route(LOGIN, login, methods=["GET", "POST"]),
        Route(AUTHORIZE, authorize, methods=["GET"]),
        Route(CERTIFICATES, certificates, methods=["GET"]),
        Route(REDIRECT_URI, ebank_page, methods=["GET"]),
        Route(CUSTOMER_QUERY, api(customer_query, needs_customer=False), methods=["GET"]),
        Route(FILTERED_ACCOUNTS, api(filtered_accounts), methods=["GET"]),
        Route(STATEMENT, api(statement), methods=["GET"]),
        *admin_routes(state),
        *controls,
    ]
    middleware = [Middleware(FaultMiddleware, state=state, fault_response=_fault_response)]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.fibank = opts
    return app
