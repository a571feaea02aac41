"""Fibank (First Investment Bank, BG) retail e-banking, read the way its web app reads it.

Contract: shared/reference/bank-contracts.md §6. Not Fibank's PSD2 API: a browser-style login
(session cookies, a CSRF token from the login page, an OAuth2 implicit-grant token read from a
redirect's fragment), then the web app's JSON calls with its EBank-* headers. The token lives in
this process only; a refused one means one fresh login.

Statements come from GetCustBal, one IBAN and at most 30 days per call (the UI refuses longer
periods), so a window is read as consecutive chunks of whole Sofia days. A statement carries
summary rows next to the movements: opening and closing balance (OP, CL) and debit and credit
turnover (DT, CT). They are not money movements and are not landed as transactions (counted
instead); the closing row of a statement that reaches today is the balance snapshot. Movements
are keyed by acEntrySrNo. Times are Europe/Sofia wall-clock with an offset that changes with
daylight saving (+0200 / +0300): a movement's booking day is its Sofia calendar day.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx

from resources.concurrency import map_in_order
from resources.errors import (
    AccessTokenRejected,
    AuthorizationRequired,
    ProviderError,
    ProviderResponseError,
)
from resources.extract import Extract, PreviewRow, TableLoad, impossible_dates, window_days
from resources.http import ApiClient, RetryPolicy, dumps_exact, loads_exact
from resources.rate_limit import RateLimiter
from resources.warehouse.loader import RawRecord, ReplaceScope
from resources.warehouse.quarantine import QuarantineItem

PROVIDER = "fibank"
CLIENT_ID = "E_BANK"
SOFIA = ZoneInfo("Europe/Sofia")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# The e-banking UI refuses a statement period longer than this many calendar days.
MAX_QUERY_DAYS = 30
SUMMARY_TYPES = ("OP", "CL", "DT", "CT")
# dtkt is undocumented (contract §6); these are the spellings of debit and credit we accept.
# Any other value is quarantined rather than guessed: it decides the sign of the amount.
DEBIT_FLAGS = frozenset({"D", "Д"})
CREDIT_FLAGS = frozenset({"C", "K", "К"})

LOGIN_PATH = "/oauth2-server/login"
AUTHORIZE_PATH = "/oauth2-server/oauth/authorize"
CERTIFICATES_PATH = "/oauth2-server/api/v1/sywscertificate/fnGetCertsForLogin"
API_PREFIX = "/EBank/api/v1"
_MAX_REDIRECTS = 5

TABLES = ("fibank_accounts", "fibank_balances", "fibank_transactions")


@dataclass(frozen=True)
class FibankConfig:
    base_url: str
    username: str = field(repr=False)
    password: str = field(repr=False)
    # Sent as EBank-Device-Id, as the web app sends its browser's id.
    device_id: str = "bankflow"


class CredentialsRejected(AuthorizationRequired):
    """The bank refused the e-banking login. No consent to renew: the settings must be fixed."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            PROVIDER,
            detail,
            fix="Check BANKFLOW_FIBANK_USERNAME and BANKFLOW_FIBANK_PASSWORD (the my.fibank.bg login)",
        )


# -- time ----------------------------------------------------------------------------------------------


def sofia_time(moment: datetime) -> str:
    """A moment as the web app writes it: Sofia wall-clock time with the offset Sofia has then
    (+0300 in summer; the reference connector hard-codes +0200 and is an hour off half the year)."""
    return moment.astimezone(SOFIA).strftime(TIME_FORMAT)


def sofia_day(text: object) -> date | None:
    """The Sofia calendar day of a bank date-time (`2025-07-01T00:30:00+0300` -> 2025-07-01);
    None if the text is not a date-time with an offset."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, TIME_FORMAT).astimezone(SOFIA).date()
    except ValueError:
        return None


def query_windows(first_day: date, last_day: date, max_days: int = MAX_QUERY_DAYS) -> list[tuple[date, date]]:
    """[first_day, last_day] as consecutive periods of at most `max_days` whole days: no gap, no overlap."""
    windows = []
    start = first_day
    while start <= last_day:
        end = min(start + timedelta(days=max_days - 1), last_day)
        windows.append((start, end))
        start = end + timedelta(days=1)
    return windows


def period_bounds(first_day: date, last_day: date) -> tuple[str, str]:
    """FromDate and ToDate of whole Sofia days: the first day's 00:00:00 to the last day's 23:59:59."""
    start = datetime.combine(first_day, time(0), tzinfo=SOFIA)
    end = datetime.combine(last_day, time(23, 59, 59), tzinfo=SOFIA)
    return start.strftime(TIME_FORMAT), end.strftime(TIME_FORMAT)


# -- login ---------------------------------------------------------------------------------------------


class _MetaTags(HTMLParser):
    """The <meta name=... content=...> pairs of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.content: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            values = dict(attrs)
            name, content = values.get("name"), values.get("content")
            if name and content is not None:
                self.content.setdefault(name, content)


def meta_content(html: str, name: str) -> str | None:
    parser = _MetaTags()
    parser.feed(html)
    parser.close()
    return parser.content.get(name)


class FibankLogin:
    """The web app's login, step by step (contract §6), in a fresh cookie jar each time."""

    def __init__(
        self,
        config: FibankConfig,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config
        self._retry, self._timeout, self._transport = retry, timeout, transport
        self._rate_limiter = rate_limiter

    def access_token(self) -> str:
        """Sign in and return the session's access token (never stored outside this process)."""
        state = str(uuid.uuid4())
        with ApiClient(
            provider=PROVIDER,
            base_url=self.config.base_url,
            headers=lambda: {"Accept-Language": "bg", "User-Agent": "bankflow"},
            retry=self._retry,
            timeout=self._timeout,
            transport=self._transport,
            rate_limiter=self._rate_limiter,
            secret_params=("userName",),
        ) as web:
            # The session cookie first; the authorize request then lands on the login page.
            web.request("GET", LOGIN_PATH, params={"client_id": CLIENT_ID})
            page = web.request(
                "GET",
                AUTHORIZE_PATH,
                params={
                    "response_type": "token",
                    "client_id": CLIENT_ID,
                    "redirect_uri": "/EBank/",
                    "scope": "E_BANK",
                    "state": state,
                },
                follow_redirects=True,
            )
            csrf = meta_content(page.text, "_csrf")
            if not csrf:
                raise ProviderResponseError(
                    PROVIDER, "the login page has no _csrf meta tag (has it changed?)"
                )
            certificates = web.request_json(
                "GET", CERTIFICATES_PATH, params={"client_id": CLIENT_ID, "userName": self.config.username}
            )
            if certificates:
                raise CredentialsRejected(
                    "this user signs in with a certificate, which bankflow cannot do; use a password-only user"
                )
            response = web.request(
                "POST",
                LOGIN_PATH,
                data={
                    "username": self.config.username,
                    "password": self.config.password,
                    "system": "",
                    "client_id": CLIENT_ID,
                    "lang": "bg",
                    "time": sofia_time(datetime.now(UTC)),
                    "_csrf": csrf,
                    "sig": "",
                },
            )
            return _token_from_redirects(web, response, state)


def _token_from_redirects(web: ApiClient, response: httpx.Response, state: str) -> str:
    """Follow the login's redirects until one carries `#access_token=` in its fragment."""
    for _ in range(_MAX_REDIRECTS):
        if not response.is_redirect:
            break
        location = httpx.URL(response.headers["location"])
        fragment = parse_qs(location.fragment)
        if "access_token" in fragment:
            if fragment.get("state") != [state]:
                raise ProviderResponseError(PROVIDER, "the token redirect's state is not this login's")
            return fragment["access_token"][0]
        if location.path == LOGIN_PATH and "error" in location.params:
            raise CredentialsRejected("the bank refused the username or password")
        response = web.request("GET", str(location).split("#", 1)[0])
    raise ProviderResponseError(PROVIDER, "the login ended without an access token in its redirects")


# -- the web app's API ---------------------------------------------------------------------------------


class FibankClient:
    """The web app's JSON calls with one signed-in session."""

    def __init__(
        self,
        config: FibankConfig,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        concurrency: int = 1,
        requests_per_minute: int | None = None,
    ) -> None:
        """`concurrency`: accounts read at once; `requests_per_minute`: 0/None for no limit."""
        self.concurrency = concurrency
        self.logins = 0
        self._device_id = config.device_id
        self._token = ""
        self._customer_id = ""
        limiter = RateLimiter.per_minute(requests_per_minute)
        self._login = FibankLogin(
            config, retry=retry, timeout=timeout, transport=transport, rate_limiter=limiter
        )
        self._api = ApiClient(
            provider=PROVIDER,
            base_url=config.base_url.rstrip("/") + API_PREFIX,
            headers=self._headers,
            error_mapper=_data_error,
            retry=retry,
            timeout=timeout,
            transport=transport,
            reauthorize=self.sign_in,
            rate_limiter=limiter,
        )

    def sign_in(self) -> None:
        """Log in (again): also what runs once when the bank refuses the session mid-run."""
        self._token = self._login.access_token()
        self.logins += 1

    def open(self) -> FibankClient:
        self.sign_in()
        self._customer_id = self.customer_id()
        return self

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> FibankClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _headers(self) -> Mapping[str, str]:
        return {
            "Authorization": f"Bearer {self._token}",
            "EBank-App-Version": "1",
            "EBank-Client-Time": sofia_time(datetime.now(UTC)),
            "EBank-Cust-Id": self._customer_id,
            "EBank-Device-Id": self._device_id,
            "EBank-Referer": "/EBank/",
            "X-Requested-With": "XMLHttpRequest",
            "Accept-Language": "bg",
            "User-Agent": "bankflow",
        }

    def customer_id(self) -> str:
        path = "/sywsquery/sywsquery/getCustQuery"
        body = self._api.get_json(path)
        customers = body.get("customer") if isinstance(body, dict) else None
        first = customers[0] if isinstance(customers, list) and customers else None
        value = first.get("ibCustomerId") if isinstance(first, dict) else None
        if isinstance(value, bool) or not isinstance(value, str | int) or not str(value):
            raise ProviderResponseError(PROVIDER, f"GET {path}: no customer[0].ibCustomerId")
        return str(value)

    def accounts(self) -> list[dict[str, Any]]:
        path = "/sywspicklist/sywspicklist/getFilteredAccounts"
        body = self._api.get_json(path)
        if not isinstance(body, list):
            raise ProviderResponseError(PROVIDER, f"GET {path}: the response is not a list of accounts")
        return body

    def statement(self, iban: str, first_day: date, last_day: date) -> list[dict[str, Any]]:
        """Statement rows (summary rows included) of whole Sofia days first_day..last_day, at
        most MAX_QUERY_DAYS of them."""
        if (last_day - first_day).days + 1 > MAX_QUERY_DAYS:
            raise ValueError(f"a statement period is at most {MAX_QUERY_DAYS} days")
        path = "/sywsquery/sywsquery/GetCustBal"
        from_date, to_date = period_bounds(first_day, last_day)
        params = {
            "FromDate": from_date,
            "ToDate": to_date,
            "Iban": iban,
            "StmtType": "T",
            "isAccountFromPSD2": "false",
        }
        body = self._api.get_json(path, params)
        statements = body.get("acc") if isinstance(body, dict) else None
        # The reference connector reads a statement only when `acc` has exactly one element.
        if not isinstance(statements, list) or len(statements) != 1 or not isinstance(statements[0], dict):
            raise ProviderResponseError(PROVIDER, f"GET {path}: expected one statement in 'acc'")
        rows = statements[0].get("stmt")
        if not isinstance(rows, list):
            raise ProviderResponseError(PROVIDER, f"GET {path}: the statement has no 'stmt' list")
        return rows


def _data_error(response: httpx.Response) -> ProviderError | None:
    if response.status_code == 401:
        return AccessTokenRejected(PROVIDER, "the e-banking session was refused (HTTP 401)")
    return None


# -- extract -------------------------------------------------------------------------------------------


@dataclass
class FibankExtract(Extract):
    """An Extract, plus what a Fibank run must report: accounts it could not read (their
    previous rows stay; the next run reads them again) and the summary rows it did not land."""

    failed_accounts: dict[str, str] = field(default_factory=dict)
    summary_rows: Counter[str] = field(default_factory=Counter)
    query_windows: list[tuple[date, date]] = field(default_factory=list)
    statement_calls: int = 0


@dataclass
class _AccountPull:
    iban: str
    transactions: list[RawRecord] = field(default_factory=list)
    balance: RawRecord | None = None
    rejected: list[QuarantineItem] = field(default_factory=list)
    summary_rows: Counter[str] = field(default_factory=Counter)
    statement_calls: int = 0
    failure: ProviderError | None = None


def extract_window(client: FibankClient, first_day: date, last_day: date, now: datetime) -> FibankExtract:
    """Everything one run lands: the accounts, every movement booked (Sofia day) from first_day
    to last_day, and a balance snapshot per account.

    An account whose statement calls fail (after retries) is reported in `failed_accounts` and
    left out of the replace scope, so its previous rows stay; the others land. A refused login
    stops the whole run; so does every account failing.
    """
    windows = query_windows(first_day, last_day)
    extract = FibankExtract(first_day=first_day, last_day=last_day, query_windows=windows)
    days = window_days(first_day, last_day)
    fetched_on = now.astimezone(UTC).date().isoformat()
    today = now.astimezone(SOFIA).date()

    accounts, ibans = [], []
    for account in client.accounts():
        iban = account.get("ibanAcNo") if isinstance(account, dict) else None
        if not isinstance(iban, str) or not iban:
            extract.quarantined.append(
                QuarantineItem("accounts", "account without ibanAcNo", dumps_exact(account))
            )
        elif iban in ibans:
            extract.quarantined.append(
                QuarantineItem("accounts", "ibanAcNo listed twice", dumps_exact(account), iban)
            )
        else:
            ibans.append(iban)
            accounts.append(RawRecord(dumps_exact(account), fetched_on, iban, iban))

    def pull(iban: str) -> _AccountPull:
        got = _AccountPull(iban)
        try:
            closing, rows = None, []
            seen: set[str] = set()
            for start, end in windows:
                rows = client.statement(iban, start, end)
                got.statement_calls += 1
                closing = _sort_statement(got, rows, start, end, seen)
            if last_day < today:
                # The window is in the past: today's balance is the closing row of today's statement.
                got.statement_calls += 1
                rows = client.statement(iban, today, today)
                closing = _closing_row(rows)
            if closing is None:
                reason = "the statement has no closing-balance (CL) row"
                got.rejected.append(QuarantineItem("balances", reason, dumps_exact(rows), iban))
            else:
                got.balance = RawRecord(dumps_exact(closing), fetched_on, iban, iban)
        except AuthorizationRequired:
            raise
        except ProviderError as exc:
            return _AccountPull(iban, failure=exc, statement_calls=got.statement_calls)
        return got

    pulls = map_in_order(pull, ibans, client.concurrency)
    read = [got for got in pulls if got.failure is None]
    failures = [got.failure for got in pulls if got.failure is not None]
    if failures and not read:
        raise failures[0]
    for got in pulls:
        extract.statement_calls += got.statement_calls
        if got.failure is not None:
            extract.failed_accounts[got.iban] = str(got.failure)
    read_ibans = [got.iban for got in read]
    transactions = [record for got in read for record in got.transactions]
    balances = [got.balance for got in read if got.balance is not None]
    extract.quarantined += [item for got in read for item in got.rejected]
    extract.summary_rows = sum((got.summary_rows for got in read), Counter())
    extract.account_refs += ibans
    extract.loads += [
        TableLoad("fibank_accounts", accounts, ReplaceScope(account_refs=ibans)),
        TableLoad(
            "fibank_balances", balances, ReplaceScope(partition_keys=[fetched_on], account_refs=read_ibans)
        ),
        TableLoad(
            "fibank_transactions",
            transactions,
            ReplaceScope(partition_keys=days, account_refs=read_ibans),
            preview=_preview(transactions),
        ),
    ]
    return extract


def _closing_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((row for row in rows if isinstance(row, dict) and row.get("trnType") == "CL"), None)


def _sort_statement(
    got: _AccountPull, rows: list[dict[str, Any]], first_day: date, last_day: date, seen: set[str]
) -> dict[str, Any] | None:
    """Movements into `got.transactions` (or quarantine), summary rows counted; returns the CL row."""
    closing = None
    for row in rows:
        kind = row.get("trnType") if isinstance(row, dict) else None
        if kind in SUMMARY_TYPES:
            got.summary_rows[kind] += 1
            if kind == "CL":
                closing = row
            continue
        payload = dumps_exact(row)
        key, day, reason = _identity(row, first_day, last_day)
        if reason is None and key in seen:
            reason = f"acEntrySrNo {key} repeated in the statement"
        if reason is not None:
            got.rejected.append(QuarantineItem("transactions", reason, payload, got.iban))
            continue
        assert key is not None and day is not None
        seen.add(key)
        got.transactions.append(RawRecord(payload, day.isoformat(), key, got.iban))
    return closing


def _identity(row: Any, first_day: date, last_day: date) -> tuple[str | None, date | None, str | None]:
    """(record key, Sofia booking day, why the row cannot be landed)."""
    if not isinstance(row, dict):
        return None, None, "statement row is not an object"
    serial = row.get("acEntrySrNo")
    if isinstance(serial, bool) or not isinstance(serial, int | str) or not str(serial).strip():
        return None, None, "no acEntrySrNo"
    day = sofia_day(row.get("dateTime"))
    if day is None:
        return None, None, f"dateTime {row.get('dateTime')!r} is not a date-time with an offset"
    if not first_day <= day <= last_day:
        return None, None, f"Sofia day {day} is outside the requested period {first_day}..{last_day}"
    if row.get("dtkt") not in DEBIT_FLAGS | CREDIT_FLAGS:
        return None, None, f"dtkt {row.get('dtkt')!r} is neither debit nor credit"
    for name in ("amount", "acBal"):
        if not _is_number(row.get(name), optional=name == "acBal"):
            return None, None, f"{name} {row.get(name)!r} is not a number"
    impossible = impossible_dates(row, ("valueDt",))
    if impossible:
        return None, None, impossible
    return str(serial).strip(), day, None


def _is_number(value: object, optional: bool = False) -> bool:
    if value is None:
        return optional
    if isinstance(value, bool):
        return False
    if isinstance(value, int | Decimal):
        return True
    if isinstance(value, str):
        try:
            return Decimal(value).is_finite()
        except InvalidOperation:
            return False
    return False


def signed_amount(row: Mapping[str, Any]) -> Decimal:
    """The movement's amount, + in / - out, from the unsigned amount and the dtkt flag."""
    amount = abs(Decimal(str(row["amount"])))
    return -amount if row["dtkt"] in DEBIT_FLAGS else amount


def _preview(records: list[RawRecord], rows: int = 10) -> list[PreviewRow]:
    preview = []
    for record in records[:rows]:
        row = loads_exact(record.payload)
        text = row.get("remI") or row.get("trname") or ""
        preview.append((record.partition_key, str(text), str(signed_amount(row)), str(row.get("ccy"))))
    return preview
