"""The shared HTTP layer over a real server: re-authorisation once across threads, headers kept
on retries, rate limits, and reading accounts concurrently in order."""

from __future__ import annotations

import threading
import time

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from resources.concurrency import map_in_order
from resources.errors import AccessTokenRejected, AuthorizationRequired
from resources.http import ApiClient, RetryPolicy
from resources.rate_limit import RateLimiter
from sandbox.server import serve

FAST = RetryPolicy(max_attempts=3, backoff_initial=0.01)


class Bank:
    """Accepts only its current token; `fail_next` answers that many requests with a 503."""

    def __init__(self) -> None:
        self.token = "token-1"
        self.fail_next = 0
        self.seen_headers: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def app(self) -> Starlette:
        async def data(request: Request) -> JSONResponse:
            with self._lock:
                self.seen_headers.append(dict(request.headers))
                if self.fail_next > 0:
                    self.fail_next -= 1
                    return JSONResponse({"error": "unavailable"}, status_code=503)
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return JSONResponse({"error": "invalid_token"}, status_code=401)
            return JSONResponse({"path": request.path_params["name"]})

        return Starlette(routes=[Route("/data/{name}", data, methods=["GET", "POST"])])


def _refused(response) -> Exception | None:
    return AccessTokenRejected("testbank", "token refused") if response.status_code == 401 else None


@pytest.fixture
def bank() -> Bank:
    return Bank()


def test_a_refused_token_is_renewed_once_for_all_threads(bank: Bank) -> None:
    current = {"token": "token-1"}
    renewals = []

    def reauthorize() -> None:
        renewals.append(1)
        time.sleep(0.05)  # a token endpoint is slow; the other threads must wait, not refresh too
        current["token"] = bank.token

    with serve(bank.app()) as url:
        client = ApiClient(
            provider="testbank",
            base_url=url,
            headers=lambda: {"Authorization": f"Bearer {current['token']}"},
            error_mapper=_refused,
            retry=FAST,
            reauthorize=reauthorize,
        )
        with client:
            bank.token = "token-2"  # rotated at the bank, e.g. by another process
            results = map_in_order(lambda n: client.get_json(f"/data/{n}"), range(8), max_workers=8)
    assert [result["path"] for result in results] == [str(n) for n in range(8)]
    assert len(renewals) == 1


def test_a_token_refused_after_renewal_asks_for_a_person(bank: Bank) -> None:
    with serve(bank.app()) as url:
        client = ApiClient(
            provider="testbank",
            base_url=url,
            headers=lambda: {"Authorization": "Bearer stale"},
            error_mapper=_refused,
            retry=FAST,
            reauthorize=lambda: None,
        )
        with client, pytest.raises(AuthorizationRequired, match="bankflow connect testbank"):
            client.get_json("/data/x")


def test_retries_send_the_callers_headers_again(bank: Bank) -> None:
    bank.fail_next = 2
    with serve(bank.app()) as url, ApiClient(provider="testbank", base_url=url, retry=FAST) as client:
        client.request_json("POST", "/data/x", headers={"Authorization": "Bearer token-1", "X-Extra": "1"})
    assert len(bank.seen_headers) == 3
    assert all(headers.get("x-extra") == "1" for headers in bank.seen_headers)


def test_rate_limiter_keeps_any_window_under_its_limit() -> None:
    limiter = RateLimiter(3, period_seconds=0.3)
    calls = []
    for _ in range(7):
        before = time.monotonic()
        limiter.wait()
        calls.append((before, time.monotonic()))
    # No four requests inside one 0.3 s window. Each grant lies between its call's before and
    # after, so after(n + 3) - before(n) bounds grant(n + 3) - grant(n) from above: this holds
    # however long the thread waits to run again after a grant (a loaded machine), and fails
    # whenever the limiter lets a fourth request through early.
    assert all(calls[n + 3][1] - calls[n][0] >= 0.3 for n in range(len(calls) - 3))


def test_map_in_order_keeps_order_and_raises_the_first_failure() -> None:
    assert map_in_order(lambda n: n * n, range(10), max_workers=4) == [n * n for n in range(10)]
    started = []

    def work(n: int) -> int:
        started.append(n)
        if n == 1:
            raise ValueError("account 1 failed")
        time.sleep(0.01)
        return n

    with pytest.raises(ValueError, match="account 1 failed"):
        map_in_order(work, range(50), max_workers=2)
    assert len(started) < 50  # what had not started was cancelled


def test_a_token_refused_after_renewal_keeps_the_providers_fix(bank: Bank) -> None:
    def refused(response) -> Exception | None:
        if response.status_code == 401:
            return AccessTokenRejected("testbank", "token refused", fix="Check BANKFLOW_TESTBANK_CLIENT_ID")
        return None

    with serve(bank.app()) as url:
        client = ApiClient(provider="testbank", base_url=url, error_mapper=refused, reauthorize=lambda: None)
        with client, pytest.raises(AuthorizationRequired) as error:
            client.get_json("/data/x")
    assert "refused too" in str(error.value) and "Check BANKFLOW_TESTBANK_CLIENT_ID" in str(error.value)
    assert "bankflow connect" not in str(error.value)


def test_rate_limiter_counts_only_the_paths_it_limits() -> None:
    limiter = RateLimiter(1, period_seconds=60, paths=r"^/accounts/")
    for _ in range(5):
        limiter.wait("/institutions/X/")
    limiter.wait("/accounts/a/details/")
    # Only the account call is in the window (a second one would wait the minute out).
    assert len(limiter._sent) == 1
