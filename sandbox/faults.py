"""ASGI middleware shared by the provider apps: request counting, fault injection, correlation headers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.state import FaultMode, SandboxState

CONTROL_PREFIX = "/_sandbox"


class FaultMiddleware:
    """Counts every request outside ``/_sandbox`` and applies the state's active fault to it.

    ``fault_response(mode)`` builds the provider's own error response for server_error, unauthorized and
    rate_limit; malformed_json lets the request run and then truncates its body (always served as 200).
    ``response_headers()`` is added to every response (e.g. the provider's request/correlation ids).
    """

    def __init__(
        self,
        app: ASGIApp,
        state: SandboxState,
        fault_response: Callable[[FaultMode], Response],
        response_headers: Callable[[], dict[str, str]] = dict,
    ) -> None:
        self.app, self.state = app, state
        self.fault_response, self.response_headers = fault_response, response_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.response_headers()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        path: str = scope["path"]
        if path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send_with_headers)
            return
        self.state.record_request(path)
        mode = self.state.take_fault(path)
        if mode is None:
            await self.app(scope, receive, send_with_headers)
        elif mode == "malformed_json":
            await self.app(scope, receive, _truncating(send_with_headers))
        elif mode == "slow":
            # Answers, but only after the client's timeout has (usually) passed.
            await asyncio.sleep(self.state.slow_seconds)
            await self.app(scope, receive, send_with_headers)
        else:
            await self.fault_response(mode)(scope, receive, send_with_headers)


def _truncating(send: Send) -> Send:
    """A send that buffers the response and emits a 200 with only the first half of the body."""
    start: Message = {}
    chunks: list[bytes] = []

    async def truncating_send(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = dict(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        body = body[: max(1, len(body) // 2)]
        start["status"] = 200
        headers = MutableHeaders(scope=start)
        headers["content-length"] = str(len(body))
        await send(start)
        await send({"type": "http.response.body", "body": body})

    return truncating_send


def correlation_headers(*names: str) -> Callable[[], dict[str, str]]:
    """A ``response_headers`` factory giving each named header a fresh UUID per response."""
    return lambda: {name: str(uuid.uuid4()) for name in names}
