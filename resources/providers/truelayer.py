"""TrueLayer Data API v1: OAuth code/refresh grants, accounts, balances, booked and pending transactions.

Contract: shared/reference/bank-contracts.md §3 and §10. The v1 transactions endpoint has no
paging: a window is one call per account. `transaction_id` is not stable across pulls for
some banks, so a record's identity is the first of normalised_provider_transaction_id,
provider_transaction_id, transaction_id.

Each record of a `results` list is read with its exact source text, and that text is what lands
in raw: the bank's bytes, and no re-serialising of 2,000 rows a response (docs/benchmarks.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request

from resources.errors import AccessTokenRejected, AuthorizationRequired, ProviderError, ProviderResponseError
from resources.extract import Extract, PreviewRow, TableLoad, window_days
from resources.http import ApiClient, JsonElement, RetryPolicy, loads_exact
from resources.warehouse.loader import RawRecord, ReplaceScope
from resources.warehouse.quarantine import QuarantineItem

PROVIDER = "truelayer"
SCOPES = "info accounts balance cards transactions offline_access"
IDENTITY_FIELDS = ("normalised_provider_transaction_id", "provider_transaction_id", "transaction_id")
# Connections are active for 90 days from consent (contract §3, "Create a connection").
CONSENT_DAYS = 90
T = TypeVar("T")


# Official hosts (contract §3); anything else is the base URL of a TrueLayer-compatible server
# that serves auth at its root and the Data API under /data/v1 (bankflow's simulator does).
ENVIRONMENTS = {
    "live": ("https://auth.truelayer.com", "https://api.truelayer.com/data/v1"),
    "sandbox": ("https://auth.truelayer-sandbox.com", "https://api.truelayer-sandbox.com/data/v1"),
}


def environment_urls(environment: str) -> tuple[str, str]:
    """(auth_url, api_url) for `live`, `sandbox`, or a base URL."""
    if environment in ENVIRONMENTS:
        return ENVIRONMENTS[environment]
    if environment.startswith(("http://", "https://")):
        base = environment.rstrip("/")
        return base, f"{base}/data/v1"
    raise ValueError(f"TrueLayer environment must be live, sandbox or a base URL, not {environment!r}")


@dataclass(frozen=True)
class TrueLayerConfig:
    auth_url: str
    api_url: str
    client_id: str
    client_secret: str = field(repr=False)
    # `bankflow connect` listens here for the redirect (not 3000: that is the Dagster UI).
    redirect_uri: str = "http://127.0.0.1:8765/callback"


class TrueLayerAuth:
    """The auth server side: the consent link and the token endpoint."""

    def __init__(self, config: TrueLayerConfig, retry: RetryPolicy | None = None) -> None:
        self.config = config
        self._retry = retry

    def authorization_url(
        self, state: str, code_challenge: str | None = None, providers: str | None = None
    ) -> str:
        extra = {"nonce": secrets.token_urlsafe(16)}
        if code_challenge:
            extra |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
        if providers:
            extra["providers"] = providers
        return prepare_grant_uri(
            self.config.auth_url.rstrip("/") + "/",
            self.config.client_id,
            "code",
            redirect_uri=self.config.redirect_uri,
            scope=SCOPES,
            state=state,
            **extra,
        )

    def exchange_code(self, code: str, code_verifier: str | None = None) -> dict[str, Any]:
        """Trade an authorisation code (and its PKCE verifier) for tokens; the consent clock starts now."""
        pkce = {"code_verifier": code_verifier} if code_verifier else {}
        tokens = self._token_request(
            "authorization_code", code=code, redirect_uri=self.config.redirect_uri, **pkce
        )
        tokens["consent_granted_at"] = tokens["obtained_at"]
        return tokens

    def refresh(self, tokens: Mapping[str, Any]) -> dict[str, Any]:
        """New access token; TrueLayer rotates the refresh token, so the result replaces `tokens`."""
        refreshed = self._token_request("refresh_token", refresh_token=tokens["refresh_token"])
        refreshed.setdefault("refresh_token", tokens["refresh_token"])
        refreshed["consent_granted_at"] = tokens.get("consent_granted_at")
        return refreshed

    def consent_expires_at(self, tokens: Mapping[str, Any]) -> datetime | None:
        granted = tokens.get("consent_granted_at")
        return datetime.fromisoformat(granted) + timedelta(days=CONSENT_DAYS) if granted else None

    def _token_request(self, grant_type: str, **params: str) -> dict[str, Any]:
        body = prepare_token_request(
            grant_type, client_id=self.config.client_id, client_secret=self.config.client_secret, **params
        )
        with ApiClient(
            provider=PROVIDER,
            base_url=self.config.auth_url,
            error_mapper=_auth_error,
            retry=self._retry,
        ) as client:
            tokens = client.request_json(
                "POST",
                "/connect/token",
                content=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        if not isinstance(tokens, dict) or "access_token" not in tokens:
            raise ProviderResponseError(
                PROVIDER, f"token endpoint answered without an access_token ({grant_type})"
            )
        tokens["obtained_at"] = datetime.now(UTC).isoformat()
        return tokens


class TrueLayerClient:
    """Data API v1 reads with one access token."""

    def __init__(
        self,
        api_url: str,
        access_token: str,
        *,
        refresh: Callable[[], str] | None = None,
        psu_ip: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        concurrency: int = 1,
    ) -> None:
        """`refresh` returns a new access token; it is called once when the bank rejects the
        current one mid-run (expired, rotated elsewhere). `concurrency`: accounts read at once."""
        self.concurrency = concurrency
        self._headers = {"Authorization": f"Bearer {access_token}"}
        # X-PSU-IP marks the request as user-present; unattended runs must not claim that.
        if psu_ip:
            self._headers["X-PSU-IP"] = psu_ip
        self._api = ApiClient(
            provider=PROVIDER,
            base_url=api_url,
            headers=lambda: self._headers,
            error_mapper=_data_error,
            retry=retry,
            timeout=timeout,
            transport=transport,
            reauthorize=(lambda: self._use_token(refresh())) if refresh else None,
        )

    def _use_token(self, access_token: str) -> None:
        # One dict replaced at once: a concurrent request reads the old headers or the new ones.
        self._headers = {**self._headers, "Authorization": f"Bearer {access_token}"}

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> TrueLayerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Every read sends its request at once and then yields the `results` list's records, each with
    # its exact source text (`.text`) and its value (`.value`, numbers exact), one at a time; a
    # malformed body raises ProviderResponseError during the iteration.
    # `kind` is "accounts" or "cards": the Data API serves both with the same sub-resources.
    def accounts(self, kind: str = "accounts") -> Iterator[JsonElement]:
        return self._results(f"/{kind}")

    def balance(self, account_id: str, kind: str = "accounts") -> Iterator[JsonElement]:
        return self._results(f"/{kind}/{account_id}/balance")

    def transactions(
        self, account_id: str, first_day: date, last_day: date, kind: str = "accounts"
    ) -> Iterator[JsonElement]:
        """Booked transactions with posting dates from `first_day` to `last_day`, both inclusive."""
        params = {"from": first_day.isoformat(), "to": last_day.isoformat()}
        return self._results(f"/{kind}/{account_id}/transactions", params)

    def pending_transactions(self, account_id: str, kind: str = "accounts") -> Iterator[JsonElement]:
        return self._results(f"/{kind}/{account_id}/transactions/pending")

    def _results(self, path: str, params: Mapping[str, str] | None = None) -> Iterator[JsonElement]:
        return self._api.iter_array_elements(path, "results", params)


@dataclass(frozen=True)
class _Kind:
    """Accounts and cards: the same calls under another path, landed in their own raw tables
    (card amounts follow another sign convention, so staging must know which is which)."""

    path: str
    accounts_table: str
    balances_table: str
    transactions_table: str
    pending_table: str


KINDS = (
    _Kind(
        "accounts",
        "truelayer_accounts",
        "truelayer_balances",
        "truelayer_transactions",
        "truelayer_pending_transactions",
    ),
    _Kind(
        "cards",
        "truelayer_cards",
        "truelayer_card_balances",
        "truelayer_card_transactions",
        "truelayer_card_pending_transactions",
    ),
)


def extract_window(client: TrueLayerClient, first_day: date, last_day: date, fetched_on: date) -> Extract:
    """Everything one run lands, for accounts and for cards: the accounts, a balance snapshot,
    booked rows for the window, pending rows.

    Booked rows replace the window's days for the accounts seen; pending rows replace each
    account's whole pending set (they vanish once booked); balances replace today's snapshot.
    """
    extract = Extract(first_day=first_day, last_day=last_day)
    for kind in KINDS:
        extract.loads += _extract_kind(client, kind, extract, fetched_on)
    return extract


@dataclass(frozen=True)
class _AccountReads:
    """One account's three responses, read but not parsed yet (each yields its records)."""

    balances: Iterator[JsonElement]
    booked: Iterator[JsonElement]
    pending: Iterator[JsonElement]


def _extract_kind(
    client: TrueLayerClient, kind: _Kind, extract: Extract, fetched_on: date
) -> list[TableLoad]:
    days = window_days(extract.first_day, extract.last_day)
    today = fetched_on.isoformat()
    accounts, ids = [], []
    for account in client.accounts(kind.path):
        account_id = account.value.get("account_id") if isinstance(account.value, dict) else None
        if not isinstance(account_id, str) or not account_id:
            extract.quarantined.append(
                QuarantineItem(kind.path, "account without account_id", account.text, None)
            )
            continue
        ids.append(account_id)
        accounts.append(RawRecord(account.text, today, account_id, account_id))

    def read(account_id: str) -> _AccountReads:
        # One request after another: one in flight per account, as the bank's limits count.
        return _AccountReads(
            client.balance(account_id, kind.path),
            client.transactions(account_id, extract.first_day, extract.last_day, kind.path),
            client.pending_transactions(account_id, kind.path),
        )

    # The records are parsed and kept here, in this thread, while the pool reads the next
    # accounts: that CPU work then overlaps the waiting on the bank. Done in each pool thread, it
    # came at the same moment in all of them (their responses arrive together) and held up
    # their next requests (docs/benchmarks.md).
    day_set = set(days)
    balances: list[RawRecord] = []
    booked: list[RawRecord] = []
    pending: list[RawRecord] = []
    for account_id, reads in zip(ids, _read_in_order(read, ids, client.concurrency), strict=True):
        balances += (RawRecord(balance.text, today, account_id, account_id) for balance in reads.balances)
        for txn in reads.booked:
            _keep(extract.quarantined, booked, kind.transactions_table, txn, account_id, allowed_days=day_set)
        for txn in reads.pending:
            _keep(extract.quarantined, pending, kind.pending_table, txn, account_id, allowed_days=None)
    extract.account_refs += ids
    return [
        TableLoad(kind.accounts_table, accounts, ReplaceScope(account_refs=ids)),
        TableLoad(kind.balances_table, balances, ReplaceScope(partition_keys=[today], account_refs=ids)),
        TableLoad(
            kind.transactions_table,
            booked,
            ReplaceScope(partition_keys=days, account_refs=ids),
            preview=_preview(booked),
        ),
        TableLoad(kind.pending_table, pending, ReplaceScope(account_refs=ids), preview=_preview(pending)),
    ]


def _read_in_order(read: Callable[[str], T], ids: list[str], workers: int) -> Iterator[T]:
    """`read(id)` for each id, up to `workers` at a time in a pool, yielded in input order as each
    is ready, so the caller's work on one overlaps the reads of the next.

    As with `map_in_order`, the first failure cancels the reads not started and is raised once
    the running ones end (here: when the caller reaches it).
    """
    if not ids:
        return
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(ids))), thread_name_prefix="account")
    futures = [pool.submit(read, account_id) for account_id in ids]

    def cancel_the_rest(done: Future[T]) -> None:
        if not done.cancelled() and done.exception() is not None:
            for future in futures:
                future.cancel()

    for future in futures:
        future.add_done_callback(cancel_the_rest)
    try:
        for future in futures:
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _preview(records: list[RawRecord], rows: int = 10) -> list[PreviewRow]:
    preview = []
    for record in records[:rows]:
        txn = loads_exact(record.payload)
        preview.append(
            (
                record.partition_key,
                str(txn.get("description", "")),
                str(txn.get("amount")),
                str(txn.get("currency")),
            )
        )
    return preview


def record_key(txn: Mapping[str, Any]) -> str | None:
    """The contract's identity order: the most stable id the provider gave."""
    for name in IDENTITY_FIELDS:
        value = txn.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def posting_date(txn: Mapping[str, Any]) -> str | None:
    """The bank's calendar date of the posting, as sent (the date part of `timestamp`)."""
    timestamp = txn.get("timestamp")
    if not isinstance(timestamp, str):
        return None
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        return None


def _keep(
    rejected: list[QuarantineItem],
    into: list[RawRecord],
    entity: str,
    element: JsonElement,
    account_id: str,
    allowed_days: Sequence[str] | set[str] | None,
) -> None:
    payload, txn = element.text, element.value
    if not isinstance(txn, dict):
        rejected.append(QuarantineItem(entity, "transaction is not a JSON object", payload, account_id))
        return
    key, day = record_key(txn), posting_date(txn)
    reason = None
    if key is None:
        reason = "no transaction id in any of " + ", ".join(IDENTITY_FIELDS)
    elif day is None:
        reason = f"timestamp {txn.get('timestamp')!r} is not an ISO-8601 date-time"
    elif allowed_days is not None and day not in allowed_days:
        reason = f"posting date {day} is outside the requested window"
    if reason:
        rejected.append(QuarantineItem(entity, reason, payload, account_id))
        return
    into.append(RawRecord(payload=payload, partition_key=day, record_key=key, account_ref=account_id))


def _auth_error(response: httpx.Response) -> ProviderError | None:
    code = _error_body_code(response)
    if code in {"invalid_grant", "invalid_authorization_code", "access_denied"}:
        return AuthorizationRequired(PROVIDER, f"the consent is no longer valid ({code})")
    if code in {"invalid_client", "unauthorized_client"}:
        return AuthorizationRequired(
            PROVIDER, f"client credentials were rejected ({code}); check BANKFLOW_TRUELAYER_CLIENT_ID/SECRET"
        )
    return None


def _data_error(response: httpx.Response) -> ProviderError | None:
    code = _error_body_code(response)
    if response.status_code == 401:
        return AccessTokenRejected(
            PROVIDER, f"the access token was rejected (HTTP 401 {code or 'unauthorized'})"
        )
    if response.status_code == 403 and code in {"access_denied", "sca_exceeded"}:
        return AuthorizationRequired(PROVIDER, f"access was refused (HTTP 403 {code})")
    return None


def _error_body_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None
