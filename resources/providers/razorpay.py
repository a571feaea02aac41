"""Razorpay: a merchant's payments, refunds, settlements and settlement recon items.

Contract: shared/reference/bank-contracts.md §4.

- Auth: HTTP Basic with the key id and key secret; nothing to consent to or refresh. A 401 means
  the keys are wrong or revoked: a person has to fix the configuration.
- Paging: lists take `count` (at most 100) and `skip` and carry no total, so the client pages until
  a page comes back shorter than asked (an exact multiple of the page size costs one empty page).
- Windows: `from`/`to` filter on created_at in unix seconds. Whether Razorpay treats the bounds as
  inclusive is not documented, so the client asks one second wider on each side and keeps what
  belongs to the window's days.
- Days are IST (Asia/Kolkata) calendar days, not UTC: Razorpay settles per IST working day, its
  recon report is addressed by IST date, and the merchant's Indian bank books the settlement credit
  on the IST date. A payment made at 02:00 IST on the 5th is the 5th's business everywhere the
  reconciliation looks, so it is in the 5th's partition here too. Payments, refunds and settlements
  are partitioned by the IST date of created_at; recon items by the IST day the report was asked
  for (the day they were settled).
- A payment's state (refund_status, amount_refunded) is as of the run that fetched its created day;
  refunds are their own records, landed by the day they were made.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from resources.errors import AuthorizationRequired, ProviderError, ProviderResponseError
from resources.extract import Extract, PreviewRow, TableLoad, window_days
from resources.http import ApiClient, RetryPolicy, dumps_exact, loads_exact
from resources.warehouse.loader import RawRecord, ReplaceScope
from resources.warehouse.quarantine import QuarantineItem

PROVIDER = "razorpay"
MAX_COUNT = 100
IST = ZoneInfo("Asia/Kolkata")
_MAX_DESCRIPTION = 200

TABLES = {
    "payments": "razorpay_payments",
    "refunds": "razorpay_refunds",
    "settlements": "razorpay_settlements",
    "recon": "razorpay_settlement_recon",
}


@dataclass(frozen=True)
class RazorpayConfig:
    base_url: str  # e.g. https://api.razorpay.com/v1
    key_id: str
    key_secret: str = field(repr=False)
    # The lineage account_ref of every row: one merchant account's rows are replaced, not another's.
    merchant_ref: str = "razorpay"


class KeysRejected(AuthorizationRequired):
    """Razorpay refused the API keys. There is no consent to renew: the keys must be fixed."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            PROVIDER,
            detail,
            fix="Check BANKFLOW_RAZORPAY_KEY_ID and BANKFLOW_RAZORPAY_KEY_SECRET "
            "(Dashboard > Account & Settings > API Keys)",
        )


class RazorpayClient:
    """Reads a merchant's Razorpay lists, every page, with retries from the shared HTTP layer."""

    def __init__(
        self,
        config: RazorpayConfig,
        *,
        retry: RetryPolicy | None = None,
        page_size: int = MAX_COUNT,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_COUNT:
            raise ValueError(f"page_size must be between 1 and {MAX_COUNT}")
        self.config = config
        self.page_size = page_size
        token = base64.b64encode(f"{config.key_id}:{config.key_secret}".encode()).decode()
        self._authorization = f"Basic {token}"
        self._api = ApiClient(
            provider=PROVIDER,
            base_url=config.base_url,
            headers=self._headers,
            error_mapper=_error,
            retry=retry,
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"RazorpayClient(base_url={self.config.base_url!r}, key_id={self.config.key_id!r})"

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> RazorpayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def requests_sent(self) -> int:
        """Requests sent so far, retries included (counted by the shared client)."""
        return self._api.requests_sent

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self._authorization}

    def collection(self, path: str, params: Mapping[str, int | str] | None = None) -> Iterator[Any]:
        """Every item of a list endpoint: `count`/`skip` pages until a short page."""
        skip = 0
        while True:
            body = self._api.get_json(path, {**(params or {}), "count": self.page_size, "skip": skip})
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list) or body.get("entity") != "collection":
                raise ProviderResponseError(PROVIDER, f"GET {path}: the response is not a collection")
            yield from items
            if len(items) < self.page_size:
                return
            skip += len(items)

    def created_between(self, path: str, start: datetime, end: datetime) -> Iterator[Any]:
        """Items of `path` created in [start, end), asked one second wider on each side (the
        bounds' inclusiveness is undocumented); the caller keeps what belongs to its days."""
        params = {"from": int(start.timestamp()) - 1, "to": int(end.timestamp())}
        return self.collection(path, params)

    def payments(self, start: datetime, end: datetime) -> Iterator[Any]:
        return self.created_between("/payments", start, end)

    def refunds(self, start: datetime, end: datetime) -> Iterator[Any]:
        return self.created_between("/refunds", start, end)

    def settlements(self, start: datetime, end: datetime) -> Iterator[Any]:
        return self.created_between("/settlements", start, end)

    def recon_items(self, day: date) -> Iterator[Any]:
        """Everything settled on one IST day: payments, refunds, transfers, adjustments."""
        params = {"year": day.year, "month": f"{day.month:02d}", "day": f"{day.day:02d}"}
        return self.collection("/settlements/recon/combined", params)


def ist_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=IST)


def ist_date(unix_seconds: Any) -> str | None:
    """The IST date (YYYY-MM-DD) of a unix-seconds timestamp; None if it is not one."""
    if not _is_int(unix_seconds):
        return None
    try:
        return datetime.fromtimestamp(unix_seconds, IST).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def extract_window(client: RazorpayClient, first_day: date, last_day: date) -> Extract:
    """Payments, refunds and settlements created on the window's IST days, and the recon items
    settled on them, each table replaced for exactly those days."""
    extract = Extract(first_day=first_day, last_day=last_day)
    merchant = client.config.merchant_ref
    extract.account_refs.append(merchant)
    days = window_days(first_day, last_day)
    start, end = ist_midnight(first_day), ist_midnight(last_day + timedelta(days=1))
    collected = _Collector(extract, merchant, days)
    payments = collected.created("payments", client.payments(start, end), _payment_problem)
    refunds = collected.created("refunds", client.refunds(start, end), _refund_problem)
    settlements = collected.created("settlements", client.settlements(start, end), _settlement_problem)
    recon: list[RawRecord] = []
    for day in days:
        recon += collected.settled_on(day, client.recon_items(date.fromisoformat(day)))
    scope = ReplaceScope(partition_keys=days, account_refs=[merchant])
    extract.loads = [
        TableLoad(TABLES["payments"], payments, scope, preview=_preview(payments)),
        TableLoad(TABLES["refunds"], refunds, scope),
        TableLoad(TABLES["settlements"], settlements, scope),
        TableLoad(TABLES["recon"], recon, scope),
    ]
    return extract


@dataclass
class _Collector:
    """Turns list items into raw records of the window's days; quarantines what cannot be landed."""

    extract: Extract
    merchant: str
    days: list[str]

    def created(
        self, entity: str, items: Iterator[Any], problem: Callable[[dict[str, Any]], str | None]
    ) -> list[RawRecord]:
        records: dict[str, RawRecord] = {}
        for item in items:
            reason = "not a JSON object" if not isinstance(item, dict) else problem(item)
            if reason:
                self._quarantine(entity, reason, item)
                continue
            day = ist_date(item["created_at"])
            # Outside the window's days: the extra second asked on either side, nothing more.
            if day in self.days:
                # A record moving across a page border while paging is seen twice: once is enough.
                records.setdefault(item["id"], RawRecord(dumps_exact(item), day, item["id"], self.merchant))
        return list(records.values())

    def settled_on(self, day: str, items: Iterator[Any]) -> list[RawRecord]:
        records: dict[str, RawRecord] = {}
        for item in items:
            reason = "not a JSON object" if not isinstance(item, dict) else _recon_problem(item)
            if reason:
                self._quarantine("settlement_recon", reason, item)
                continue
            key = f"{item['settlement_id']}:{item['entity_id']}"
            records.setdefault(key, RawRecord(dumps_exact(item), day, key, self.merchant))
        return list(records.values())

    def _quarantine(self, entity: str, reason: str, item: Any) -> None:
        self.extract.quarantined.append(QuarantineItem(entity, reason, dumps_exact(item), self.merchant))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _id_problem(item: Mapping[str, Any], field_name: str, prefix: str) -> str | None:
    value = item.get(field_name)
    if not isinstance(value, str) or not value.startswith(prefix):
        return f"{field_name} is missing or not a {prefix}… id"
    return None


def _amount_problem(item: Mapping[str, Any], *names: str) -> str | None:
    """Amounts are integer paise; anything else (a fraction, text) would be guessed at, not landed."""
    for name in names:
        if not _is_int(item.get(name)) or item[name] < 0:
            return f"{name} is missing or not a whole number of paise"
    return None


def _created_problem(item: Mapping[str, Any]) -> str | None:
    return None if ist_date(item.get("created_at")) else "created_at is missing or not unix seconds"


def _payment_problem(item: Mapping[str, Any]) -> str | None:
    return _id_problem(item, "id", "pay_") or _amount_problem(item, "amount") or _created_problem(item)


def _refund_problem(item: Mapping[str, Any]) -> str | None:
    return (
        _id_problem(item, "id", "rfnd_")
        or _id_problem(item, "payment_id", "pay_")
        or _amount_problem(item, "amount")
        or _created_problem(item)
    )


def _settlement_problem(item: Mapping[str, Any]) -> str | None:
    return (
        _id_problem(item, "id", "setl_")
        or _amount_problem(item, "amount", "fees", "tax")
        or _created_problem(item)
    )


def _recon_problem(item: Mapping[str, Any]) -> str | None:
    entity_id = item.get("entity_id")
    if not isinstance(entity_id, str) or not entity_id:
        return "entity_id is missing"
    return _id_problem(item, "settlement_id", "setl_") or _amount_problem(item, "amount", "credit", "debit")


def _preview(records: list[RawRecord], rows: int = 10) -> list[PreviewRow]:
    preview = []
    for record in records[:rows]:
        payment = loads_exact(record.payload)
        rupees = f"{payment['amount'] // 100}.{payment['amount'] % 100:02d}"
        preview.append(
            (
                record.partition_key,
                str(payment.get("description") or ""),
                rupees,
                str(payment.get("currency")),
            )
        )
    return preview


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _error(response: httpx.Response) -> ProviderError | None:
    """Razorpay's error body names a code and a description; neither echoes the keys."""
    error = _error_body(response)
    code = error.get("code") if isinstance(error.get("code"), str) else None
    description = error.get("description") if isinstance(error.get("description"), str) else ""
    if response.status_code == 401:
        return KeysRejected(f"HTTP 401 {description[:_MAX_DESCRIPTION]}".rstrip())
    if response.status_code == 400 and code:
        where = f"{response.request.method} {response.request.url.path}"
        field_name = error.get("field")
        about = f" (field {field_name})" if isinstance(field_name, str) else ""
        return ProviderResponseError(PROVIDER, f"{where}: {code}{about}: {description[:_MAX_DESCRIPTION]}")
    return None
