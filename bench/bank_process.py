"""The simulated bank of bench/extract.py, served from a process of its own.

`bank_process(spec)` starts a child process that builds a benchmark world (bench/bench_world.py)
and a provider's sandbox app (sandbox/) over it, wraps the app in `BenchBank` and serves it with
uvicorn on 127.0.0.1. The bench's client runs in the parent, so the simulator's CPU never holds
the client's GIL; what the two still share is the machine's cores.

`BenchBank` delays every request by the latency before answering it, counts requests and
statuses, logs arrival times (for checking the bank's per-minute limits after a run), and times
the sandbox app itself. It has two modes:

- live: the sandbox app answers (its own serving time is part of the wall time); with recording
  on, every successful response (status, headers, body bytes) is kept under its request's method,
  path and query string;
- replay: the recorded bytes are served after the latency and the sandbox app is not run at all,
  so what is timed is latency and the client. A request seen more than once is answered with its
  recordings in order (the last one repeats); a request never recorded gets a 404.

The bank's per-minute limit (Revolut 60 per business, contract §2; GoCardless 100 per company on
/accounts/{id}/..., contract §8) is enforced where the sandbox app does not do it itself (Revolut
in replay, GoCardless always): a request is counted when it reaches the bank, after the latency,
as sandbox/revolut.py counts, and one over the limit gets the bank's 429 (Revolut's code 3162,
GoCardless's throttling body and HTTP_X_RATELIMIT_* headers) with a 1 s reset, refusals not
counted. So no run can be faster than the bank allows, in either mode.

Control routes under `/_bench/` (no latency, not counted): `reset`, `mode?to=live|record|replay`,
`limits?to=on|off`, `stats`, `stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import socket
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.bench_world import BenchWorld
from sandbox.berlin_group import BerlinGroupSandbox, BerlinGroupSwitches, build_berlin_group_app
from sandbox.gocardless import GoCardlessControls, build_gocardless_app
from sandbox.revolut import RevolutOptions, build_revolut_app, rate_limited
from sandbox.state import SandboxState
from sandbox.truelayer import build_truelayer_app

CONTROL_PREFIX = "/_bench/"
NO_DAILY_QUOTA = 1_000_000
REVOLUT_PER_MINUTE = 60  # per business, token and data calls (contract §2)
GOCARDLESS_PER_MINUTE = 100  # per company on /accounts/{id}/... (contract §8)
_STARTUP_TIMEOUT_S = 600.0  # building 100,000 rows and the app takes a few seconds on a busy machine

# (method, path, query string) -> responses in the order they were served
RequestKey = tuple[str, str, str]
Recorded = tuple[int, list[tuple[bytes, bytes]], bytes]


@dataclass(frozen=True)
class BankSpec:
    """Everything the child process needs to build the same bank the parent measures against."""

    provider: str
    accounts: int
    transactions: int
    first_day: date
    last_day: date
    today: date
    latency: float
    client_id: str
    client_secret: str
    revolut_public_pem: str


@dataclass(frozen=True)
class PerMinuteLimit:
    """A bank's limit on the requests whose path starts with `prefix`, in any 60 seconds."""

    prefix: str
    per_minute: int
    refusal: Callable[[], Response]  # the bank's own 429
    by_sandbox_when_live: bool  # the sandbox app enforces it itself in live mode


class BenchBank:
    """ASGI wrapper around one sandbox app: latency, counting, arrival log, per-minute limit,
    record and replay."""

    def __init__(
        self,
        app: ASGIApp,
        latency: float,
        *,
        limit: PerMinuteLimit | None = None,
        revolut: RevolutOptions | None = None,
        facts: dict[str, Any] | None = None,
    ) -> None:
        self.app, self.latency, self.limit, self.revolut = app, latency, limit, revolut
        self.facts = facts or {}  # about the world, for the parent's verification
        self.server: uvicorn.Server | None = None
        self.mode = "live"
        self.limits_on = False
        self.recorded: dict[RequestKey, list[Recorded]] = defaultdict(list)
        self._replay: dict[RequestKey, deque[Recorded]] = {}
        self._counted: deque[float] = deque()
        self.reset()

    def reset(self) -> None:
        """Zero the counters; the per-minute count starts afresh (each run has a minute of its own)."""
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.app_seconds = 0.0
        self.arrivals: list[tuple[float, str, int]] = []  # (reached the bank, path, status)
        self.cpu_at_reset = time.process_time()
        self._counted.clear()
        if self.revolut is not None:
            self.revolut.forget_calls()

    def set_limits(self, on: bool) -> None:
        self.limits_on = on
        if self.revolut is not None and self.limit is not None:
            self.revolut.rate_limit_per_minute = self.limit.per_minute if on else None

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "app_seconds": self.app_seconds,
            "cpu_seconds": time.process_time() - self.cpu_at_reset,
            "arrivals": self.arrivals,
            "recorded_requests": sum(len(answers) for answers in self.recorded.values()),
            **self.facts,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(CONTROL_PREFIX):
            await self._control(scope, send)
            return
        self.requests += 1
        await asyncio.sleep(self.latency)
        reached = time.monotonic()
        key: RequestKey = (scope["method"], path, scope["query_string"].decode("latin-1"))
        if not self._take(path, reached):
            assert self.limit is not None
            status = await self._answer_with(self.limit.refusal(), scope, receive, send)
        elif self.mode == "replay":
            status = await self._answer_recorded(key, send)
        else:
            status = await self._answer_live(key, scope, receive, send)
        self.statuses[status] += 1
        self.arrivals.append((reached, path, status))

    def _take(self, path: str, now: float) -> bool:
        """Count a request against the bank's per-minute limit where the bench enforces it;
        False when it is over (a refused request is not counted)."""
        limit = self.limit
        if limit is None or not self.limits_on or not path.startswith(limit.prefix):
            return True
        if self.mode != "replay" and limit.by_sandbox_when_live:
            return True
        while self._counted and self._counted[0] <= now - 60:
            self._counted.popleft()
        if len(self._counted) >= limit.per_minute:
            return False
        self._counted.append(now)
        return True

    async def _answer_with(self, response: Response, scope: Scope, receive: Receive, send: Send) -> int:
        await response(scope, receive, send)
        return response.status_code

    async def _answer_live(self, key: RequestKey, scope: Scope, receive: Receive, send: Send) -> int:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def observing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        began = time.perf_counter()
        try:
            await self.app(scope, receive, observing_send)
        finally:
            self.app_seconds += time.perf_counter() - began
        status = int(start.get("status", 0))
        # Only answers that carry data: a refusal (429, 401) is the bank's reaction to that run,
        # not something to serve again.
        if self.mode == "record" and 0 < status < 400:
            headers = [(bytes(name), bytes(value)) for name, value in start.get("headers", [])]
            self.recorded[key].append((status, headers, b"".join(chunks)))
        return status

    async def _answer_recorded(self, key: RequestKey, send: Send) -> int:
        answers = self._replay.get(key)
        if answers:
            status, headers, body = answers.popleft() if len(answers) > 1 else answers[0]
        else:
            status, headers, body = 404, [(b"content-type", b"text/plain")], b"not recorded"
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return status

    async def _control(self, scope: Scope, send: Send) -> None:
        action = scope["path"][len(CONTROL_PREFIX) :]
        query = {name: values[0] for name, values in parse_qs(scope["query_string"].decode()).items()}
        body: Any = {"ok": True}
        if action == "reset":
            self.reset()
        elif action == "mode" and query.get("to") in ("live", "record", "replay"):
            self.mode = query["to"]
            if self.mode == "record":
                self.recorded.clear()
            elif self.mode == "replay":
                self._replay = {key: deque(answers) for key, answers in self.recorded.items()}
        elif action == "stats":
            body = self.stats()
        elif action == "limits" and query.get("to") in ("on", "off"):
            self.set_limits(query["to"] == "on")
        elif action == "stop" and self.server is not None:
            self.server.should_exit = True
        else:
            body = {"ok": False, "error": f"unknown control {action!r} {query}"}
        payload = json.dumps(body).encode()
        status = 200 if body.get("ok", True) else 400
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def build_app(spec: BankSpec, world: BenchWorld) -> BenchBank:
    """The provider's sandbox app over the world, wrapped: the bank's page size and per-minute
    limits are its own, only the per-day call quotas are lifted (a benchmark reads 50 accounts at
    once). Limits start off: the consent flow is no part of a run."""
    state = SandboxState(client_id=spec.client_id, client_secret=spec.client_secret)
    facts = {"expected_booked": world.expected_booked()[0]}
    if spec.provider == "truelayer":
        app = build_truelayer_app(world, state)  # type: ignore[arg-type]
        return BenchBank(app, spec.latency, facts=facts)
    if spec.provider == "berlin_group":
        switches = BerlinGroupSwitches(max_frequency_per_day=NO_DAILY_QUOTA)
        app = build_berlin_group_app(world, state, BerlinGroupSandbox(switches))  # type: ignore[arg-type]
        return BenchBank(app, spec.latency, facts=facts)
    if spec.provider == "revolut":
        options = RevolutOptions(
            public_key_pem=spec.revolut_public_pem, rate_limit_per_minute=None, retry_after_seconds=1
        )
        app = build_revolut_app(world, state, options)  # type: ignore[arg-type]
        limit = PerMinuteLimit("/api/1.0/", REVOLUT_PER_MINUTE, lambda: rate_limited(1), True)
        return BenchBank(app, spec.latency, limit=limit, revolut=options, facts=facts)
    controls = GoCardlessControls(calls_per_day=NO_DAILY_QUOTA)
    app = build_gocardless_app(world, state, controls)  # type: ignore[arg-type]
    limit = PerMinuteLimit("/api/v2/accounts/", GOCARDLESS_PER_MINUTE, _gocardless_throttled, False)
    return BenchBank(app, spec.latency, limit=limit, facts=facts)


def _gocardless_throttled() -> Response:
    """GoCardless's answer over its per-minute platform limit (contract §8: the reset in seconds in
    underscore-spelled headers and in the detail text)."""
    body = {
        "summary": "Rate limit exceeded",
        "detail": "Request was throttled. Expected available in 1 seconds.",
        "status_code": 429,
    }
    headers = {
        "HTTP_X_RATELIMIT_LIMIT": str(GOCARDLESS_PER_MINUTE),
        "HTTP_X_RATELIMIT_REMAINING": "0",
        "HTTP_X_RATELIMIT_RESET": "1",
    }
    return JSONResponse(body, status_code=429, headers=headers)


def _serve(spec: BankSpec, conn: Connection) -> None:
    """The child process: build the world and the bank, listen, tell the parent the port, serve."""
    world = BenchWorld(
        spec.provider, spec.accounts, spec.transactions, spec.first_day, spec.last_day, today=spec.today
    )
    bank = build_app(spec, world)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)  # connections queue until uvicorn accepts them
    config = uvicorn.Config(bank, log_level="warning", lifespan="off", access_log=False)
    bank.server = uvicorn.Server(config)
    conn.send(sock.getsockname()[1])
    conn.close()
    bank.server.run(sockets=[sock])


class BankControl:
    """The parent's handle on the bank process: its URL and its control routes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url + CONTROL_PREFIX.rstrip("/"), timeout=60)

    def call(self, action: str, **params: str) -> dict[str, Any]:
        method = "GET" if action == "stats" else "POST"
        response = self._http.request(method, f"/{action}", params=params)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self._http.close()


@contextlib.contextmanager
def bank_process(spec: BankSpec) -> Iterator[BankControl]:
    """Run the bank in a child process (spawned: a clean interpreter, no inherited threads) for
    the duration of the block; stop it through its control route, or terminate it if it hangs."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_serve, args=(spec, sender), name=f"bench-bank-{spec.provider}")
    process.start()
    sender.close()
    control: BankControl | None = None
    try:
        if not receiver.poll(_STARTUP_TIMEOUT_S):
            raise RuntimeError(f"the {spec.provider} bank process did not start")
        try:
            port = receiver.recv()
        except EOFError:
            raise RuntimeError(f"the {spec.provider} bank process died while starting") from None
        control = BankControl(f"http://127.0.0.1:{port}")
        yield control
    finally:
        if control is not None:
            with contextlib.suppress(httpx.HTTPError):
                control.call("stop")
            control.close()
        process.join(timeout=15)
        if process.is_alive():  # pragma: no cover - uvicorn ignored should_exit
            process.terminate()
            process.join(timeout=5)
        receiver.close()
