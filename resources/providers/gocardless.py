"""GoCardless Bank Account Data API v2 (ex-Nordigen): tokens, the connect flow, account data.

Contract: shared/reference/bank-contracts.md section 8. Tokens come from the secret id/key
(access 24 h, refresh 30 days, no rotation); an expired or rejected access token is renewed
once and the call repeated. Per account, GoCardless allows only 4 successful calls per day and
access scope (details, balances, transactions), so a run makes exactly one call per account and
scope, visits accounts stalest first, asks the CallBudget before each call and spends it only
for a call the bank counted (a 2xx). A 429 of the daily limit is never retried: that account's
scope is skipped for the run with its reason recorded, and every other account still lands.

Identity of a transaction: internalTransactionId (GoCardless's own, stable, booked only), then
the bank's transactionId (which the contract warns may vary, and changes when a pending item
books), then a content hash with an occurrence number for identical rows.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

import httpx

from resources.call_budget import CallBudget
from resources.concurrency import map_in_order
from resources.errors import (
    AccessTokenRejected,
    AuthorizationRequired,
    ProviderError,
    ProviderResponseError,
    TransientProviderError,
)
from resources.extract import Extract, PreviewRow, TableLoad, impossible_dates, window_days
from resources.http import ApiClient, RetryPolicy, dumps_exact, loads_exact, retry_after_seconds
from resources.providers.berlin_group import DATE_FIELDS, given_id  # the same transaction schema
from resources.rate_limit import RateLimiter
from resources.vault import TokenVault
from resources.warehouse.loader import RawRecord, ReplaceScope
from resources.warehouse.quarantine import QuarantineItem

PROVIDER = "gocardless"
DEFAULT_BASE_URL = "https://bankaccountdata.gocardless.com/api/v2"
ACCESS_SCOPE = ("balances", "details", "transactions")
CALLS_PER_DAY = 4
IDENTITY_FIELDS = ("internalTransactionId", "transactionId")
# Fields that tell two id-less transactions apart, in a fixed order for the content hash.
HASH_FIELDS = (
    "bookingDate",
    "valueDate",
    "transactionAmount",
    "creditorName",
    "creditorAccount",
    "debtorName",
    "debtorAccount",
    "remittanceInformationUnstructured",
    "remittanceInformationUnstructuredArray",
    "entryReference",
    "endToEndId",
)
_AMOUNT = re.compile(r"^-?[0-9]{1,14}(\.[0-9]{1,3})?$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SECONDS_IN_DETAIL = re.compile(r"try again in (\d+) seconds", re.IGNORECASE)
# A token this close to its expiry is renewed before use, not after a 401.
_EXPIRY_MARGIN = timedelta(seconds=60)


class DailyLimitReached(ProviderError):
    """The per-account daily limit (or the bank's own) is used up; retrying today cannot help."""

    def __init__(self, message: str, reset_seconds: int | None) -> None:
        super().__init__(PROVIDER, message)
        self.reset_seconds = reset_seconds


class CallBudgetExhausted(ProviderError):
    """No account could be fetched: every per-account budget of the day is spent or refused."""


class _TokenRejected(Exception):
    """The access (or refresh) token was not accepted: renew it and try again once."""


@dataclass(frozen=True)
class GoCardlessConfig:
    base_url: str
    secret_id: str
    secret_key: str

    def __repr__(self) -> str:  # the secret key must never reach a log through a repr
        return f"GoCardlessConfig(base_url={self.base_url!r}, secret_id=<set>, secret_key=<set>)"


@dataclass(frozen=True)
class PendingConnection:
    """A requisition waiting for the user: open `link`, the bank redirects to `redirect?ref=reference`."""

    link: str
    reference: str
    requisition_id: str
    agreement_id: str


@dataclass
class GoCardlessExtract(Extract):
    """An Extract plus the per-account calls the plan skipped, each with its reason."""

    skipped: list[str] = field(default_factory=list)


class _StatusLog(httpx.BaseTransport):
    """Remembers the status of every response, so a call the bank counted (a 2xx, even with a
    body we cannot parse) is spent in the budget exactly once. Kept per thread: accounts read
    concurrently must not see each other's responses."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner
        self._local = threading.local()

    @property
    def statuses(self) -> list[int]:
        if not hasattr(self._local, "statuses"):
            self._local.statuses = []
        return self._local.statuses

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        self.statuses.append(response.status_code)
        return response

    def close(self) -> None:
        self._inner.close()


class GoCardlessClient:
    """API v2 calls with one token set, renewed as needed; `on_tokens` is told of every new set."""

    def __init__(
        self,
        config: GoCardlessConfig,
        tokens: Mapping[str, Any] | None = None,
        *,
        on_tokens: Callable[[dict[str, Any]], None] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        concurrency: int = 1,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        # Accounts read at once: the 4-a-day limits are per account, so this spends no extra call.
        self.concurrency = concurrency
        self._config = config
        self._token_lock = threading.Lock()
        self._tokens: dict[str, Any] = {
            key: tokens[key]
            for key in ("access", "access_expires_at", "refresh", "refresh_expires_at")
            if tokens and key in tokens
        }
        self._on_tokens = on_tokens
        self._log = _StatusLog(transport or httpx.HTTPTransport())
        self._api = ApiClient(
            provider=PROVIDER,
            base_url=config.base_url,
            headers=self._auth_header,
            error_mapper=_data_error,
            retry=retry,
            timeout=timeout,
            transport=self._log,
            reauthorize=self._renew_refused,
            rate_limiter=rate_limiter,
        )
        self._token_api = ApiClient(
            provider=PROVIDER,
            base_url=config.base_url,
            error_mapper=_token_error,
            retry=retry,
            timeout=timeout,
            transport=self._log,
        )

    def close(self) -> None:
        self._api.close()
        self._token_api.close()

    def __enter__(self) -> GoCardlessClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def tokens(self) -> dict[str, Any]:
        """The current token set (for the vault; never log it)."""
        return dict(self._tokens)

    # -- tokens ----------------------------------------------------------------------------------------

    def _auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._tokens.get('access', '')}"}

    def _ensure_access(self) -> None:
        with self._token_lock:
            if not _is_live(self._tokens, "access"):
                self._renew()

    def _renew_refused(self) -> None:
        with self._token_lock:
            self._tokens.pop("access", None)
            self._renew()

    def _renew(self) -> None:
        """A new access token: from the refresh token while it lives, else from the secret id/key."""
        now = datetime.now(UTC)
        if _is_live(self._tokens, "refresh"):
            try:
                body = self._token_api.request_json(
                    "POST", "/token/refresh/", json={"refresh": self._tokens["refresh"]}
                )
            except _TokenRejected:
                body = None
            if body is not None:
                self._tokens.update(_token_fields(body, now, with_refresh=False))
                self._tokens_changed()
                return
        body = self._token_api.request_json(
            "POST",
            "/token/new/",
            json={"secret_id": self._config.secret_id, "secret_key": self._config.secret_key},
        )
        self._tokens = _token_fields(body, now, with_refresh=True)
        self._tokens_changed()

    def _tokens_changed(self) -> None:
        if self._on_tokens is not None:
            self._on_tokens(self.tokens)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call, with a live access token (renewed once more if the bank refuses it)."""
        self._ensure_access()
        return self._api.request_json(method, path, **kwargs)

    # -- linking ---------------------------------------------------------------------------------------

    def institutions(self, country: str) -> list[dict[str, Any]]:
        body = self._call("GET", "/institutions/", params={"country": country.lower()})
        if not isinstance(body, list):
            raise ProviderResponseError(PROVIDER, "GET /institutions/: the response is not a list")
        return body

    def institution(self, institution_id: str) -> dict[str, Any]:
        return self._object("GET", f"/institutions/{institution_id}/")

    def create_agreement(
        self, institution_id: str, max_historical_days: int, access_valid_for_days: int = 90
    ) -> dict[str, Any]:
        return self._object(
            "POST",
            "/agreements/enduser/",
            json={
                "institution_id": institution_id,
                "max_historical_days": max_historical_days,
                "access_valid_for_days": access_valid_for_days,
                "access_scope": list(ACCESS_SCOPE),
            },
        )

    def agreement(self, agreement_id: str) -> dict[str, Any]:
        return self._object("GET", f"/agreements/enduser/{agreement_id}/")

    def create_requisition(
        self, institution_id: str, redirect: str, reference: str, agreement_id: str, user_language: str = "EN"
    ) -> dict[str, Any]:
        return self._object(
            "POST",
            "/requisitions/",
            json={
                "redirect": redirect,
                "institution_id": institution_id,
                "reference": reference,
                "agreement": agreement_id,
                "user_language": user_language,
            },
        )

    def requisition(self, requisition_id: str) -> dict[str, Any]:
        return self._object("GET", f"/requisitions/{requisition_id}/")

    def linked_accounts(self, requisition_id: str) -> list[str]:
        """The requisition's account ids; a requisition that is not linked (LN) needs the user."""
        requisition = self.requisition(requisition_id)
        status = requisition.get("status")
        if status != "LN":
            raise AuthorizationRequired(
                PROVIDER, f"the bank connection (requisition) is {status}, not linked"
            )
        accounts = requisition.get("accounts")
        if not isinstance(accounts, list) or not all(isinstance(a, str) for a in accounts):
            raise ProviderResponseError(PROVIDER, "GET /requisitions/{id}/: no 'accounts' list")
        return accounts

    # -- account data (each per-account call counts against 4/day per scope) ----------------------------

    def account(self, account_id: str) -> dict[str, Any]:
        return self._object("GET", f"/accounts/{account_id}/")

    def details(self, account_id: str) -> dict[str, Any]:
        return self._object("GET", f"/accounts/{account_id}/details/")

    def balances(self, account_id: str) -> dict[str, Any]:
        return self._object("GET", f"/accounts/{account_id}/balances/")

    def transactions(
        self, account_id: str, first_day: date, last_day: date
    ) -> dict[str, list[dict[str, Any]]]:
        """Booked and pending transactions with booking dates first_day..last_day, in one call."""
        body = self._object(
            "GET",
            f"/accounts/{account_id}/transactions/",
            params={"date_from": first_day.isoformat(), "date_to": last_day.isoformat()},
        )
        report = body.get("transactions")
        if not isinstance(report, dict):
            raise ProviderResponseError(
                PROVIDER, "GET /accounts/{id}/transactions/: no 'transactions' object"
            )
        booked, pending = report.get("booked", []), report.get("pending", [])
        if not isinstance(booked, list) or not isinstance(pending, list):
            raise ProviderResponseError(
                PROVIDER, "GET /accounts/{id}/transactions/: booked/pending are not lists"
            )
        return {"booked": booked, "pending": pending}

    def bank_counted(self, since: int) -> bool:
        """Whether any response after the first `since` was a 2xx (a call the bank counted)."""
        return any(200 <= s < 300 for s in self._log.statuses[since:])

    @property
    def responses_seen(self) -> int:
        """How many responses this client has received so far (a mark for `bank_counted`)."""
        return len(self._log.statuses)

    def _object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = self._call(method, path, **kwargs)
        if not isinstance(body, dict):
            raise ProviderResponseError(
                PROVIDER, f"{method} {_template(path)}: the response is not an object"
            )
        return body


# -- connect flow ----------------------------------------------------------------------------------------


def start_connection(
    institution_id: str,
    redirect: str,
    *,
    client: GoCardlessClient,
    vault: TokenVault,
    connection_name: str = PROVIDER,
    reference: str | None = None,
    access_valid_for_days: int = 90,
    max_historical_days: int | None = None,
) -> PendingConnection:
    """Create the end-user agreement and the requisition; the user then opens `link`.

    The agreement asks for as much history as the institution keeps (or `max_historical_days`).
    Tokens and the pending requisition go to the vault, so finishing needs only its id.
    """
    institution = client.institution(institution_id)
    total_days = _int(institution.get("transaction_total_days")) or 90
    days = min(max_historical_days or total_days, total_days)
    agreement = client.create_agreement(institution_id, days, access_valid_for_days)
    reference = (
        reference
        or hashlib.sha256(f"{institution_id}:{datetime.now(UTC).isoformat()}".encode()).hexdigest()[:24]
    )
    requisition = client.create_requisition(institution_id, redirect, reference, str(agreement["id"]))
    link = requisition.get("link")
    if not isinstance(link, str) or not link:
        raise ProviderResponseError(PROVIDER, "POST /requisitions/: no 'link' in the response")
    pending = PendingConnection(link, reference, str(requisition["id"]), str(agreement["id"]))
    stored = vault.load(connection_name) or {}
    vault.save(connection_name, PROVIDER, {**stored, **client.tokens})
    return pending


def finish_connection(
    requisition_id: str, *, client: GoCardlessClient, vault: TokenVault, connection_name: str = PROVIDER
) -> dict[str, Any]:
    """After the user came back: the linked accounts and the consent expiry, saved to the vault.

    A requisition covers one institution, so one connection holds a list of them: linking a
    second bank adds to the list, relinking a bank replaces its entry.
    """
    requisition = client.requisition(requisition_id)
    status = requisition.get("status")
    if status != "LN":
        raise AuthorizationRequired(PROVIDER, f"the requisition is {status}, not linked (LN) yet")
    agreement_id = str(requisition.get("agreement"))
    agreement = client.agreement(agreement_id)
    accepted = agreement.get("accepted") or agreement.get("created")
    valid_days = _int(agreement.get("access_valid_for_days")) or 90
    expires_at = _parse_instant(accepted) + timedelta(days=valid_days) if isinstance(accepted, str) else None
    linked = {
        "requisition_id": requisition_id,
        "agreement_id": agreement_id,
        "institution_id": requisition.get("institution_id"),
        "account_ids": list(requisition.get("accounts") or []),
        "max_historical_days": _int(agreement.get("max_historical_days")),
        "consent_expires_at": expires_at.isoformat() if expires_at else None,
    }
    stored = vault.load(connection_name) or {}
    requisitions = [
        r
        for r in stored.get("requisitions", [])
        if r.get("requisition_id") != requisition_id and r.get("institution_id") != linked["institution_id"]
    ]
    requisitions.append(linked)
    # The connection needs a person again as soon as its first consent lapses.
    expiries = [_parse_instant(r["consent_expires_at"]) for r in requisitions if r.get("consent_expires_at")]
    vault.save(
        connection_name,
        PROVIDER,
        {**stored, **client.tokens, "requisitions": requisitions},
        min(expiries) if expiries else None,
    )
    return linked


# -- one run's extract -----------------------------------------------------------------------------------


def extract_window(
    client: GoCardlessClient,
    account_ids: Sequence[str],
    first_day: date,
    last_day: date,
    fetched_on: date,
    budget: CallBudget | None = None,
    max_historical_days: int | None = None,
) -> GoCardlessExtract:
    """Everything one run lands: per account one details, one balances and one transactions call
    (booked + pending for the whole window), stalest accounts first, within the day's budget.

    Each table replaces only the accounts whose call for it succeeded, so an account skipped for
    its budget keeps yesterday's rows. Booked rows replace the window's days; pending rows replace
    the account's whole pending set; balances replace today's snapshot.
    """
    # GoCardless keeps only max_historical_days of history: asking further back would land an
    # empty answer over rows we still hold, so the window (and its replace scope) is clipped.
    if max_historical_days:
        first_day = max(first_day, fetched_on - timedelta(days=max_historical_days - 1))
    # A window wholly older than the bank keeps: nothing to ask for, and no day to replace (an
    # empty answer must not wipe rows landed while the bank still had them).
    beyond_history = first_day > last_day
    first_day = min(first_day, last_day)
    extract = GoCardlessExtract(first_day=first_day, last_day=last_day)
    days = [] if beyond_history else window_days(first_day, last_day)
    order = budget.stalest_first(list(account_ids), "transactions") if budget else list(account_ids)
    fetched = fetched_on.isoformat()
    institutions: dict[str, dict[str, Any]] = {}
    institutions_lock = threading.Lock()

    def institution(institution_id: str) -> dict[str, Any]:
        # Accounts at one bank share it: asked once per run, not once per account.
        with institutions_lock:
            if institution_id not in institutions:
                institutions[institution_id] = client.institution(institution_id)
            return institutions[institution_id]

    def pull(account_id: str) -> _AccountPull:
        got = _AccountPull()
        details = _budgeted(
            client, budget, got.skipped, account_id, "details", partial(client.details, account_id)
        )
        if details is not None:
            # Details lack the institution; its id (from the account, not rate-limited per day)
            # and name travel beside them, each part verbatim, for staging's bank columns.
            record = {**details, "metadata": client.account(account_id)}
            institution_id = record["metadata"].get("institution_id")
            if isinstance(institution_id, str) and institution_id:
                record["institution"] = institution(institution_id)
            got.account = RawRecord(dumps_exact(record), fetched, account_id, account_id)
        report = _budgeted(
            client, budget, got.skipped, account_id, "balances", partial(client.balances, account_id)
        )
        if report is not None:
            got.balances = RawRecord(dumps_exact(report), fetched, account_id, account_id)
        if not beyond_history:
            got.transactions = _budgeted(
                client,
                budget,
                got.skipped,
                account_id,
                "transactions",
                partial(client.transactions, account_id, first_day, last_day),
            )
        return got

    landed: dict[str, list[str]] = {"details": [], "balances": [], "transactions": []}
    accounts, balances, booked, pending = [], [], [], []
    for account_id, got in zip(order, map_in_order(pull, order, client.concurrency), strict=True):
        extract.skipped += got.skipped
        if got.account is not None:
            accounts.append(got.account)
            landed["details"].append(account_id)
        if got.balances is not None:
            balances.append(got.balances)
            landed["balances"].append(account_id)
        if got.transactions is not None:
            landed["transactions"].append(account_id)
            txns = got.transactions
            _keep_all(extract, booked, "transactions", txns["booked"], account_id, days, fetched)
            _keep_all(extract, pending, "pending_transactions", txns["pending"], account_id, None, fetched)
    if budget and not any(landed.values()) and extract.skipped:
        raise CallBudgetExhausted(
            PROVIDER, "no account could be fetched today: " + "; ".join(extract.skipped)
        )
    extract.account_refs = [a for a in order if any(a in refs for refs in landed.values())]
    extract.loads = [
        TableLoad(
            "gocardless_transactions",
            booked,
            ReplaceScope(partition_keys=days, account_refs=landed["transactions"]),
            preview=_preview(booked),
        ),
        TableLoad(
            "gocardless_pending_transactions",
            pending,
            ReplaceScope(account_refs=landed["transactions"]),
            preview=_preview(pending),
        ),
        TableLoad("gocardless_accounts", accounts, ReplaceScope(account_refs=landed["details"])),
        TableLoad(
            "gocardless_balances",
            balances,
            ReplaceScope(partition_keys=[fetched], account_refs=landed["balances"]),
        ),
    ]
    return extract


@dataclass
class _AccountPull:
    """One account's budgeted calls, made apart from the others (possibly in another thread)."""

    account: RawRecord | None = None
    balances: RawRecord | None = None
    transactions: dict[str, list[dict[str, Any]]] | None = None
    skipped: list[str] = field(default_factory=list)


def _budgeted(
    client: GoCardlessClient,
    budget: CallBudget | None,
    skipped: list[str],
    account_id: str,
    scope: str,
    call: Callable[[], Any],
) -> Any | None:
    """One per-account call under the day's budget; None (with the reason recorded) if skipped."""
    if budget is not None and budget.remaining(account_id, scope) <= 0:
        skipped.append(f"{scope} of account {account_id}: today's {budget.calls_per_day} calls are spent")
        return None
    since = client.responses_seen
    try:
        result = call()
    except DailyLimitReached as exc:
        # The bank counts calls we did not make (another app, an earlier crash): align our
        # budget with its word so no later run today spends a request to be refused again.
        if budget is not None:
            budget.exhaust(account_id, scope)
        reset = f"; resets in {exc.reset_seconds} s" if exc.reset_seconds is not None else ""
        skipped.append(f"{scope} of account {account_id}: the daily limit is reached{reset}")
        return None
    except ProviderError:
        # The bank counted a 2xx it sent even if its body was unusable: spend it, then fail.
        if budget is not None and client.bank_counted(since):
            budget.spend(account_id, scope)
        raise
    if budget is not None:
        budget.spend(account_id, scope)
    return result


# -- records ---------------------------------------------------------------------------------------------


def record_key(txn: Mapping[str, Any]) -> str | None:
    """The most stable id the provider gave (internalTransactionId, then transactionId)."""
    for name in IDENTITY_FIELDS:
        value = given_id(txn.get(name))
        if value is not None:
            return value
    return None


def content_hash(txn: Mapping[str, Any]) -> str:
    """A stable key for a transaction without ids, from the fields that describe it."""
    canonical = dumps_exact({name: txn.get(name) for name in HASH_FIELDS})
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def transaction_day(txn: Mapping[str, Any]) -> str | None:
    """bookingDate (booked rows), as sent, if it is a calendar date."""
    value = txn.get("bookingDate")
    if isinstance(value, str) and _DAY.match(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            return None
    return None


def amount_problem(txn: Mapping[str, Any]) -> str | None:
    money = txn.get("transactionAmount")
    if not isinstance(money, Mapping):
        return "no transactionAmount"
    amount, currency = money.get("amount"), money.get("currency")
    if isinstance(amount, Decimal | int) and not isinstance(amount, bool):
        amount = str(amount)
    if not isinstance(amount, str) or not _AMOUNT.match(amount):
        return f"transactionAmount.amount {amount!r} is not a decimal amount"
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        return f"transactionAmount.currency {currency!r} is not an ISO 4217 code"
    return None


def _keep_all(
    extract: Extract,
    into: list[RawRecord],
    entity: str,
    txns: list[Any],
    account_id: str,
    allowed_days: Sequence[str] | None,
    fetched_on: str,
) -> None:
    """Key and place each row: identical id-less rows get an occurrence number so none is lost;
    a repeated bank id is quarantined, not landed twice."""
    seen: dict[str, int] = {}
    for txn in txns:
        payload = dumps_exact(txn)
        if not isinstance(txn, dict):
            extract.quarantined.append(
                QuarantineItem(entity, "transaction is not a JSON object", payload, account_id)
            )
            continue
        reason = impossible_dates(txn, DATE_FIELDS) or amount_problem(txn)
        day = transaction_day(txn)
        if reason is None and allowed_days is not None:
            if day is None:
                reason = f"bookingDate {txn.get('bookingDate')!r} is not a calendar date"
            elif day not in allowed_days:
                reason = f"bookingDate {day} is outside the requested window"
        if reason:
            extract.quarantined.append(QuarantineItem(entity, reason, payload, account_id))
            continue
        identity = record_key(txn)
        if identity is not None and identity in seen:
            # The same bank id twice in one answer is one movement sent twice, not two: landing
            # both would count the money twice. Kept aside with the reason.
            extract.quarantined.append(
                QuarantineItem(
                    entity, f"transaction id {identity!r} repeated in one response", payload, account_id
                )
            )
            continue
        key = identity or content_hash(txn)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            # Id-less rows with identical content can be two real movements (two coffees).
            key = f"{key}#{seen[key]}"
        # A pending row may lack bookingDate: it is placed on its expected value date, else the
        # fetch day (its scope is the account's whole pending set, so the day is informational).
        partition = day or _valid_day(txn.get("valueDate")) or fetched_on
        into.append(
            RawRecord(payload=payload, partition_key=partition, record_key=key, account_ref=account_id)
        )


def _preview(records: list[RawRecord], rows: int = 10) -> list[PreviewRow]:
    preview = []
    for record in records[:rows]:
        txn = loads_exact(record.payload)
        money = txn.get("transactionAmount") or {}
        preview.append(
            (
                record.partition_key,
                str(txn.get("remittanceInformationUnstructured", "")),
                str(money.get("amount")),
                str(money.get("currency")),
            )
        )
    return preview


# -- errors ----------------------------------------------------------------------------------------------


def _data_error(response: httpx.Response) -> Exception | None:
    body = _body(response)
    summary = str(body.get("summary") or "")
    kind = str(body.get("type") or "")
    where = f"{response.request.method} {_template(response.request.url.path)}"
    if response.status_code == 401:
        if kind == "AccessExpiredError" or re.search(r"agreement|EUA|revoked|expired or", summary, re.I):
            return AuthorizationRequired(
                PROVIDER, f"the bank consent (end-user agreement) has expired or was revoked ({summary})"
            )
        return AccessTokenRejected(PROVIDER, "the access token was refused (HTTP 401)")
    if response.status_code == 429:
        return _rate_limit_error(response, body, where)
    if response.status_code == 403:
        return ProviderResponseError(
            PROVIDER, f"{where}: HTTP 403 ({summary or 'forbidden'}); check the GoCardless IP allow-list"
        )
    if response.status_code == 409 and "suspend" in (summary + kind).lower():
        return AuthorizationRequired(PROVIDER, f"the account is suspended ({summary})")
    if response.status_code == 400 and kind in {"AccessExpiredError", "AccountSuspendedError"}:
        return AuthorizationRequired(PROVIDER, f"the bank consent is no longer valid ({summary})")
    if response.status_code == 400:
        fields = sorted(k for k, v in body.items() if isinstance(v, dict))
        what = f"invalid {', '.join(fields)}" if fields else (summary or "bad request")
        return ProviderResponseError(PROVIDER, f"{where}: HTTP 400 ({what})")
    return None


def _token_error(response: httpx.Response) -> Exception | None:
    if response.status_code != 401:
        return _data_error(response) if response.status_code == 429 else None
    if response.request.url.path.endswith("/token/refresh/"):
        return _TokenRejected()
    return AuthorizationRequired(
        PROVIDER,
        "the secret id/key were rejected (HTTP 401); check BANKFLOW_GOCARDLESS_SECRET_ID and "
        "BANKFLOW_GOCARDLESS_SECRET_KEY",
    )


def _rate_limit_error(response: httpx.Response, body: Mapping[str, Any], where: str) -> ProviderError:
    """The daily per-account limit (never retried) or a short platform limit (retried after its reset)."""
    headers = response.headers
    detail = str(body.get("detail") or "")
    account_remaining = headers.get("HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING")
    in_detail = _SECONDS_IN_DETAIL.search(detail)
    if account_remaining == "0" or "/day" in detail or body.get("type") == "RateLimitError":
        reset = _int(headers.get("HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_RESET"))
        if reset is None and in_detail:
            reset = int(in_detail.group(1))
        return DailyLimitReached(f"{where}: the daily request limit is reached", reset)
    retry_after = retry_after_seconds(response)
    if retry_after is None:
        retry_after = _float(headers.get("HTTP_X_RATELIMIT_RESET"))
    if retry_after is None and in_detail:
        retry_after = float(in_detail.group(1))
    return TransientProviderError(PROVIDER, f"{where}: HTTP 429 (rate limited)", retry_after=retry_after)


# -- small helpers ---------------------------------------------------------------------------------------


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _template(path: str) -> str:
    """A path with its ids replaced, so messages name the endpoint and nothing identifying."""
    return re.sub(r"/(?=[^/]*\d)[0-9A-Za-z_-]{8,}(?=/|$)", "/{id}", path)


def _token_fields(body: Any, now: datetime, *, with_refresh: bool) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("access"), str):
        raise ProviderResponseError(PROVIDER, "the token endpoint answered without an access token")
    tokens = {
        "access": body["access"],
        "access_expires_at": (now + timedelta(seconds=_int(body.get("access_expires")) or 0)).isoformat(),
    }
    if with_refresh:
        if not isinstance(body.get("refresh"), str):
            raise ProviderResponseError(PROVIDER, "POST /token/new/ answered without a refresh token")
        tokens["refresh"] = body["refresh"]
        tokens["refresh_expires_at"] = (
            now + timedelta(seconds=_int(body.get("refresh_expires")) or 0)
        ).isoformat()
    return tokens


def _is_live(tokens: Mapping[str, Any], kind: str) -> bool:
    token, expires = tokens.get(kind), tokens.get(f"{kind}_expires_at")
    if not isinstance(token, str) or not isinstance(expires, str):
        return False
    try:
        return _parse_instant(expires) - _EXPIRY_MARGIN > datetime.now(UTC)
    except ValueError:
        return False


def _parse_instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _valid_day(value: Any) -> str | None:
    return transaction_day({"bookingDate": value})


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return max(0.0, float(str(value)))
    except (TypeError, ValueError, InvalidOperation):
        return None
