"""JSON drops in the reconciliation seed's standard transaction format (contract §11).

The file is a JSON array of records, or an object whose `transactions` member is that array. Each
record is one movement: `txn_id`, `amount` (signed, major units), `currency`, `status`
(SUCCESS/PENDING/FAILED/REVERSED), `timestamp` (ISO 8601 with an offset), `account_id`, and the
optional `source`, `bank_code`, `channel`, `transaction_type`, `reference_number`, `merchant_id`,
`description`. One statement per `account_id`, in order of first appearance; no balances.

Why a bad record is not a bad file here, when it is for CSV: the contract says a record missing a
required field is quarantined with the field named "and the rest of the file lands". A JSON record
carries its own identity (`txn_id`) and no running balance ties it to its neighbours, so landing the
others loses nothing. Such records are not yielded; they are on `parser.rejected` as (index in the
array, reason naming the field, the record's JSON text as written) after the parse, for the
landing step to quarantine. A file that is not JSON, or not a list of records, is a
StatementParseError like any other format's.

Numbers are read as Decimal from the JSON text (`parse_float`/`parse_int`), never through float.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from resources.statements.account_iban import account_iban
from resources.statements.model import (
    EntryStatus,
    StatementEntry,
    StatementEvent,
    StatementHeader,
    StatementParseError,
)

REQUIRED_FIELDS = ("txn_id", "amount", "currency", "status", "timestamp", "account_id")
OPTIONAL_FIELDS = (
    "source",
    "bank_code",
    "channel",
    "transaction_type",
    "reference_number",
    "merchant_id",
    "description",
)
ENTRY_STATUS: dict[str, EntryStatus] = {
    "SUCCESS": "booked",
    "PENDING": "pending",
    "FAILED": "info",  # not a movement: kept in raw, never in the marts
    "REVERSED": "info",
}
# Keys whose presence near the start of a file says "the seed's standard format".
_SNIFF_KEYS = (b'"txn_id"', b'"transactions"')
_EMPTY_ARRAY = re.compile(rb"\[[ \t\r\n]*\]")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_WHITESPACE = re.compile(r"\s+")
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=Decimal, parse_constant=Decimal)
_SPACE = re.compile(r"[ \t\n\r]*")


class RecordRejected(ValueError):
    """One record cannot land; the message names the field."""


@dataclass(frozen=True)
class _Record:
    index: int
    text: str
    value: Any


class JsonStatementParser:
    """Reads standard-format JSON drops; bad records go to `rejected`, not into the stream."""

    format = "json"

    def __init__(self) -> None:
        self.rejected: list[tuple[int, str, str]] = []

    def sniff(self, head: bytes, filename: str) -> bool:
        """First non-space byte `[` or `{`, and a standard-format key (`txn_id`, `transactions`);
        or an empty array, which is how a producer writes a day without movements."""
        text = head.removeprefix(b"\xef\xbb\xbf").strip()
        if _EMPTY_ARRAY.fullmatch(text):
            return True
        return text[:1] in (b"[", b"{") and any(key in text for key in _SNIFF_KEYS)

    def parse(self, path: Path) -> Iterator[StatementEvent]:
        """One statement per account_id; records that cannot land are put on `rejected`."""
        self.rejected = []
        records = _records(path)
        accounts: dict[str, list[StatementEntry]] = {}
        for record in records:
            try:
                account_id, entry = _entry(record.value)
            except RecordRejected as exc:
                self.rejected.append((record.index, str(exc), record.text))
                continue
            accounts.setdefault(account_id, []).append(entry)
        for statement_index, (account_id, entries) in enumerate(accounts.items()):
            currencies = {entry.currency for entry in entries}
            yield StatementHeader(
                index=statement_index,
                account_id=account_id,
                account_iban=account_iban(account_id),
                currency=currencies.pop() if len(currencies) == 1 else None,
            )
            for index, entry in enumerate(entries):
                yield replace(entry, statement_index=statement_index, index=index)


# -- the file ----------------------------------------------------------------------------------------


def _records(path: Path) -> list[_Record]:
    """The file's records with the JSON text each was written as (for the quarantine)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise StatementParseError(f"{path.name}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise StatementParseError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    try:
        position = _skip_space(text, 0)
        if text.startswith("{", position):
            start, end = _transactions_member(text, position, path)
        elif text.startswith("[", position):
            start, end = position, None
        else:
            raise StatementParseError(f"{path.name}: not a JSON array or object of transactions")
        records, after = _array_items(text, start)
        # An object was decoded whole by _transactions_member, so only a bare array can have a tail.
        if end is None and _skip_space(text, after) != len(text):
            raise StatementParseError(f"{path.name}: text after the JSON array (at character {after})")
        return records
    except json.JSONDecodeError as exc:
        raise StatementParseError(
            f"{path.name}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise StatementParseError(f"{path.name}: JSON nested too deeply") from None


def _skip_space(text: str, position: int) -> int:
    match = _SPACE.match(text, position)
    return match.end() if match else position


def _transactions_member(text: str, position: int, path: Path) -> tuple[int, int]:
    """Where the array of `{"transactions": [...]}` starts and the object ends (last key wins)."""
    document, end = _DECODER.raw_decode(text, position)
    if _skip_space(text, end) != len(text):
        raise StatementParseError(f"{path.name}: text after the JSON object (at character {end})")
    if not isinstance(document.get("transactions"), list):
        raise StatementParseError(f"{path.name}: the JSON object has no `transactions` array")
    # Walk the object's members to find where the (last) transactions array starts.
    start = None
    cursor = _skip_space(text, position + 1)
    while not text.startswith("}", cursor):
        key, cursor = _DECODER.raw_decode(text, cursor)
        cursor = _skip_space(text, cursor) + 1  # the colon
        cursor = _skip_space(text, cursor)
        value_start = cursor
        _, cursor = _DECODER.raw_decode(text, cursor)
        if key == "transactions":
            start = value_start
        cursor = _skip_space(text, cursor)
        if text.startswith(",", cursor):
            cursor = _skip_space(text, cursor + 1)
    assert start is not None
    return start, end


def _array_items(text: str, position: int) -> tuple[list[_Record], int]:
    """The items of the JSON array at `position`, each with its own text; and where the array ends."""
    records: list[_Record] = []
    cursor = _skip_space(text, position + 1)
    if text.startswith("]", cursor):
        return records, cursor + 1
    while True:
        value, end = _DECODER.raw_decode(text, cursor)
        records.append(_Record(index=len(records), text=text[cursor:end], value=value))
        cursor = _skip_space(text, end)
        if text.startswith(",", cursor):
            cursor = _skip_space(text, cursor + 1)
        elif text.startswith("]", cursor):
            return records, cursor + 1
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, cursor)


# -- one record --------------------------------------------------------------------------------------


def _entry(record: Any) -> tuple[str, StatementEntry]:
    """The record's account and entry (positions are set when grouped); RecordRejected if it cannot land."""
    if not isinstance(record, dict):
        raise RecordRejected("the record is not a JSON object")
    missing = [name for name in REQUIRED_FIELDS if record.get(name) in (None, "")]
    if missing:
        raise RecordRejected(f"missing required field(s): {', '.join(missing)}")
    txn_id = _identifier(record, "txn_id")
    account_id = _identifier(record, "account_id")
    amount = _amount(record["amount"])
    currency = record["currency"]
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise RecordRejected("currency: not an ISO 4217 code (three capital letters)")
    status = record["status"]
    if not isinstance(status, str) or status not in ENTRY_STATUS:
        raise RecordRejected(f"status: not one of {', '.join(ENTRY_STATUS)}")
    booked_at = _timestamp(record["timestamp"])
    optional = {name: _text(record, name) for name in OPTIONAL_FIELDS}
    mapped = {*REQUIRED_FIELDS, "channel", "reference_number", "description"}
    details = {key: _json_ready(value) for key, value in record.items() if key not in mapped}
    details["status"] = status
    details["timestamp"] = record["timestamp"]
    description = _WHITESPACE.sub(" ", optional["description"] or "").strip()
    entry = StatementEntry(
        statement_index=0,
        index=0,
        amount=amount,
        currency=currency,
        status=ENTRY_STATUS[status],
        # The bank-local calendar date: the timestamp's date in the offset it was written with.
        booking_date=booked_at.date(),
        booked_at=booked_at,
        bank_reference=txn_id,
        end_to_end_id=optional["reference_number"],
        description=description or None,
        bank_transaction_code=optional["channel"],
        details=details,
    )
    return account_id, entry


def _identifier(record: dict[str, Any], name: str) -> str:
    value = record[name]
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(value)  # a numeric id, digits as written
    if not isinstance(value, str) or not value.strip():
        raise RecordRejected(f"{name}: expected a non-empty string")
    return value.strip()


def _amount(value: Any) -> Decimal:
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise RecordRejected("amount: not a decimal number") from None
    if not isinstance(value, Decimal) or not value.is_finite():
        raise RecordRejected("amount: not a decimal number")
    return value


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise RecordRejected("timestamp: expected an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RecordRejected("timestamp: not an ISO 8601 date-time") from None
    if moment.utcoffset() is None:
        raise RecordRejected("timestamp: no UTC offset (the format requires one)")
    return moment


def _text(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        return str(value)
    raise RecordRejected(f"{name}: expected text, got a JSON {type(value).__name__}")


def _json_ready(value: Any) -> Any:
    """Decimals as their text (JSON has no decimal type that survives json.dumps)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value
