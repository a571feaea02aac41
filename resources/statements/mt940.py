"""MT940 customer statements and MT942 interim reports, read into the statement event stream.

What is ours and what is the `mt-940` library's: the library's tag grammar is used for the fields
(its `:61:` statement-line tag, extended below for the MT942 marks `EC`/`ED` and for references
longer than 16 characters, its balance, date-time, floor-limit and sum tags). Its tokenizer is not:
it merges every statement of a file into one collection, keeps only the last of a repeated `:65:`,
files a statement-level `:86:` under the last transaction, puts every two-digit year in the 2000s
and logs field values at ERROR level when a field does not match. So the file structure (decoding,
SWIFT envelopes, statement boundaries, which `:86:` belongs to what) is read here, and the `:86:`
dialects in `mt940_details`.

Quirks handled (see shared/samples/mt940-wolph/README.md): SWIFT envelopes `{1:..}{2:..}{4: .. -}{5:}`
or none, bank header lines before a statement (`ABNANL2A`/`940`, `0000 01INGBNL2AXXXX00001`, `:940:`),
statements separated by `-`, `-XXX`, `-}` or nothing, CRLF/LF, control bytes (a leading SOH, ETX),
soft hyphens, UTF-8 or a single-byte Central European code page, `:28:`/`:28C:`, F/M balances,
repeated `:65:`, amounts `9,` `11,8` `500` and zero-padded, entry dates as MMDD or four spaces,
funds-code letters, reversals, zero-amount information lines, a statement-level `:86:`, `:NS:`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar

import mt940.tags
from schwifty import BIC
from schwifty.exceptions import SchwiftyException

from resources.statements.account_iban import account_iban
from resources.statements.model import (
    BalanceKind,
    EntryStatus,
    StatementBalance,
    StatementEntry,
    StatementEvent,
    StatementHeader,
    StatementParseError,
)
from resources.statements.mt940_details import fold_whitespace, read_information

# --- text preparation ---------------------------------------------------------------------------

# Tried in order after UTF-8 fails; the one whose non-ASCII characters are most often letters wins.
# cp1250 is the Windows code page of Central European banks; cp852 the DOS one, which is what the
# Raiffeisen HU sample really is (0x81 is undefined in cp1250, and 0xA0 is "á" in cp852).
SINGLE_BYTE_ENCODINGS = ("cp1250", "cp852")

# C0/C1 controls other than line feed, soft hyphens, zero-width characters and BOMs: banks and
# transports scatter them (SOH/ETX frames, soft hyphens inside ING dates) and they split tags.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028\u2029\u2060\ufeff]")
_ENVELOPE_BLOCK = re.compile(r"\{[1235]:(?:[^{}]|\{[^{}]*\})*\}")
_MESSAGE_TYPE = re.compile(r"\{2:[IO](?P<type>9\d\d)")
_TAG_LINE = re.compile(r"^:(?P<tag>\d{2}[A-Z]?|NS):(?P<value>.*)$")
_TERMINATOR = re.compile(r"^-(?:XXX)?\}?$")
_NO_REFERENCE = {"", "NONREF", "NOTPROVIDED"}
_SNIFF_REFERENCE = re.compile(r"^[\x00-\x1f]*:20:", re.MULTILINE)
_SNIFF_ACCOUNT_OR_BALANCE = re.compile(r"^[\x00-\x1f]*:(?:25|60F|60M|28C):", re.MULTILINE)


def decode_statement_bytes(data: bytes) -> str:
    """The file's text: UTF-8 when it is UTF-8, else the best-reading single-byte code page."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    decoded: list[str] = []
    for encoding in SINGLE_BYTE_ENCODINGS:
        try:
            decoded.append(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    # cp852 maps all 256 byte values, so the list is never empty; on a tie the first (cp1250) wins.
    return max(decoded, key=_letter_score)


def _letter_score(text: str) -> int:
    return sum(1 if char.isalpha() else -1 for char in text if ord(char) > 127)


def clean_statement_text(text: str) -> tuple[str, str | None]:
    """The text with line ends, invisible characters and SWIFT envelopes removed, and the message
    type (`940`, `942`) when a `{2:` block says it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _INVISIBLE.sub("", text)
    found = _MESSAGE_TYPE.search(text)
    text = _ENVELOPE_BLOCK.sub("", text).replace("{4:", "")
    return text, found["type"] if found else None


# --- the tag grammar, from the mt-940 library ------------------------------------------------------


class StatementLineTag(mt940.tags.Statement):
    """`:61:` as the library reads it, plus MT942's `EC`/`ED` marks and references of any length
    before `//` (ASN Bank puts an IBAN there). Case-sensitive: `c`/`d` are not marks."""

    RE_FLAGS: ClassVar[re.RegexFlag] = re.VERBOSE
    pattern: ClassVar[str] = r"""^
    (?P<year>\d{2})(?P<month>\d{2})(?P<day>\d{2})  # 6!n value date YYMMDD
    (?P<entry_date>\d{4}|[ ]{4})?                  # [4!n] entry date MMDD (some banks: spaces)
    (?P<status>R?[DC]|E[DC])                       # 2a mark: C D RC RD (MT942 also EC ED)
    (?P<funds_code>[A-Z])?                         # [1!a] third letter of the currency
    (?P<amount>\d[\d,]{0,14})                      # 15d
    (?P<id>[NFS][A-Z0-9 ]{3})                      # 1!a3!c transaction type
    (?P<customer_reference>(?:(?!//)[^\n])*)       # 16x, longer in the wild
    (?://(?P<bank_reference>[^\n]*))?              # [//16x]
    (?:\n(?P<extra_details>[\s\S]*))?              # [34x] supplementary details
    $"""


class BalanceTag(mt940.tags.BalanceBase):
    """`:60F:` .. `:65:` as the library reads them, anchored at the end and with a real currency."""

    RE_FLAGS: ClassVar[re.RegexFlag] = re.VERBOSE
    pattern: ClassVar[str] = r"""^
    (?P<status>[DC])(?P<year>\d{2})(?P<month>\d{2})(?P<day>\d{2})(?P<currency>[A-Z]{3})(?P<amount>\d[\d,]*)
    $"""


class DateTimeTag(mt940.tags.DateTimeIndication):
    """`:13D:` YYMMDDhhmm[+-hhmm], end-anchored."""

    pattern: ClassVar[str] = mt940.tags.DateTimeIndication.pattern + "$"


class SumEntriesTag(mt940.tags.SumEntries):
    """`:90D:`/`:90C:` number of entries, currency, sum; end-anchored."""

    RE_FLAGS: ClassVar[re.RegexFlag] = re.VERBOSE
    pattern: ClassVar[str] = r"^(?P<number>\d{1,5})(?P<currency>[A-Z]{3})(?P<amount>\d[\d,]*)$"


_STATEMENT_LINE = StatementLineTag()
_BALANCE = BalanceTag()
_DATE_TIME = DateTimeTag()
_SUM_ENTRIES = SumEntriesTag()
_FLOOR_LIMIT = mt940.tags.FloorLimitIndicator()

BALANCE_KINDS: dict[str, BalanceKind] = {
    "60F": "opening",
    "60": "opening",
    "60M": "interim_opening",
    "62F": "closing",
    "62": "closing",
    "62M": "interim_closing",
    "64": "closing_available",
    "65": "forward_available",
}
_AMOUNT = re.compile(r"^\d+(?:,\d*)?$")
# Two-digit years: 70..99 are the 1900s, 00..69 the 2000s, before a statement's own dates decide.
_CENTURY_PIVOT = 70


# --- statements as fields -------------------------------------------------------------------------


@dataclass
class _Field:
    """One tag of the file: its first line's value and its continuation lines."""

    tag: str
    line: int
    lines: list[str]

    @property
    def value(self) -> str:
        return "\n".join(self.lines).strip()


def split_statements(text: str) -> Iterator[list[_Field]]:
    """The tags of each statement: `:20:` starts one, `-`/`-XXX`/`-}` or the next `:20:` ends it.

    Lines outside a statement (bank header lines, the `:940:` pseudo tag) are skipped; a tag
    outside a statement is an error.
    """
    current: list[_Field] | None = None
    for number, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line.rstrip()
        if match := _TAG_LINE.match(line):
            if match["tag"] == "20":
                if current:
                    yield current
                current = []
            elif current is None:
                raise StatementParseError(f"line {number}: tag :{match['tag']}: before any :20:")
            current.append(_Field(match["tag"], number, [match["value"]]))
        elif _TERMINATOR.match(line.strip()):
            if current:
                yield current
            current = None
        elif current and line.strip():
            current[-1].lines.append(line)
    if current:
        yield current


# --- dates and amounts ----------------------------------------------------------------------------


def _calendar_date(year: int, month: int, day: int) -> date:
    # German banks value interest on "30 February"; the library moves such days to the month's
    # end, and so do we. Any other impossible date is an error.
    if month == 2 and day > 28:
        day = min(day, calendar.monthrange(year, 2)[1])
    return date(year, month, day)


def resolve_date(yy: str, mm: str, dd: str, reference: date | None) -> date:
    """A YYMMDD date in the century that puts it nearest to `reference` (the statement's first
    balance date), or by the 1970-2069 pivot when there is no reference."""
    year = int(yy) + (1900 if int(yy) >= _CENTURY_PIVOT else 2000)
    if reference is None:
        return _calendar_date(year, int(mm), int(dd))
    candidates = [_calendar_date(year + shift, int(mm), int(dd)) for shift in (-100, 0, 100)]
    return min(candidates, key=lambda candidate: abs(candidate - reference))


def resolve_entry_date(mmdd: str, value_date: date) -> date:
    """An MMDD entry date in the value date's year, or the adjacent one when it wraps New Year."""
    month, day = int(mmdd[:2]), int(mmdd[2:])
    candidates = [_calendar_date(value_date.year + shift, month, day) for shift in (-1, 0, 1)]
    return min(candidates, key=lambda candidate: abs(candidate - value_date))


def parse_amount(text: str) -> Decimal:
    """An MT940 amount (`9,` `11,8` `500` `000000000025,00`) as an unsigned Decimal."""
    if not _AMOUNT.match(text):
        raise StatementParseError(f"amount {text[:20]!r} is not digits with one decimal comma")
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation as error:
        raise StatementParseError(f"amount {text[:20]!r} is not a number") from error


# --- building the events --------------------------------------------------------------------------


@dataclass
class _EntryFields:
    line: _Field
    information: list[str] = field(default_factory=list)
    non_swift: list[str] = field(default_factory=list)


@dataclass
class _StatementFields:
    """A statement's fields sorted by what they belong to, before any value is read."""

    reference: _Field
    account: _Field | None = None
    others: list[_Field] = field(default_factory=list)
    balances: list[_Field] = field(default_factory=list)
    information: list[str] = field(default_factory=list)
    non_swift: list[str] = field(default_factory=list)
    entries: list[_EntryFields] = field(default_factory=list)


def _sort_fields(fields: list[_Field]) -> _StatementFields:
    statement = _StatementFields(reference=fields[0])
    closed = False  # a closing balance was read: a later :86: is about the whole statement
    for item in fields[1:]:
        if item.tag == "25":
            if statement.account is not None:
                raise StatementParseError(f"line {item.line}: a second :25: in one statement")
            statement.account = item
        elif item.tag in BALANCE_KINDS:
            statement.balances.append(item)
            closed = closed or item.tag[:2] in ("62", "64", "65")
        elif item.tag == "61":
            if closed:
                raise StatementParseError(f"line {item.line}: :61: after the closing balance")
            statement.entries.append(_EntryFields(item))
        elif item.tag == "86":
            target = statement.entries[-1].information if statement.entries and not closed else None
            (statement.information if target is None else target).extend(item.lines)
        elif item.tag == "NS":
            target = statement.entries[-1].non_swift if statement.entries and not closed else None
            (statement.non_swift if target is None else target).extend(item.lines)
        else:
            statement.others.append(item)
    if statement.account is None:
        raise StatementParseError(f"line {statement.reference.line}: statement without :25: account")
    return statement


def _match(tag: mt940.tags.Tag, item: _Field, value: str | None = None) -> dict[str, str]:
    # The tag's compiled pattern, not Tag.parse(): that one logs the whole value at ERROR level.
    text = item.value if value is None else value
    found = tag.re.match(text)
    if not found:
        raise StatementParseError(f"line {item.line}: :{item.tag}: {text[:40]!r} does not match its format")
    return {key: value for key, value in found.groupdict().items() if value is not None}


@contextmanager
def _reading(item: _Field) -> Iterator[None]:
    """Errors while reading `item` as StatementParseError saying which line and tag."""
    try:
        yield
    except StatementParseError as error:
        if str(error).startswith("line "):
            raise
        raise StatementParseError(f"line {item.line}: :{item.tag}: {error}") from error
    except (ValueError, ArithmeticError, LookupError) as error:
        raise StatementParseError(
            f"line {item.line}: :{item.tag}: {type(error).__name__}: {error}"
        ) from error


def _account(value: str) -> tuple[str, str | None, str | None, str | None]:
    """(account_id, account_iban, bank_bic, currency) from a `:25:` value."""
    account_id = " ".join(value.split())
    iban = account_iban(account_id.replace(" ", ""))
    if iban:
        return iban, iban, None, None
    parts = [part.strip() for part in account_id.split("/")]
    currency = parts.pop() if len(parts) > 2 and re.fullmatch(r"[A-Z]{3}", parts[-1]) else None
    bank_bic = None
    if len(parts) > 1:
        try:
            candidate = BIC(parts[0])
            # "TRIODOSBANK" has the shape of a BIC; only one the registry knows is taken as one.
            bank_bic = str(candidate) if candidate.exists else None
        except (SchwiftyException, ValueError):
            bank_bic = None
        iban = account_iban(parts[-1])
    return account_id, iban, bank_bic, currency


def _non_swift(lines: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in lines:
        if match := re.match(r"^(\d{2})(.*)$", line.strip()):
            number, text = match.groups()
        else:
            number, text = "text", line.strip()
        values[number] = f"{values[number]} {text}" if number in values else text
    return values


def _money(amount: Decimal) -> str:
    return str(amount)


class _StatementReader:
    """Reads one statement's sorted fields into its header and entries."""

    def __init__(self, index: int, fields: _StatementFields, message_type: str | None) -> None:
        self.index = index
        self.fields = fields
        self.message_type = message_type
        self.reference_date: date | None = None

    def header(self) -> StatementHeader:
        fields = self.fields
        account_id, iban, bank_bic, account_currency = _account(fields.account.value)  # type: ignore[union-attr]
        details: dict[str, Any] = {}
        created_at = None
        sequence = None
        currencies: list[str] = []
        for item in fields.others:
            with _reading(item):
                if item.tag in ("28", "28C"):
                    sequence = item.value
                elif item.tag in ("13", "13D"):
                    created_at = self._date_time(item)
                else:
                    self._read_other(item, details, currencies)
        balances = self._balances()
        if created_at is not None and self.reference_date is None:
            self.reference_date = created_at.date()
        currency = account_currency or next((b.currency for b in balances), None)
        currency = currency or next(iter(currencies), None)
        if currency is None:
            raise StatementParseError(f"line {fields.reference.line}: statement without a currency")
        if fields.information:
            details["information"] = "\n".join(line.strip() for line in fields.information)
        if fields.non_swift:
            details["non_swift"] = _non_swift(fields.non_swift)
        if self.message_type:
            details["message_type"] = self.message_type
        opening = next((b for b in balances if b.kind in ("opening", "interim_opening")), None)
        closing = next((b for b in balances if b.kind in ("closing", "interim_closing")), None)
        return StatementHeader(
            index=self.index,
            account_id=account_id,
            account_iban=iban,
            currency=currency,
            statement_id=fields.reference.value or None,
            sequence=sequence or None,
            created_at=created_at,
            period_start=opening.date if opening else None,
            period_end=closing.date if closing else None,
            bank_bic=bank_bic,
            balances=tuple(balances),
            details=details,
        )

    @staticmethod
    def _read_other(item: _Field, details: dict[str, Any], currencies: list[str]) -> None:
        """Header fields beyond account, sequence and balances: `:21:`, MT942's, unknown tags."""
        if item.tag == "21":
            details["related_reference"] = item.value
        elif item.tag == "34F":
            limit = _match(_FLOOR_LIMIT, item)
            currencies.append(limit["currency"])
            details.setdefault("floor_limits", []).append(
                {
                    "mark": limit.get("status", "").strip() or None,
                    "currency": limit["currency"],
                    "amount": _money(parse_amount(limit.get("amount") or "0")),
                }
            )
        elif item.tag in ("90D", "90C"):
            total = _match(_SUM_ENTRIES, item)
            currencies.append(total["currency"])
            key = "debit_entries" if item.tag == "90D" else "credit_entries"
            details[key] = {
                "count": int(total["number"]),
                "currency": total["currency"],
                "amount": _money(parse_amount(total["amount"])),
            }
        else:
            details.setdefault("other_tags", []).append({"tag": item.tag, "value": item.value})

    def _balances(self) -> list[StatementBalance]:
        parsed = [(item, _match(_BALANCE, item)) for item in self.fields.balances]
        balances = []
        for item, groups in parsed:
            with _reading(item):
                if self.reference_date is None:
                    # The first balance date (by the century pivot) anchors every other two-digit year.
                    self.reference_date = resolve_date(groups["year"], groups["month"], groups["day"], None)
                amount = parse_amount(groups["amount"])
                balances.append(
                    StatementBalance(
                        kind=BALANCE_KINDS[item.tag],
                        code=item.tag,
                        amount=-amount if groups["status"] == "D" else amount,
                        currency=groups["currency"],
                        date=resolve_date(
                            groups["year"], groups["month"], groups["day"], self.reference_date
                        ),
                    )
                )
        return balances

    def _date_time(self, item: _Field) -> datetime:
        groups = _match(_DATE_TIME, item)
        day = resolve_date(groups["year"], groups["month"], groups["day"], self.reference_date)
        tzinfo = None
        if "offset" in groups:
            offset = timedelta(hours=int(groups["offset"][:2]), minutes=int(groups["offset"][2:]))
            tzinfo = timezone(-offset if groups.get("offset_sign") == "-" else offset)
        return datetime(
            day.year, day.month, day.day, int(groups["hour"]), int(groups["minute"]), tzinfo=tzinfo
        )

    def entries(self, currency: str) -> Iterator[StatementEntry]:
        for position, entry in enumerate(self.fields.entries):
            with _reading(entry.line):
                read = self._entry(position, entry, currency)
            yield read

    def _entry(self, position: int, entry: _EntryFields, currency: str) -> StatementEntry:
        groups = _match(_STATEMENT_LINE, entry.line)
        value_date = resolve_date(groups["year"], groups["month"], groups["day"], self.reference_date)
        written_entry_date = groups.get("entry_date", "").strip()
        booking_date = (
            resolve_entry_date(written_entry_date, value_date) if written_entry_date else value_date
        )
        mark = groups["status"]
        amount = parse_amount(groups["amount"])
        signed = -amount if mark in ("D", "RC", "ED") else amount
        status: EntryStatus
        if amount == 0:
            # Citi reports balances as zero-amount lines ("C 37897,00 BAI CD 025"): kept, not money.
            status = "info"
        elif mark in ("EC", "ED"):
            status = "pending"
        else:
            # An MT942 reports the day's items so far; C/D lines there are booked items of the
            # current day (only EC/ED are expected ones), so they are "booked" like MT940 lines.
            status = "booked"
        transaction_type = groups["id"]
        supplementary = fold_whitespace(groups.get("extra_details"))
        details: dict[str, Any] = {"mark": mark, "transaction_type": transaction_type}
        if groups.get("funds_code"):
            details["funds_code"] = groups["funds_code"]
        if supplementary:
            details["supplementary_details"] = supplementary
        if entry.non_swift:
            details["non_swift"] = _non_swift(entry.non_swift)
        information = read_information([line for line in entry.information if line.strip()])
        if entry.information:
            details["information"] = "\n".join(line.rstrip() for line in entry.information)
            details["information_dialect"] = information.dialect
            details.update(information.details)
        counterparty_iban = information.counterparty_iban
        if counterparty_iban is None and supplementary:
            # Rabobank puts the counterparty IBAN on the :61: line's second line.
            counterparty_iban = account_iban(supplementary)
        code = transaction_type.strip()
        if information.transaction_code:
            code = f"{code}/{information.transaction_code}"
        return StatementEntry(
            statement_index=self.index,
            index=position,
            amount=signed,
            currency=currency,
            status=status,
            booking_date=booking_date,
            value_date=value_date,
            is_reversal=mark.startswith("R"),
            entry_reference=self._customer_reference(groups.get("customer_reference"), details),
            bank_reference=_reference(groups.get("bank_reference")),
            end_to_end_id=information.end_to_end_id,
            counterparty_name=information.counterparty_name,
            counterparty_iban=counterparty_iban,
            counterparty_bic=information.counterparty_bic,
            description=information.description,
            bank_transaction_code=code or None,
            details=details,
        )

    @staticmethod
    def _customer_reference(written: str | None, details: dict[str, Any]) -> str | None:
        reference = _reference(written)
        if reference is None:
            return None
        details["customer_reference"] = reference
        # "KREF+" (German banks) and "EREF" (Rabobank) say "the reference is in :86:", not a value.
        if reference in ("KREF+", "KREF"):
            return _reference(details.get("sepa", {}).get("KREF"))
        if reference in ("EREF+", "EREF"):
            return None
        return reference


def _reference(value: str | None) -> str | None:
    value = fold_whitespace(value)
    return None if value is None or value.upper() in _NO_REFERENCE else value


def read_statements(text: str, message_type: str | None = None) -> Iterator[StatementEvent]:
    """The events of cleaned MT940/MT942 text (see `clean_statement_text`), statement by statement."""
    found = False
    for index, fields in enumerate(split_statements(text)):
        found = True
        sorted_fields = _sort_fields(fields)
        kind = message_type
        if kind is None and any(item.tag in ("34F", "13D", "90D", "90C") for item in sorted_fields.others):
            kind = "942"
        reader = _StatementReader(index, sorted_fields, kind)
        try:
            header = reader.header()
            # A statement is small: read all of it before yielding, so a bad line yields nothing.
            entries = list(reader.entries(header.currency or ""))
        except (ValueError, ArithmeticError, LookupError) as error:
            if isinstance(error, StatementParseError):
                raise
            raise StatementParseError(
                f"statement {index} (line {fields[0].line}): {type(error).__name__}: {error}"
            ) from error
        yield header
        yield from entries
    if not found:
        raise StatementParseError("no MT940 statement (:20: tag) in the file")


class Mt940Parser:
    """The `StatementParser` for SWIFT MT940 statements and MT942 interim reports."""

    format = "mt940"

    def sniff(self, head: bytes, filename: str) -> bool:
        """Whether the head has a `:20:` with `:25:`/`:60F:`/`:60M:`/`:28C:`, or an MT940/942 envelope."""
        text = head.decode("latin-1")
        if "{2:O940" in text or "{2:O942" in text:
            return True
        # Tags open a line (after an SOH at most): ":20:" inside a CSV or JSON value is not a tag.
        return bool(_SNIFF_REFERENCE.search(text) and _SNIFF_ACCOUNT_OR_BALANCE.search(text))

    def parse(self, path: Path) -> Iterator[StatementEvent]:
        """The file's statements and entries in file order; raises StatementParseError only."""
        try:
            data = path.read_bytes()
        except OSError as error:
            raise StatementParseError(f"{path.name}: cannot read: {error.strerror}") from error
        text, message_type = clean_statement_text(decode_statement_bytes(data))
        yield from read_statements(text, message_type)
