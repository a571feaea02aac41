"""Razorpay over real HTTP: payments, refunds, settlements and the combined settlement recon report.

Contract: shared/reference/bank-contracts.md §4. HTTP Basic auth with the key id and secret (the
sandbox's client_id / client_secret). Lists take ``from``/``to`` (creation time, unix seconds, both
inclusive here) and ``count`` (default 10, at most 100) + ``skip``; they are newest first and say
nothing of a total, so a client pages until a page is short. ``/v1/settlements/recon/combined``
takes ``year``, ``month`` and optionally ``day`` and lists the items settled on that IST day (month).

Fault switches: the shared ones on ``SandboxState`` (path prefix ``/v1``), answered in Razorpay's
error shape, plus ``RazorpayOptions``: ``retry_after_seconds`` (a Retry-After on 429s; Razorpay
documents none) and ``amount_multiplier`` (every amount served times this, for exactness tests).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.admin import admin_routes
from sandbox.faults import FaultMiddleware
from sandbox.jsonbody import ExactJSONResponse
from sandbox.razorpay_json import collection, payment_json, recon_items_json, refund_json, settlement_json
from sandbox.razorpay_ledger import ist_day
from sandbox.state import FaultMode, SandboxState
from sandbox.world import World

PROVIDER = "razorpay"
API_PREFIX = "/v1"
MAX_COUNT = 100
DEFAULT_COUNT = 10
# "from must be between 946684800 and 4765046400" (Razorpay's own validation message).
EARLIEST, LATEST = 946684800, 4765046400


@dataclass
class RazorpayOptions:
    """Razorpay-only sandbox switches; plain attributes, set from the test thread."""

    retry_after_seconds: int | None = None
    amount_multiplier: int = 1


class _BadRequest(Exception):
    def __init__(self, description: str, field: str | None = None) -> None:
        super().__init__(description)
        self.description, self.field = description, field


def rzp_error(
    status: int, code: str, description: str, field: str | None = None, headers: dict[str, str] | None = None
) -> ExactJSONResponse:
    """Razorpay's error body: {"error": {code, description, source, step, reason, metadata[, field]}}."""
    error: dict[str, Any] = {
        "code": code,
        "description": description,
        "source": "NA" if status != 400 else "business",
        "step": "NA" if status != 400 else "payment_initiation",
        "reason": "NA" if status != 400 else "input_validation_failed",
        "metadata": {},
    }
    if field:
        error["field"] = field
    return ExactJSONResponse({"error": error}, status_code=status, headers=headers)


def build_razorpay_app(
    world: World, state: SandboxState, options: RazorpayOptions | None = None
) -> Starlette:
    """The Razorpay merchant API of the world's Razorpay merchant."""
    opts = options or RazorpayOptions()
    merchant = world.razorpay

    def fault_response(mode: FaultMode) -> Response:
        if mode == "rate_limit":
            headers = (
                {"Retry-After": str(opts.retry_after_seconds)}
                if opts.retry_after_seconds is not None
                else None
            )
            return rzp_error(429, "BAD_REQUEST_ERROR", "Too many requests", headers=headers)
        if mode == "server_error":
            return rzp_error(500, "SERVER_ERROR", "The server encountered an error. Please try again.")
        return rzp_error(401, "BAD_REQUEST_ERROR", "The api key provided is invalid")

    def authorised(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if not _basic_auth_ok(request.headers.get("authorization", ""), state):
                return rzp_error(401, "BAD_REQUEST_ERROR", "The api key provided is invalid")
            try:
                return await handler(request)
            except _BadRequest as bad:
                return rzp_error(400, "BAD_REQUEST_ERROR", bad.description, bad.field)

        return endpoint

    def page(request: Request, items: list[dict[str, Any]]) -> Response:
        count = _int_param(request, "count", DEFAULT_COUNT)
        skip = _int_param(request, "skip", 0)
        if count < 1:
            raise _BadRequest("The count must be at least 1.", "count")
        if count > MAX_COUNT:
            raise _BadRequest(f"The count may not be greater than {MAX_COUNT}.", "count")
        if skip < 0:
            raise _BadRequest("The skip must be at least 0.", "skip")
        return ExactJSONResponse(collection(items[skip : skip + count]))

    def created_window(request: Request) -> tuple[int, int, dt.date, dt.date]:
        """[from, to] unix seconds (both inclusive) and the IST days they touch, half-open."""
        start = _int_param(request, "from", EARLIEST)
        end = _int_param(request, "to", LATEST)
        for name, value in (("from", start), ("to", end)):
            if not EARLIEST <= value <= LATEST:
                raise _BadRequest(f"{name} must be between {EARLIEST} and {LATEST}", name)
        first = max(ist_day(start), world.history_start)
        last = min(ist_day(end), world.today)
        return start, end, first, last + dt.timedelta(days=1)

    def newest_first(items: list[dict[str, Any]], start: int, end: int) -> list[dict[str, Any]]:
        chosen = [item for item in items if start <= item["created_at"] <= end]
        return sorted(chosen, key=lambda item: (item["created_at"], item["id"]), reverse=True)

    async def payments(request: Request) -> Response:
        start, end, first, last = created_window(request)
        bodies = [
            payment_json(p, merchant.refund(p), opts.amount_multiplier)
            for p in merchant.payments(first, last)
        ]
        return page(request, newest_first(bodies, start, end))

    async def refunds(request: Request) -> Response:
        start, end, first, last = created_window(request)
        bodies = [refund_json(r, opts.amount_multiplier) for r in merchant.refunds(first, last)]
        return page(request, newest_first(bodies, start, end))

    async def settlements(request: Request) -> Response:
        start, end, first, last = created_window(request)
        bodies = [settlement_json(s, opts.amount_multiplier) for s in merchant.settlements(first, last)]
        return page(request, newest_first(bodies, start, end))

    async def recon(request: Request) -> Response:
        first, last = _recon_days(request)
        items = [
            item
            for settlement in merchant.settlements(first, last)
            for item in recon_items_json(settlement, opts.amount_multiplier)
        ]
        return page(request, items)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return rzp_error(
            404 if status == 404 else 400,
            "BAD_REQUEST_ERROR",
            "The requested URL was not found on the server." if status == 404 else "Method not allowed.",
        )

    api = API_PREFIX
    routes = [
        Route(f"{api}/payments", authorised(payments)),
        Route(f"{api}/refunds", authorised(refunds)),
        Route(f"{api}/settlements", authorised(settlements)),
        Route(f"{api}/settlements/recon/combined", authorised(recon)),
        *admin_routes(state),
    ]
    middleware = [Middleware(FaultMiddleware, state=state, fault_response=fault_response)]
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers={404: not_found, 405: not_found}
    )


def _basic_auth_ok(header: str, state: SandboxState) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        key_id, _, key_secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # Both compared every time: which half was wrong must not show in the timing.
    id_ok = secrets.compare_digest(key_id.encode(), state.client_id.encode())
    secret_ok = secrets.compare_digest(key_secret.encode(), state.client_secret.encode())
    return id_ok and secret_ok


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise _BadRequest(f"The {name} must be an integer.", name) from None


def _recon_days(request: Request) -> tuple[dt.date, dt.date]:
    """The IST days [first, last) the recon report covers: one day, or the whole month."""
    if "year" not in request.query_params or "month" not in request.query_params:
        raise _BadRequest("The year and month fields are required.", "year")
    year, month = _int_param(request, "year", 0), _int_param(request, "month", 0)
    day = _int_param(request, "day", 0)
    try:
        if day:
            first = dt.date(year, month, day)
            return first, first + dt.timedelta(days=1)
        first = dt.date(year, month, 1)
    except ValueError:
        raise _BadRequest("The year, month and day must form a valid date.", "day") from None
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first, following
