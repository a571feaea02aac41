"""The one HTTP layer all API connectors share: timeouts, retries with backoff, error mapping.

Provider modules add only what is theirs (auth, paging, record shape). Responses are parsed
with Decimal for every JSON number with a fraction, so money never passes through float. A list
of records can also be read element by element, each with its exact source text: that text is
what lands in raw (what the bank said, byte for byte), and it saves re-serialising every record.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Collection, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

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


class JsonElement(NamedTuple):
    """One element of a JSON array as the source sent it: its exact text and its parsed value."""

    text: str
    value: Any


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; simplejson (loads_exact) refuses them too.
    raise ValueError(f"{name} is not a JSON number (the response is not valid JSON)")


# The stdlib decoder's C scanner parses one value at a given offset and says where it ended,
# which is what reading an array element by element needs (simplejson's is no faster).
_EXACT_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)
_WHITESPACE = json.decoder.WHITESPACE


def iter_array_elements(content: str | bytes, key: str) -> Iterator[JsonElement]:
    """The elements of the array under `key` in a JSON object, each with its exact source text
    and its value parsed as `loads_exact` would (Decimal for fractions), one at a time.

    One at a time because a caller that keeps only the text and a few fields then holds one
    parsed element at a time: a 2,000-row response parsed whole survives long enough for its
    ~8,000 dicts and lists to be promoted through the garbage collector's generations, and the
    collections that follow cost more than the parsing (docs/benchmarks.md).

    The whole document is checked, the part after the array once its last element is yielded:
    a malformed element, a bad delimiter, trailing data, or no array (or two) under `key` raise
    ValueError part-way through the iteration. Bytes are UTF-8; a leading byte-order mark is
    skipped.
    """
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
    i = _WHITESPACE.match(text, 0).end()
    if not text.startswith("{", i):
        _EXACT_DECODER.decode(text)  # a clear error if it is not JSON at all
        raise ValueError(f"the response is not a JSON object with a {key!r} list")
    found = False
    i = _WHITESPACE.match(text, i + 1).end()
    if text.startswith("}", i):
        i += 1
    else:
        while True:
            if not text.startswith('"', i):
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
            name, i = json.decoder.scanstring(text, i + 1)
            i = _WHITESPACE.match(text, i).end()
            if not text.startswith(":", i):
                raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
            i = _WHITESPACE.match(text, i + 1).end()
            if name == key:
                # Elements already yielded cannot be taken back, so a second one is refused
                # rather than read as the last one (which is what loads_exact would keep).
                if found:
                    raise ValueError(f"{key!r} appears twice in the response")
                if not text.startswith("[", i):
                    raise ValueError(f"{key!r} in the response is not a list")
                found = True
                i = yield from _array_elements(text, i + 1)
            else:
                _, i = _EXACT_DECODER.raw_decode(text, i)
            i = _WHITESPACE.match(text, i).end()
            if text.startswith("}", i):
                i += 1
                break
            if not text.startswith(",", i):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
            i = _WHITESPACE.match(text, i + 1).end()
    end = _WHITESPACE.match(text, i).end()
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    if not found:
        raise ValueError(f"no {key!r} list in the response")


def _array_elements(text: str, i: int) -> Generator[JsonElement, None, int]:
    """Yield the elements of the array whose '[' is just before `i`; return the offset after its ']'."""
    # This loop runs once a record (2,000 times a TrueLayer response), so it calls the C scanner
    # itself (raw_decode only wraps it) and makes each JsonElement with tuple.__new__ (a third of
    # the NamedTuple constructor's cost).
    scan, skip, new = _EXACT_DECODER.scan_once, _WHITESPACE.match, tuple.__new__
    i = skip(text, i).end()
    if text.startswith("]", i):
        return i + 1
    while True:
        try:
            value, end = scan(text, i)
        except StopIteration as exc:
            raise json.JSONDecodeError("Expecting value", text, exc.value) from None
        yield new(JsonElement, (text[i:end], value))
        i = skip(text, end).end()
        if text.startswith("]", i):
            return i + 1
        if not text.startswith(",", i):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
        i = skip(text, i + 1).end()


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
            raise self._not_json(f"{method} {path}", exc) from None

    def iter_array_elements(
        self, path: str, key: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[JsonElement]:
        """GET a JSON object and iterate over the elements of its array under `key`, each with its
        exact source text and its value (see `iter_array_elements`). The request is made now; a
        malformed body raises ProviderResponseError during the iteration."""
        response = self._authorized("GET", path, accept_redirect=False, params=params)
        return self._elements(f"GET {path}", response.content, key)

    def _elements(self, where: str, content: bytes, key: str) -> Iterator[JsonElement]:
        try:
            yield from iter_array_elements(content, key)
        except ValueError as exc:
            raise self._not_json(where, exc) from None

    def _not_json(self, where: str, exc: ValueError) -> ProviderResponseError:
        # Where the body went wrong, never the body itself (it may echo secrets).
        if isinstance(exc, UnicodeDecodeError):
            detail = f"not UTF-8 at byte {exc.start}"
        elif isinstance(exc, json.JSONDecodeError | simplejson.JSONDecodeError):
            detail = f"{exc.msg} at char {exc.pos}"
        else:
            return ProviderResponseError(self.provider, f"{where}: {exc}")
        return ProviderResponseError(self.provider, f"{where}: response is not valid JSON ({detail})")

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
