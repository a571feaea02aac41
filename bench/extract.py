"""Benchmark: each provider client's `extract_window()` against the floor its bank's API sets.

    python -m bench.extract [--accounts N] [--transactions M] [--days D] [--latency S]
                            [--providers truelayer,berlin_group,revolut,gocardless] [--json]

Per provider: a sandbox app (sandbox/) over a benchmark world (bench/bench_world.py) of N accounts
x M booked transactions spread over the last D days, every request delayed by --latency seconds
(an ASGI middleware in front of the app), served on 127.0.0.1. The client connects through the
bank's real consent flow (a scripted user approves at once), then `extract_window()` is timed:
the client side only, nothing is landed in Postgres. The bank's own page size and rate limit are
kept (Berlin Group 50 rows a page, Revolut 1,000 rows a page and 60 requests a minute); only the
per-day call quotas (Berlin Group frequencyPerDay, GoCardless 4 calls a day) are lifted.

The floor is what the bank's API allows at best: requests needed (from its page size) x latency /
allowed concurrency (1: the clients call sequentially), and for Revolut at least one request per
second (60/min). Wall / floor is the ratio; the target is 1.5x.

This is a benchmark, not a test: it reports times and never asserts on them. It exits non-zero
only when an extract did not return exactly N x M distinct booked records (or quarantined any),
so a broken extract cannot pass for a fast one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.types import ASGIApp, Receive, Scope, Send

from bench.bench_world import BenchWorld
from resources.extract import Extract
from resources.http import RetryPolicy
from resources.providers import berlin_group, gocardless, revolut, truelayer
from resources.rate_limit import RateLimiter
from sandbox.berlin_group import BerlinGroupSandbox, BerlinGroupSwitches, build_berlin_group_app
from sandbox.gocardless import GoCardlessControls, build_gocardless_app
from sandbox.revolut import RevolutOptions, build_revolut_app
from sandbox.server import serve
from sandbox.state import SandboxState
from sandbox.truelayer import build_truelayer_app

PROVIDERS = ("truelayer", "berlin_group", "revolut", "gocardless")
TARGET_RATIO = 1.5
LATENCY_S = 0.05
CONCURRENCY = 1  # every provider client reads one request at a time
BG_PAGE_SIZE = BerlinGroupSwitches().page_size  # the bank's, kept
REVOLUT_PAGE = revolut.MAX_PAGE
REVOLUT_PER_MINUTE = 60
NO_DAILY_QUOTA = 1_000_000
CLIENT_ID, CLIENT_SECRET = "bench-extract", "bench-secret"
# Never contacted: the scripted user stops at the bank's redirect and reads the code off it.
REDIRECT_URI = "http://127.0.0.1:9/callback"
BOOKED_TABLES = {
    "truelayer": "truelayer_transactions",
    "berlin_group": "berlin_group_transactions",
    "revolut": "revolut_transactions",
    "gocardless": "gocardless_transactions",
}


class LatencyMiddleware:
    """Delays every HTTP request by `latency` seconds before the app sees it; counts requests,
    response statuses and the time the app itself took (the simulated bank's own work)."""

    def __init__(self, app: ASGIApp, latency: float) -> None:
        self.app = app
        self.latency = latency
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.app_seconds = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests += 1
        await asyncio.sleep(self.latency)

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.app_seconds += time.perf_counter() - start


@dataclass
class Result:
    provider: str
    requests_needed: int
    floor_s: float
    floor_basis: str
    requests: int = 0
    wall_s: float = 0.0
    app_s: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    booked: int = 0
    distinct_keys: int = 0
    quarantined: int = 0
    expected: int = 0

    @property
    def ratio(self) -> float:
        return self.wall_s / self.floor_s

    @property
    def ratio_without_sandbox(self) -> float | None:
        """Wall minus the simulated bank's own work (building the JSON) over the floor: what latency
        and the client add, as a real bank's serving time is no part of the floor either. None under
        a rate-limit floor: there the pacer's waits would have absorbed the bank's work."""
        if self.floor_basis.startswith("rate limit"):
            return None
        return (self.wall_s - self.app_s) / self.floor_s

    @property
    def verified(self) -> bool:
        return self.booked == self.expected == self.distinct_keys and self.quarantined == 0


def floor_for(provider: str, accounts: int, transactions: int, latency: float) -> tuple[int, float, str]:
    """(requests needed, floor seconds, how the floor is set) from the bank's page size and limits."""
    if provider == "truelayer":  # accounts + cards lists; per account balance, transactions, pending
        needed = 2 + 3 * accounts
    elif provider == "berlin_group":  # accounts; per account balances + booked pages (pending on page 1)
        needed = 1 + accounts * (1 + math.ceil(transactions / BG_PAGE_SIZE))
    elif provider == "revolut":  # accounts; bank details per account; booked pages over all; pending
        needed = 1 + accounts + math.ceil(accounts * transactions / REVOLUT_PAGE) + 1
    else:  # institution once; per account details, metadata, balances, transactions (one call)
        needed = 1 + 4 * accounts
    by_latency = needed * latency / CONCURRENCY
    if provider == "revolut":
        by_rate = needed * 60 / REVOLUT_PER_MINUTE
        if by_rate > by_latency:
            return needed, by_rate, f"rate limit {REVOLUT_PER_MINUTE}/min"
    return needed, by_latency, f"latency x requests / {CONCURRENCY}"


# -- the scripted user: follows the bank's consent pages to the redirect and reads it -----------------


def approve(url: str) -> str:
    """Open a consent link as a user who approves at once; the URL the bank sends them back to."""
    with httpx.Client(timeout=30) as client:
        for _ in range(10):
            response = client.get(url)
            location = response.headers.get("location")
            if not response.is_redirect or not location:
                raise SystemExit(f"consent page {url} did not redirect ({response.status_code})")
            url = str(response.url.join(location))
            if url.startswith(REDIRECT_URI):
                return url
    raise SystemExit("consent flow redirected too many times")


def query_value(url: str, name: str) -> str:
    values = parse_qs(urlsplit(url).query).get(name)
    if not values:
        raise SystemExit(f"the redirect {url} carries no {name!r}")
    return values[0]


# -- per provider: app, consent, extract -------------------------------------------------------------

Extractor = Callable[[], Extract]


def truelayer_extract(url: str, first_day: date, last_day: date, fetched_on: date) -> Extractor:
    auth_url, api_url = truelayer.environment_urls(url)
    config = truelayer.TrueLayerConfig(
        auth_url=auth_url,
        api_url=api_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT_URI,
    )
    auth = truelayer.TrueLayerAuth(config)
    state = secrets.token_urlsafe(8)
    code = query_value(approve(auth.authorization_url(state)), "code")
    tokens = auth.exchange_code(code)

    def run() -> Extract:
        with truelayer.TrueLayerClient(api_url, tokens["access_token"], retry=RetryPolicy()) as client:
            return truelayer.extract_window(client, first_day, last_day, fetched_on)

    return run


def berlin_group_extract(url: str, first_day: date, last_day: date, fetched_on: date) -> Extractor:
    config = berlin_group.BerlinGroupConfig(
        base_url=url,
        token_url=f"{url}/oauth/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT_URI,
        frequency_per_day=NO_DAILY_QUOTA,
    )
    auth = berlin_group.BerlinGroupAuth(config)
    pending = berlin_group.start_consent(auth)
    code = query_value(approve(pending.url), "code")
    tokens = berlin_group.finish_consent(code, pending, auth=auth)

    def run() -> Extract:
        with berlin_group.BerlinGroupClient(
            url, tokens["access_token"], tokens["consent_id"], retry=RetryPolicy()
        ) as client:
            return berlin_group.extract_window(client, first_day, last_day, fetched_on)

    return run


def revolut_extract(
    url: str, private_pem: str, first_day: date, last_day: date, fetched_on: date
) -> Extractor:
    config = revolut.RevolutConfig(
        api_url=f"{url}/api/1.0",
        consent_url=f"{url}/app-confirm",
        client_id=CLIENT_ID,
        private_key_pem=private_pem,
        redirect_uri=REDIRECT_URI,
    )
    # One limiter for the token call and the reads: both count against the 60/min limit.
    auth = revolut.RevolutAuth(config, retry=RetryPolicy(), rate_limiter=RateLimiter(REVOLUT_PER_MINUTE))
    code = query_value(approve(revolut.authorization_url(config, secrets.token_urlsafe(8))), "code")
    tokens = auth.exchange_code(code)

    def run() -> Extract:
        with revolut.RevolutClient(auth, tokens, retry=RetryPolicy()) as client:
            return revolut.extract_window(client, first_day, last_day, fetched_on)

    return run


def gocardless_extract(url: str, first_day: date, last_day: date, fetched_on: date) -> Extractor:
    config = gocardless.GoCardlessConfig(
        base_url=f"{url}/api/v2", secret_id=CLIENT_ID, secret_key=CLIENT_SECRET
    )
    with gocardless.GoCardlessClient(config, retry=RetryPolicy()) as client:
        institution_id = client.institutions("NL")[0]["id"]
        agreement = client.create_agreement(institution_id, 90)
        requisition = client.create_requisition(
            institution_id, REDIRECT_URI, secrets.token_hex(8), str(agreement["id"])
        )
        approve(requisition["link"])
        account_ids = client.linked_accounts(str(requisition["id"]))
        tokens = client.tokens

    def run() -> Extract:
        with gocardless.GoCardlessClient(config, tokens, retry=RetryPolicy()) as client:
            return gocardless.extract_window(client, account_ids, first_day, last_day, fetched_on)

    return run


def build_app(provider: str, world: BenchWorld, public_pem: str) -> ASGIApp:
    state = SandboxState(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    if provider == "truelayer":
        return build_truelayer_app(world, state)  # type: ignore[arg-type]
    if provider == "berlin_group":
        switches = BerlinGroupSwitches(max_frequency_per_day=NO_DAILY_QUOTA)
        return build_berlin_group_app(world, state, BerlinGroupSandbox(switches))  # type: ignore[arg-type]
    if provider == "revolut":
        options = RevolutOptions(public_key_pem=public_pem, rate_limit_per_minute=REVOLUT_PER_MINUTE)
        return build_revolut_app(world, state, options)  # type: ignore[arg-type]
    controls = GoCardlessControls(calls_per_day=NO_DAILY_QUOTA)
    return build_gocardless_app(world, state, controls)  # type: ignore[arg-type]


def run_provider(
    provider: str, accounts: int, transactions: int, days: int, latency: float, keys: tuple[str, str]
) -> Result:
    fetched_on = datetime.now(UTC).date()
    last_day = fetched_on - timedelta(days=1)
    first_day = last_day - timedelta(days=days - 1)
    needed, floor_s, basis = floor_for(provider, accounts, transactions, latency)
    result = Result(provider, needed, floor_s, basis)
    world = BenchWorld(provider, accounts, transactions, first_day, last_day, today=fetched_on)
    result.expected = world.expected_booked()[0]
    app = LatencyMiddleware(build_app(provider, world, keys[1]), latency)
    with serve(app) as url:
        if provider == "truelayer":
            extractor = truelayer_extract(url, first_day, last_day, fetched_on)
        elif provider == "berlin_group":
            extractor = berlin_group_extract(url, first_day, last_day, fetched_on)
        elif provider == "revolut":
            extractor = revolut_extract(url, keys[0], first_day, last_day, fetched_on)
        else:
            extractor = gocardless_extract(url, first_day, last_day, fetched_on)
        app.reset()  # the consent flow is not part of the run
        start = time.perf_counter()
        extract = extractor()
        result.wall_s = time.perf_counter() - start
    result.requests, result.app_s, result.statuses = app.requests, app.app_seconds, dict(app.statuses)
    records = extract.load(BOOKED_TABLES[provider]).records
    result.booked = len(records)
    result.distinct_keys = len({(r.account_ref, r.record_key) for r in records})
    result.quarantined = len(extract.quarantined)
    return result


def _times(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def revolut_keys() -> tuple[str, str]:
    """(private PEM for the client, public PEM uploaded to the bank), as a user does in the app."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.extract", description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50, help="accounts per provider (default 50)")
    parser.add_argument(
        "--transactions", type=int, default=2000, help="booked rows per account (default 2,000)"
    )
    parser.add_argument(
        "--days", type=int, default=60, help="window length in days, ending yesterday (default 60)"
    )
    parser.add_argument(
        "--latency", type=float, default=LATENCY_S, help="seconds added to each request (0.05)"
    )
    parser.add_argument(
        "--providers", default=",".join(PROVIDERS), help="comma-separated (default: all four)"
    )
    parser.add_argument("--json", action="store_true", help="also print a one-line JSON summary")
    args = parser.parse_args(argv)
    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    if unknown := sorted(set(providers) - set(PROVIDERS)):
        parser.error(f"unknown provider(s): {', '.join(unknown)}")
    if args.accounts < 1 or args.transactions < 1 or not 1 <= args.days <= 90 or args.latency <= 0:
        parser.error("--accounts, --transactions and --latency must be positive, --days 1..90")

    keys = revolut_keys()
    print(
        f"{args.accounts} accounts x {args.transactions:,} booked rows per provider over {args.days} days, "
        f"{args.latency * 1000:.0f} ms latency per request, concurrency {CONCURRENCY}",
        flush=True,
    )
    results: list[Result] = []
    for provider in providers:
        print(f"{provider}: extracting ...", flush=True)
        result = run_provider(provider, args.accounts, args.transactions, args.days, args.latency, keys)
        results.append(result)
        statuses = ", ".join(f"{status} x{count}" for status, count in sorted(result.statuses.items()))
        print(
            f"  requests {result.requests:,} (needed {result.requests_needed:,}; {statuses}); "
            f"wall {result.wall_s:.2f} s, floor {result.floor_s:.2f} s ({result.floor_basis}), "
            f"ratio {result.ratio:.2f}x; sandbox app time {result.app_s:.2f} s, "
            f"ratio without it {_times(result.ratio_without_sandbox)}",
            flush=True,
        )
        print(
            f"  verify: booked {result.booked:,} (distinct {result.distinct_keys:,}, expected "
            f"{result.expected:,}, quarantined {result.quarantined}) "
            f"{'OK' if result.verified else 'MISMATCH'}",
            flush=True,
        )

    print()
    print(
        f"{'provider':<13} {'requests':>8} {'needed':>7} {'wall s':>8} {'floor s':>8} {'ratio':>6}  "
        f"{'within':<6} {'sandbox s':>9} {'w/o sandbox':>11}"
    )
    for r in results:
        within = "yes" if r.ratio <= TARGET_RATIO else "NO"
        print(
            f"{r.provider:<13} {r.requests:>8,} {r.requests_needed:>7,} {r.wall_s:>8.2f} "
            f"{r.floor_s:>8.2f} {r.ratio:>5.2f}x  {within:<6} {r.app_s:>9.2f} {_times(r.ratio_without_sandbox):>11}"
        )
    print(f"target: wall within {TARGET_RATIO}x of the floor")
    ok = all(r.verified for r in results)
    print(f"verification: {'OK' if ok else 'MISMATCH'}")
    if args.json:
        summary = {
            "accounts": args.accounts,
            "transactions_per_account": args.transactions,
            "days": args.days,
            "latency_s": args.latency,
            "concurrency": CONCURRENCY,
            "target_ratio": TARGET_RATIO,
            "providers": [
                {
                    "provider": r.provider,
                    "requests": r.requests,
                    "requests_needed": r.requests_needed,
                    "statuses": {str(k): v for k, v in sorted(r.statuses.items())},
                    "wall_s": round(r.wall_s, 3),
                    "floor_s": round(r.floor_s, 3),
                    "floor_basis": r.floor_basis,
                    "ratio": round(r.ratio, 3),
                    "within_target": r.ratio <= TARGET_RATIO,
                    "sandbox_app_s": round(r.app_s, 3),
                    "ratio_without_sandbox": (
                        None if r.ratio_without_sandbox is None else round(r.ratio_without_sandbox, 3)
                    ),
                    "booked": r.booked,
                    "expected": r.expected,
                    "verified": r.verified,
                }
                for r in results
            ],
            "verified": ok,
        }
        print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
