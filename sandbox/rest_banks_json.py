"""Indian bank REST record shapes from the world: HDFC-, ICICI- and SBI-style accounts and transactions.

Contract: the reconciliation seed's bank APIs (shared/reference/bank-contracts.md §11 and the issue):
each bank lists accounts and an account's transactions for a window of IST calendar days, in its own
field names and encodings:

- HDFC style: unsigned amount as text + creditDebitFlag C/D, ISO-8601 with +05:30, status words.
- ICICI style: signed JSON number, IST wall-clock "dd-mm-yyyy HH:MM:SS" without an offset, status codes S/P/F.
- SBI style: signed amount as text, UTC instants with Z, nested reference and merchant objects.

The world knows dates only: each movement gets a deterministic IST time of day from its world id, on
its booking date (pending ones on the day they were made). Besides the world's movements a bank lists
failed attempts (a debit tried once before it went through): never money, kept by banks in the list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sandbox.layout import stable_hex
from sandbox.model import Account, WorldTransaction
from sandbox.world import World

IST = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
# Card payments book up to this many days after they are made (sandbox.daybook.CARD_LAG_DAYS).
MAX_LAG_DAYS = 3
_RAILS = ("UPI", "NEFT", "RTGS", "IMPS", "NACH")
_CHANNELS = {"PURCHASE": "POS", "ATM": "ATM", "FEE_CHARGE": "INTERNAL", "INTEREST": "INTERNAL"}
_TYPES = {
    "PURCHASE": "PAYMENT",
    "DIRECT_DEBIT": "PAYMENT",
    "STANDING_ORDER": "PAYMENT",
    "ATM": "WITHDRAWAL",
    "TRANSFER": "TRANSFER",
    "CREDIT": "TRANSFER",
    "FEE_CHARGE": "FEE",
    "INTEREST": "INTEREST",
}
# One debit in this many is listed with a failed attempt before it (never a movement).
FAILED_ATTEMPT_ONE_IN = 9


@dataclasses.dataclass(frozen=True)
class ServedTransaction:
    """One row of a bank's transaction list, before the bank's own encoding."""

    txn: WorldTransaction
    status: str  # SUCCESS | PENDING | FAILED
    moment: dt.datetime  # aware, IST
    key: str  # world id, plus ":failed" for a failed attempt

    @property
    def day(self) -> dt.date:
        return self.moment.date()


def ifsc(account: Account) -> str:
    """The branch's IFSC: 4-letter bank code, 0, 6 branch characters."""
    return f"{account.bank.bank_code}0{int(stable_hex('ifsc', account.account_id), 16) % 10**6:06d}"


def channel(txn: WorldTransaction) -> str:
    head = re.split(r"[/ -]", txn.description.upper(), maxsplit=1)[0]
    return head if head in _RAILS else _CHANNELS.get(txn.transaction_category, "BRANCH")


def transaction_type(txn: WorldTransaction) -> str:
    return _TYPES.get(txn.transaction_category, "TRANSFER")


def reference_number(txn: WorldTransaction) -> str:
    """The payment's reference: the world's own (a settlement's UTR) or a UTR/RRN made up from its id."""
    if txn.reference:
        return txn.reference
    digits = f"{int(stable_hex('utr', txn.world_id, length=16), 16) % 10**12:012d}"
    rail = channel(txn)
    if rail in ("NEFT", "RTGS", "IMPS"):
        return f"{txn.account_id[4:8].upper()}{rail[0]}{txn.transaction_date:%y}{digits[:10]}"
    return digits  # UPI / card RRN: 12 digits


def merchant_id(txn: WorldTransaction) -> str | None:
    if not txn.merchant_name:
        return None
    return f"MID{int(stable_hex('mid', txn.merchant_name), 16) % 10**10:010d}"


def _time_of_day(key: str) -> dt.timedelta:
    # 00:05 .. 23:59 IST, so a failed attempt two minutes earlier is still the same day.
    return dt.timedelta(seconds=300 + int(stable_hex("rest-time", key), 16) % (86_400 - 300))


def _at(day: dt.date, key: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=IST) + _time_of_day(key)


def has_failed_attempt(txn: WorldTransaction) -> bool:
    return (
        txn.amount < 0
        and txn.transaction_category != "FEE_CHARGE"
        and int(stable_hex("failed", txn.world_id), 16) % FAILED_ATTEMPT_ONE_IN == 0
    )


def served_transactions(
    world: World, account: Account, first: dt.date, last: dt.date
) -> list[ServedTransaction]:
    """What the bank lists for [first, last] (IST days): booked movements on their booking day,
    pending ones on the day they were made, failed attempts; oldest first."""
    end = last + dt.timedelta(days=1)
    booked = world.booked(account.account_id, first, end + dt.timedelta(days=MAX_LAG_DAYS))
    pending = world.pending(account.account_id)
    rows = [
        ServedTransaction(txn, "SUCCESS", _at(txn.booking_date, txn.world_id), txn.world_id)
        for txn in booked
        if txn.booking_date is not None and txn.booking_date < end
    ]
    rows += [
        ServedTransaction(txn, "PENDING", _at(txn.transaction_date, txn.world_id), txn.world_id)
        for txn in pending
        if first <= txn.transaction_date <= last
    ]
    for txn in [*booked, *pending]:
        if first <= txn.transaction_date <= last and has_failed_attempt(txn):
            key = f"{txn.world_id}:failed"
            made = _at(txn.transaction_date, txn.world_id) - dt.timedelta(minutes=2)
            rows.append(ServedTransaction(txn, "FAILED", made, key))
    rows.sort(key=lambda row: (row.moment, row.key))
    return rows


def _money(amount: Decimal) -> str:
    return format(amount, "f")


# -- HDFC style ------------------------------------------------------------------------------------


def hdfc_account(account: Account, balance: Decimal) -> dict[str, Any]:
    return {
        "accountNumber": account.number,
        "ifscCode": ifsc(account),
        "accountType": "SAVINGS" if account.account_type == "SAVINGS" else "CURRENT",
        "currency": account.currency,
        "accountName": account.display_name,
        "customerName": account.owner_name,
        "availableBalance": _money(balance + account.overdraft),
        "ledgerBalance": _money(balance),
    }


def hdfc_transaction(row: ServedTransaction, account: Account) -> dict[str, Any]:
    txn = row.txn
    return {
        "transactionId": f"HDFC{int(stable_hex('hdfc-id', row.key, length=16), 16) % 10**16:016d}",
        "accountNumber": account.number,
        "amount": _money(abs(txn.amount)),
        "creditDebitFlag": "C" if txn.amount > 0 else "D",
        "currency": txn.currency,
        "status": row.status,
        "transactionDateTime": row.moment.isoformat(),
        "valueDate": row.day.isoformat() if row.status == "SUCCESS" else None,
        "channel": channel(txn),
        "transactionType": transaction_type(txn),
        "utrNumber": reference_number(txn),
        "merchantId": merchant_id(txn),
        "narration": txn.description,
    }


# -- ICICI style -----------------------------------------------------------------------------------

_ICICI_STATUS = {"SUCCESS": "S", "PENDING": "P", "FAILED": "F"}


def icici_account(account: Account, balance: Decimal) -> dict[str, Any]:
    return {
        "accountNo": account.number,
        "ifsc": ifsc(account),
        "acctType": "SB" if account.account_type == "SAVINGS" else "CA",
        "currency": account.currency,
        "nickName": account.display_name,
        "balance": balance,
    }


def icici_transaction(row: ServedTransaction, account: Account) -> dict[str, Any]:
    txn = row.txn
    return {
        "txnId": f"S{int(stable_hex('icici-id', row.key), 16) % 10**9:09d}",
        "accountNo": account.number,
        "txnAmount": txn.amount,
        "currency": txn.currency,
        "txnStatus": _ICICI_STATUS[row.status],
        "txnDate": row.moment.strftime("%d-%m-%Y %H:%M:%S"),
        "mode": channel(txn),
        "txnType": transaction_type(txn),
        "bankRefNo": reference_number(txn),
        "merchantCode": merchant_id(txn),
        "remarks": txn.description,
    }


# -- SBI style -------------------------------------------------------------------------------------


def sbi_account(account: Account, balance: Decimal) -> dict[str, Any]:
    return {
        "account_id": account.number,
        "currency": account.currency,
        "type": "SAVINGS" if account.account_type == "SAVINGS" else "CURRENT",
        "name": account.display_name,
        "branch": {"ifsc": ifsc(account)},
        "balances": {"current": _money(balance), "available": _money(balance + account.overdraft)},
    }


def sbi_transaction(row: ServedTransaction, account: Account) -> dict[str, Any]:
    txn = row.txn
    mid = merchant_id(txn)
    moment = row.moment.astimezone(dt.UTC)
    return {
        "transaction_id": str(uuid.UUID(hex=stable_hex("sbi-id", row.key, length=32))),
        "account_id": account.number,
        "amount": _money(txn.amount),
        "currency": txn.currency,
        "status": row.status,
        "booked_at": f"{moment:%Y-%m-%dT%H:%M:%S}Z",
        "channel": channel(txn),
        "category": transaction_type(txn),
        "reference": {"utr": reference_number(txn)},
        "merchant": {"id": mid} if mid else None,
        "remarks": txn.description,
    }


AccountEncoder = Callable[[Account, Decimal], dict[str, Any]]
TransactionEncoder = Callable[[ServedTransaction, Account], dict[str, Any]]
