"""The declarative REST connector: any bank described by a YAML file (rest_bank_config), one client.

What a YAML file cannot say is here, once for every such bank: the auth kinds (static bearer, API
key + bearer, OAuth2 client credentials with a token refetched on expiry or on a 401), the paging
kinds (page, offset, cursor, next link), the window chunking, and the mapping of each bank record to
the reconciliation seed's standard transaction format (shared/reference/bank-contracts.md §11):
signed exact amount, ISO-8601 timestamp with the bank's offset, status SUCCESS/PENDING/FAILED/REVERSED.

Raw rows are the standard record with the bank's own record under `bank_record`, so staging reads
one shape for every bank and nothing the bank sent is lost. A record missing a required field (or
with one that cannot be read) is quarantined with the reason; the rest of the run lands.
Partitions: a transaction belongs to the bank-local calendar date of its timestamp.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urljoin, urlsplit
from zoneinfo import ZoneInfo

import httpx

from resources.errors import AccessTokenRejected, AuthorizationRequired, ProviderError, ProviderResponseError
from resources.extract import Extract, PreviewRow, TableLoad, window_days
from resources.http import ApiClient, RetryPolicy, dumps_exact, loads_exact
from resources.providers.rest_bank_config import (
    REQUIRED_ACCOUNT_FIELDS,
    REQUIRED_TRANSACTION_FIELDS,
    STATUSES,
    AccountsEndpoint,
    ApiKeyAuth,
    ApiKeyBearerAuth,
    BearerAuth,
    CursorPagination,
    FieldSpec,
    NextLinkPagination,
    OAuth2ClientCredentialsAuth,
    OffsetPagination,
    PagePagination,
    RestBank,
    TransactionsEndpoint,
)
from resources.warehouse.loader import RawRecord, ReplaceScope
from resources.warehouse.quarantine import QuarantineItem

ACCOUNTS_TABLE = "rest_accounts"
BALANCES_TABLE = "rest_balances"
TRANSACTIONS_TABLE = "rest_transactions"
# A cursor or link that never ends is a bank bug; stop rather than read forever.
MAX_PAGES = 10_000
# Fetch a new client-credentials token this long before the old one expires.
TOKEN_MARGIN_SECONDS = 30.0
DEFAULT_TOKEN_SECONDS = 300
_DECIMAL_TEXT = re.compile(r"^[+-]?\d+(\.\d+)?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MISSING = object()


class RestCredentialsRejected(AuthorizationRequired):
    """Credentials missing or refused: a person must fix an environment variable.

    Not retried, like every AuthorizationRequired; the fix is the environment, not `bankflow
    connect` (a declarative bank has no consent flow), so it names the variables.
    """

    def __init__(self, bank: RestBank, message: str, fix: str | None = None) -> None:
        super().__init__(bank.name, message, fix or f"Check {' and '.join(bank.credential_envs())}")


@dataclass(frozen=True)
class RestCredentials:
    """The secrets a bank's auth needs, read from the environment variables its file names."""

    values: Mapping[str, str] = field(repr=False)

    @classmethod
    def from_env(cls, bank: RestBank, environ: Mapping[str, str] | None = None) -> RestCredentials:
        environ = os.environ if environ is None else environ
        names = bank.credential_envs()
        missing = [name for name in names if not environ.get(name)]
        if missing:
            raise RestCredentialsRejected(
                bank,
                f"{' and '.join(missing)} not set in the environment",
                fix=f"Set {' and '.join(missing)} (named in {_file(bank)})",
            )
        return cls({name: environ[name] for name in names})

    def __getitem__(self, name: str) -> str:
        return self.values[name]


def _file(bank: RestBank) -> str:
    return bank.source_file.name if bank.source_file else f"{bank.name}.yaml"


class RestBankClient:
    """Reads one declarative bank: its accounts and each account's transactions for a window."""

    def __init__(
        self,
        bank: RestBank,
        credentials: RestCredentials,
        *,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.bank = bank
        self._credentials = credentials
        self.base_url = (base_url or bank.resolved_base_url()).rstrip("/")
        self._origin = _origin(self.base_url)
        self._retry, self._timeout, self._transport = retry, timeout, transport
        self._token: str | None = None
        self._token_expires = 0.0
        oauth2 = isinstance(bank.auth, OAuth2ClientCredentialsAuth)
        self._api = ApiClient(
            provider=bank.name,
            base_url=self.base_url,
            headers=self._headers,
            error_mapper=self._data_error,
            retry=retry,
            timeout=timeout,
            transport=transport,
            # A client-credentials token refused early (revoked, rotated): one new token, one retry.
            reauthorize=self._fetch_token if oauth2 else None,
        )

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> RestBankClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- auth --------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        auth = self.bank.auth
        headers: dict[str, str] = {"Accept": "application/json"}
        if isinstance(auth, ApiKeyAuth | ApiKeyBearerAuth):
            headers[auth.api_key_header] = self._credentials[auth.api_key_env]
        if isinstance(auth, BearerAuth | ApiKeyBearerAuth):
            headers["Authorization"] = f"Bearer {self._credentials[auth.token_env]}"
        elif isinstance(auth, OAuth2ClientCredentialsAuth) and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _ensure_token(self) -> None:
        if not isinstance(self.bank.auth, OAuth2ClientCredentialsAuth):
            return
        if self._token is None or time.monotonic() >= self._token_expires - TOKEN_MARGIN_SECONDS:
            self._fetch_token()

    def _fetch_token(self) -> None:
        """A client-credentials grant (RFC 6749 §4.4) through the shared HTTP layer, with its retries."""
        auth = self.bank.auth
        assert isinstance(auth, OAuth2ClientCredentialsAuth)
        form = {"grant_type": "client_credentials", **({"scope": auth.scope} if auth.scope else {})}
        client_id, secret = self._credentials[auth.client_id_env], self._credentials[auth.client_secret_env]
        extra: dict[str, Any] = {}
        if auth.client_auth == "basic":
            extra["auth"] = httpx.BasicAuth(client_id, secret)
        else:
            form |= {"client_id": client_id, "client_secret": secret}
        with ApiClient(
            provider=self.bank.name,
            base_url=self.base_url,
            error_mapper=self._token_error,
            retry=self._retry,
            timeout=self._timeout,
            transport=self._transport,
        ) as client:
            body = client.request_json("POST", self._absolute(auth.token_url), data=form, **extra)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderResponseError(self.bank.name, "the token endpoint answered without an access_token")
        expires_in = body.get("expires_in")
        lifetime = (
            int(expires_in)
            if isinstance(expires_in, int | Decimal) and expires_in > 0
            else DEFAULT_TOKEN_SECONDS
        )
        self._token = token
        self._token_expires = time.monotonic() + lifetime

    def _get(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        self._ensure_token()
        return self._api.get_json(url, params)

    def _data_error(self, response: httpx.Response) -> ProviderError | None:
        where = f"{response.request.method} {_path(response)}"
        if response.status_code == 401 and isinstance(self.bank.auth, OAuth2ClientCredentialsAuth):
            # A declarative bank has no `bankflow connect`: if a renewed token is refused too,
            # the fix is the client's access at the bank.
            return AccessTokenRejected(
                self.bank.name,
                f"{where}: HTTP 401",
                fix=f"Check the access the bank gives the client in {self.bank.auth.client_id_env}",
            )
        if response.status_code in (401, 403):
            return RestCredentialsRejected(
                self.bank, f"{where}: the bank refused the credentials (HTTP {response.status_code})"
            )
        return None

    def _token_error(self, response: httpx.Response) -> ProviderError | None:
        if response.status_code in (400, 401, 403):
            return RestCredentialsRejected(
                self.bank,
                f"the token endpoint refused the client credentials (HTTP {response.status_code})",
            )
        return None

    # -- reads -------------------------------------------------------------------------------------

    def accounts(self) -> list[Any]:
        endpoint = self.bank.accounts
        return [
            record for page in self._pages(endpoint, endpoint.path, dict(endpoint.params)) for record in page
        ]

    def transactions(self, account_id: str, first_day: date, last_day: date) -> Iterator[Any]:
        """Every record the bank returns for the account and days [first_day, last_day], in
        chunks of at most `max_days` days."""
        endpoint = self.bank.transactions
        for start, end in day_chunks(first_day, last_day, endpoint.max_days):
            values = {
                "account_id": account_id,
                "first_day": start,
                "last_day": end,
                "end_day": end + timedelta(1),
            }
            path = endpoint.path.format(**{**values, "account_id": quote(account_id, safe="")})
            params = {name: template.format(**values) for name, template in endpoint.params.items()}
            for page in self._pages(endpoint, path, params):
                yield from page

    def _pages(
        self, endpoint: AccountsEndpoint | TransactionsEndpoint, path: str, params: dict[str, Any]
    ) -> Iterator[list[Any]]:
        """The record lists of consecutive pages, as the endpoint's pagination kind walks them."""
        paging = endpoint.pagination
        url = self._absolute(path)
        if isinstance(paging, PagePagination):
            for index in range(MAX_PAGES):
                page = paging.first_page + index
                body = self._get(
                    url, {**params, paging.page_param: page, paging.size_param: paging.page_size}
                )
                records = self._records(body, endpoint, url)
                yield records
                total = _count(self.bank, body, paging.total_pages, url)
                if (total is not None and index + 1 >= total) or (
                    total is None and len(records) < paging.page_size
                ):
                    return
        elif isinstance(paging, OffsetPagination):
            offset = 0
            for _ in range(MAX_PAGES):
                body = self._get(
                    url, {**params, paging.offset_param: offset, paging.limit_param: paging.page_size}
                )
                records = self._records(body, endpoint, url)
                yield records
                # The server's rows consumed, which may be fewer than asked for when it caps the limit.
                offset += len(records)
                total = _count(self.bank, body, paging.total, url)
                if (
                    not records
                    or (total is not None and offset >= total)
                    or (total is None and len(records) < paging.page_size)
                ):
                    return
        elif isinstance(paging, CursorPagination):
            size = {paging.size_param: paging.page_size} if paging.size_param and paging.page_size else {}
            cursor: str | None = None
            seen: set[str] = set()
            for _ in range(MAX_PAGES):
                body = self._get(url, {**params, **size, **({paging.cursor_param: cursor} if cursor else {})})
                yield self._records(body, endpoint, url)
                cursor = _text_or_none(lookup(body, paging.next_cursor))
                if not cursor:
                    return
                if cursor in seen:
                    raise ProviderResponseError(
                        self.bank.name, f"GET {path}: the next cursor repeats an earlier one"
                    )
                seen.add(cursor)
        elif isinstance(paging, NextLinkPagination):
            size = {paging.size_param: paging.page_size} if paging.size_param and paging.page_size else {}
            next_params: dict[str, Any] | None = {**params, **size}
            seen = {url}
            for _ in range(MAX_PAGES):
                body = self._get(url, next_params)
                yield self._records(body, endpoint, url)
                link = _text_or_none(lookup(body, paging.next_link))
                if not link:
                    return
                url, next_params = self._follow(link, url), None  # the link carries its own query
                if url in seen:
                    raise ProviderResponseError(
                        self.bank.name, f"GET {path}: the next link repeats an earlier page"
                    )
                seen.add(url)
        else:
            yield self._records(self._get(url, params), endpoint, url)
            return
        raise ProviderResponseError(self.bank.name, f"GET {path}: more than {MAX_PAGES} pages")

    def _absolute(self, path: str) -> str:
        # Paths in the file are under base_url (which may itself have a path, e.g. /openapi).
        if urlsplit(path).scheme:
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _follow(self, link: str, current: str) -> str:
        """A next link (absolute, or relative to the page it came from) as an absolute URL on the
        bank's own origin: the credentials must not leave it."""
        url = urljoin(current, link)
        if _origin(url) != self._origin:
            raise ProviderResponseError(
                self.bank.name,
                f"GET {urlsplit(current).path}: the next link points to another host; not followed",
            )
        return url

    def _records(self, body: Any, endpoint: AccountsEndpoint | TransactionsEndpoint, url: str) -> list[Any]:
        records = lookup(body, endpoint.records)
        if not isinstance(records, list):
            raise ProviderResponseError(
                self.bank.name, f"GET {urlsplit(url).path}: the response has no list at {endpoint.records!r}"
            )
        return records


def day_chunks(first_day: date, last_day: date, max_days: int | None) -> list[tuple[date, date]]:
    """[first_day, last_day] as consecutive inclusive windows of at most max_days days."""
    if max_days is None:
        return [(first_day, last_day)]
    chunks, start = [], first_day
    while start <= last_day:
        end = min(start + timedelta(days=max_days - 1), last_day)
        chunks.append((start, end))
        start = end + timedelta(days=1)
    return chunks


# -- mapping a bank record to the standard format -------------------------------------------------


def lookup(data: Any, path: str | None) -> Any:
    """The value at a dotted path ("meta.next", "items.0.id"); _MISSING when any step is absent."""
    if path is None:
        return _MISSING
    value = data
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


@dataclass(frozen=True)
class Mapped:
    """A bank record in the standard format, or why it cannot be."""

    record: dict[str, Any] | None
    reason: str | None = None


class _Reject(Exception):
    """One unusable field; its message is the quarantine reason."""


def map_transaction(bank: RestBank, record: Any) -> Mapped:
    """The seed's standard transaction for one bank record, with the bank's record under bank_record."""
    if not isinstance(record, dict):
        return Mapped(None, "transaction is not a JSON object")
    fields = bank.transactions.fields
    missing = [
        _named(name, fields[name]) for name in REQUIRED_TRANSACTION_FIELDS if _absent(record, fields[name])
    ]
    if missing:
        return Mapped(None, f"missing required field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    try:
        moment = _timestamp(record, fields["timestamp"], bank.zone)
        standard = {
            "txn_id": _identifier(record, "txn_id", fields["txn_id"]),
            "amount": _amount(record, fields["amount"]),
            "currency": _currency(record, fields["currency"]),
            "status": _status(record, fields["status"]),
            "timestamp": moment.isoformat(),
            "account_id": _identifier(record, "account_id", fields["account_id"]),
            "source": bank.name,
            "bank_code": _optional_text(record, "bank_code", fields.get("bank_code")) or bank.bank_code,
        }
        for name in ("channel", "transaction_type", "reference_number", "merchant_id", "description"):
            standard[name] = _optional_text(record, name, fields.get(name))
    except _Reject as exc:
        return Mapped(None, str(exc))
    return Mapped({**standard, "bank_record": record})


def map_account(bank: RestBank, record: Any) -> Mapped:
    """An account in bankflow's standard account shape, with the bank's record under bank_record."""
    if not isinstance(record, dict):
        return Mapped(None, "account is not a JSON object")
    fields = bank.accounts.fields
    missing = [
        _named(name, fields[name]) for name in REQUIRED_ACCOUNT_FIELDS if _absent(record, fields[name])
    ]
    if missing:
        return Mapped(None, f"missing required field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    try:
        standard: dict[str, Any] = {
            "account_id": _identifier(record, "account_id", fields["account_id"]),
            "currency": _currency(record, fields["currency"]),
        }
        for name in ("account_number", "branch_code", "account_type", "display_name"):
            standard[name] = _optional_text(record, name, fields.get(name))
        for name in ("balance", "available_balance"):
            spec = fields.get(name)
            standard[name] = None if spec is None or _absent(record, spec) else _amount(record, spec, name)
        standard |= {"source": bank.name, "bank_code": bank.bank_code, "bank_name": bank.display_name}
    except _Reject as exc:
        return Mapped(None, str(exc))
    return Mapped({**standard, "bank_record": record})


def _named(name: str, spec: FieldSpec) -> str:
    return f"{name} (bank field {spec.path!r})" if spec.path else name


def _raw(record: dict[str, Any], spec: FieldSpec) -> Any:
    value = spec.value if spec.value is not None else lookup(record, spec.path)
    if spec.values is not None and isinstance(value, str | int) and str(value) in spec.values:
        return spec.values[str(value)]
    return value


def _absent(record: dict[str, Any], spec: FieldSpec) -> bool:
    value = _raw(record, spec)
    return value is _MISSING or value is None or (isinstance(value, str) and not value.strip())


def _identifier(record: dict[str, Any], name: str, spec: FieldSpec) -> str:
    value = _raw(record, spec)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Reject(f"{name}: expected text or an integer, got {type(value).__name__}")
    return str(value).strip()


def _optional_text(record: dict[str, Any], name: str, spec: FieldSpec | None) -> str | None:
    if spec is None or _absent(record, spec):
        return None
    value = _raw(record, spec)
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise _Reject(f"{name}: expected text, got {type(value).__name__}")
    return str(value)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL_TEXT.match(value.strip()):
        return Decimal(value.strip())
    return None


def _amount(record: dict[str, Any], spec: FieldSpec, name: str = "amount") -> Decimal:
    value = _raw(record, spec)
    try:
        amount = _decimal(value)
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise _Reject(f"{name}: not a decimal number")
    if spec.sign is None:
        return amount
    flag = lookup(record, spec.sign.path)
    if amount < 0:
        raise _Reject(f"{name}: signed although {spec.sign.path!r} gives the direction")
    if flag in spec.sign.debit:
        return -amount
    if flag in spec.sign.credit:
        return amount
    raise _Reject(f"{name}: unknown debit/credit flag in {spec.sign.path!r}")


def _currency(record: dict[str, Any], spec: FieldSpec) -> str:
    value = _raw(record, spec)
    text = value.strip().upper() if isinstance(value, str) else ""
    if not _CURRENCY.match(text):
        raise _Reject("currency: not an ISO 4217 code")
    return text


def _status(record: dict[str, Any], spec: FieldSpec) -> str:
    value = _raw(record, spec)
    text = str(value).strip().upper() if isinstance(value, str | int) else ""
    if text not in STATUSES:
        raise _Reject(f"status: unknown value {str(value)[:40]!r}")
    return text


def _timestamp(record: dict[str, Any], spec: FieldSpec, zone: ZoneInfo) -> datetime:
    """The instant in the bank's zone: naive times are bank-local, offsets are converted."""
    value = _raw(record, spec)
    try:
        if spec.format in ("unix", "unix_ms"):
            if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
                raise ValueError
            per_second = 1000 if spec.format == "unix_ms" else 1
            micros = int((Decimal(value) * 1_000_000 / per_second).to_integral_value())
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
        elif not isinstance(value, str):
            raise ValueError
        elif spec.format:
            moment = datetime.strptime(value.strip(), spec.format)
        else:
            moment = datetime.fromisoformat(value.strip())
    except (ValueError, InvalidOperation, OverflowError):
        expected = spec.format or "ISO 8601"
        raise _Reject(f"timestamp: not a date-time in {expected}") from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(bank: RestBank, body: Any, path: str | None, url: str) -> int | None:
    if path is None:
        return None
    value = lookup(body, path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProviderResponseError(bank.name, f"GET {urlsplit(url).path}: {path!r} is not a count")
    return value


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _path(response: httpx.Response) -> str:
    return response.request.url.path


# -- one run ---------------------------------------------------------------------------------------


def extract_window(client: RestBankClient, first_day: date, last_day: date, fetched_on: date) -> Extract:
    """Accounts, their balance snapshot of today, and every transaction of days [first_day,
    last_day]; what cannot be used goes to quarantine with its reason."""
    bank = client.bank
    extract = Extract(first_day=first_day, last_day=last_day)
    days = window_days(first_day, last_day)
    fetched = fetched_on.isoformat()
    accounts: list[RawRecord] = []
    balances: list[RawRecord] = []
    for record in client.accounts():
        mapped = map_account(bank, record)
        if mapped.record is None:
            extract.quarantined.append(QuarantineItem("accounts", mapped.reason or "", dumps_exact(record)))
            continue
        account_id = mapped.record["account_id"]
        if account_id in extract.account_refs:
            extract.quarantined.append(
                QuarantineItem("accounts", "account listed twice", dumps_exact(record), account_id)
            )
            continue
        extract.account_refs.append(account_id)
        payload = dumps_exact(mapped.record)
        accounts.append(RawRecord(payload, fetched, account_id, account_id))
        if mapped.record["balance"] is not None or mapped.record["available_balance"] is not None:
            balances.append(RawRecord(payload, fetched, account_id, account_id))

    transactions: list[RawRecord] = []
    landed: dict[str, str] = {}  # txn_id -> payload
    for account_id in extract.account_refs:
        for record in client.transactions(account_id, first_day, last_day):
            outcome = _transaction_row(bank, record, account_id, days, landed)
            if isinstance(outcome, str):
                extract.quarantined.append(
                    QuarantineItem("transactions", outcome, dumps_exact(record), account_id)
                )
            elif outcome is not None:
                landed[outcome.record_key] = outcome.payload
                transactions.append(outcome)

    account_scope = extract.account_refs
    extract.loads = [
        TableLoad(ACCOUNTS_TABLE, accounts, ReplaceScope(account_refs=account_scope)),
        TableLoad(
            BALANCES_TABLE, balances, ReplaceScope(partition_keys=[fetched], account_refs=account_scope)
        ),
        TableLoad(
            TRANSACTIONS_TABLE,
            transactions,
            ReplaceScope(partition_keys=days, account_refs=account_scope),
            preview=_preview(transactions),
        ),
    ]
    return extract


def _transaction_row(
    bank: RestBank, record: Any, account_id: str, days: list[str], landed: Mapping[str, str]
) -> RawRecord | str | None:
    """The raw row of one bank record; a str is why it is quarantined; None is a repeat of a row
    already taken (the same record on two pages when rows shift while paging)."""
    mapped = map_transaction(bank, record)
    if mapped.record is None:
        return mapped.reason or "unusable record"
    payload = dumps_exact(mapped.record)
    day, txn_id = mapped.record["timestamp"][:10], mapped.record["txn_id"]
    if mapped.record["account_id"] != account_id:
        return f"a record of account {mapped.record['account_id']!r} in the list of {account_id!r}"
    if day not in days:
        return f"dated {day}, outside the requested days {days[0]} .. {days[-1]}"
    if txn_id in landed:
        return None if landed[txn_id] == payload else "txn_id already seen in this run with different content"
    return RawRecord(payload, day, txn_id, account_id)


def _preview(records: list[RawRecord], rows: int = 10) -> list[PreviewRow]:
    preview = []
    for record in records[:rows]:
        txn = loads_exact(record.payload)
        preview.append(
            (record.partition_key, str(txn.get("description") or ""), str(txn["amount"]), txn["currency"])
        )
    return preview
