"""TrueLayer Data API v1 over real HTTP: the auth server, the token endpoint and /data/v1 on one app.

Contract: shared/reference/bank-contracts.md section 3. Sandbox users need no UI: ``GET /`` consents at
once and redirects back with a code. Only accounts whose ``providers`` include "truelayer" are visible; an
auth link whose ``providers``/``provider_id`` names world banks (e.g. "ob-monzo") limits the consent to
them, other values (e.g. "uk-ob-all") are accepted and ignored.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.admin import admin_routes
from sandbox.bad_rows import with_bad_rows
from sandbox.faults import FaultMiddleware, correlation_headers
from sandbox.jsonbody import ExactJSONResponse
from sandbox.model import Account
from sandbox.oauth import Grant
from sandbox.state import FaultMode, SandboxState
from sandbox.truelayer_json import (
    MOCK_PROVIDER,
    account_json,
    balance_json,
    card_balance_json,
    card_json,
    card_transaction_json,
    provider_json,
    transaction_json,
    update_timestamp,
)
from sandbox.world import World

PROVIDER = "truelayer"
API_PREFIX = "/data/v1"
CONSENT_DAYS = 90

Handler = Callable[[Request, Grant], Awaitable[Response]]


class InvalidDateRange(ValueError):
    """``from`` is after ``to``."""


def tl_error(
    status: int, code: str, description: str, headers: dict[str, str] | None = None
) -> ExactJSONResponse:
    """TrueLayer's error body: {"error", "error_description", "error_details"}."""
    body = {"error": code, "error_description": description, "error_details": {}}
    return ExactJSONResponse(body, status_code=status, headers=headers)


def _fault_response(mode: FaultMode) -> Response:
    if mode == "server_error":
        return tl_error(500, "provider_error", "The provider service returned an unexpected error.")
    if mode == "rate_limit":
        return tl_error(
            429,
            "provider_too_many_requests",
            "The provider's request quota is exhausted.",
            {"Retry-After": "1"},
        )
    return tl_error(401, "invalid_token", "The access token is invalid.")


def _results(*items: object) -> ExactJSONResponse:
    return ExactJSONResponse({"results": list(items), "status": "Succeeded"})


def transaction_window(from_text: str | None, to_text: str | None, world: World) -> tuple[dt.date, dt.date]:
    """Booking-date window [start, end) for ``?from=&to=`` (ISO-8601 dates or date-times).

    Rows are stamped at 00:00 UTC of their booking date and a row is returned when from <= timestamp <= to.
    So a date means the whole day: ``from=2025-01-05`` starts with that day and ``to=2025-01-07`` includes
    all of 7 January. A date-time is compared as an instant (naive = UTC): ``from=2025-01-05T09:00Z`` starts
    on the 6th, ``to=2025-01-07T00:00Z`` (or any time that day) includes the 7th. A missing ``from`` means
    the start of the history, a missing ``to`` means today. Raises ValueError on unparseable input and
    InvalidDateRange when from > to. Rows come back in booking order (oldest first).
    """
    start = _bound(from_text, is_end=False) if from_text else world.history_start
    end = _bound(to_text, is_end=True) if to_text else world.today + dt.timedelta(days=1)
    if start >= end:
        raise InvalidDateRange("'from' must not be after 'to'")
    return start, end


def _bound(text: str, *, is_end: bool) -> dt.date:
    if "T" not in text and " " not in text:
        day = dt.date.fromisoformat(text)
        return day + dt.timedelta(days=1) if is_end else day
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    day = moment.date()
    if is_end:
        return day + dt.timedelta(days=1)
    return day if moment.time() == dt.time(0) else day + dt.timedelta(days=1)


def build_truelayer_app(world: World, state: SandboxState) -> Starlette:
    """The TrueLayer auth server and Data API v1 for ``world``, driven by ``state``."""

    def visible_accounts(grant: Grant, cards: bool = False) -> list[Account]:
        """Accounts (or, with ``cards``, card accounts) the consent covers; /accounts never lists cards."""
        accounts = world.accounts_for(PROVIDER, cards=cards)
        return [a for a in accounts if not grant.providers or a.provider_id in grant.providers]

    def find_account(grant: Grant, account_id: str, cards: bool = False) -> Account | None:
        return next((a for a in visible_accounts(grant, cards) if a.account_id == account_id), None)

    def authorised(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            grant = state.oauth.grant_for(token.strip()) if scheme.lower() == "bearer" else None
            if grant is None:
                return tl_error(
                    401,
                    "unauthorized",
                    "Access token missing, invalid or expired.",
                    {"WWW-Authenticate": "Bearer"},
                )
            return await handler(request, grant)

        return endpoint

    def account_endpoint(
        handler: Callable[[Request, Account], Awaitable[Response]],
        cards: bool = False,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def with_account(request: Request, grant: Grant) -> Response:
            account = find_account(grant, request.path_params["account_id"], cards)
            if account is None:
                return tl_error(404, "account_not_found", "The account could not be found.")
            return await handler(request, account)

        return authorised(with_account)

    # -- auth ------------------------------------------------------------------------------------------

    async def authorize(request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != state.client_id:
            return tl_error(400, "invalid_client", "Unknown client_id.")
        if query.get("response_type") != "code":
            return tl_error(400, "unsupported_response_type", "response_type must be 'code'.")
        redirect_uri, scope = query.get("redirect_uri"), query.get("scope")
        if not redirect_uri or not scope:
            return tl_error(400, "invalid_request", "redirect_uri and scope are required.")
        wanted = set(query.get("providers", "").split()) | set(query.get("provider_id", "").split())
        banks = frozenset(wanted & {a.provider_id for a in world.accounts_for(PROVIDER)})
        challenge = query.get("code_challenge")
        if challenge and query.get("code_challenge_method", "plain") != "S256":
            return tl_error(400, "invalid_request", "code_challenge_method must be S256.")
        code = state.oauth.issue_code(redirect_uri, scope, banks, challenge)
        params = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)

    async def token(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return tl_error(400, "invalid_request", "The body must be application/x-www-form-urlencoded.")
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        client_id, client_secret = _client_credentials(request, form)
        if client_id != state.client_id or client_secret != state.client_secret:
            return tl_error(401, "invalid_client", "Client authentication failed.")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            grant = state.oauth.redeem_code(
                form.get("code", ""), form.get("redirect_uri", ""), form.get("code_verifier")
            )
            if grant is None:
                return tl_error(
                    400, "invalid_grant", "The authorization code is invalid, expired or already used."
                )
        elif grant_type == "refresh_token":
            grant = state.oauth.use_refresh_token(form.get("refresh_token", ""))
            if grant is None:
                return tl_error(
                    400, "invalid_grant", "The refresh token is invalid, expired or already used."
                )
        else:
            return tl_error(
                400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token."
            )
        access, refresh = state.oauth.issue_tokens(grant)
        body = {
            "access_token": access,
            "expires_in": state.oauth.access_token_ttl,
            "token_type": "Bearer",
            **({"refresh_token": refresh} if refresh else {}),
            "scope": grant.scope,
        }
        return ExactJSONResponse(body, headers={"Cache-Control": "no-store"})

    # -- data ------------------------------------------------------------------------------------------

    async def me(request: Request, grant: Grant) -> Response:
        banks = {a.provider_id: a.bank for a in visible_accounts(grant)}
        provider = provider_json(next(iter(banks.values()))) if len(banks) == 1 else MOCK_PROVIDER
        consented = dt.datetime.fromtimestamp(grant.consented_at, dt.UTC)
        return _results(
            {
                "client_id": state.client_id,
                "credentials_id": grant.credentials_id,
                "consent_status": "Authorised",
                "consent_created_at": consented.isoformat(),
                "consent_expires_at": (consented + dt.timedelta(days=CONSENT_DAYS)).isoformat(),
                "provider": provider,
            }
        )

    async def accounts(request: Request, grant: Grant) -> Response:
        stamp = update_timestamp(world.today)
        return _results(*(account_json(account, stamp) for account in visible_accounts(grant)))

    async def cards(request: Request, grant: Grant) -> Response:
        stamp = update_timestamp(world.today)
        return _results(*(card_json(card, stamp) for card in visible_accounts(grant, cards=True)))

    async def account(request: Request, account: Account) -> Response:
        shape = card_json if account.is_card else account_json
        return _results(shape(account, update_timestamp(world.today)))

    async def balance(request: Request, account: Account) -> Response:
        current = world.balance(account.account_id, world.today)
        pending_total = sum((txn.amount for txn in world.pending(account.account_id)), Decimal(0))
        shape = card_balance_json if account.is_card else balance_json
        return _results(shape(account, current, pending_total, update_timestamp(world.today)))

    async def transactions(request: Request, account: Account) -> Response:
        try:
            start, end = transaction_window(
                request.query_params.get("from"), request.query_params.get("to"), world
            )
        except InvalidDateRange as error:
            return tl_error(400, "invalid_date_range", str(error))
        except ValueError as error:
            return tl_error(
                400, "validation_error", f"'from' and 'to' must be ISO-8601 dates or date-times: {error}"
            )
        rows = world.booked(account.account_id, start, end)
        shape = card_transaction_json if account.is_card else transaction_json
        items = [shape(txn, account, world.running_balance(txn)) for txn in rows]
        if not account.is_card:
            items = with_bad_rows(items, state.bad_rows, world.today)
        return _results(*items)

    async def pending(request: Request, account: Account) -> Response:
        shape = card_transaction_json if account.is_card else transaction_json
        return _results(*(shape(txn, account) for txn in world.pending(account.account_id)))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return tl_error(status, "not_found" if status == 404 else "method_not_allowed", "No such endpoint.")

    api = API_PREFIX
    routes = [
        Route("/", authorize, methods=["GET"]),
        Route("/connect/token", token, methods=["POST"]),
        Route(f"{api}/me", authorised(me)),
        Route(f"{api}/accounts", authorised(accounts)),
        Route(f"{api}/accounts/{{account_id}}", account_endpoint(account)),
        Route(f"{api}/accounts/{{account_id}}/balance", account_endpoint(balance)),
        Route(f"{api}/accounts/{{account_id}}/transactions", account_endpoint(transactions)),
        Route(f"{api}/accounts/{{account_id}}/transactions/pending", account_endpoint(pending)),
        Route(f"{api}/cards", authorised(cards)),
        Route(f"{api}/cards/{{account_id}}", account_endpoint(account, cards=True)),
        Route(f"{api}/cards/{{account_id}}/balance", account_endpoint(balance, cards=True)),
        Route(f"{api}/cards/{{account_id}}/transactions", account_endpoint(transactions, cards=True)),
        Route(f"{api}/cards/{{account_id}}/transactions/pending", account_endpoint(pending, cards=True)),
        *admin_routes(state),
    ]
    middleware = [
        Middleware(
            FaultMiddleware,
            state=state,
            fault_response=_fault_response,
            response_headers=correlation_headers("X-TL-Correlation-Id", "X-Request-Id"),
        )
    ]
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers={404: not_found, 405: not_found}
    )


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    """client_id/client_secret from the form, or from HTTP Basic auth when the form lacks them."""
    if "client_id" in form or "client_secret" in form:
        return form.get("client_id"), form.get("client_secret")
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, password
