"""OFX statement drops (OFX 1.x SGML and 2.x XML), read with ofxtools.

Each bank statement (`STMTRS`) or credit-card statement (`CCSTMTRS`) in the file is one statement:
the account from `BANKACCTFROM`/`CCACCTFROM` (`ACCTID`, `BANKID`), currency `CURDEF`, period
`DTSTART`..`DTEND`, `LEDGERBAL` as the closing balance and `AVAILBAL` as the closing available
balance. OFX has no opening balance; one derived as LEDGERBAL minus the entries would make every
statement reconcile by construction, so none is reported.

ofxtools validates the whole message against the OFX schema (`OFXTree.convert`), including
elements out of place, which it would otherwise skip with a warning (and a transaction with them).
The values are then read from the parsed element tree rather than from ofxtools' models, because
ofxtools normalises every date-time to UTC and a booking date is the calendar date *as the bank
wrote it*, in its own offset (20250105233000[-5:EST] is booked on 5 January, though it is the 6th
in UTC). Any ofxtools error becomes a StatementParseError.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from ofxtools.models.base import UnknownTagWarning
from ofxtools.Parser import OFXTree
from ofxtools.Types import DT_REGEX
from ofxtools.Types import DateTime as OfxDateTime
from ofxtools.Types import Decimal as OfxDecimal

from resources.statements.account_iban import account_iban
from resources.statements.model import (
    StatementBalance,
    StatementEntry,
    StatementEvent,
    StatementHeader,
    StatementParseError,
)

_BANK_STATEMENTS = "BANKMSGSRSV1/STMTTRNRS/STMTRS"
_CARD_STATEMENTS = "CREDITCARDMSGSRSV1/CCSTMTTRNRS/CCSTMTRS"
# STMTTRN elements kept in details as written (the mapped ones are entry fields).
_ENTRY_DETAILS = (
    "CHECKNUM",
    "REFNUM",
    "SIC",
    "PAYEEID",
    "SRVRTID",
    "EXTDNAME",
    "CORRECTFITID",
    "CORRECTACTION",
)
_BOM = b"\xef\xbb\xbf"


class OfxStatementParser:
    """Reads OFX bank and credit-card statements."""

    format = "ofx"

    def sniff(self, head: bytes, filename: str) -> bool:
        """An OFX 1.x header (`OFXHEADER:`), an OFX 2.x XML prolog (`<?OFX OFXHEADER=`), or `<OFX>`."""
        text = head.removeprefix(_BOM).lstrip().upper()
        return (
            text.startswith(b"OFXHEADER")
            or text.startswith(b"<OFX>")
            or (text.startswith(b"<?XML") and b"OFXHEADER" in text)
        )

    def parse(self, path: Path) -> Iterator[StatementEvent]:
        """Each STMTRS/CCSTMTRS in document order; StatementParseError for anything unreadable."""
        root = _validated_tree(path)
        statements = [*root.findall(_BANK_STATEMENTS), *root.findall(_CARD_STATEMENTS)]
        if not statements:
            raise StatementParseError(
                f"{path.name}: no bank (STMTRS) or credit-card (CCSTMTRS) statement in the OFX file"
            )
        created_at = _optional_moment(root.findtext("SIGNONMSGSRSV1/SONRS/DTSERVER"), path, "DTSERVER")
        try:
            for index, element in enumerate(statements):
                yield from _statement(index, element, created_at, path)
        except (ValueError, ArithmeticError) as exc:
            raise StatementParseError(f"{path.name}: {exc}") from None


def _validated_tree(path: Path) -> ET.Element:
    tree = OFXTree()
    try:
        with path.open("rb") as handle:
            tree.parse(handle)
        with warnings.catch_warnings():
            # ofxtools skips an element it does not expect where it is, with only a warning: a
            # transaction whose SGML start tag is lost, or one outside BANKTRANLIST, would vanish.
            warnings.simplefilter("error", UnknownTagWarning)
            tree.convert()
    except OSError as exc:
        raise StatementParseError(f"{path.name}: cannot read ({exc.strerror})") from None
    except Exception as exc:  # noqa: BLE001 - ofxtools raises many types (ParseError, OFXSpecError,
        # ValueError, KeyError, TypeError, IndexError, ...) and the contract is StatementParseError only.
        message = str(exc) if len(str(exc)) <= 300 else str(exc)[:300] + "..."
        raise StatementParseError(
            f"{path.name}: not a valid OFX file ({type(exc).__name__}: {message})"
        ) from None
    return tree.getroot()


def _statement(
    index: int, element: ET.Element, created_at: datetime | None, path: Path
) -> Iterator[StatementEvent]:
    is_card = element.tag == "CCSTMTRS"
    account = element.find("CCACCTFROM" if is_card else "BANKACCTFROM")
    if account is None:  # convert() requires it; kept for a clear message should that change
        raise StatementParseError(f"{path.name}: statement {index + 1} has no account")
    account_id = (account.findtext("ACCTID") or "").strip()
    currency = (element.findtext("CURDEF") or "").strip().upper()
    transactions = element.find("BANKTRANLIST")
    details: dict[str, Any] = {"ofx_statement": element.tag}
    for tag, key in (("BANKID", "bank_id"), ("BRANCHID", "branch_id"), ("ACCTTYPE", "account_type")):
        if account.findtext(tag):
            details[key] = account.findtext(tag)
    balances = [
        balance
        for balance in (
            _balance(element.find("LEDGERBAL"), "closing", "LEDGERBAL", currency),
            _balance(element.find("AVAILBAL"), "closing_available", "AVAILBAL", currency),
        )
        if balance is not None
    ]
    yield StatementHeader(
        index=index,
        account_id=account_id,
        account_iban=account_iban(account_id),
        currency=currency or None,
        created_at=created_at,
        period_start=_written_date(transactions.findtext("DTSTART")) if transactions is not None else None,
        period_end=_written_date(transactions.findtext("DTEND")) if transactions is not None else None,
        balances=tuple(balances),
        details=details,
    )
    if transactions is None:
        return
    for position, transaction in enumerate(transactions.findall("STMTTRN")):
        yield _entry(index, position, transaction, currency)


def _entry(statement_index: int, index: int, transaction: ET.Element, currency: str) -> StatementEntry:
    posted = transaction.findtext("DTPOSTED") or ""
    booked_at = _moment(posted)
    details: dict[str, Any] = {
        tag.lower(): transaction.findtext(tag) for tag in _ENTRY_DETAILS if transaction.findtext(tag)
    }
    # TRNAMT is in CURDEF unless the transaction names its own currency (OFX §5.2).
    entry_currency = currency
    own = transaction.find("CURRENCY")
    if own is not None and own.findtext("CURSYM"):
        entry_currency = own.findtext("CURSYM", "").strip().upper()
        details["currency_rate"] = own.findtext("CURRATE")
    original = transaction.find("ORIGCURRENCY")
    if original is not None:
        details["original_currency"] = original.findtext("CURSYM")
        details["original_currency_rate"] = original.findtext("CURRATE")
    if transaction.findtext("DTAVAIL"):
        details["available_date"] = str(_written_date(transaction.findtext("DTAVAIL")))
    name = transaction.findtext("NAME") or transaction.findtext("PAYEE/NAME")
    return StatementEntry(
        statement_index=statement_index,
        index=index,
        amount=_amount(transaction.findtext("TRNAMT") or "", "TRNAMT"),
        currency=entry_currency,
        status="booked",
        booking_date=_written_date(posted),
        value_date=_written_date(transaction.findtext("DTUSER")),
        booked_at=booked_at if _has_time(posted) else None,
        bank_reference=(transaction.findtext("FITID") or "").strip() or None,
        counterparty_name=(name or "").strip() or None,
        description=" ".join((transaction.findtext("MEMO") or "").split()) or None,
        bank_transaction_code=(transaction.findtext("TRNTYPE") or "").strip() or None,
        details=details,
    )


def _balance(element: ET.Element | None, kind: Any, code: str, currency: str) -> StatementBalance | None:
    if element is None:
        return None
    return StatementBalance(
        kind=kind,
        code=code,
        amount=_amount(element.findtext("BALAMT") or "", f"{code}/BALAMT"),
        currency=currency,
        date=_written_date(element.findtext("DTASOF")),
    )


def _amount(text: str, where: str) -> Decimal:
    amount = OfxDecimal().convert(text.strip())
    if not amount.is_finite():
        raise ValueError(f"{where}: {text!r} is not an amount")
    return amount


def _written_date(text: str | None) -> date | None:
    """The calendar date as written (YYYYMMDD...), whatever offset follows it."""
    if not text:
        return None
    match = DT_REGEX.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an OFX date")
    return date(int(match["year"]), int(match["month"]), int(match["day"]))


def _has_time(text: str) -> bool:
    match = DT_REGEX.match(text.strip())
    return match is not None and match["hour"] is not None


def _moment(text: str) -> datetime:
    """The aware date-time, in the offset it was written with (ofxtools gives it in UTC)."""
    text = text.strip()
    match = DT_REGEX.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an OFX date-time")
    utc = OfxDateTime().convert(text)
    fields = [match[name] for name in ("year", "month", "day", "hour", "minute", "second")]
    wall = datetime(*(int(value or 0) for value in fields), int(match["millisecond"] or 0) * 1000)
    offset = wall - utc.replace(tzinfo=None)
    if abs(offset) >= timedelta(hours=24):
        raise ValueError(f"{text!r}: UTC offset out of range")
    return utc.astimezone(timezone(offset))


def _optional_moment(text: str | None, path: Path, where: str) -> datetime | None:
    if not text:
        return None
    try:
        return _moment(text)
    except (ValueError, ArithmeticError) as exc:
        raise StatementParseError(f"{path.name}: {where}: {exc}") from None
