"""Benchmark: each provider client's `extract_window()` against the floor its bank's API sets.

    python -m bench.extract [--accounts N] [--transactions M] [--days D] [--latency S]
                            [--providers truelayer,berlin_group,revolut,gocardless]
                            [--concurrency 4 | 1,2,4,8] [--modes live,replay] [--json]

Per provider: a sandbox app (sandbox/) over a benchmark world (bench/bench_world.py) of N accounts
x M booked transactions spread over the last D days, served from a separate process
(bench/bank_process.py) on 127.0.0.1 with every request delayed by --latency seconds. The client
connects through the bank's real consent flow (a scripted user approves at once), then
`extract_window()` is timed in this process: the client side only, nothing is landed in Postgres.
The bank's own page size and rate limits are kept (Berlin Group 50 rows a page, Revolut 1,000 rows
a page and 60 requests a minute, GoCardless 100 a minute on account endpoints); only the per-day
call quotas (Berlin Group frequencyPerDay, GoCardless 4 calls a day) are lifted. The clients are
configured as the resources configure them: `--concurrency` accounts at once (the resources'
`max_concurrent_accounts`, default 4) and their per-minute RateLimiters. The bank enforces its
per-minute limit in both modes (a 429 with a 1 s reset, as the bank words it), so a request the
client sends too early costs it what it would cost against the real bank.

Two modes, each timed (default both, live first):
- live: the sandbox app answers every request; its own serving time is part of the wall time
  (reported as "sandbox s"). The responses are recorded.
- replay: the recorded response bytes are served after the same latency, without running the
  sandbox app: what is timed is the latency, the bank's limits and the client. (Without a live
  run first, an untimed pass with the limits off records them.)

The floor is what the bank's API allows at best, max of:
- latency: requests needed (from the bank's page size) x latency / allowed concurrency, where the
  allowed concurrency is the client's account concurrency (every limit TrueLayer, Berlin Group and
  GoCardless state is per account) and 1 for Revolut (its pages chain: each `to` is the previous
  page's last created_at);
- rate limit: with a sliding window of N per minute, request i (from 0) cannot go before
  floor(i / N) minutes, so R requests take at least floor((R - 1) / N) x 60 s + one latency
  (Revolut: every request, 60/min per business; GoCardless: the /accounts/{id}/ requests,
  100/min per company).
Wall / floor is the ratio; the target is 1.5x.

This is a benchmark, not a test: it reports times and never asserts on them. It exits non-zero
only when a run failed, did not return exactly N x M distinct booked records, quarantined any, or
had more requests accepted in some minute than the bank allows (a check on the enforcement), so a
broken or over-fast extract cannot pass for a fast one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.bank_process import (
    GOCARDLESS_PER_MINUTE,
    NO_DAILY_QUOTA,
    REVOLUT_PER_MINUTE,
    BankControl,
    BankSpec,
    bank_process,
)
from resources.extract import Extract
from resources.http import RetryPolicy
from resources.providers import berlin_group, gocardless, revolut, truelayer
from resources.providers.gocardless_resource import ACCOUNT_PATHS
from resources.rate_limit import RateLimiter
from sandbox.berlin_group import BerlinGroupSwitches

PROVIDERS = ("truelayer", "berlin_group", "revolut", "gocardless")
MODES = ("live", "replay")
TARGET_RATIO = 1.5
LATENCY_S = 0.05
DEFAULT_CONCURRENCY = 4  # the resources' max_concurrent_accounts
BG_PAGE_SIZE = BerlinGroupSwitches().page_size  # the bank's, kept
REVOLUT_PAGE = revolut.MAX_PAGE
# Which requests each per-minute limit counts (path prefixes) and how many it allows.
RATE_LIMITS: dict[str, tuple[str, int]] = {
    "revolut": ("/api/1.0/", REVOLUT_PER_MINUTE),
    "gocardless": ("/api/v2/accounts/", GOCARDLESS_PER_MINUTE),
}
CLIENT_ID, CLIENT_SECRET = "bench-extract", "bench-secret"
# Never contacted: the scripted user stops at the bank's redirect and reads the code off it.
REDIRECT_URI = "http://127.0.0.1:9/callback"
BOOKED_TABLES = {
    "truelayer": "truelayer_transactions",
    "berlin_group": "berlin_group_transactions",
    "revolut": "revolut_transactions",
    "gocardless": "gocardless_transactions",
}


# -- the floor ---------------------------------------------------------------------------------------


def rate_floor(requests: int, per_minute: int, latency: float) -> float:
    """Least time for `requests` under a sliding window of `per_minute`: the first per_minute go at
    once, each later one a minute after the one per_minute before it, and the last takes latency."""
    return (requests - 1) // per_minute * 60.0 + latency if requests else 0.0


@dataclass(frozen=True)
class Floor:
    requests: int  # needed, from the bank's page size
    concurrency: int  # allowed: requests in flight at once
    latency_s: float  # requests x latency / concurrency
    rate_s: float = 0.0  # under the bank's per-minute limit (0: none applies)
    rate_basis: str = ""

    @property
    def seconds(self) -> float:
        return max(self.latency_s, self.rate_s)

    @property
    def basis(self) -> str:
        if self.rate_s > self.latency_s:
            return self.rate_basis
        return f"latency: {self.requests:,} x latency / {self.concurrency}"


def floor_for(provider: str, accounts: int, transactions: int, latency: float, concurrency: int) -> Floor:
    """The floor the bank's page size and limits set for one extract."""
    if provider == "truelayer":  # accounts + cards lists; per account balance, transactions, pending
        return Floor(2 + 3 * accounts, concurrency, (2 + 3 * accounts) * latency / concurrency)
    if provider == "berlin_group":  # accounts; per account balances + booked pages (pending on page 1)
        needed = 1 + accounts * (1 + math.ceil(transactions / BG_PAGE_SIZE))
        return Floor(needed, concurrency, needed * latency / concurrency)
    if provider == "revolut":  # accounts; bank details per account; booked pages over all; pending
        needed = 1 + accounts + math.ceil(accounts * transactions / REVOLUT_PAGE) + 1
        return Floor(
            needed,
            1,
            needed * latency,
            rate_floor(needed, REVOLUT_PER_MINUTE, latency),
            f"rate: {needed} requests at {REVOLUT_PER_MINUTE}/min",
        )
    # institution once; per account details, metadata, balances, transactions (one call)
    on_accounts = 4 * accounts
    return Floor(
        1 + on_accounts,
        concurrency,
        (1 + on_accounts) * latency / concurrency,
        rate_floor(on_accounts, GOCARDLESS_PER_MINUTE, latency),
        f"rate: {on_accounts} account requests at {GOCARDLESS_PER_MINUTE}/min",
    )


def max_in_window(times: Sequence[float], window: float = 60.0) -> int:
    """Most requests that arrived within any `window` seconds (t - window, t]: what a bank's
    sliding-window limiter would have counted at its busiest."""
    ordered, most, first = sorted(times), 0, 0
    for last, moment in enumerate(ordered):
        while ordered[first] <= moment - window:
            first += 1
        most = max(most, last - first + 1)
    return most


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


# -- per provider: consent, then runs -----------------------------------------------------------------

# run(concurrency, paced) -> the extract; paced=False turns the client's per-minute limiter off
Run = Callable[[int, bool], Extract]


@dataclass(frozen=True)
class Window:
    first_day: date
    last_day: date
    fetched_on: date


def connect_truelayer(url: str, window: Window) -> Run:
    auth_url, api_url = truelayer.environment_urls(url)
    config = truelayer.TrueLayerConfig(
        auth_url=auth_url,
        api_url=api_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=REDIRECT_URI,
    )
    auth = truelayer.TrueLayerAuth(config)
    code = query_value(approve(auth.authorization_url(secrets.token_urlsafe(8))), "code")
    tokens = auth.exchange_code(code)

    def run(concurrency: int, paced: bool) -> Extract:
        with truelayer.TrueLayerClient(
            api_url, tokens["access_token"], retry=RetryPolicy(), concurrency=concurrency
        ) as client:
            return truelayer.extract_window(client, window.first_day, window.last_day, window.fetched_on)

    return run


def connect_berlin_group(url: str, window: Window) -> Run:
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

    def run(concurrency: int, paced: bool) -> Extract:
        with berlin_group.BerlinGroupClient(
            url, tokens["access_token"], tokens["consent_id"], retry=RetryPolicy(), concurrency=concurrency
        ) as client:
            return berlin_group.extract_window(client, window.first_day, window.last_day, window.fetched_on)

    return run


def connect_revolut(url: str, window: Window, private_pem: str) -> Run:
    config = revolut.RevolutConfig(
        api_url=f"{url}/api/1.0",
        consent_url=f"{url}/app-confirm",
        client_id=CLIENT_ID,
        private_key_pem=private_pem,
        redirect_uri=REDIRECT_URI,
    )
    auth = revolut.RevolutAuth(config, retry=RetryPolicy())
    code = query_value(approve(revolut.authorization_url(config, secrets.token_urlsafe(8))), "code")
    tokens = auth.exchange_code(code)

    def run(concurrency: int, paced: bool) -> Extract:
        # One limiter for the run's token and data calls, new per run as the resource makes it: a
        # run starts with a minute of its own (the consent was long before).
        limiter = RateLimiter.per_minute(REVOLUT_PER_MINUTE if paced else None)
        run_auth = revolut.RevolutAuth(config, retry=RetryPolicy(), rate_limiter=limiter)
        with revolut.RevolutClient(run_auth, tokens, retry=RetryPolicy()) as client:
            return revolut.extract_window(client, window.first_day, window.last_day, window.fetched_on)

    return run


def connect_gocardless(url: str, window: Window) -> Run:
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

    def run(concurrency: int, paced: bool) -> Extract:
        limiter = RateLimiter.per_minute(GOCARDLESS_PER_MINUTE if paced else None, paths=ACCOUNT_PATHS)
        with gocardless.GoCardlessClient(
            config, tokens, retry=RetryPolicy(), concurrency=concurrency, rate_limiter=limiter
        ) as client:
            return gocardless.extract_window(
                client, account_ids, window.first_day, window.last_day, window.fetched_on
            )

    return run


def connect(provider: str, url: str, window: Window, private_pem: str) -> Run:
    if provider == "truelayer":
        return connect_truelayer(url, window)
    if provider == "berlin_group":
        return connect_berlin_group(url, window)
    if provider == "revolut":
        return connect_revolut(url, window, private_pem)
    return connect_gocardless(url, window)


# -- one timed run ------------------------------------------------------------------------------------


@dataclass
class Result:
    provider: str
    mode: str
    floor: Floor
    expected: int
    requests: int = 0
    wall_s: float = 0.0
    app_s: float = 0.0
    bank_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    max_per_minute: int | None = None  # of the requests the bank's per-minute limit counts
    limit_per_minute: int | None = None
    booked: int = 0
    distinct_keys: int = 0
    quarantined: int = 0
    error: str | None = None

    @property
    def ratio(self) -> float:
        return self.wall_s / self.floor.seconds

    @property
    def within_limit(self) -> bool:
        return self.max_per_minute is None or self.max_per_minute <= (self.limit_per_minute or 0)

    @property
    def verified(self) -> bool:
        counts = self.booked == self.expected == self.distinct_keys and self.quarantined == 0
        return self.error is None and counts and self.within_limit

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "mode": self.mode,
            "concurrency": self.floor.concurrency,
            "requests": self.requests,
            "requests_needed": self.floor.requests,
            "statuses": self.statuses,
            "wall_s": round(self.wall_s, 3),
            "floor_s": round(self.floor.seconds, 3),
            "floor_latency_s": round(self.floor.latency_s, 3),
            "floor_rate_s": round(self.floor.rate_s, 3),
            "floor_basis": self.floor.basis,
            "ratio": round(self.ratio, 3),
            "within_target": self.ratio <= TARGET_RATIO,
            "sandbox_app_s": round(self.app_s, 3),
            "bank_cpu_s": round(self.bank_cpu_s, 3),
            "client_cpu_s": round(self.client_cpu_s, 3),
            "max_per_minute": self.max_per_minute,
            "limit_per_minute": self.limit_per_minute,
            "booked": self.booked,
            "expected": self.expected,
            "quarantined": self.quarantined,
            "error": self.error,
            "verified": self.verified,
        }


def timed_run(bank: BankControl, provider: str, mode: str, run: Run, floor: Floor, *, paced: bool) -> Result:
    """One extract through the bank in `mode` (live, record or replay), timed and verified."""
    bank.call("mode", to=mode)
    bank.call("limits", to="on" if paced else "off")  # the bank's per-minute limits
    bank.call("reset")
    extract: Extract | None = None
    error = None
    cpu, start = time.process_time(), time.perf_counter()
    try:
        extract = run(floor.concurrency, paced)
    except Exception as exc:  # reported and counted as a failed run, never hidden
        error = f"{type(exc).__name__}: {exc}"
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    stats = bank.call("stats")
    result = Result(provider, mode, floor, stats["expected_booked"], error=error)
    result.wall_s, result.client_cpu_s = wall, cpu
    result.requests, result.statuses = stats["requests"], stats["statuses"]
    result.app_s = stats["app_seconds"] if mode != "replay" else 0.0
    result.bank_cpu_s = stats["cpu_seconds"]
    if provider in RATE_LIMITS and paced:
        prefix, limit = RATE_LIMITS[provider]
        # What the bank counted: refused requests (429) do not count against its limit.
        arrivals = [
            moment for moment, path, status in stats["arrivals"] if path.startswith(prefix) and status != 429
        ]
        result.max_per_minute, result.limit_per_minute = max_in_window(arrivals), limit
    if extract is not None:
        records = extract.load(BOOKED_TABLES[provider]).records
        result.booked = len(records)
        result.distinct_keys = len({(r.account_ref, r.record_key) for r in records})
        result.quarantined = len(extract.quarantined)
    return result


def run_provider(
    provider: str, args: argparse.Namespace, concurrencies: Sequence[int], keys: tuple[str, str]
) -> list[Result]:
    """Start the provider's bank, connect, then the timed runs: live at each concurrency (the first
    one recording), then replay at each."""
    fetched_on = datetime.now(UTC).date()
    last_day = fetched_on - timedelta(days=1)
    window = Window(last_day - timedelta(days=args.days - 1), last_day, fetched_on)
    spec = BankSpec(
        provider,
        args.accounts,
        args.transactions,
        window.first_day,
        window.last_day,
        fetched_on,
        args.latency,
        CLIENT_ID,
        CLIENT_SECRET,
        keys[1],
    )
    # Revolut's client has no account concurrency: its pages chain and its limit is per business.
    levels = [1] if provider == "revolut" else list(concurrencies)
    results: list[Result] = []
    with bank_process(spec) as bank:
        run = connect(provider, bank.url, window, keys[0])
        recorded = False
        for mode in args.modes:
            if mode == "replay" and not recorded:
                floor = floor_for(provider, args.accounts, args.transactions, args.latency, max(levels))
                report(timed_run(bank, provider, "record", run, floor, paced=False))
                recorded = True
            for level in levels:
                floor = floor_for(provider, args.accounts, args.transactions, args.latency, level)
                live_mode = "live" if recorded else "record"
                result = timed_run(
                    bank, provider, live_mode if mode == "live" else "replay", run, floor, paced=True
                )
                result.mode = mode
                recorded = True
                report(result)
                results.append(result)
    return results


# -- output -------------------------------------------------------------------------------------------


def report(r: Result) -> None:
    statuses = ", ".join(f"{status} x{count}" for status, count in r.statuses.items())
    if r.mode == "record":  # untimed, limits off: only what it fetched matters
        print(
            f"  record (untimed, limits off): requests {r.requests:,} ({statuses}); booked {r.booked:,} "
            f"(expected {r.expected:,}){'' if r.error is None else '; ERROR ' + r.error} "
            f"{'OK' if r.verified else 'MISMATCH'}",
            flush=True,
        )
        return
    per_minute = (
        f"; at most {r.max_per_minute} of the limited requests in any 60 s (limit {r.limit_per_minute})"
        if r.max_per_minute is not None
        else ""
    )
    print(
        f"  {r.mode:<6} concurrency {r.floor.concurrency}: requests {r.requests:,} "
        f"(needed {r.floor.requests:,}; {statuses}); wall {r.wall_s:.2f} s, floor {r.floor.seconds:.2f} s "
        f"({r.floor.basis}), ratio {r.ratio:.2f}x; sandbox app {r.app_s:.2f} s, bank CPU "
        f"{r.bank_cpu_s:.2f} s, client CPU {r.client_cpu_s:.2f} s{per_minute}",
        flush=True,
    )
    verdict = "OK" if r.verified else "MISMATCH"
    print(
        f"  {'':<6} verify: booked {r.booked:,} (distinct {r.distinct_keys:,}, expected {r.expected:,}, "
        f"quarantined {r.quarantined}){'' if r.error is None else '; ERROR ' + r.error} {verdict}",
        flush=True,
    )


def print_table(results: Sequence[Result]) -> None:
    print()
    print(
        f"{'provider':<13} {'mode':<6} {'conc':>4} {'requests':>8} {'needed':>7} {'wall s':>8} "
        f"{'floor s':>8} {'ratio':>6}  {'within':<6} {'sandbox s':>9} {'bank cpu':>8} {'client cpu':>10} "
        f"{'max/60s':>7}  verified"
    )
    for r in results:
        within = "yes" if r.ratio <= TARGET_RATIO else "NO"
        per_minute = "-" if r.max_per_minute is None else f"{r.max_per_minute}/{r.limit_per_minute}"
        print(
            f"{r.provider:<13} {r.mode:<6} {r.floor.concurrency:>4} {r.requests:>8,} {r.floor.requests:>7,} "
            f"{r.wall_s:>8.2f} {r.floor.seconds:>8.2f} {r.ratio:>5.2f}x  {within:<6} {r.app_s:>9.2f} "
            f"{r.bank_cpu_s:>8.2f} {r.client_cpu_s:>10.2f} {per_minute:>7}  {'OK' if r.verified else 'NO'}"
        )
    print(f"target: wall within {TARGET_RATIO}x of the floor")


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


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


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
    parser.add_argument(
        "--concurrency",
        default=str(DEFAULT_CONCURRENCY),
        help="accounts read at once, one run per value, e.g. 1,2,4,8 (default 4; Revolut always 1)",
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help="live and/or replay, in that order (default both)"
    )
    parser.add_argument("--json", action="store_true", help="also print a one-line JSON summary")
    args = parser.parse_args(argv)
    providers = _csv(args.providers)
    if unknown := sorted(set(providers) - set(PROVIDERS)):
        parser.error(f"unknown provider(s): {', '.join(unknown)}")
    asked = set(_csv(args.modes))
    if not asked or asked - set(MODES):
        parser.error("--modes takes live and/or replay")
    args.modes = [mode for mode in MODES if mode in asked]
    try:
        concurrencies = [int(level) for level in _csv(args.concurrency)]
    except ValueError:
        parser.error("--concurrency takes positive integers, e.g. 1,2,4,8")
    if not concurrencies or min(concurrencies) < 1:
        parser.error("--concurrency takes positive integers, e.g. 1,2,4,8")
    if args.accounts < 1 or args.transactions < 1 or not 1 <= args.days <= 90 or args.latency <= 0:
        parser.error("--accounts, --transactions and --latency must be positive, --days 1..90")

    keys = revolut_keys()
    load_before = os.getloadavg()
    print(
        f"{args.accounts} accounts x {args.transactions:,} booked rows per provider over {args.days} days, "
        f"{args.latency * 1000:.0f} ms latency per request, account concurrency "
        f"{', '.join(map(str, concurrencies))}, modes {', '.join(args.modes)}; {os.cpu_count()} CPUs, "
        f"load average {load_before[0]:.2f}",
        flush=True,
    )
    results: list[Result] = []
    for provider in providers:
        print(f"{provider}:", flush=True)
        results += run_provider(provider, args, concurrencies, keys)
    print_table(results)
    ok = all(r.verified for r in results)
    print(f"verification: {'OK' if ok else 'MISMATCH'}")
    if args.json:
        summary = {
            "accounts": args.accounts,
            "transactions_per_account": args.transactions,
            "days": args.days,
            "latency_s": args.latency,
            "concurrency": concurrencies,
            "modes": args.modes,
            "target_ratio": TARGET_RATIO,
            "cpus": os.cpu_count(),
            "load_average": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            "runs": [r.as_json() for r in results],
            "verified": ok,
        }
        print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
