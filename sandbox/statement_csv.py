"""One day of one account as an ICICI-style CSV statement (SFTP drop).

The layout is fixed by bankflow issue 6 (the parser mapping is written against it): UTF-8 with a BOM,
``,`` delimiter, ``"`` quotes, CRLF line ends;

    Statement of account,<account number>
    Period,<dd/mm/yyyy> to <dd/mm/yyyy>
    Transaction Date,Value Date,Narration,Chq/Ref No,Withdrawal Amt,Deposit Amt,Closing Balance,Currency

then one row per entry in booking order. Money columns are always quoted and use Indian digit
grouping (``"1,23,456.78"``); the side that does not apply is empty; Closing Balance runs after each row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sandbox.model import Account, WorldTransaction
from sandbox.rest_banks_json import reference_number

HEADER = (
    "Transaction Date",
    "Value Date",
    "Narration",
    "Chq/Ref No",
    "Withdrawal Amt",
    "Deposit Amt",
    "Closing Balance",
    "Currency",
)
_BOM = "\ufeff"
_NEWLINE = "\r\n"


def indian_grouping(value: Decimal) -> str:
    """``value`` with 2 decimals and Indian digit grouping: Decimal("123456.78") -> "1,23,456.78"."""
    sign = "-" if value < 0 else ""
    whole, fraction = format(abs(value), ".2f").split(".")
    head, tail = whole[:-3], whole[-3:]
    pairs = []
    while head:
        pairs.insert(0, head[-2:])
        head = head[:-2]
    return f"{sign}{','.join([*pairs, tail])}.{fraction}"


def render_icici_csv(
    account: Account, day: dt.date, opening: Decimal, entries: Sequence[WorldTransaction]
) -> bytes:
    """The CSV statement (UTF-8 with BOM) for one account's booked ``entries`` on ``day``;
    ``opening`` is the previous day's closing balance."""
    if account.number is None:
        raise ValueError(f"{account.key} has no account number")
    date = f"{day:%d/%m/%Y}"
    lines = [
        _row(["Statement of account", account.number]),
        _row(["Period", f"{date} to {date}"]),
        _row(list(HEADER)),
    ]
    balance = opening
    for txn in entries:
        balance += txn.amount
        amount = _Money(indian_grouping(abs(txn.amount)))
        withdrawal, deposit = (amount, "") if txn.amount < 0 else ("", amount)
        fields = [date, date, txn.description, reference_number(txn), withdrawal, deposit]
        lines.append(_row([*fields, _Money(indian_grouping(balance)), txn.currency]))
    return (_BOM + "".join(line + _NEWLINE for line in lines)).encode("utf-8")


class _Money(str):
    """A money column: always quoted, as the bank writes it."""


def _row(fields: list[str]) -> str:
    # csv.writer quotes only where needed or everywhere; the bank quotes money always and text as needed.
    return ",".join(_field(field) for field in fields)


def _field(value: str) -> str:
    if isinstance(value, _Money) or any(char in value for char in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value
