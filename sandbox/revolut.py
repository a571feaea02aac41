"""Revolut Business API over real HTTP: consent, the JWT client-assertion token endpoint, /api/1.0 reads.

Contract: shared/reference/bank-contracts.md sections 2 and 10. Sandbox users need no UI:
``GET /app-confirm`` consents at once and redirects back with a code. The public key that verifies
client assertions is "uploaded" like in the Business app: ``RevolutOptions.public_key_pem`` or
``POST /_sandbox/revolut/certificate`` (PEM body).

Fault switches: the shared ones on ``SandboxState`` (path prefix ``/api/1.0``: rate_limit answers
429 code 3162 with Retry-After, server_error, unauthorized, malformed_json) plus ``RevolutOptions``:
``rate_limit_per_minute`` (real limiter), ``slow_seconds``/``slow_requests``, ``page_border_ties``,
``book_pending`` (+ ``rebook_under_new_id``), ``expire_access_tokens()`` and ``revoke_consent()``.

``/transactions`` answers from a newest-first list of every transaction, built once per world state
(today and the switches that change what is served) and bisected on ``created_at``, so a page costs
its own rows, not the whole world's.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import datetime as dt
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sandbox.admin import admin_routes
from sandbox.faults import FaultMiddleware, correlation_headers
from sandbox.jsonbody import ExactJSONResponse, dumps_exact
from sandbox.model import WorldTransaction
from sandbox.revolut_json import account_json, bank_details_json, iso_ms, transaction_json
from sandbox.state import FaultMode, SandboxState
from sandbox.world import World

PROVIDER = "revolut"
API_PREFIX = "/api/1.0"
ACCESS_TOKEN_SECONDS = 40 * 60
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AUDIENCE = "https://revolut.com"
MAX_COUNT = 1000
# Revolut's code grant carries no redirect_uri, so codes are issued and redeemed under one constant.
_CODE_REDIRECT = "revolut-app-confirm"


@dataclass
class RevolutOptions:
    """Revolut-only sandbox settings and fault switches; plain attributes, set from the test thread."""

    public_key_pem: str | None = None
    issuer: str = "127.0.0.1"
    access_token_seconds: int = ACCESS_TOKEN_SECONDS
    rate_limit_per_minute: int | None = 60
    retry_after_seconds: int = 1
    slow_seconds: float = 0.0
    slow_requests: int = 0
    page_border_ties: bool = False
    book_pending: bool = False
    rebook_under_new_id: bool = False
    clock: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _access: dict[str, float] = field(default_factory=dict, repr=False)  # token -> expires at
    _current_access: dict[str, str] = field(default_factory=dict, repr=False)  # refresh -> access
    _refresh: set[str] = field(default_factory=set, repr=False)
    _calls: deque[float] = field(default_factory=deque, repr=False)

    def expire_access_tokens(self) -> None:
        """Every issued access token is expired from now on (as if 40 minutes had passed)."""
        with self._lock:
            self._access = dict.fromkeys(self._access, 0.0)

    def revoke_consent(self) -> None:
        """The user revoked the app (or the consent lapsed): every token is dead, refresh gives invalid_grant."""
        with self._lock:
            self._access.clear()
            self._refresh.clear()
            self._current_access.clear()

    def issue(self, refresh_token: str | None) -> tuple[str, str]:
        """(access, refresh). Refreshing invalidates the previous access token of that refresh token."""
        access = "oa_sand_" + secrets.token_urlsafe(32)
        with self._lock:
            refresh = refresh_token or "oa_sand_" + secrets.token_urlsafe(32)
            self._refresh.add(refresh)
            previous = self._current_access.get(refresh)
            if previous:
                self._access.pop(previous, None)
            self._current_access[refresh] = access
            self._access[access] = self.clock() + self.access_token_seconds
        return access, refresh

    def knows_refresh(self, refresh_token: str) -> bool:
        with self._lock:
            return refresh_token in self._refresh

    def access_valid(self, token: str) -> bool:
        with self._lock:
            expires = self._access.get(token)
        return expires is not None and expires > self.clock()

    def forget_calls(self) -> None:
        """Start the per-minute count afresh, as if the client had been quiet for a minute."""
        with self._lock:
            self._calls.clear()

    def take_call(self) -> bool:
        """Count a request against the per-minute limit; False when over it."""
        if self.rate_limit_per_minute is None:
            return True
        now = self.clock()
        with self._lock:
            while self._calls and self._calls[0] <= now - 60:
                self._calls.popleft()
            if len(self._calls) >= self.rate_limit_per_minute:
                return False
            self._calls.append(now)
            return True

    def take_slow(self) -> float:
        with self._lock:
            if self.slow_requests <= 0:
                return 0.0
            self.slow_requests -= 1
            return self.slow_seconds


@dataclass
class _ServedTransactions:
    """What /transactions serves for one world state: bodies newest first ((created_at, id)
    descending), their created_at negated (ascending, for bisect) and each body's JSON once rendered."""

    key: tuple[object, ...]
    bodies: list[dict[str, Any]]
    neg_created: list[int]  # -(microseconds since the epoch) of each body's created_at
    texts: list[str | None]

    @classmethod
    def of(
        cls, key: tuple[object, ...], items: list[tuple[dt.datetime, str, dict[str, Any]]]
    ) -> _ServedTransactions:
        bodies = [body for _, _, body in items]
        return cls(key, bodies, [-_micros(created) for created, _, _ in items], [None] * len(bodies))

    def text(self, index: int) -> str:
        """The body's exact JSON, rendered on first use (bodies never change once served)."""
        text = self.texts[index]
        if text is None:
            text = self.texts[index] = dumps_exact(self.bodies[index])
        return text


def rv_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> ExactJSONResponse:
    """Revolut's error body: {"error_id", "code", "message"}."""
    body = {"error_id": secrets.token_hex(8), "code": code, "message": message}
    return ExactJSONResponse(body, status_code=status, headers=headers)


def oauth_error(status: int, error: str, description: str) -> ExactJSONResponse:
    return ExactJSONResponse({"error": error, "error_description": description}, status_code=status)


def rate_limited(retry_after: int) -> ExactJSONResponse:
    return rv_error(
        429,
        3162,
        f"Request rate limit has been reached. Try again after {retry_after} seconds.",
        {"Retry-After": str(retry_after)},
    )


def build_revolut_app(world: World, state: SandboxState, options: RevolutOptions | None = None) -> Starlette:
    """The Revolut Business consent page, token endpoint and /api/1.0 for ``world``."""
    opts = options or RevolutOptions()
    accounts = world.accounts_for(PROVIDER)
    account_ids = {account.account_id for account in accounts}

    def fault_response(mode: FaultMode) -> Response:
        if mode == "rate_limit":
            return rate_limited(opts.retry_after_seconds)
        if mode == "server_error":
            return rv_error(500, 5000, "Something went wrong.")
        return rv_error(401, 9001, "The request should be authorized.")

    def authorised(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not opts.take_call():
                return rate_limited(opts.retry_after_seconds)
            delay = opts.take_slow()
            if delay:
                await asyncio.sleep(delay)
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not opts.access_valid(token.strip()):
                return rv_error(401, 9001, "The request should be authorized.")
            return await handler(request)

        return endpoint

    # -- consent and tokens ----------------------------------------------------------------------------

    async def app_confirm(request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != state.client_id:
            return oauth_error(400, "invalid_client", "Unknown client_id.")
        if query.get("response_type") != "code" or not query.get("redirect_uri"):
            return oauth_error(400, "invalid_request", "response_type=code and redirect_uri are required.")
        redirect_uri = query["redirect_uri"]
        code = state.oauth.issue_code(_CODE_REDIRECT, query.get("scope", "READ"))
        params = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)

    async def token(request: Request) -> Response:
        if not opts.take_call():
            return rate_limited(opts.retry_after_seconds)
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return oauth_error(400, "invalid_request", "The body must be application/x-www-form-urlencoded.")
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return oauth_error(400, "invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}.")
        problem = _assertion_problem(form.get("client_assertion", ""), opts, state.client_id)
        if problem:
            return oauth_error(401, "invalid_client", problem)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            # Revolut's code grant carries no redirect_uri; the one the code was issued for is accepted.
            grant = state.oauth.redeem_code(form.get("code", ""), _CODE_REDIRECT)
            if grant is None:
                return oauth_error(
                    400, "invalid_grant", "The authorisation code is invalid, expired or used."
                )
            access, refresh = opts.issue(None)
            body: dict[str, Any] = {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": opts.access_token_seconds,
                "refresh_token": refresh,
            }
        elif grant_type == "refresh_token":
            refresh_token = form.get("refresh_token", "")
            if not opts.knows_refresh(refresh_token):
                return oauth_error(400, "invalid_grant", "The refresh token is invalid or revoked.")
            access, _ = opts.issue(refresh_token)
            # Revolut's refresh answer carries no new refresh token (contract §10).
            body = {"access_token": access, "token_type": "bearer", "expires_in": opts.access_token_seconds}
        else:
            return oauth_error(
                400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token."
            )
        return ExactJSONResponse(body, headers={"Cache-Control": "no-store"})

    # -- data ------------------------------------------------------------------------------------------

    async def list_accounts(request: Request) -> Response:
        stamp = iso_ms(dt.datetime.combine(world.today, dt.time(6), tzinfo=dt.UTC))
        opened = iso_ms(dt.datetime.combine(world.history_start, dt.time(9), tzinfo=dt.UTC))
        return ExactJSONResponse(
            [account_json(a, world.balance(a.account_id, world.today), opened, stamp) for a in accounts]
        )

    async def bank_details(request: Request) -> Response:
        account = next((a for a in accounts if a.account_id == request.path_params["account_id"]), None)
        if account is None:
            return rv_error(404, 3000, "Account not found.")
        return ExactJSONResponse(bank_details_json(account))

    async def transactions(request: Request) -> Response:
        query = request.query_params
        try:
            start = _instant(query.get("from")) if query.get("from") else None
            end = _instant(query.get("to")) if query.get("to") else None
            count = int(query.get("count", "100"))
        except ValueError:
            return rv_error(400, 2101, "from/to must be ISO-8601 dates or date-times and count an integer.")
        if not 1 <= count <= MAX_COUNT:
            return rv_error(400, 2101, f"count must be between 1 and {MAX_COUNT}.")
        states = set(query.getlist("state"))
        wanted_account = query.get("account")
        served = _served()
        # from inclusive, to exclusive, on created_at: a slice of the newest-first list.
        low = bisect.bisect_right(served.neg_created, -_micros(end)) if end else 0
        high = bisect.bisect_right(served.neg_created, -_micros(start)) if start else len(served.bodies)
        page: list[int] = []
        for index in range(low, high):
            body = served.bodies[index]
            if states and body["state"] not in states:
                continue
            if wanted_account is not None and not any(
                leg["account_id"] == wanted_account for leg in body["legs"]
            ):
                continue
            page.append(index)
            if len(page) == count:
                break
        # The bytes ExactJSONResponse would render for the list of these bodies.
        text = "[" + ",".join(served.text(index) for index in page) + "]"
        return Response(text.encode("utf-8"), media_type="application/json")

    served_lock = threading.Lock()
    served_cache: list[_ServedTransactions] = []

    def _served() -> _ServedTransactions:
        """Every transaction /transactions can serve, newest first, built once per world state
        (today and the switches that change what is served) rather than once per page."""
        key = (
            world.today,
            world.history_start,
            opts.page_border_ties,
            opts.book_pending,
            opts.rebook_under_new_id,
        )
        with served_lock:
            if not served_cache or served_cache[0].key != key:
                items = _all_transactions()
                # Newest first; equal created_at in a stable order, so tied pages are reproducible.
                items.sort(key=lambda txn: (txn[0], txn[1]), reverse=True)
                served_cache[:] = [_ServedTransactions.of(key, items)]
            return served_cache[0]

    def _all_transactions() -> list[tuple[dt.datetime, str, dict[str, Any]]]:
        """(created_at, id, body) of every transaction of the world's Revolut accounts: all booked
        rows of the world's history (exchanges as one two-legged transaction) and the pending ones."""
        booked: list[WorldTransaction] = []
        for account in accounts:
            booked.extend(
                world.booked(account.account_id, world.history_start, world.today + dt.timedelta(days=1))
            )
        balances = {txn.world_id: world.running_balance(txn) for txn in booked}
        groups: dict[str, list[WorldTransaction]] = defaultdict(list)
        singles: list[list[WorldTransaction]] = []
        for txn in booked:
            if txn.transfer_group and txn.counterparty_account_id in account_ids:
                groups[txn.transfer_group].append(txn)
            else:
                singles.append([txn])
        bodies = [
            transaction_json(legs, state="completed", ties=opts.page_border_ties, balances=balances)
            for legs in [*groups.values(), *singles]
        ]
        for account in accounts:
            for txn in world.pending(account.account_id):
                if opts.book_pending:
                    booked_txn = _booked_today(txn)
                    bodies.append(
                        transaction_json(
                            [booked_txn],
                            state="completed",
                            ties=opts.page_border_ties,
                            balances={},
                            new_id=opts.rebook_under_new_id,
                        )
                    )
                else:
                    bodies.append(
                        transaction_json([txn], state="pending", ties=opts.page_border_ties, balances={})
                    )
        out = []
        for body in bodies:
            created = _instant(body["created_at"])
            out.append((created, body["id"], body))
        return out

    def _booked_today(txn: WorldTransaction) -> WorldTransaction:
        return dataclasses.replace(txn, booking_date=world.today, status="booked")

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return rv_error(status, 3000 if status == 404 else 2101, "No such endpoint.")

    async def certificate(request: Request) -> Response:
        pem = (await request.body()).decode()
        try:
            RSAKey.import_key(pem)
        except (ValueError, JoseError):
            return oauth_error(400, "invalid_request", "The body must be a PEM public key.")
        opts.public_key_pem = pem
        return ExactJSONResponse({"uploaded": True})

    api = API_PREFIX
    routes = [
        Route("/app-confirm", app_confirm, methods=["GET"]),
        Route(f"{api}/auth/token", token, methods=["POST"]),
        Route(f"{api}/accounts", authorised(list_accounts)),
        Route(f"{api}/accounts/{{account_id}}/bank-details", authorised(bank_details)),
        Route(f"{api}/transactions", authorised(transactions)),
        Route("/_sandbox/revolut/certificate", certificate, methods=["POST"]),
        *admin_routes(state),
    ]
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


def _assertion_problem(assertion: str, opts: RevolutOptions, client_id: str) -> str | None:
    """Why a client assertion is refused, or None: RS256 signature by the uploaded key, iss/sub/aud/exp."""
    if not opts.public_key_pem:
        return "No certificate has been uploaded for this client."
    try:
        token = jwt.decode(assertion, RSAKey.import_key(opts.public_key_pem), algorithms=["RS256"])
    except (JoseError, ValueError):
        return "The client assertion is not a JWT signed with the uploaded key (RS256)."
    claims = token.claims
    if claims.get("sub") != client_id:
        return "The client assertion's sub is not this client_id."
    if claims.get("iss") != opts.issuer:
        return "The client assertion's iss is not the redirect URI's domain."
    if claims.get("aud") != AUDIENCE:
        return f"The client assertion's aud must be {AUDIENCE}."
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= opts.clock():
        return "The client assertion has expired."
    return None


def _instant(text: str) -> dt.datetime:
    """A date (midnight UTC) or a date-time (naive = UTC) as an aware UTC datetime."""
    if "T" not in text and " " not in text:
        return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(0), tzinfo=dt.UTC)
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _micros(moment: dt.datetime) -> int:
    """An aware datetime as whole microseconds since the epoch (exact, unlike a float timestamp)."""
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)
