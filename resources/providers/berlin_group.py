"""Berlin Group NextGenPSD2 AIS: consent + OAuth/PKCE, accounts, balances, paged transactions.

Contract: shared/reference/bank-contracts.md §1 and §7. Configured per bank (base URL, token URL,
consent path, PKCE on/off); nothing here is Banca Transilvania specific.

- Every call carries a fresh `X-Request-ID`; account reads carry `Consent-ID` and the bearer token.
- Transactions are read with `bookingStatus=both`, following `transactions._links.next` to the end.
- Identity: entryReference > transactionId > a stable hash of the row's content (pending rows often
  have only a transactionId that changes when they book, so pending sets are replaced whole).
- Amounts stay strings from the wire to the warehouse; they are only parsed to check them.
- `ACCESS_EXCEEDED` (frequencyPerDay used up) defers that account until the next day;
  `CONSENT_EXPIRED`/`CONSENT_INVALID` stop the source with a reconnect message; `TOKEN_EXPIRED`
  refreshes once; `PERIOD_INVALID` shrinks the window to what the bank still serves.
- Account reads are planned with the CallBudget: stalest accounts first, and a call is counted only
  when it succeeded (a retried or continued read is one call).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_token_request

from resources.call_budget import CallBudget
from resources.concurrency import map_in_order
from resources.errors import AccessTokenRejected, AuthorizationRequired, ProviderError, ProviderResponseError
from resources.extract import Extract, PreviewRow, TableLoad, impossible_dates, window_days
from resources.http import ApiClient, RetryPolicy, dumps_exact, loads_exact, retry_after_seconds
from resources.vault import TokenVault
from resources.warehouse.loader import RawRecord, ReplaceScope
from resources.warehouse.quarantine import QuarantineItem

PROVIDER = "berlin_group"
# The transaction's date fields staging casts (bank-contracts §1.5); GoCardless shares the schema.
DATE_FIELDS = ("bookingDate", "valueDate", "bookingDateTime", "valueDateTime")
# Amount pattern of the spec (`-?[0-9]{1,14}(\.[0-9]{1,3})?`), checked by parsing, not by float.
MAX_AMOUNT_DIGITS = 14
# History caps banks commonly apply, tried in this order when a dateFrom is refused (PERIOD_INVALID):
# the inclusive/exclusive reading of a 90-day cap differs between banks, hence 90 and 89.
HISTORY_CAPS_DAYS = (730, 395, 365, 180, 90, 89, 60, 30, 14, 7, 1, 0)
AUTH_CODES = frozenset(
    {"CONSENT_EXPIRED", "CONSENT_INVALID", "CONSENT_UNKNOWN", "TOKEN_INVALID", "TOKEN_UNKNOWN"}
)


@dataclass(frozen=True)
class BerlinGroupConfig:
    """One BG bank. `authorize_url` empty: discovered from the consent's scaOAuth/scaRedirect link."""

    base_url: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    consent_path: str = "/v1/consents"
    authorize_url: str = ""
    pkce: bool = True
    redirect_uri: str = "http://127.0.0.1:3000/callback"
    # The TPP's own address: PSU-IP-Address is mandatory on consent creation and, when the PSU is
    # not present, the spec says to send the TPP's IP. Never sent on unattended reads.
    tpp_ip_address: str = "127.0.0.1"
    frequency_per_day: int = 4
    consent_days: int = 180


class AccessExceeded(ProviderError):
    """429 ACCESS_EXCEEDED for the day: frequencyPerDay is used up; try again tomorrow."""


class PeriodInvalid(ProviderResponseError):
    """400 PERIOD_INVALID: the requested dates are out of what the bank serves."""


@dataclass(frozen=True)
class PendingConsent:
    """What `start_consent` hands to the connect command: where to send the user and what to keep."""

    authorization_url: str
    state: str
    code_verifier: str | None = field(repr=False)
    consent_id: str
    redirect_uri: str

    @property
    def url(self) -> str:
        return self.authorization_url


class BerlinGroupAuth:
    """Consent creation and the OAuth token endpoint."""

    def __init__(self, config: BerlinGroupConfig, retry: RetryPolicy | None = None) -> None:
        self.config = config
        self._retry = retry

    def _api(self) -> ApiClient:
        return ApiClient(
            provider=PROVIDER,
            base_url=self.config.base_url,
            headers=_request_id,
            error_mapper=_data_error,
            retry=self._retry,
        )

    def create_consent(self, valid_until: date | None = None) -> dict[str, Any]:
        """POST the consent (all PSD2 accounts, recurring); returns the 201 body."""
        until = valid_until or (datetime.now(UTC).date() + timedelta(days=self.config.consent_days))
        body = {
            "access": {"allPsd2": "allAccounts"},
            "recurringIndicator": True,
            "validUntil": until.isoformat(),
            "frequencyPerDay": self.config.frequency_per_day,
            "combinedServiceIndicator": False,
        }
        headers = {
            "Content-Type": "application/json",
            "PSU-IP-Address": self.config.tpp_ip_address,
            "TPP-Redirect-URI": self.config.redirect_uri,
            "TPP-Redirect-Preferred": "true",
        }
        with self._api() as api:
            created = api.request_json(
                "POST", self.config.consent_path, content=dumps_exact(body), headers=headers
            )
        if not isinstance(created, dict) or not isinstance(created.get("consentId"), str):
            raise ProviderResponseError(PROVIDER, "consent creation answered without a consentId")
        return created

    def consent(self, consent_id: str) -> dict[str, Any]:
        """The consent object (validUntil as adjusted by the bank, consentStatus)."""
        with self._api() as api:
            body = api.get_json(f"{self.config.consent_path.rstrip('/')}/{consent_id}")
        if not isinstance(body, dict):
            raise ProviderResponseError(PROVIDER, "GET consent: not a JSON object")
        return body

    def authorization_endpoint(self, created: Mapping[str, Any]) -> str:
        if self.config.authorize_url:
            return self.config.authorize_url
        links = created.get("_links") or {}
        oauth = (links.get("scaOAuth") or {}).get("href")
        if oauth:
            with ApiClient(provider=PROVIDER, base_url=self.config.base_url, retry=self._retry) as api:
                meta = api.get_json(oauth)
            endpoint = meta.get("authorization_endpoint") if isinstance(meta, dict) else None
            if isinstance(endpoint, str):
                return endpoint
        redirect = (links.get("scaRedirect") or {}).get("href")
        if isinstance(redirect, str):
            return redirect
        raise ProviderResponseError(
            PROVIDER, "the consent has no scaOAuth/scaRedirect link and no authorize URL is set"
        )

    def authorization_url(
        self, endpoint: str, consent_id: str, state: str, code_challenge: str | None
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": f"AIS:{consent_id}",
            "state": state,
        }
        if code_challenge:
            params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
        separator = "&" if "?" in endpoint else "?"
        return f"{endpoint}{separator}{urlencode(params)}"

    def exchange_code(self, code: str, code_verifier: str | None) -> dict[str, Any]:
        params = {"code": code, "redirect_uri": self.config.redirect_uri}
        if code_verifier:
            params["code_verifier"] = code_verifier
        return self._token_request("authorization_code", **params)

    def refresh(self, tokens: Mapping[str, Any]) -> dict[str, Any]:
        """New access token; keeps the consent fields and the refresh token unless the bank rotates it."""
        refresh_token = tokens.get("refresh_token")
        if not refresh_token:
            raise AuthorizationRequired(PROVIDER, "the stored connection has no refresh token")
        refreshed = self._token_request("refresh_token", refresh_token=refresh_token)
        refreshed.setdefault("refresh_token", refresh_token)
        for name in ("consent_id", "consent_valid_until"):
            refreshed[name] = tokens.get(name)
        return refreshed

    def _token_request(self, grant_type: str, **params: str) -> dict[str, Any]:
        body = prepare_token_request(
            grant_type, client_id=self.config.client_id, client_secret=self.config.client_secret, **params
        )
        with ApiClient(
            provider=PROVIDER, base_url=self.config.token_url, error_mapper=_auth_error, retry=self._retry
        ) as client:
            # The token URL is absolute (often another host than the API); pass it whole.
            tokens = client.request_json(
                "POST",
                self.config.token_url,
                content=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        if not isinstance(tokens, dict) or "access_token" not in tokens:
            raise ProviderResponseError(
                PROVIDER, f"token endpoint answered without an access_token ({grant_type})"
            )
        tokens["obtained_at"] = datetime.now(UTC).isoformat()
        return tokens


def start_consent(auth: BerlinGroupAuth, valid_until: date | None = None) -> PendingConsent:
    """Create the consent at the bank and build the link the user opens to approve it."""
    created = auth.create_consent(valid_until)
    consent_id = created["consentId"]
    verifier = secrets.token_urlsafe(64) if auth.config.pkce else None
    state = secrets.token_urlsafe(16)
    url = auth.authorization_url(
        auth.authorization_endpoint(created),
        consent_id,
        state,
        pkce_challenge(verifier) if verifier else None,
    )
    return PendingConsent(url, state, verifier, consent_id, auth.config.redirect_uri)


def finish_consent(
    code: str,
    pending: PendingConsent,
    *,
    auth: BerlinGroupAuth,
    vault: TokenVault | None = None,
    connection_name: str = PROVIDER,
) -> dict[str, Any]:
    """Trade the code for tokens, read back the consent's (bank-adjusted) validity and store it all.

    Returns the tokens dict (access/refresh token, consent_id, consent_valid_until); it holds secrets.
    """
    tokens = auth.exchange_code(code, pending.code_verifier)
    consent = auth.consent(pending.consent_id)
    if consent.get("consentStatus") != "valid":
        raise AuthorizationRequired(
            PROVIDER, f"the consent was not approved (status {consent.get('consentStatus')!r})"
        )
    tokens["consent_id"] = pending.consent_id
    tokens["consent_valid_until"] = consent.get("validUntil")
    if vault is not None:
        vault.save(connection_name, PROVIDER, tokens, consent_expires_at(tokens))
    return tokens


def consent_expires_at(tokens: Mapping[str, Any]) -> datetime | None:
    """End of the consent's last valid day (validUntil is inclusive), UTC."""
    until = tokens.get("consent_valid_until")
    if not isinstance(until, str):
        return None
    return datetime.combine(date.fromisoformat(until) + timedelta(days=1), datetime.min.time(), UTC)


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class BerlinGroupClient:
    """AIS reads under one consent. `refresh` is called on TOKEN_EXPIRED and returns a new access token."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        consent_id: str,
        *,
        refresh: Callable[[], str] | None = None,
        psu_ip_address: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        concurrency: int = 1,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Accounts read at once: frequencyPerDay is per account, so this spends no extra call.
        self.concurrency = concurrency
        self._token = access_token
        self._consent_id = consent_id
        self._psu_ip = psu_ip_address
        # The oldest dateFrom the bank accepted or None; learnt from PERIOD_INVALID, kept for the run.
        self.history_floor: date | None = None
        self._api = ApiClient(
            provider=PROVIDER,
            base_url=self.base_url,
            headers=self._headers,
            error_mapper=lambda response: _data_error(response, (retry or RetryPolicy()).retry_after_max),
            retry=retry,
            timeout=timeout,
            transport=transport,
            reauthorize=(lambda: self._use_token(refresh())) if refresh else None,
        )

    def _use_token(self, access_token: str) -> None:
        self._token = access_token

    def _headers(self) -> dict[str, str]:
        # Called per request (retries included): every call gets its own X-Request-ID.
        headers = {
            **_request_id(),
            "Consent-ID": self._consent_id,
            "Authorization": f"Bearer {self._token}",
        }
        # PSU-IP-Address marks the read as user-present (not counted against frequencyPerDay);
        # unattended runs must not claim that.
        if self._psu_ip:
            headers["PSU-IP-Address"] = self._psu_ip
        return headers

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> BerlinGroupClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self._api.get_json(path, params)

    def accounts(self) -> list[dict[str, Any]]:
        body = self._get("/v1/accounts")
        accounts = body.get("accounts") if isinstance(body, dict) else None
        if not isinstance(accounts, list):
            raise ProviderResponseError(PROVIDER, "GET /v1/accounts: no 'accounts' list in the response")
        return accounts

    def balances(self, resource_id: str) -> dict[str, Any]:
        body = self._get(f"/v1/accounts/{resource_id}/balances")
        if not isinstance(body, dict) or not isinstance(body.get("balances"), list):
            raise ProviderResponseError(PROVIDER, "GET balances: no 'balances' list in the response")
        return body

    def transactions(
        self, resource_id: str, first_day: date, last_day: date, today: date
    ) -> tuple[date, list[dict[str, Any]], list[dict[str, Any]]]:
        """(first day actually served, booked rows, pending rows) for [first_day, last_day].

        On PERIOD_INVALID the window start moves forward to the next common history cap; the
        caller must not replace days before the first day served.
        """
        start = max(first_day, self.history_floor) if self.history_floor else first_day
        while True:
            try:
                booked, pending = self._transaction_pages(resource_id, start, last_day)
                self.history_floor = max(start, self.history_floor) if self.history_floor else start
                return start, booked, pending
            except PeriodInvalid:
                later = [today - timedelta(days=cap) for cap in HISTORY_CAPS_DAYS]
                candidates = [day for day in later if start < day <= last_day]
                if not candidates:
                    raise
                start = candidates[0]

    def _transaction_pages(
        self, resource_id: str, first_day: date, last_day: date
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        path: str | None = f"/v1/accounts/{resource_id}/transactions"
        params: dict[str, str] | None = {
            "dateFrom": first_day.isoformat(),
            "dateTo": last_day.isoformat(),
            "bookingStatus": "both",
        }
        booked: list[dict[str, Any]] = []
        pending: list[dict[str, Any]] = []
        seen: set[str] = set()
        while path is not None:
            body = self._get(path, params)
            report = body.get("transactions") if isinstance(body, dict) else None
            if not isinstance(report, dict):
                raise ProviderResponseError(
                    PROVIDER, "GET transactions: no 'transactions' report in the response"
                )
            booked += _list(report, "booked")
            pending += _list(report, "pending")
            path, params = self._next_page(report, seen), None
        return booked, pending

    def _next_page(self, report: Mapping[str, Any], seen: set[str]) -> str | None:
        links = report.get("_links")
        href = ((links or {}).get("next") or {}).get("href") if isinstance(links, dict) else None
        if not isinstance(href, str) or not href:
            return None
        url = urljoin(self.base_url + "/", href)
        # The bearer token only goes back to the bank that issued it.
        if urlsplit(url)[:2] != urlsplit(self.base_url)[:2]:
            raise ProviderResponseError(PROVIDER, "a _links.next points to another host; not followed")
        if url in seen:
            raise ProviderResponseError(PROVIDER, "_links.next repeats a page already read")
        seen.add(url)
        return url


def _list(report: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    rows = report.get(name) or []
    if not isinstance(rows, list):
        raise ProviderResponseError(PROVIDER, f"GET transactions: '{name}' is not a list")
    return rows


# -- extract -----------------------------------------------------------------------------------------


@dataclass
class BerlinGroupExtract(Extract):
    """An Extract plus what the call budget deferred to another day and where the window was cut."""

    deferred: list[str] = field(default_factory=list)
    requested_first_day: date | None = None


def account_ref(account: Mapping[str, Any]) -> str | None:
    """An account's lasting key: IBAN (resourceId changes with every consent), else the resourceId."""
    iban = account.get("iban")
    if isinstance(iban, str) and iban:
        return iban.replace(" ", "").upper()
    resource_id = account.get("resourceId")
    return f"resource:{resource_id}" if isinstance(resource_id, str) and resource_id else None


def extract_window(
    client: BerlinGroupClient,
    first_day: date,
    last_day: date,
    fetched_on: date,
    budget: CallBudget | None = None,
) -> BerlinGroupExtract:
    """Accounts, a balance snapshot, booked rows for the window and the pending set, per account.

    With a budget, accounts are read stalest first and one whose budget is spent (by us, or as the
    bank says with ACCESS_EXCEEDED) is deferred: its rows are left as they are. Booked rows replace
    the days actually served (see PERIOD_INVALID) for the accounts read.
    """
    extract = BerlinGroupExtract(first_day=first_day, last_day=last_day, requested_first_day=first_day)
    accounts_by_ref: dict[str, tuple[str, dict[str, Any]]] = {}
    if not _has_budget(budget, "*", "accounts"):
        extract.deferred.append("*")
        return extract
    try:
        listed = _call(budget, "*", "accounts", client.accounts)
    except AccessExceeded:
        _exhaust(budget, "*", ("accounts",))
        extract.deferred.append("*")
        return extract
    for account in listed:
        ref, resource_id = account_ref(account), account.get("resourceId")
        if ref is None or not isinstance(resource_id, str) or not resource_id:
            extract.quarantined.append(
                QuarantineItem("accounts", "account without resourceId/IBAN", dumps_exact(account), None)
            )
            continue
        accounts_by_ref[ref] = (resource_id, account)
    refs = list(accounts_by_ref)
    if budget is not None:
        refs = budget.stalest_first(refs, "transactions")

    def pull(ref: str) -> tuple[dict, dict, date, list, list] | None:
        """One account's balances and transactions; None when its budget is spent (deferred)."""
        resource_id, account = accounts_by_ref[ref]
        if not (_has_budget(budget, ref, "balances") and _has_budget(budget, ref, "transactions")):
            return None
        try:
            balances = _call(budget, ref, "balances", lambda: client.balances(resource_id))
            # The client starts where the bank's history begins once a PERIOD_INVALID taught it.
            start, booked, pending = _call(
                budget,
                ref,
                "transactions",
                lambda: client.transactions(resource_id, first_day, last_day, fetched_on),
            )
        except AccessExceeded:
            _exhaust(budget, ref, ("balances", "transactions"))
            return None
        return account, balances, start, booked, pending

    fetched: dict[str, tuple[dict, dict, date, list, list]] = {}
    served_from = first_day
    for ref, got in zip(refs, map_in_order(pull, refs, client.concurrency), strict=True):
        if got is None:
            extract.deferred.append(ref)
            continue
        served_from = max(served_from, got[2])
        fetched[ref] = got
    extract.first_day = served_from
    days = window_days(served_from, last_day)
    accounts, balances_rows, booked_rows, pending_rows = [], [], [], []
    for ref, (account, balances, _start, booked, pending) in fetched.items():
        extract.account_refs.append(ref)
        accounts.append(RawRecord(dumps_exact(account), fetched_on.isoformat(), ref, ref))
        balances_rows.append(
            RawRecord(dumps_exact(balances), fetched_on.isoformat(), f"{ref}:{fetched_on.isoformat()}", ref)
        )
        _keep_all(extract, booked_rows, "transactions", booked, ref, days, served_from, fetched_on)
        if last_day >= fetched_on:
            _keep_all(
                extract, pending_rows, "pending_transactions", pending, ref, None, served_from, fetched_on
            )
    refs_read = extract.account_refs
    # The bank answers pending items dated within the asked window only: a window ending before
    # today (a backfill, a re-run of an old day) would replace the current pending set with the
    # part of it that falls in that window. Only a pull reaching today replaces the set.
    pending_refs = refs_read if last_day >= fetched_on else []
    extract.loads = [
        TableLoad("berlin_group_accounts", accounts, ReplaceScope(account_refs=refs_read)),
        TableLoad(
            "berlin_group_balances",
            balances_rows,
            ReplaceScope(partition_keys=[fetched_on.isoformat()], account_refs=refs_read),
        ),
        TableLoad(
            "berlin_group_transactions",
            booked_rows,
            ReplaceScope(partition_keys=days, account_refs=refs_read),
            preview=_preview(booked_rows),
        ),
        TableLoad(
            "berlin_group_pending_transactions",
            pending_rows,
            ReplaceScope(account_refs=pending_refs),
            preview=_preview(pending_rows),
        ),
    ]
    return extract


def _has_budget(budget: CallBudget | None, ref: str, scope: str) -> bool:
    return budget is None or budget.remaining(ref, scope) > 0


def _call(budget: CallBudget | None, ref: str, scope: str, call: Callable[[], Any]) -> Any:
    """Run one budgeted read (its pages, retries and token refresh included); spend only on success."""
    result = call()
    if budget is not None:
        budget.spend(ref, scope)
    return result


def _exhaust(budget: CallBudget | None, ref: str, scopes: Sequence[str]) -> None:
    """The bank counted more than our ledger (another client, a lost response): align with it so no
    more unattended calls go out today."""
    if budget is not None:
        for scope in scopes:
            budget.exhaust(ref, scope)


def record_key(txn: Mapping[str, Any], occurrence: int = 0) -> str:
    """The contract's identity order: entryReference, transactionId, else a content hash.

    Two identical rows on one day (two equal coffees) get the same hash; `occurrence` (their order in
    the response) keeps them apart.
    """
    for name in ("entryReference", "transactionId"):
        value = given_id(txn.get(name))
        if value is not None:
            return f"{'er' if name == 'entryReference' else 'tx'}:{value}"
    return f"h:{content_hash(txn)}:{occurrence}"


def given_id(value: Any) -> str | None:
    """An id the bank really gave: Berlin Group banks fill unknown ones with "NOTPROVIDED" (or
    leave them empty), and two such rows are not one movement (staging reads them the same way)."""
    if isinstance(value, str) and value.strip() and value != "NOTPROVIDED":
        return value
    return None


def content_hash(txn: Mapping[str, Any]) -> str:
    amount = txn.get("transactionAmount") or {}
    counterparty = (txn.get("creditorAccount") or {}) if _is_debit(txn) else (txn.get("debtorAccount") or {})
    parts = [
        txn.get("bookingDate") or txn.get("valueDate"),
        amount.get("amount") if isinstance(amount, dict) else None,
        amount.get("currency") if isinstance(amount, dict) else None,
        counterparty.get("iban") if isinstance(counterparty, dict) else None,
        txn.get("remittanceInformationUnstructured"),
    ]
    return hashlib.sha256("|".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:32]


def _is_debit(txn: Mapping[str, Any]) -> bool:
    amount = (txn.get("transactionAmount") or {}).get("amount")
    return isinstance(amount, str) and amount.startswith("-")


def parse_amount(txn: Mapping[str, Any]) -> Decimal | None:
    """The signed amount if it is a spec-shaped decimal string with a currency, else None."""
    money = txn.get("transactionAmount")
    if not isinstance(money, dict) or not isinstance(money.get("currency"), str):
        return None
    text = money.get("amount")
    if not isinstance(text, str):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if (
        not value.is_finite()
        or value.as_tuple().exponent < -3
        or len(text.lstrip("-").split(".")[0]) > MAX_AMOUNT_DIGITS
    ):
        return None
    return value


def entry_day(txn: Mapping[str, Any]) -> str | None:
    """bookingDate for booked rows; pending rows fall back to valueDate (contract 1.5)."""
    for name in ("bookingDate", "valueDate"):
        value = txn.get(name)
        if isinstance(value, str):
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                return None
    return None


def _keep_all(
    extract: Extract,
    into: list[RawRecord],
    entity: str,
    rows: Sequence[Any],
    ref: str,
    allowed_days: Sequence[str] | None,
    served_from: date,
    fetched_on: date,
) -> None:
    occurrences: dict[str, int] = {}
    keys: set[str] = set()
    allowed = set(allowed_days) if allowed_days is not None else None
    for txn in rows:
        payload = dumps_exact(txn)
        if not isinstance(txn, dict):
            extract.quarantined.append(QuarantineItem(entity, "not a JSON object", payload, ref))
            continue
        if entity == "pending_transactions":
            # A pending row without any date is still money on its way: file it under the fetch day.
            day = entry_day(txn) or fetched_on.isoformat()
        else:
            day = txn.get("bookingDate")
        reason = impossible_dates(txn, DATE_FIELDS)
        if reason is not None:
            pass
        elif parse_amount(txn) is None:
            reason = "transactionAmount is missing or not a decimal string with a currency"
        elif day is None or entry_day({"bookingDate": day}) is None:
            reason = "no valid bookingDate" if entity == "transactions" else "no valid bookingDate/valueDate"
        elif allowed is not None and day not in allowed:
            if day < served_from.isoformat():
                # Fetched for an earlier account before the bank cut the window: the day is outside
                # what this run replaces, so the row is kept aside (never silently dropped).
                reason = f"bookingDate {day} is before {served_from}, where the bank cut the window"
            else:
                reason = f"bookingDate {day} is outside the requested window"
        if reason:
            extract.quarantined.append(QuarantineItem(entity, reason, payload, ref))
            continue
        base = content_hash(txn)
        occurrence = occurrences.get(base, 0)
        occurrences[base] = occurrence + 1
        key = record_key(txn, occurrence)
        if key in keys:
            extract.quarantined.append(QuarantineItem(entity, f"duplicate identity {key}", payload, ref))
            continue
        keys.add(key)
        into.append(RawRecord(payload=payload, partition_key=day, record_key=key, account_ref=ref))


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


# -- errors ------------------------------------------------------------------------------------------


def tpp_codes(response: httpx.Response) -> list[str]:
    """Error codes from a NextGenPSD2 body: `tppMessages` as an array or a single object, or
    RFC 7807 `code`/`additionalErrors`."""
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    messages = body.get("tppMessages")
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list):
        messages = [body, *(body.get("additionalErrors") or [])]
    codes = [m.get("code") for m in messages if isinstance(m, dict)]
    return [c for c in codes if isinstance(c, str) and len(c) < 80]


def _data_error(
    response: httpx.Response, retry_after_max: float = RetryPolicy.retry_after_max
) -> ProviderError | None:
    codes = tpp_codes(response)
    status = response.status_code
    shown = ", ".join(codes) or "no code"
    if "TOKEN_EXPIRED" in codes:
        return AccessTokenRejected(PROVIDER, "the access token expired (TOKEN_EXPIRED)")
    if "CONSENT_EXPIRED" in codes:
        return AuthorizationRequired(PROVIDER, f"the consent has expired (HTTP {status} CONSENT_EXPIRED)")
    if AUTH_CODES & set(codes) or status == 401:
        return AuthorizationRequired(
            PROVIDER, f"the consent or token is no longer valid (HTTP {status} {shown})"
        )
    if "PERIOD_INVALID" in codes:
        return PeriodInvalid(PROVIDER, "the requested dates are out of what the bank serves (PERIOD_INVALID)")
    if status == 429 and "ACCESS_EXCEEDED" in codes:
        retry_after = retry_after_seconds(response)
        # A short Retry-After is a gateway throttle: let the shared layer wait and retry. Without one,
        # or with one past the in-run limit, it is frequencyPerDay: nothing works until tomorrow.
        if retry_after is not None and retry_after <= retry_after_max:
            return None
        return AccessExceeded(PROVIDER, "frequencyPerDay is used up for today (ACCESS_EXCEEDED)")
    if codes and status not in (429, 500, 502, 503, 504):
        return ProviderResponseError(
            PROVIDER, f"{response.request.method} {response.request.url.path}: HTTP {status} ({shown})"
        )
    return None


def _auth_error(response: httpx.Response) -> ProviderError | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    if code in {"invalid_grant", "access_denied", "invalid_scope"}:
        return AuthorizationRequired(PROVIDER, f"the consent is no longer valid ({code})")
    if code in {"invalid_client", "unauthorized_client"}:
        return AuthorizationRequired(
            PROVIDER,
            f"client credentials were rejected ({code}); check BANKFLOW_BERLIN_GROUP_CLIENT_ID/SECRET",
        )
    return None


def _request_id() -> dict[str, str]:
    return {"X-Request-ID": str(uuid.uuid4())}
