"""GoCardless Bank Account Data API v2 over real HTTP (contract: shared/reference/bank-contracts.md section 8).

Serves ``world.accounts_for("gocardless")`` under ``/api/v2``. Sandbox users need no UI: opening a
requisition's ``link`` (``/psd2/start/{requisition_id}/{institution_id}``) approves at once and redirects
to the requisition's ``redirect`` with ``?ref=<reference>``.

The per-account limit is enforced as the contract says: 4 successful calls per account, access scope
(details, balances, transactions) and day; the 5th is a 429 whose reset is in underscore-spelled
``HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_*`` headers and in the ``detail`` text. Failed calls do not count.

Fault switches: the shared ``SandboxState`` ones (``/_sandbox/faults``: server_error, rate_limit storms
with Retry-After, malformed_json, unauthorized) plus GoCardless's own in ``GoCardlessControls`` (also over
HTTP at ``/_sandbox/gocardless``): slow responses, access-token expiry (now or after N calls), consent
expired or revoked, booked rows re-keyed under a new transactionId, pending items booking under new
ids, and resetting the daily limits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.admin import admin_routes
from sandbox.faults import CONTROL_PREFIX, FaultMiddleware, correlation_headers
from sandbox.gocardless_json import (
    TRANSACTION_TOTAL_DAYS,
    account_details_json,
    account_metadata_json,
    balances_json,
    gc_account_id,
    institution_id,
    institution_json,
    transaction_json,
)
from sandbox.jsonbody import ExactJSONResponse
from sandbox.model import Account
from sandbox.state import FaultMode, SandboxState
from sandbox.world import World

PROVIDER = "gocardless"
API_PREFIX = "/api/v2"
LINK_PREFIX = "/psd2/start"
ACCESS_TTL = 86400
REFRESH_TTL = 2592000
CALLS_PER_DAY = 4
SCOPES = ("balances", "details", "transactions")

ConsentProblem = Literal["expired", "revoked"]


@dataclass
class _Requisition:
    id: str
    redirect: str
    institution_id: str
    reference: str
    agreement_id: str
    created: str
    status: str = "CR"
    accounts: list[str] = field(default_factory=list)


@dataclass
class GoCardlessControls:
    """GoCardless-specific state and fault switches; thread-safe like SandboxState."""

    calls_per_day: int = CALLS_PER_DAY
    access_ttl: int = ACCESS_TTL
    refresh_ttl: int = REFRESH_TTL
    clock: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _access: dict[str, float] = field(default_factory=dict, repr=False)
    _refresh: dict[str, float] = field(default_factory=dict, repr=False)
    _agreements: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    _requisitions: dict[str, _Requisition] = field(default_factory=dict, repr=False)
    _successes: Counter[tuple[str, str, dt.date]] = field(default_factory=Counter, repr=False)
    _expire_after: int | None = field(default=None, repr=False)
    _slow: tuple[float, int | None] | None = field(default=None, repr=False)
    consent_problem: ConsentProblem | None = None
    rebooked_ids: bool = False
    book_pending: bool = False

    # -- tokens ----------------------------------------------------------------------------------------

    def issue_tokens(self) -> tuple[str, str]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._access[access] = now + self.access_ttl
            self._refresh[refresh] = now + self.refresh_ttl
        return access, refresh

    def refresh_access(self, refresh: str) -> str | None:
        """A new access token for a live refresh token (GoCardless does not rotate refresh tokens)."""
        now = self.clock()
        with self._lock:
            if self._refresh.get(refresh, 0.0) <= now:
                return None
            access = secrets.token_urlsafe(32)
            self._access[access] = now + self.access_ttl
            return access

    def access_is_live(self, access: str) -> bool:
        with self._lock:
            if self._expire_after is not None:
                if self._expire_after <= 0:
                    self._access = dict.fromkeys(self._access, 0.0)
                    self._expire_after = None
                else:
                    self._expire_after -= 1
            return self._access.get(access, 0.0) > self.clock()

    def expire_access_tokens(self, after_calls: int = 0) -> None:
        """Expire every access token now, or once ``after_calls`` more authorised calls have passed."""
        with self._lock:
            if after_calls <= 0:
                self._access = dict.fromkeys(self._access, 0.0)
                self._expire_after = None
            else:
                self._expire_after = after_calls

    def expire_refresh_tokens(self) -> None:
        with self._lock:
            self._refresh = dict.fromkeys(self._refresh, 0.0)

    # -- consent ---------------------------------------------------------------------------------------

    def add_agreement(self, agreement: dict[str, Any]) -> None:
        with self._lock:
            self._agreements[agreement["id"]] = agreement

    def agreement(self, agreement_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._agreements.get(agreement_id)
            return dict(found) if found else None

    def accept_agreement(self, agreement_id: str, accepted: str) -> None:
        with self._lock:
            if agreement_id in self._agreements:
                self._agreements[agreement_id]["accepted"] = accepted

    def add_requisition(self, requisition: _Requisition) -> None:
        with self._lock:
            self._requisitions[requisition.id] = requisition

    def requisition(self, requisition_id: str) -> _Requisition | None:
        with self._lock:
            return self._requisitions.get(requisition_id)

    def linked_accounts(self) -> set[str]:
        with self._lock:
            return {
                a for r in self._requisitions.values() if r.status in {"LN", "EX", "SU"} for a in r.accounts
            }

    def set_consent_problem(self, problem: ConsentProblem | None) -> None:
        """Make every linked requisition expired (EX) or revoked; None restores them (LN)."""
        with self._lock:
            self.consent_problem = problem
            for requisition in self._requisitions.values():
                if requisition.status in {"LN", "EX", "SU"}:
                    requisition.status = {"expired": "EX", "revoked": "SU", None: "LN"}[problem]

    # -- per-account limits ----------------------------------------------------------------------------

    def remaining(self, account_id: str, scope: str, day: dt.date) -> int:
        with self._lock:
            return max(0, self.calls_per_day - self._successes[(account_id, scope, day)])

    def count_success(self, account_id: str, scope: str, day: dt.date) -> None:
        with self._lock:
            self._successes[(account_id, scope, day)] += 1

    def successes(self, account_id: str, scope: str, day: dt.date) -> int:
        with self._lock:
            return self._successes[(account_id, scope, day)]

    def reset_limits(self) -> None:
        with self._lock:
            self._successes.clear()

    # -- slow responses --------------------------------------------------------------------------------

    def set_slow(self, seconds: float, count: int | None = None) -> None:
        """Delay the next ``count`` account-data responses by ``seconds`` (None = until cleared)."""
        with self._lock:
            self._slow = (seconds, count) if seconds > 0 else None

    def take_delay(self) -> float:
        with self._lock:
            if self._slow is None:
                return 0.0
            seconds, count = self._slow
            if count is not None:
                self._slow = (seconds, count - 1) if count > 1 else None
            return seconds

    def clear(self) -> None:
        """Every GoCardless fault switch off (limits and tokens are kept)."""
        self.set_consent_problem(None)
        with self._lock:
            self._slow = None
            self._expire_after = None
            self.rebooked_ids = False
            self.book_pending = False


def gc_error(
    status: int, summary: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """GoCardless's error body: {"summary", "detail", "status_code"} (+ "type" on account errors)."""
    body = {"summary": summary, "detail": detail, "status_code": status, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def _fault_response(mode: FaultMode) -> Response:
    if mode == "server_error":
        return gc_error(500, "Internal server error", "An unexpected error occurred. Please try again.")
    if mode == "rate_limit":
        # A platform-wide storm (not the per-account daily limit): short Retry-After, platform headers.
        return gc_error(
            429,
            "Rate limit exceeded",
            "Too many requests. Please try again in 1 seconds",
            {
                "Retry-After": "1",
                "HTTP_X_RATELIMIT_LIMIT": "100",
                "HTTP_X_RATELIMIT_REMAINING": "0",
                "HTTP_X_RATELIMIT_RESET": "1",
            },
        )
    return _invalid_token()


def _invalid_token() -> JSONResponse:
    return gc_error(401, "Invalid token", "Token is invalid or expired", type="invalid_token")


def seconds_to_midnight(now: dt.datetime | None = None) -> int:
    now = now or dt.datetime.now(dt.UTC)
    tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(0), dt.UTC)
    return max(1, int((tomorrow - now).total_seconds()))


def _parse_date(text: str | None) -> dt.date | None:
    if text is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(text)
    return dt.date.fromisoformat(text)


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def build_gocardless_app(
    world: World, state: SandboxState, controls: GoCardlessControls | None = None
) -> Starlette:
    """The GoCardless Bank Account Data API v2 for ``world``; ``state.client_id``/``client_secret`` are the
    secret id/key. The app's GoCardless switches are ``app.state.gocardless`` (``controls``)."""
    gc = controls or GoCardlessControls()
    accounts = world.accounts_for(PROVIDER)
    by_gc_id: dict[str, Account] = {gc_account_id(world.seed, a): a for a in accounts}
    banks = {institution_id(a.bank): a.bank for a in accounts}
    countries = {
        iid: sorted({a.iban[:2] for a in accounts if institution_id(a.bank) == iid}) for iid in banks
    }

    def now_text() -> str:
        return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")

    def authorised(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not gc.access_is_live(token.strip()):
                return _invalid_token()
            return await handler(request)

        return endpoint

    # -- tokens ----------------------------------------------------------------------------------------

    async def token_new(request: Request) -> Response:
        body = await _json_body(request)
        if (
            body is None
            or body.get("secret_id") != state.client_id
            or body.get("secret_key") != state.client_secret
        ):
            return gc_error(
                401, "Authentication failed", "No active account found with the given credentials"
            )
        access, refresh = gc.issue_tokens()
        return JSONResponse(
            {
                "access": access,
                "access_expires": gc.access_ttl,
                "refresh": refresh,
                "refresh_expires": gc.refresh_ttl,
            }
        )

    async def token_refresh(request: Request) -> Response:
        body = await _json_body(request) or {}
        access = gc.refresh_access(str(body.get("refresh", "")))
        if access is None:
            return _invalid_token()
        return JSONResponse({"access": access, "access_expires": gc.access_ttl})

    # -- linking ---------------------------------------------------------------------------------------

    async def institutions(request: Request) -> Response:
        country = (request.query_params.get("country") or "").upper()
        found = [
            institution_json(bank, countries[iid])
            for iid, bank in banks.items()
            if not country or country in countries[iid]
        ]
        return JSONResponse(found)

    async def institution(request: Request) -> Response:
        bank = banks.get(request.path_params["institution_id"])
        if bank is None:
            return gc_error(404, "Not found.", "Not found.")
        return JSONResponse(institution_json(bank, countries[institution_id(bank)]))

    async def create_agreement(request: Request) -> Response:
        body = await _json_body(request)
        if body is None:
            return gc_error(400, "Invalid request", "The body must be a JSON object")
        errors: dict[str, Any] = {}
        iid = body.get("institution_id")
        if iid not in banks:
            errors["institution_id"] = {
                "summary": "Unknown Institution ID",
                "detail": "Get Institution IDs from /institutions/?country={$COUNTRY_CODE}",
            }
        days = body.get("max_historical_days", 90)
        if not isinstance(days, int) or not 1 <= days <= TRANSACTION_TOTAL_DAYS:
            errors["max_historical_days"] = {
                "summary": "Incorrect max_historical_days",
                "detail": f"max_historical_days must be > 0 and <= {TRANSACTION_TOTAL_DAYS}",
            }
        valid = body.get("access_valid_for_days", 90)
        if not isinstance(valid, int) or not 1 <= valid <= 180:
            errors["access_valid_for_days"] = {
                "summary": "Incorrect access_valid_for_days",
                "detail": "access_valid_for_days must be > 0 and <= 180",
            }
        scope = body.get("access_scope", list(SCOPES))
        if not isinstance(scope, list) or not set(scope) <= set(SCOPES):
            errors["access_scope"] = {
                "summary": "Unknown value in access_scope",
                "detail": f"Choose from {', '.join(SCOPES)}",
            }
        if errors:
            return JSONResponse({**errors, "status_code": 400}, status_code=400)
        agreement = {
            "id": str(uuid.uuid4()),
            "created": now_text(),
            "institution_id": iid,
            "max_historical_days": days,
            "access_valid_for_days": valid,
            "access_scope": scope,
            "accepted": None,
        }
        gc.add_agreement(agreement)
        return JSONResponse(agreement, status_code=201)

    async def get_agreement(request: Request) -> Response:
        agreement = gc.agreement(request.path_params["agreement_id"])
        if agreement is None:
            return gc_error(404, "Not found.", "Not found.")
        return JSONResponse(agreement)

    def requisition_json(requisition: _Requisition, base: str) -> dict[str, Any]:
        return {
            "id": requisition.id,
            "created": requisition.created,
            "redirect": requisition.redirect,
            "status": requisition.status,
            "institution_id": requisition.institution_id,
            "agreement": requisition.agreement_id,
            "reference": requisition.reference,
            "accounts": list(requisition.accounts),
            "user_language": "EN",
            "link": f"{base}{LINK_PREFIX}/{requisition.id}/{requisition.institution_id}",
        }

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def create_requisition(request: Request) -> Response:
        body = await _json_body(request)
        if body is None:
            return gc_error(400, "Invalid request", "The body must be a JSON object")
        iid, redirect = body.get("institution_id"), body.get("redirect")
        agreement = gc.agreement(str(body.get("agreement", "")))
        errors: dict[str, Any] = {}
        if iid not in banks:
            errors["institution_id"] = {
                "summary": "Unknown Institution ID",
                "detail": "Get Institution IDs from /institutions/",
            }
        if not isinstance(redirect, str) or not redirect.startswith(("http://", "https://")):
            errors["redirect"] = {
                "summary": "Enter a valid URL.",
                "detail": "redirect must be an absolute URL",
            }
        if agreement is None or agreement["institution_id"] != iid:
            errors["agreement"] = {
                "summary": "Incorrect agreement",
                "detail": "The agreement does not exist or is for another institution",
            }
        if errors:
            return JSONResponse({**errors, "status_code": 400}, status_code=400)
        assert agreement is not None and isinstance(iid, str) and isinstance(redirect, str)
        requisition = _Requisition(
            id=str(uuid.uuid4()),
            redirect=redirect,
            institution_id=iid,
            reference=str(body.get("reference") or uuid.uuid4()),
            agreement_id=agreement["id"],
            created=now_text(),
        )
        gc.add_requisition(requisition)
        return JSONResponse(requisition_json(requisition, base_url(request)), status_code=201)

    async def get_requisition(request: Request) -> Response:
        requisition = gc.requisition(request.path_params["requisition_id"])
        if requisition is None:
            return gc_error(404, "Not found.", "Not found.")
        return JSONResponse(requisition_json(requisition, base_url(request)))

    async def link(request: Request) -> Response:
        """The bank's consent pages, approved at once: link the institution's accounts and redirect."""
        requisition = gc.requisition(request.path_params["requisition_id"])
        if requisition is None:
            return gc_error(404, "Not found.", "Not found.")
        requisition.accounts = [
            gc_id for gc_id, a in by_gc_id.items() if institution_id(a.bank) == requisition.institution_id
        ]
        requisition.status = "LN"
        gc.accept_agreement(requisition.agreement_id, now_text())
        separator = "&" if "?" in requisition.redirect else "?"
        return RedirectResponse(
            f"{requisition.redirect}{separator}{urlencode({'ref': requisition.reference})}", status_code=302
        )

    # -- account data ----------------------------------------------------------------------------------

    def consent_error(account_id: str) -> Response | None:
        if account_id not in gc.linked_accounts():
            return gc_error(
                404,
                f"Account ID {account_id} not found",
                "Please check whether you specified a valid Account ID",
                type="AccountNotFoundError",
            )
        if gc.consent_problem == "expired":
            return gc_error(
                401,
                "End User Agreement (EUA) has expired",
                "EUA was valid for its access_valid_for_days and has expired. The end user must connect the account again",
                type="AccessExpiredError",
            )
        if gc.consent_problem == "revoked":
            return gc_error(
                401,
                "Access has expired or it has been revoked",
                "To restore access reconnect the account",
                type="AccessExpiredError",
            )
        return None

    async def account_metadata(request: Request) -> Response:
        gc_id = request.path_params["account_id"]
        if gc_id not in gc.linked_accounts():
            return consent_error(gc_id) or gc_error(404, "Not found.", "Not found.")
        status = (
            "READY"
            if gc.consent_problem is None
            else ("EXPIRED" if gc.consent_problem == "expired" else "SUSPENDED")
        )
        # Stable stamps (the link day is the world's first day): a re-pull gives the same record.
        created = f"{world.history_start.isoformat()}T00:00:00Z"
        return JSONResponse(account_metadata_json(gc_id, by_gc_id[gc_id], created, status))

    def limited(
        scope: str, handler: Callable[[Request, Account], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """An account-scope endpoint: consent check, the 4-per-day limit, success counting, slowness."""

        async def endpoint(request: Request) -> Response:
            gc_id = request.path_params["account_id"]
            problem = consent_error(gc_id)
            if problem is not None:
                return problem
            delay = gc.take_delay()
            if delay:
                await asyncio.sleep(delay)
            day = world.today
            reset = str(seconds_to_midnight())
            left = gc.remaining(gc_id, scope, day)
            if left <= 0:
                headers = {
                    "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_LIMIT": str(gc.calls_per_day),
                    "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING": "0",
                    "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_RESET": reset,
                }
                return gc_error(
                    429,
                    "Rate limit exceeded",
                    f"The rate limit for this resource is {gc.calls_per_day}/day. Please try again in {reset} seconds",
                    headers,
                )
            response = await handler(request, by_gc_id[gc_id])
            if 200 <= response.status_code < 300:
                gc.count_success(gc_id, scope, day)
                left -= 1
            response.headers["HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_LIMIT"] = str(gc.calls_per_day)
            response.headers["HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING"] = str(left)
            response.headers["HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_RESET"] = reset
            return response

        return authorised(endpoint)

    async def details(request: Request, account: Account) -> Response:
        return ExactJSONResponse(account_details_json(account))

    async def balances(request: Request, account: Account) -> Response:
        booked = world.balance(account.account_id, world.today)
        pending_total = sum((t.amount for t in world.pending(account.account_id)), Decimal(0))
        return ExactJSONResponse(balances_json(account, booked, pending_total, world.today))

    async def transactions(request: Request, account: Account) -> Response:
        query = request.query_params
        try:
            first = _parse_date(query.get("date_from")) if "date_from" in query else None
            last = _parse_date(query.get("date_to")) if "date_to" in query else None
        except ValueError:
            return JSONResponse(
                {
                    "date_from": {"summary": "Invalid date", "detail": "Dates must be YYYY-MM-DD"},
                    "status_code": 400,
                },
                status_code=400,
            )
        if first is not None and first > world.today:
            return JSONResponse(
                {
                    "date_from": {
                        "summary": "Date can't be in future",
                        "detail": f"'{first}' is in the future",
                    },
                    "status_code": 400,
                },
                status_code=400,
            )
        if first is not None and last is not None and first > last:
            return JSONResponse(
                {
                    "date_to": {
                        "summary": "Incorrect date range",
                        "detail": "date_to must be on or after date_from",
                    },
                    "status_code": 400,
                },
                status_code=400,
            )
        start = first or world.today - dt.timedelta(days=90)
        end = (last or world.today) + dt.timedelta(days=1)
        booked = [
            transaction_json(t, account, world.running_balance(t), rebooked=gc.rebooked_ids)
            for t in reversed(world.booked(account.account_id, start, end))
        ]
        pending = [transaction_json(t, account) for t in world.pending(account.account_id)]
        if gc.book_pending:
            # As if the day had moved on: every pending item is booked today, under ids it never
            # had while pending, and leaves the pending list.
            if start <= world.today < end:
                booked[:0] = [
                    transaction_json(dataclasses.replace(t, booking_date=world.today), account, rebooked=True)
                    for t in world.pending(account.account_id)
                ]
            pending = []
        return ExactJSONResponse({"transactions": {"booked": booked, "pending": pending}})

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return gc_error(status, "Not found." if status == 404 else "Method not allowed.", "No such endpoint.")

    api = API_PREFIX
    routes = [
        Route(f"{api}/token/new/", token_new, methods=["POST"]),
        Route(f"{api}/token/refresh/", token_refresh, methods=["POST"]),
        Route(f"{api}/institutions/", authorised(institutions)),
        Route(f"{api}/institutions/{{institution_id}}/", authorised(institution)),
        Route(f"{api}/agreements/enduser/", authorised(create_agreement), methods=["POST"]),
        Route(f"{api}/agreements/enduser/{{agreement_id}}/", authorised(get_agreement)),
        Route(f"{api}/requisitions/", authorised(create_requisition), methods=["POST"]),
        Route(f"{api}/requisitions/{{requisition_id}}/", authorised(get_requisition)),
        Route(f"{LINK_PREFIX}/{{requisition_id}}/{{institution_id}}", link),
        Route(f"{api}/accounts/{{account_id}}/", authorised(account_metadata)),
        Route(f"{api}/accounts/{{account_id}}/details/", limited("details", details)),
        Route(f"{api}/accounts/{{account_id}}/balances/", limited("balances", balances)),
        Route(f"{api}/accounts/{{account_id}}/transactions/", limited("transactions", transactions)),
        *admin_routes(state),
        *_control_routes(gc),
    ]
    middleware = [
        Middleware(
            FaultMiddleware,
            state=state,
            fault_response=_fault_response,
            response_headers=correlation_headers("X-Request-Id"),
        )
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={404: not_found, 405: not_found})
    app.state.gocardless = gc
    return app


def _control_routes(gc: GoCardlessControls) -> list[BaseRoute]:
    """POST /_sandbox/gocardless {"slow_seconds","slow_count","expire_access_after","consent",
    "rebooked_ids","book_pending","reset_limits"}; DELETE clears the switches."""

    async def control(request: Request) -> JSONResponse:
        if request.method == "DELETE":
            gc.clear()
        elif request.method == "POST":
            spec = await _json_body(request)
            if spec is None:
                return JSONResponse({"error": "invalid_control"}, status_code=400)
            if "slow_seconds" in spec:
                gc.set_slow(float(spec["slow_seconds"]), spec.get("slow_count"))
            if "expire_access_after" in spec:
                gc.expire_access_tokens(int(spec["expire_access_after"]))
            if "consent" in spec:
                gc.set_consent_problem(spec["consent"])
            if "rebooked_ids" in spec:
                gc.rebooked_ids = bool(spec["rebooked_ids"])
            if "book_pending" in spec:
                gc.book_pending = bool(spec["book_pending"])
            if spec.get("reset_limits"):
                gc.reset_limits()
        return JSONResponse(
            {"consent": gc.consent_problem, "rebooked_ids": gc.rebooked_ids, "book_pending": gc.book_pending}
        )

    return [Route(f"{CONTROL_PREFIX}/gocardless", control, methods=["GET", "POST", "DELETE"])]
