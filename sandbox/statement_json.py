"""One day of one account as a JSON drop in the reconciliation seed's standard transaction format (SBI).

Written from shared/reference/bank-contracts.md §11: a JSON array, one record per booked movement,
``amount`` a signed JSON number with exactly two decimals (written from the Decimal's text),
``status`` SUCCESS, ``timestamp`` ISO 8601 in IST (+05:30) on the booking day. The ids, times,
channels and references are the ones the SBI-style REST API gives for the same movements
(sandbox.rest_banks_json), as a bank's file and its API describe one ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sandbox.jsonbody import dumps_exact
from sandbox.model import Account
from sandbox.rest_banks_json import ServedTransaction, sbi_transaction

SOURCE = "sbi_sftp"
_CENTS = Decimal("0.01")


def seed_record(row: ServedTransaction, account: Account) -> dict[str, Any]:
    """One booked movement as a §11 record."""
    api = sbi_transaction(row, account)
    txn = row.txn
    return {
        "txn_id": api["transaction_id"],
        "amount": txn.amount.quantize(_CENTS),
        "currency": txn.currency,
        "status": "SUCCESS",
        "timestamp": row.moment.isoformat(),
        "account_id": account.number,
        "source": SOURCE,
        "bank_code": account.bank.bank_code,
        "channel": api["channel"],
        "transaction_type": api["category"],
        "reference_number": api["reference"]["utr"],
        "merchant_id": None,
        "description": txn.description,
    }


def render_seed_json(account: Account, rows: Sequence[ServedTransaction]) -> bytes:
    """The JSON file (UTF-8) for one account's booked rows of one day: one record per line,
    ``[]`` for a day without movements."""
    if any(row.status != "SUCCESS" for row in rows):
        raise ValueError("a statement file lists booked movements only")
    if not rows:
        return b"[]\n"
    records = ",\n".join(dumps_exact(seed_record(row, account)) for row in rows)
    return f"[\n{records}\n]\n".encode()
