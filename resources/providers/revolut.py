"""Revolut Business API: JWT client-assertion tokens, accounts, transactions with legs.

Contract: shared/reference/bank-contracts.md §2 and §10.

- Auth: every token request carries a client assertion, an RS256 JWT signed with the user's
  private key (iss = the redirect URI's host, sub = client_id, aud = https://revolut.com).
  Access tokens live 40 minutes; refreshing invalidates the previous access token and returns no
  new refresh token, so the stored refresh token is kept. The client refreshes when the token is
  about to expire and once when a call comes back 401 mid-run.
- Paging: /transactions is sorted by created_at descending, `from` inclusive and `to` exclusive;
  the next page is the same query with `to` moved to the last created_at. Moving `to` exactly
  there would skip the border's unseen ties (they are not < to), so the client moves it 1 ms past
  the border and drops the overlap by id. A page that is one created_at from end to end cannot
  progress that way: that instant is read in one maximal call, then `to` moves onto it.
- Pacing: at most `requests_per_minute` requests in any minute (60 is Revolut's limit for a
  business), token calls and retries included.
- Partitions: a completed transaction belongs to the UTC date of its `completed_at` (its booking);
  declined/failed/reverted ones (never booked) to the UTC date of their `created_at`. Pending
  ones are a snapshot table, replaced whole per run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from resources.errors import AccessTokenRejected, AuthorizationRequired, ProviderError, ProviderResponseError
from resources.extract import Extract, PreviewRow, TableLoad, window_days
from resources.http import ApiClient, RetryPolicy, dumps_exact, loads_exact
from resources.rate_limit import RateLimiter
from resources.vault import TokenVault
from resources.warehouse.loader import RawRecord, ReplaceScope
from resources.warehouse.quarantine import QuarantineItem

PROVIDER = "revolut"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AUDIENCE = "https://revolut.com"
MAX_PAGE = 1000
# Refresh this long before the 40-minute token runs out, so a call is never sent on a dying token.
EXPIRY_MARGIN = timedelta(seconds=60)
# The list filter is on created_at but booked rows partition on completed_at: card payments book
# days after they are made, so each run also reads transactions created this many days earlier.
CREATED_LOOKBACK_DAYS = 14
# Each run replaces an account's whole pending set, so the pending read must reach every pending
# transaction there can be, not just recent ones; the state filter keeps the answer small.
PENDING_LOOKBACK_DAYS = 730
ASSERTION_SECONDS = 300
BOOKED_STATES = frozenset({"completed"})
PENDING_STATES = frozenset({"pending", "created"})
NEVER_BOOKED_STATES = frozenset({"declined", "failed", "reverted"})
_TIE_STEP = timedelta(milliseconds=1)


@dataclass(frozen=True)
class RevolutConfig:
    api_url: str  # e.g. https://b2b.revolut.com/api/1.0
    consent_url: str  # e.g. https://business.revolut.com/app-confirm
    client_id: str
    private_key_pem: str = field(repr=False)
    redirect_uri: str = "http://127.0.0.1:3000/callback"
    issuer: str | None = None  # default: the redirect URI's host

    @property
    def assertion_issuer(self) -> str:
        return self.issuer or urlsplit(self.redirect_uri).hostname or ""


def client_assertion(config: RevolutConfig, now: datetime | None = None) -> str:
    """A fresh RS256 client-assertion JWT; never logged or put in an error."""
    issued = now or datetime.now(UTC)
    claims = {
        "iss": config.assertion_issuer,
        "sub": config.client_id,
        "aud": AUDIENCE,
        "exp": int((issued + timedelta(seconds=ASSERTION_SECONDS)).timestamp()),
    }
    try:
        key = RSAKey.import_key(config.private_key_pem)
    except (ValueError, JoseError):
        raise AuthorizationRequired(
            PROVIDER, "the private key is not a PEM RSA key; check BANKFLOW_REVOLUT_PRIVATE_KEY_PEM"
        ) from None
    return jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, key)


def authorization_url(config: RevolutConfig, state: str | None = None, scope: str = "READ") -> str:
    """The consent link the user opens (Business app "app-confirm")."""
    params = {
        "client_id": config.client_id,
        "redirect_uri": config.redirect_uri,
        "response_type": "code",
        "scope": scope,
    }
    if state:
        params["state"] = state
    return f"{config.consent_url}?{urlencode(params)}"


class RevolutAuth:
    """The token endpoint: code exchange and refresh, both with a client assertion."""

    def __init__(
        self, config: RevolutConfig, retry: RetryPolicy | None = None, rate_limiter: RateLimiter | None = None
    ) -> None:
        self.config = config
        self._retry = retry
        self.rate_limiter = rate_limiter or RateLimiter(None)

    def exchange_code(self, code: str) -> dict[str, Any]:
        return self._token_request({"grant_type": "authorization_code", "code": code})

    def refresh(self, tokens: Mapping[str, Any]) -> dict[str, Any]:
        """A new access token; Revolut sends no new refresh token, so the stored one is kept."""
        refresh_token = tokens.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise AuthorizationRequired(PROVIDER, "the stored connection has no refresh token")
        refreshed = self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})
        refreshed.setdefault("refresh_token", refresh_token)
        return refreshed

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        body = {
            **form,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(self.config),
        }

        with ApiClient(
            provider=PROVIDER,
            base_url=self.config.api_url,
            headers=lambda: {"Content-Type": "application/x-www-form-urlencoded"},
            error_mapper=_auth_error,
            retry=self._retry,
            rate_limiter=self.rate_limiter,
        ) as client:
            tokens = client.request_json("POST", "/auth/token", content=urlencode(body))
        if not isinstance(tokens, dict) or not isinstance(tokens.get("access_token"), str):
            raise ProviderResponseError(
                PROVIDER, f"token endpoint answered without an access_token ({form['grant_type']})"
            )
        now = datetime.now(UTC)
        expires_in = tokens.get("expires_in")
        lifetime = int(expires_in) if isinstance(expires_in, int) and expires_in > 0 else 40 * 60
        tokens["obtained_at"] = now.isoformat()
        tokens["expires_at"] = (now + timedelta(seconds=lifetime)).isoformat()
        return tokens


def exchange_code(
    config: RevolutConfig,
    code: str,
    vault: TokenVault | None = None,
    connection_name: str = PROVIDER,
    retry: RetryPolicy | None = None,
) -> dict[str, Any]:
    """Trade the consent's code for tokens; saved in the vault (encrypted) when one is given."""
    tokens = RevolutAuth(config, retry=retry).exchange_code(code)
    if vault is not None:
        vault.save(connection_name, PROVIDER, tokens)
    return tokens


class RevolutClient:
    """Reads with automatic token refresh. `on_tokens` is called with every refreshed token set
    (the resource saves it in the vault before the new token is used)."""

    def __init__(
        self,
        auth: RevolutAuth,
        tokens: Mapping[str, Any],
        *,
        on_tokens: Callable[[dict[str, Any]], None] | None = None,
        retry: RetryPolicy | None = None,
        page_size: int = MAX_PAGE,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE}")
        self._auth = auth
        self._tokens = dict(tokens)
        self._on_tokens = on_tokens or (lambda tokens: None)
        self.page_size = page_size
        # Token and data calls share the auth's limiter: both count against one per-minute limit.
        self._api = ApiClient(
            provider=PROVIDER,
            base_url=auth.config.api_url,
            headers=self._headers,
            error_mapper=_data_error,
            retry=retry,
            timeout=timeout,
            transport=transport,
            reauthorize=self._refresh,
            rate_limiter=auth.rate_limiter,
        )

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> RevolutClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def requests_sent(self) -> int:
        """Data requests sent so far, retries included."""
        return self._api.requests_sent

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._tokens['access_token']}"}

    def _refresh(self) -> None:
        self._tokens = self._auth.refresh(self._tokens)
        self._on_tokens(dict(self._tokens))

    def _token_is_fresh(self) -> bool:
        expires_at = self._tokens.get("expires_at")
        if not isinstance(self._tokens.get("access_token"), str) or not isinstance(expires_at, str):
            return False
        return datetime.fromisoformat(expires_at) - EXPIRY_MARGIN > datetime.now(UTC)

    def get_json(self, path: str, params: Sequence[tuple[str, str]] | Mapping[str, str] | None = None) -> Any:
        # Refreshed ahead of expiry; a token that dies early anyway (revoked, or refreshed by
        # another process) is refreshed once more by the shared client on the 401.
        if not self._token_is_fresh():
            self._refresh()
        return self._api.get_json(path, params)

    def accounts(self) -> list[dict[str, Any]]:
        body = self.get_json("/accounts")
        if not isinstance(body, list):
            raise ProviderResponseError(PROVIDER, "GET /accounts: the response is not a list")
        return body

    def bank_details(self, account_id: str) -> list[dict[str, Any]]:
        body = self.get_json(f"/accounts/{account_id}/bank-details")
        if not isinstance(body, list):
            raise ProviderResponseError(
                PROVIDER, "GET /accounts/{id}/bank-details: the response is not a list"
            )
        return body

    def transactions(
        self, start: datetime, end: datetime | None = None, states: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Every transaction with start <= created_at < end, each once, newest first."""
        return list(self._pages(start, end, states))

    def _page(
        self, start: datetime, end: datetime | None, count: int, states: Sequence[str]
    ) -> list[dict[str, Any]]:
        params = [("from", _iso(start)), ("count", str(count))]
        if end is not None:
            params.append(("to", _iso(end)))
        params += [("state", state) for state in states]
        body = self.get_json("/transactions", params)
        if not isinstance(body, list):
            raise ProviderResponseError(PROVIDER, "GET /transactions: the response is not a list")
        return body

    def _pages(
        self, start: datetime, end: datetime | None, states: Sequence[str]
    ) -> Iterator[dict[str, Any]]:
        seen: set[str] = set()

        def fresh(page: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for txn in page:
                txn_id = txn.get("id") if isinstance(txn, dict) else None
                # Records without an id cannot be deduplicated: passed on for quarantine.
                if not isinstance(txn_id, str):
                    yield txn
                elif txn_id not in seen:
                    seen.add(txn_id)
                    yield txn

        to = end
        while True:
            page = self._page(start, to, self.page_size, states)
            yield from fresh(page)
            if len(page) < self.page_size:
                return
            first, last = _created(page[0]), _created(page[-1])
            if last is None or first is None:
                raise ProviderResponseError(
                    PROVIDER, "GET /transactions: a page ends without a valid created_at"
                )
            if first == last:
                # The whole page is one instant: read that instant alone, as much as one call gives.
                tie = self._page(last, last + _TIE_STEP, MAX_PAGE, states)
                if len(tie) >= MAX_PAGE:
                    raise ProviderResponseError(
                        PROVIDER,
                        f"more than {MAX_PAGE} transactions share created_at {_iso(last)}; cannot page past them",
                    )
                yield from fresh(tie)
                to = last  # exclusive: everything at `last` is in
            else:
                to = last + _TIE_STEP  # inclusive of the border instant; its seen ties drop by id
            if to <= start:
                return


@dataclass(frozen=True)
class HeldRows:
    """What raw already holds that tells how far back this run must read by created_at.

    The list filters on created_at, but a transaction books (completed_at) whenever the bank
    completes it: a scheduled transfer can complete weeks after it was made. Two kinds of row
    reach past the usual lookback: a pending one we held that has left the pending set since
    (it completed, or failed), and a booked one already landed on the window's days (a re-run
    must find it again, or replacing the days would drop it)."""

    pending_created: Mapping[str, datetime] = field(default_factory=dict)
    booked_earliest_created: datetime | None = None


def extract_window(
    client: RevolutClient,
    first_day: date,
    last_day: date,
    fetched_on: date,
    held: HeldRows | None = None,
) -> Extract:
    """Everything one run lands: accounts (+ bank details), balance snapshots, transactions booked in
    the window (and never-booked ones created in it), and the current pending set."""
    held = held or HeldRows()
    extract = Extract(first_day=first_day, last_day=last_day)
    days = window_days(first_day, last_day)
    accounts, balances = [], []
    for account in client.accounts():
        account_id = account.get("id") if isinstance(account, dict) else None
        if not isinstance(account_id, str) or not account_id:
            extract.quarantined.append(
                QuarantineItem("accounts", "account without id", dumps_exact(account), None)
            )
            continue
        extract.account_refs.append(account_id)
        # Bank details (IBAN, sort code) come from a second endpoint; kept beside the account's own
        # fields under "bank_details", as that endpoint sent them.
        with_details = {**account, "bank_details": client.bank_details(account_id)}
        accounts.append(RawRecord(dumps_exact(with_details), fetched_on.isoformat(), account_id, account_id))
        # Revolut reports the balance on the account itself: the account record is the snapshot.
        balances.append(RawRecord(dumps_exact(account), fetched_on.isoformat(), account_id, account_id))
    account_ids = extract.account_refs

    pending: list[RawRecord] = []
    pending_start = _midnight(fetched_on - timedelta(days=PENDING_LOOKBACK_DAYS))
    for txn in client.transactions(pending_start, None, states=sorted(PENDING_STATES)):
        record = _classify(extract, txn, account_ids)
        if record is not None and record[0] == "pending":
            pending.append(record[1])

    still_pending = {record.record_key for record in pending}
    reach = [created for txn_id, created in held.pending_created.items() if txn_id not in still_pending]
    if held.booked_earliest_created is not None:
        reach.append(held.booked_earliest_created)
    start = min([_midnight(first_day - timedelta(days=CREATED_LOOKBACK_DAYS)), *reach])
    end = _midnight(last_day + timedelta(days=1))
    booked: list[RawRecord] = []
    booked_ids: set[str] = set()
    day_set = set(days)
    for txn in client.transactions(start, end):
        record = _classify(extract, txn, account_ids)
        if record is None or record[0] != "booked":
            continue  # pending ones came from the pending read, with the current state
        booked_ids.add(record[1].record_key)
        if record[1].partition_key in day_set:
            booked.append(record[1])
        # Otherwise it belongs to a day outside this window (booked later, or made earlier).
    # Completed between the two reads: booked now, so it must not be counted as pending as well.
    pending = [record for record in pending if record.record_key not in booked_ids]

    extract.loads = [
        TableLoad("revolut_accounts", accounts, ReplaceScope(account_refs=account_ids)),
        TableLoad(
            "revolut_balances",
            balances,
            ReplaceScope(partition_keys=[fetched_on.isoformat()], account_refs=account_ids),
        ),
        TableLoad(
            "revolut_transactions",
            booked,
            ReplaceScope(partition_keys=days, account_refs=account_ids),
            preview=_preview(booked),
        ),
        TableLoad("revolut_pending_transactions", pending, ReplaceScope(account_refs=account_ids)),
    ]
    return extract


def partition_day(txn: Mapping[str, Any]) -> str | None:
    """The UTC date a transaction belongs to: completed_at for completed ones, else created_at."""
    field = "completed_at" if txn.get("state") in BOOKED_STATES else "created_at"
    moment = _parse_instant(txn.get(field))
    return moment.date().isoformat() if moment else None


def _classify(extract: Extract, txn: Any, account_ids: Sequence[str]) -> tuple[str, RawRecord] | None:
    """("booked" | "pending", record) for a usable transaction; quarantines an unusable one."""
    payload = dumps_exact(txn)
    if not isinstance(txn, dict):
        extract.quarantined.append(
            QuarantineItem("transactions", "transaction is not a JSON object", payload)
        )
        return None
    legs = txn.get("legs")
    legs = legs if isinstance(legs, list) else []
    ours = [
        leg.get("account_id")
        for leg in legs
        if isinstance(leg, dict) and leg.get("account_id") in account_ids
    ]
    state = txn.get("state")
    reason = None
    if not isinstance(txn.get("id"), str) or not txn["id"]:
        reason = "transaction without id"
    elif not legs or any(
        not isinstance(leg, dict)
        or not isinstance(leg.get("leg_id"), str)
        or _is_bad_amount(leg.get("amount"))
        for leg in legs
    ):
        reason = "transaction without legs, or a leg without leg_id or numeric amount"
    elif not ours:
        reason = "no leg on a connected account"
    elif state not in BOOKED_STATES | PENDING_STATES | NEVER_BOOKED_STATES:
        reason = f"unknown state {state!r}"
    elif partition_day(txn) is None:
        reason = "completed_at/created_at is missing or not an ISO-8601 date-time"
    if reason:
        first = ours[0] if ours else None
        extract.quarantined.append(QuarantineItem("transactions", reason, payload, first))
        return None
    kind = "pending" if state in PENDING_STATES else "booked"
    day = partition_day(txn)
    assert day is not None  # checked above
    return kind, RawRecord(payload=payload, partition_key=day, record_key=txn["id"], account_ref=ours[0])


def _is_bad_amount(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, int | Decimal)


def _preview(records: list[RawRecord], rows: int = 10) -> list[PreviewRow]:
    preview = []
    for record in records[:rows]:
        txn = loads_exact(record.payload)
        leg = txn["legs"][0]
        preview.append(
            (
                record.partition_key,
                str(leg.get("description", "")),
                str(leg.get("amount")),
                str(leg.get("currency")),
            )
        )
    return preview


def _created(txn: Any) -> datetime | None:
    return _parse_instant(txn.get("created_at")) if isinstance(txn, dict) else None


def _parse_instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    """Millisecond precision, UTC, Z: the created_at style, so `to` + 1 ms is a distinct instant."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _auth_error(response: httpx.Response) -> ProviderError | None:
    error = _error_body(response).get("error")
    if error == "invalid_grant":
        return AuthorizationRequired(PROVIDER, "the consent is no longer valid (invalid_grant)")
    if error in {"invalid_client", "unauthorized_client"} or response.status_code == 401:
        return AuthorizationRequired(
            PROVIDER,
            "the client assertion was refused; check BANKFLOW_REVOLUT_CLIENT_ID, "
            "BANKFLOW_REVOLUT_PRIVATE_KEY_PEM and BANKFLOW_REVOLUT_ISSUER",
        )
    return None


def _data_error(response: httpx.Response) -> ProviderError | None:
    code = _error_body(response).get("code")
    if response.status_code == 401:
        return AccessTokenRejected(PROVIDER, f"the access token was refused (HTTP 401, code {code})")
    if response.status_code == 403:
        return AuthorizationRequired(PROVIDER, f"access was refused (HTTP 403, code {code})")
    return None
