"""The one HTTP layer all API connectors share: timeouts, retries with backoff, error mapping.

Provider modules add only what is theirs (auth, paging, record shape). Responses are parsed
with Decimal for every JSON number with a fraction, so money never passes through float.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import simplejson
import tenacity

from resources.errors import (
    AccessTokenRejected,
    AuthorizationRequired,
    ProviderResponseError,
    TransientProviderError,
)
from resources.rate_limit import RateLimiter

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    # A Retry-After longer than this is not slept through inside a run: the run fails and the
    # schedule tries again later.
    retry_after_max: float = 120.0


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON keeping every number exact (Decimal for fractions)."""
    return simplejson.loads(text, use_decimal=True)


def dumps_exact(value: Any) -> str:
    """Serialise JSON writing Decimals back as the exact numbers they were parsed from."""
    return simplejson.dumps(value, use_decimal=True, separators=(",", ":"), ensure_ascii=False)


class ApiClient:
    """A JSON API client for one provider: base URL, auth headers, retries, error mapping.

    `error_mapper(response)` lets a provider turn its own error bodies into ProviderErrors
    (e.g. an expired consent into AuthorizationRequired); it returns None to fall through to
    the generic handling. When it maps a refused token to AccessTokenRejected, `reauthorize()`
    (refresh grant, new client-credentials token: the provider's business) runs once and the
    call is repeated; `headers()` must then carry the new token. `rate_limiter` is waited on
    before every request sent, retries included: the bank counts those too. `secret_params`
    names query parameters whose values must not reach the logs (httpx logs every URL).

    One client may serve several threads (accounts read concurrently).
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Callable[[], Mapping[str, str]] | None = None,
        error_mapper: Callable[[httpx.Response], Exception | None] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        reauthorize: Callable[[], None] | None = None,
        rate_limiter: RateLimiter | None = None,
        secret_params: Collection[str] = (),
    ) -> None:
        if secret_params:
            _REDACTED_QUERY_LOG.add(secret_params)
        self.provider = provider
        self.retry = retry or RetryPolicy()
        self._headers = headers or (lambda: {})
        self._error_mapper = error_mapper
        self._reauthorize = reauthorize
        self._rate_limiter = rate_limiter or RateLimiter(None)
        # Bumped on every re-authorisation: threads refused with the same old token renew it
        # once between them (a second refresh would spend a rotated refresh token).
        self._auth_generation = 0
        self._auth_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.requests_sent = 0
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request_json("GET", path, params=params)

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request (retrying transient failures, re-authorising once on a refused token)
        and return the parsed JSON body."""
        response = self._authorized(method, path, accept_redirect=False, **kwargs)
        try:
            return loads_exact(response.content)
        except ValueError as exc:
            raise ProviderResponseError(
                self.provider, f"{method} {path}: response is not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request like `request_json` and return the response itself, for what is not a
        JSON API: an HTML page carrying a form token, a redirect whose Location carries a token.

        A redirect is an answer here (its Location is the caller's to read) unless the caller
        passes `follow_redirects=True`. Cookies the server sets stay in this client's jar and go
        with its later requests, as a browser's would.
        """
        return self._authorized(method, path, accept_redirect=True, **kwargs)

    def _authorized(self, method: str, path: str, *, accept_redirect: bool, **kwargs: Any) -> httpx.Response:
        generation = self._auth_generation
        try:
            return self._with_retries(method, path, accept_redirect, **kwargs)
        except AccessTokenRejected:
            if self._reauthorize is None:
                raise
            self._renew_authorization(generation)
        try:
            return self._with_retries(method, path, accept_redirect, **kwargs)
        except AccessTokenRejected as exc:
            raise AuthorizationRequired(
                self.provider, f"{method} {path}: a freshly renewed access token was refused too", exc.fix
            ) from None

    def _renew_authorization(self, seen_generation: int) -> None:
        with self._auth_lock:
            if self._auth_generation == seen_generation:
                assert self._reauthorize is not None
                self._reauthorize()
                self._auth_generation += 1

    def _with_retries(self, method: str, path: str, accept_redirect: bool, **kwargs: Any) -> httpx.Response:
        for attempt in tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientProviderError),
            wait=self._wait,
            stop=tenacity.stop_after_attempt(self.retry.max_attempts),
            reraise=True,
        ):
            with attempt:
                return self._send_once(method, path, accept_redirect, **kwargs)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _send_once(self, method: str, path: str, accept_redirect: bool, **kwargs: Any) -> httpx.Response:
        where = f"{method} {path}"
        # Not popped: every retry of the call needs the caller's headers again.
        headers = {**self._headers(), **kwargs.get("headers", {})}
        self._rate_limiter.wait(path)
        with self._count_lock:
            self.requests_sent += 1
        try:
            response = self._http.request(method, path, **{**kwargs, "headers": headers})
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise TransientProviderError(self.provider, f"{where}: {type(exc).__name__}") from None
        if response.is_success or (accept_redirect and response.is_redirect):
            return response
        mapped = self._error_mapper(response) if self._error_mapper else None
        if mapped is not None:
            raise mapped
        detail = f"{where}: HTTP {response.status_code}{_error_code(response)}"
        if response.status_code in RETRYABLE_STATUS:
            raise TransientProviderError(self.provider, detail, retry_after=retry_after_seconds(response))
        raise ProviderResponseError(self.provider, detail)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after <= self.retry.retry_after_max:
            return retry_after
        backoff = min(self.retry.backoff_initial * 2 ** (state.attempt_number - 1), self.retry.backoff_max)
        # Full jitter: parallel partitions that failed together must not retry in lockstep.
        return random.uniform(backoff / 2, backoff)


class _RedactedQueryLog(logging.Filter):
    """Masks the values of secret query parameters in httpx's request log.

    httpx logs each request's URL at INFO; a login name sent as a query parameter (the bank's
    contract, not our choice) would otherwise be in any log kept at that level.
    """

    def __init__(self) -> None:
        super().__init__()
        self._names: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def add(self, names: Collection[str]) -> None:
        with self._lock:
            self._names |= frozenset(names)
            logger = logging.getLogger("httpx")
            if self not in logger.filters:
                logger.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        names = self._names
        if isinstance(record.args, tuple):
            record.args = tuple(
                _redacted_url(arg, names) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


def _redacted_url(url: httpx.URL, names: frozenset[str]) -> httpx.URL:
    for name in names & set(url.params.keys()):
        url = url.copy_set_param(name, "***")
    return url


_REDACTED_QUERY_LOG = _RedactedQueryLog()


def _error_code(response: httpx.Response) -> str:
    """The provider's error code, if the body has one; never the whole body (it may echo secrets)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        code = body.get("error") or body.get("code")
        if isinstance(code, str) and len(code) < 80:
            return f" ({code})"
    return ""


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds the Retry-After header asks for (delta-seconds or an HTTP date); None without one."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
