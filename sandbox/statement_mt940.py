"""One day of one account as a SWIFT MT940 customer statement (Barclays-style SFTP drop).

Written from shared/reference/bank-contracts.md §5.1: a SWIFT envelope ``{1:…}{2:O940…}{4:`` CRLF
… ``-}``, one statement per file, dated like the daily ASN Bank sample (``:60F:`` and ``:62F:`` both
carry the statement day, ``:28C:`` is the day of the year). Each entry is a ``:61:`` line and a
``:86:`` in the Dutch structured style ``/EREF/…/NAME/…/IBAN/…/REMI/…``, cut every 65 characters
mid-word like Rabobank does, so joining the lines without a separator gives the text back.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal

from sandbox.layout import stable_hex
from sandbox.model import Account, WorldTransaction

LINE_WIDTH = 65
MAX_INFO_LINES = 6
_TAG_86 = ":86:"
# The SWIFT "x" character set minus "{}" (envelope delimiters) and ":" (a wrapped line that starts
# with ":NN:" would read as a new tag).
_NOT_SWIFT_X = re.compile(r"[^A-Za-z0-9/\-?().,'+ ]")


def bank_reference(txn: WorldTransaction) -> str:
    """The bank's stable 16-character reference for an entry (after ``//`` on the :61: line)."""
    return stable_hex("mt940-ref", txn.world_id, length=16).upper()


def swift_text(text: str) -> str:
    """``text`` in the SWIFT x character set: accents dropped, anything else outside it becomes '.'."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _NOT_SWIFT_X.sub(".", plain)


def information_lines(txn: WorldTransaction) -> list[str]:
    """The entry's :86: field as physical lines, the tag included, each at most 65 characters,
    at most 6 lines (longer text is cut)."""
    parts = [("EREF", txn.reference or "NOTPROVIDED")]
    name = txn.counterparty_name or txn.merchant_name
    if name:
        parts.append(("NAME", name))
    if txn.counterparty_iban:
        parts.append(("IBAN", txn.counterparty_iban))
    parts.append(("REMI", txn.description))
    text = _TAG_86 + "".join(f"/{key}/{swift_text(value)}" for key, value in parts)
    lines = [text[start : start + LINE_WIDTH] for start in range(0, len(text), LINE_WIDTH)]
    return lines[:MAX_INFO_LINES]


def render_mt940(
    account: Account,
    day: dt.date,
    opening: Decimal,
    entries: Sequence[WorldTransaction],
    created: dt.datetime,
) -> bytes:
    """The MT940 file (ASCII, CRLF) for one account's booked ``entries`` on ``day``; ``opening`` is the
    previous day's closing balance, ``created`` the moment the bank sent the file (UTC)."""
    if account.iban is None:
        raise ValueError(f"{account.key} has no IBAN for :25:")
    closing = opening + sum((txn.amount for txn in entries), Decimal(0))
    sender = f"{account.swift_bic}AXXX"  # 12-character logical terminal address
    sent = created.astimezone(dt.UTC)
    # Block 2 (output): MT, input time, MIR (date, sender LT, session, sequence), output date and time, priority.
    block2 = f"O940{sent:%H%M}{sent:%y%m%d}{sender}0000000000{sent:%y%m%d}{sent:%H%M}N"
    lines = [
        f"{{1:F01{sender}0000000000}}{{2:{block2}}}{{4:",
        f":20:{account.bank.bank_code}{day:%y%m%d}",
        f":25:{account.iban}",
        f":28C:{day.timetuple().tm_yday}/1",
        f":60F:{_balance(opening, day, account.currency)}",
    ]
    for txn in entries:
        mark = "D" if txn.amount < 0 else "C"
        customer_reference = swift_text(txn.reference or "NONREF")[:16]
        lines.append(
            f":61:{day:%y%m%d}{day:%m%d}{mark}{_amount(txn.amount)}NTRF"
            f"{customer_reference}//{bank_reference(txn)}"
        )
        lines.extend(information_lines(txn))
    lines += [
        f":62F:{_balance(closing, day, account.currency)}",
        f":64:{_balance(closing + account.overdraft, day, account.currency)}",
        "-}",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _amount(value: Decimal) -> str:
    return format(abs(value), ".2f").replace(".", ",")


def _balance(value: Decimal, day: dt.date, currency: str) -> str:
    return f"{'D' if value < 0 else 'C'}{day:%y%m%d}{currency}{_amount(value)}"
