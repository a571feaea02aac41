"""Berlin Group NextGenPSD2 AIS (as Banca Transilvania serves it) over real HTTP, from the world.

Contract: shared/reference/bank-contracts.md section 1. One app holds the XS2A API (``/v1/...``), the OAuth
server (``/oauth/authorize``, ``/oauth/token``, ``/.well-known/oauth-authorization-server``) and the
sandbox's own switches (``/_sandbox/...``). Only accounts whose ``providers`` include "berlin_group" are
visible. The user needs no UI: the authorize endpoint approves the consent at once and redirects back.

Flow: ``POST /v1/consents`` (consent ``received``) -> ``GET /oauth/authorize?scope=AIS:<consentId>&
code_challenge=...`` (consent ``valid``, 302 with code) -> ``POST /oauth/token`` (code + code_verifier)
-> data calls with ``Authorization: Bearer``, ``Consent-ID`` and ``X-Request-ID``.

Unattended reads (no ``PSU-IP-Address`` header) are counted per consent, account, endpoint and UTC day;
past the consent's ``frequencyPerDay`` they get 429 ACCESS_EXCEEDED until midnight. Only successful first
pages count (following ``_links.next`` continues the same read).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import secrets
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.admin import admin_routes
from sandbox.berlin_group_json import account_json, balances_json, transaction_json
from sandbox.faults import CONTROL_PREFIX, FaultMiddleware
from sandbox.jsonbody import ExactJSONResponse
from sandbox.layout import stable_hex
from sandbox.model import Account, WorldTransaction
from sandbox.oauth import Grant
from sandbox.state import FaultMode, SandboxState
from sandbox.world import World

PROVIDER = "berlin_group"
API_PREFIX = "/v1"
AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
TppForm = Literal["mixed", "array", "object"]
ConsentStatus = Literal["received", "valid", "expired", "revokedByPsu", "terminatedByTpp", "rejected"]


@dataclass
class BerlinGroupSwitches:
    """Bank behaviour and BG-specific fault switches (the generic ones live in SandboxState)."""

    max_history_days: int = 90  # dateFrom older than today - this -> 400 PERIOD_INVALID
    page_size: int = 50
    max_frequency_per_day: int = 4  # the bank caps a consent's frequencyPerDay at this
    max_consent_days: int = 90  # validUntil is adjusted down to today + this
    # "mixed": object form on gateway-made errors (400 FORMAT_ERROR, 429), array form elsewhere
    # (BT changelog 1.0.4 moved to arrays; older builds sent objects).
    tpp_messages: TppForm = "mixed"
    require_pkce: bool = True
    slow_seconds: float = 0.0  # the next `slow_calls` data calls answer this late
    slow_calls: int = 0
    expire_token_after: int | None = None  # access tokens expire after this many more data calls
    rebook_days: int = 0  # rows booked in the last N days are served as pending, under pending ids


@dataclass
class Consent:
    consent_id: str
    access: dict[str, Any]
    recurring: bool
    valid_until: dt.date
    frequency_per_day: int
    status: ConsentStatus = "received"


@dataclass
class _PkceCode:
    challenge: str | None
    method: str | None


@dataclass
class BerlinGroupSandbox:
    """Consents, PKCE challenges and usage counters; every mutation takes the lock."""

    switches: BerlinGroupSwitches = field(default_factory=BerlinGroupSwitches)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    consents: dict[str, Consent] = field(default_factory=dict)
    _pkce: dict[str, _PkceCode] = field(default_factory=dict, repr=False)
    _usage: Counter[tuple[str, str, str, dt.date]] = field(default_factory=Counter, repr=False)
    data_calls: int = 0
    # Every access token ever issued, to tell an expired one (TOKEN_EXPIRED) from garbage (TOKEN_INVALID).
    issued_tokens: set[str] = field(default_factory=set, repr=False)
    refresh_consents: dict[str, str] = field(default_factory=dict, repr=False)

    def set_consent_status(self, status: ConsentStatus, consent_id: str | None = None) -> None:
        """Expire or revoke one consent (or all): the next data call is refused with 401."""
        with self._lock:
            for consent in self.consents.values():
                if consent_id is None or consent.consent_id == consent_id:
                    consent.status = status

    def usage(self, consent_id: str, resource: str, endpoint: str, day: dt.date) -> int:
        with self._lock:
            return self._usage[(consent_id, resource, endpoint, day)]

    def count(self, consent_id: str, resource: str, endpoint: str, day: dt.date) -> None:
        with self._lock:
            self._usage[(consent_id, resource, endpoint, day)] += 1

    def reset_usage(self) -> None:
        with self._lock:
            self._usage.clear()


def tpp_error(
    status: int,
    code: str,
    text: str,
    *,
    form: Literal["array", "object"],
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """NextGenPSD2 error body: ``tppMessages`` as an array (1.3.x) or a single object (older builds)."""
    message = {"category": "ERROR", "code": code, "text": text}
    return JSONResponse(
        {"tppMessages": [message] if form == "array" else message}, status_code=status, headers=headers
    )


def oauth_error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": description}, status_code=status)


def _seconds_to_midnight() -> int:
    now = dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(0), dt.UTC)
    return max(1, int((midnight - now).total_seconds()))


def build_berlin_group_app(
    world: World, state: SandboxState, bg: BerlinGroupSandbox | None = None
) -> Starlette:
    """The BG XS2A API and its OAuth server for ``world``, driven by ``state`` (generic faults) and
    ``bg`` (BG switches; also reachable as ``app.state.berlin_group``)."""
    bg = bg or BerlinGroupSandbox()
    switches = bg.switches

    def form_for(status: int) -> Literal["array", "object"]:
        if switches.tpp_messages == "mixed":
            return "object" if status in (400, 429) else "array"
        return switches.tpp_messages

    def error(status: int, code: str, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return tpp_error(status, code, text, form=form_for(status), headers=headers)

    def fault_response(mode: FaultMode) -> Response:
        if mode == "server_error":
            return error(500, "INTERNAL_SERVER_ERROR", "Unexpected error in the ASPSP.")
        if mode == "rate_limit":
            # A gateway storm: short Retry-After, unlike the frequencyPerDay 429 (until midnight).
            return error(429, "ACCESS_EXCEEDED", "Too many requests; slow down.", {"Retry-After": "1"})
        return error(401, "TOKEN_INVALID", "The OAuth token is invalid.")

    def accounts_of(consent: Consent) -> list[tuple[str, Account]]:
        # resourceId is only stable within one consent (contract 1.2): derive it from the consent.
        return [
            (stable_hex("bg-resource", consent.consent_id, account.account_id, length=16), account)
            for account in world.accounts_for(PROVIDER)
        ]

    def header_checks(request: Request) -> Response | None:
        if not request.headers.get("x-request-id"):
            return error(400, "FORMAT_ERROR", "Header X-Request-ID is missing.")
        return None

    # -- consents -------------------------------------------------------------------------------------

    async def create_consent(request: Request) -> Response:
        if (failed := header_checks(request)) is not None:
            return failed
        if not request.headers.get("psu-ip-address"):
            return error(400, "FORMAT_ERROR", "Header PSU-IP-Address is mandatory on consent creation.")
        try:
            body = await request.json()
            access = body["access"]
            recurring = bool(body["recurringIndicator"])
            valid_until = dt.date.fromisoformat(body["validUntil"])
            frequency = int(body["frequencyPerDay"])
            if not isinstance(access, dict) or "combinedServiceIndicator" not in body or frequency < 1:
                raise ValueError("bad consent body")
        except (ValueError, KeyError, TypeError):
            return error(400, "FORMAT_ERROR", "The consent body is not a valid 'consents' object.")
        if valid_until < world.today:
            return error(400, "PERIOD_INVALID", "validUntil lies in the past.")
        consent_id = secrets.token_hex(12)
        consent = Consent(
            consent_id=consent_id,
            access=access,
            recurring=recurring,
            valid_until=min(valid_until, world.today + dt.timedelta(days=switches.max_consent_days)),
            frequency_per_day=min(frequency, switches.max_frequency_per_day) if recurring else 1,
        )
        with bg._lock:
            bg.consents[consent_id] = consent
        base = str(request.base_url).rstrip("/")
        links = {
            "scaOAuth": {"href": f"{base}/.well-known/oauth-authorization-server"},
            "self": {"href": f"{API_PREFIX}/consents/{consent_id}"},
            "status": {"href": f"{API_PREFIX}/consents/{consent_id}/status"},
        }
        return JSONResponse(
            {"consentStatus": consent.status, "consentId": consent_id, "_links": links},
            status_code=201,
            headers={
                "Location": f"{API_PREFIX}/consents/{consent_id}",
                "ASPSP-SCA-Approach": "REDIRECT",
            },
        )

    def find_consent(request: Request) -> Consent | None:
        with bg._lock:
            return bg.consents.get(request.path_params["consent_id"])

    async def get_consent(request: Request) -> Response:
        if (failed := header_checks(request)) is not None:
            return failed
        consent = find_consent(request)
        if consent is None:
            return error(403, "CONSENT_UNKNOWN", "The consent is unknown.")
        if request.method == "DELETE":
            bg.set_consent_status("terminatedByTpp", consent.consent_id)
            return Response(status_code=204)
        return JSONResponse(
            {
                "access": consent.access,
                "recurringIndicator": consent.recurring,
                "validUntil": consent.valid_until.isoformat(),
                "frequencyPerDay": consent.frequency_per_day,
                "combinedServiceIndicator": False,
                "consentStatus": consent.status,
                "lastActionDate": world.today.isoformat(),
            }
        )

    async def consent_status(request: Request) -> Response:
        if (failed := header_checks(request)) is not None:
            return failed
        consent = find_consent(request)
        if consent is None:
            return error(403, "CONSENT_UNKNOWN", "The consent is unknown.")
        return JSONResponse({"consentStatus": consent.status})

    # -- OAuth ----------------------------------------------------------------------------------------

    async def metadata(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "issuer": base,
                "authorization_endpoint": base + AUTHORIZE_PATH,
                "token_endpoint": base + TOKEN_PATH,
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def authorize(request: Request) -> Response:
        query = request.query_params
        redirect_uri = query.get("redirect_uri")
        if query.get("client_id") != state.client_id or not redirect_uri:
            return oauth_error(400, "invalid_client", "Unknown client_id or no redirect_uri.")

        def back(**params: str) -> Response:
            if "state" in query:
                params["state"] = query["state"]
            separator = "&" if "?" in redirect_uri else "?"
            return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)

        if query.get("response_type") != "code":
            return back(error="unsupported_response_type")
        scope = query.get("scope", "")
        consent_id = scope.removeprefix("AIS:") if scope.startswith("AIS:") else ""
        with bg._lock:
            consent = bg.consents.get(consent_id)
        if consent is None or consent.status != "received":
            return back(error="invalid_scope")
        challenge, method = query.get("code_challenge"), query.get("code_challenge_method")
        if challenge and method != "S256":
            return back(error="invalid_request", error_description="code_challenge_method must be S256")
        if switches.require_pkce and not challenge:
            return back(error="invalid_request", error_description="PKCE code_challenge is required")
        # The PSU logs in and approves at once.
        bg.set_consent_status("valid", consent_id)
        code = state.oauth.issue_code(redirect_uri, f"AIS:{consent_id} offline_access")
        with bg._lock:
            bg._pkce[code] = _PkceCode(challenge, method)
        return back(code=code)

    async def token(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return oauth_error(400, "invalid_request", "The body must be application/x-www-form-urlencoded.")
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        client_id, client_secret = _client_credentials(request, form)
        if client_id != state.client_id or client_secret != state.client_secret:
            return oauth_error(401, "invalid_client", "Client authentication failed.")
        grant_type = form.get("grant_type")
        grant: Grant | None
        if grant_type == "authorization_code":
            code = form.get("code", "")
            with bg._lock:
                pkce = bg._pkce.pop(code, None)
            grant = state.oauth.redeem_code(code, form.get("redirect_uri", ""))
            if grant is None or pkce is None:
                return oauth_error(400, "invalid_grant", "The code is invalid, expired or already used.")
            if pkce.challenge and _s256(form.get("code_verifier", "")) != pkce.challenge:
                return oauth_error(400, "invalid_grant", "PKCE verification failed.")
        elif grant_type == "refresh_token":
            refresh_token = form.get("refresh_token", "")
            with bg._lock:
                known = bg.refresh_consents.get(refresh_token)
            # Refused before the token is used up, so a consent made valid again can still refresh.
            if known is not None and bg.consents[known].status != "valid":
                return oauth_error(400, "invalid_grant", "The consent behind this grant is no longer valid.")
            grant = state.oauth.use_refresh_token(refresh_token)
            if grant is None:
                return oauth_error(400, "invalid_grant", "The refresh token is invalid or already used.")
        else:
            return oauth_error(400, "unsupported_grant_type", "Use authorization_code or refresh_token.")
        consent = _consent_of(grant)
        if consent is None or consent.status != "valid":
            return oauth_error(400, "invalid_grant", "The consent behind this grant is no longer valid.")
        access, refresh = state.oauth.issue_tokens(grant)
        with bg._lock:
            bg.issued_tokens.add(access)
            if refresh:
                bg.refresh_consents[refresh] = consent.consent_id
        body = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": state.oauth.access_token_ttl,
            "refresh_token": refresh,
            "scope": f"AIS:{consent.consent_id}",
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _consent_of(grant: Grant) -> Consent | None:
        consent_id = grant.scope.split()[0].removeprefix("AIS:")
        with bg._lock:
            return bg.consents.get(consent_id)

    # -- account information --------------------------------------------------------------------------

    Handler = Callable[[Request, Consent], Awaitable[Response]]

    def ais(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Headers, token, consent and (after the handler) token-expiry bookkeeping for one data call."""

        async def endpoint(request: Request) -> Response:
            if (failed := header_checks(request)) is not None:
                return failed
            consent_id = request.headers.get("consent-id")
            if not consent_id:
                return error(400, "FORMAT_ERROR", "Header Consent-ID is missing.")
            if switches.slow_calls > 0:
                with bg._lock:
                    switches.slow_calls -= 1
                await asyncio.sleep(switches.slow_seconds)
            scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
            token_text = bearer.strip() if scheme.lower() == "bearer" else ""
            grant = state.oauth.grant_for(token_text)
            if grant is None:
                with bg._lock:
                    issued_here = token_text in bg.issued_tokens
                if issued_here:
                    return error(401, "TOKEN_EXPIRED", "The access token has expired.")
                return error(401, "TOKEN_INVALID", "No valid OAuth token.")
            with bg._lock:
                consent = bg.consents.get(consent_id)
            if consent is None:
                return error(403, "CONSENT_UNKNOWN", "The consent is unknown.")
            if grant.scope.split()[0] != f"AIS:{consent_id}":
                return error(401, "CONSENT_INVALID", "The token was not issued for this consent.")
            if consent.status == "expired" or consent.valid_until < world.today:
                return error(401, "CONSENT_EXPIRED", "The consent has expired; ask the PSU again.")
            if consent.status != "valid":
                return error(401, "CONSENT_INVALID", f"The consent is {consent.status}.")
            response = await handler(request, consent)
            if response.status_code < 400:
                with bg._lock:
                    bg.data_calls += 1
                    expire = switches.expire_token_after is not None and switches.expire_token_after <= 1
                    if switches.expire_token_after is not None:
                        switches.expire_token_after = None if expire else switches.expire_token_after - 1
                if expire:
                    state.oauth.expire_access_tokens()
            return response

        return endpoint

    def budgeted(request: Request, consent: Consent, resource: str, endpoint: str) -> Response | None:
        """429 ACCESS_EXCEEDED when this unattended read would go past frequencyPerDay."""
        if request.headers.get("psu-ip-address"):
            return None  # the PSU is present: not counted (contract 1.3)
        if bg.usage(consent.consent_id, resource, endpoint, world.today) >= consent.frequency_per_day:
            return error(
                429,
                "ACCESS_EXCEEDED",
                "The access frequency of the consent (frequencyPerDay) is exceeded.",
                {"Retry-After": str(_seconds_to_midnight())},
            )
        return None

    def spend(request: Request, consent: Consent, resource: str, endpoint: str) -> None:
        if not request.headers.get("psu-ip-address"):
            bg.count(consent.consent_id, resource, endpoint, world.today)

    def account_of(request: Request, consent: Consent) -> tuple[str, Account] | None:
        wanted = request.path_params["account_id"]
        return next(((rid, a) for rid, a in accounts_of(consent) if rid == wanted), None)

    async def accounts(request: Request, consent: Consent) -> Response:
        if (refused := budgeted(request, consent, "*", "accounts")) is not None:
            return refused
        body = {"accounts": [account_json(account, rid) for rid, account in accounts_of(consent)]}
        spend(request, consent, "*", "accounts")
        return JSONResponse(body)

    async def balances(request: Request, consent: Consent) -> Response:
        found = account_of(request, consent)
        if found is None:
            return error(404, "RESOURCE_UNKNOWN", "The account is unknown.")
        rid, account = found
        if (refused := budgeted(request, consent, rid, "balances")) is not None:
            return refused
        today = world.today
        pending_total = sum((t.amount for t in world.pending(account.account_id)), Decimal(0))
        now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        body = {
            "account": {"iban": account.iban, "currency": account.currency},
            "balances": balances_json(
                account,
                world.balance(account.account_id, today - dt.timedelta(days=1)),
                world.balance(account.account_id, today),
                pending_total,
                today,
                now,
            ),
        }
        spend(request, consent, rid, "balances")
        return ExactJSONResponse(body)

    async def transactions(request: Request, consent: Consent) -> Response:
        found = account_of(request, consent)
        if found is None:
            return error(404, "RESOURCE_UNKNOWN", "The account is unknown.")
        rid, account = found
        query = request.query_params
        status = query.get("bookingStatus")
        if status not in {"booked", "pending", "both"}:
            return error(400, "PARAMETER_NOT_SUPPORTED", "bookingStatus must be booked, pending or both.")
        try:
            date_from = dt.date.fromisoformat(query["dateFrom"])
            date_to = dt.date.fromisoformat(query["dateTo"]) if query.get("dateTo") else world.today
            page = int(query.get("pageIndex", "0"))
        except (KeyError, ValueError):
            return error(400, "FORMAT_ERROR", "dateFrom (and dateTo) must be ISO dates.")
        if date_from > date_to or page < 0:
            return error(400, "PARAMETER_NOT_CONSISTENT", "dateFrom must not be after dateTo.")
        if date_from < world.today - dt.timedelta(days=switches.max_history_days):
            return error(
                400,
                "PERIOD_INVALID",
                f"Transactions older than {switches.max_history_days} days are not served.",
            )
        first_page = page == 0
        if first_page and (refused := budgeted(request, consent, rid, "transactions")) is not None:
            return refused
        booked, pending = _rows(account, date_from, date_to)
        size = switches.page_size
        chunk = booked[page * size : (page + 1) * size]
        report: dict[str, Any] = {}
        if status in {"booked", "both"}:
            report["booked"] = [
                transaction_json(txn, account, pending=False, balance_after=world.running_balance(txn))
                for txn in chunk
            ]
        if status in {"pending", "both"} and first_page:
            report["pending"] = [transaction_json(txn, account, pending=True) for txn in pending]
        links: dict[str, Any] = {"account": {"href": f"{API_PREFIX}/accounts/{rid}"}}
        if status != "pending" and (page + 1) * size < len(booked):
            params = {
                "dateFrom": date_from.isoformat(),
                "dateTo": date_to.isoformat(),
                "bookingStatus": status,
                "pageIndex": str(page + 1),
            }
            links["next"] = {"href": f"{API_PREFIX}/accounts/{rid}/transactions?{urlencode(params)}"}
        report["_links"] = links
        if first_page:
            spend(request, consent, rid, "transactions")
        return ExactJSONResponse({"account": {"iban": account.iban}, "transactions": report})

    def _rows(account: Account, date_from: dt.date, date_to: dt.date) -> tuple[list, list]:
        """Booked rows in [date_from, date_to] and pending rows entered in it (rebook switch applied)."""
        booked = world.booked(account.account_id, date_from, date_to + dt.timedelta(days=1))
        pending: list[WorldTransaction] = [
            t for t in world.pending(account.account_id) if date_from <= t.transaction_date <= date_to
        ]
        if switches.rebook_days > 0:
            cutoff = world.today - dt.timedelta(days=switches.rebook_days - 1)
            moved = [t for t in booked if t.booking_date is not None and t.booking_date >= cutoff]
            booked = [t for t in booked if t not in moved]
            pending = pending + moved
        return booked, pending

    async def not_found(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 404
        if code == 405:
            return error(405, "SERVICE_INVALID", "Method not allowed.")
        return error(404, "RESOURCE_UNKNOWN", "No such endpoint.")

    async def switches_endpoint(request: Request) -> Response:
        """GET/POST the BG switches, e.g. {"rebook_days": 2} or {"consent_status": "expired"}."""
        if request.method == "POST":
            spec = await request.json()
            if "consent_status" in spec:
                bg.set_consent_status(spec.pop("consent_status"))
            if spec.pop("expire_tokens", False):
                state.oauth.expire_access_tokens()
            with bg._lock:
                for name, value in spec.items():
                    if not hasattr(switches, name):
                        return JSONResponse({"error": f"unknown switch {name}"}, status_code=400)
                    setattr(switches, name, value)
        return JSONResponse({k: v for k, v in vars(switches).items()})

    api = API_PREFIX
    routes = [
        Route(f"{api}/consents", create_consent, methods=["POST"]),
        Route(f"{api}/consents/{{consent_id}}", get_consent, methods=["GET", "DELETE"]),
        Route(f"{api}/consents/{{consent_id}}/status", consent_status, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
        Route(AUTHORIZE_PATH, authorize, methods=["GET"]),
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route(f"{api}/accounts", ais(accounts), methods=["GET"]),
        Route(f"{api}/accounts/{{account_id}}/balances", ais(balances), methods=["GET"]),
        Route(f"{api}/accounts/{{account_id}}/transactions", ais(transactions), methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/berlin-group", switches_endpoint, methods=["GET", "POST"]),
        *admin_routes(state),
    ]
    middleware = [
        Middleware(FaultMiddleware, state=state, fault_response=fault_response),
        Middleware(_EchoRequestId),
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={404: not_found, 405: not_found})
    app.state.berlin_group = bg
    return app


class _EchoRequestId:
    """Echo the caller's X-Request-ID on every response (contract 1.3)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)

        async def echo(message: Any) -> None:
            if message["type"] == "http.response.start" and request_id is not None:
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id)]
            await send(message)

        await self.app(scope, receive, echo)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


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
