"""GoCardless Bank Account Data v2 record shapes (contract: shared/reference/bank-contracts.md section 8).

Transactions are Berlin-Group shaped with amounts as signed strings. Identifier policy: a booked row
carries ``transactionId`` (the bank's, stable) and ``internalTransactionId`` (GoCardless's own, booked
only). Pending rows carry no ids at all (as the contract warns), except at banks listed in
``PENDING_IDS``, whose pending rows have a transactionId that differs from the one the payment gets once
booked (the "books under a new id" case). Some banks leave ``bookingDate`` off pending rows.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sandbox.jsonbody import decimal_text
from sandbox.layout import stable_hex
from sandbox.model import Account, Bank, WorldTransaction

# Banks (by provider id) whose pending rows carry a bank transactionId of their own.
PENDING_IDS = frozenset({"ING_INGBNL2A"})
# Banks whose pending rows have no bookingDate (only the expected valueDate).
PENDING_WITHOUT_BOOKING_DATE = frozenset({"ob-revolut"})
TRANSACTION_TOTAL_DAYS = 730

_BANK_TRANSACTION_CODES = {
    "PURCHASE": "PMNT-CCRD-POSD",
    "DIRECT_DEBIT": "PMNT-RDDT-ESDD",
    "STANDING_ORDER": "PMNT-ICDT-STDO",
    "TRANSFER": "PMNT-ICDT-ESCT",
    "FEE_CHARGE": "ACMT-MDOP-CHRG",
    "INTEREST": "ACMT-MDOP-INTR",
    "ATM": "PMNT-CCRD-CWDL",
}


def institution_id(bank: Bank) -> str:
    """GoCardless institution ids look like ``ING_INGBNL2A``: name and BIC."""
    if "_" in bank.provider_id and bank.provider_id.isupper():
        return bank.provider_id
    return f"{bank.display_name.upper().replace(' ', '_')}_{bank.swift_bic}"


def institution_json(bank: Bank, countries: list[str]) -> dict[str, Any]:
    return {
        "id": institution_id(bank),
        "name": bank.display_name,
        "bic": bank.swift_bic,
        "transaction_total_days": str(TRANSACTION_TOTAL_DAYS),
        "countries": countries,
        "logo": f"https://cdn-logos.gocardless.com/ais/{institution_id(bank)}.png",
    }


def gc_account_id(seed: int, account: Account) -> str:
    """GoCardless's own UUID-shaped id for an account (not the bank's, not the world's)."""
    hexed = stable_hex(seed, "gc-account", account.account_id, length=32)
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def account_metadata_json(gc_id: str, account: Account, created: str, status: str) -> dict[str, Any]:
    return {
        "id": gc_id,
        "created": created,
        "last_accessed": created,
        "iban": account.iban,
        "institution_id": institution_id(account.bank),
        "status": status,
        "owner_name": account.owner_name,
    }


def account_details_json(account: Account) -> dict[str, Any]:
    return {
        "account": {
            "resourceId": stable_hex("gc-resource", account.account_id, length=16),
            "iban": account.iban,
            "currency": account.currency,
            "ownerName": account.owner_name,
            "name": account.display_name,
            "product": account.display_name,
            "cashAccountType": "SVGS" if account.account_type == "SAVINGS" else "CACC",
            "bic": account.swift_bic,
        }
    }


def balances_json(account: Account, booked: Decimal, pending_total: Decimal, today: dt.date) -> dict:
    def balance(amount: Decimal, kind: str) -> dict[str, Any]:
        return {
            "balanceAmount": {"amount": decimal_text(amount), "currency": account.currency},
            "balanceType": kind,
            "referenceDate": today.isoformat(),
        }

    return {
        "balances": [
            balance(booked, "closingBooked"),
            balance(booked + pending_total, "interimAvailable"),
        ]
    }


def transaction_json(
    txn: WorldTransaction, account: Account, running_balance: Decimal | None = None, rebooked: bool = False
) -> dict[str, Any]:
    """A booked row (with balanceAfterTransaction) or a pending one.

    ``rebooked`` is the pending-books-under-a-new-id switch: the booked row gets a transactionId the
    bank never used before, as if its pending predecessor had been re-keyed at booking.
    """
    pending = txn.booking_date is None
    body: dict[str, Any] = {}
    if not pending:
        salt = "rebooked" if rebooked else "booked"
        body["transactionId"] = stable_hex("gc-transaction", salt, txn.world_id, length=20)
        body["internalTransactionId"] = stable_hex("gc-internal", txn.world_id, length=32)
        body["entryReference"] = stable_hex("gc-entry", txn.world_id, length=16).upper()
        body["bookingDate"] = txn.booking_date.isoformat() if txn.booking_date else None
        body["valueDate"] = txn.transaction_date.isoformat()
    else:
        if account.provider_id in PENDING_IDS:
            body["transactionId"] = stable_hex("gc-transaction", "pending", txn.world_id, length=20)
        if account.provider_id not in PENDING_WITHOUT_BOOKING_DATE:
            body["bookingDate"] = txn.transaction_date.isoformat()
        body["valueDate"] = txn.transaction_date.isoformat()
    body["transactionAmount"] = {"amount": decimal_text(txn.amount), "currency": txn.currency}
    counterparty = txn.merchant_name or txn.counterparty_name
    party = "creditor" if txn.amount < 0 else "debtor"
    if counterparty:
        body[f"{party}Name"] = counterparty
    if txn.counterparty_iban:
        body[f"{party}Account"] = {"iban": txn.counterparty_iban}
    body["remittanceInformationUnstructured"] = txn.description
    code = _BANK_TRANSACTION_CODES.get(txn.transaction_category)
    if code:
        body["bankTransactionCode"] = code
    body["proprietaryBankTransactionCode"] = txn.transaction_category
    if txn.mcc:
        body["merchantCategoryCode"] = txn.mcc
    if running_balance is not None:
        body["balanceAfterTransaction"] = {
            "balanceAmount": {"amount": decimal_text(running_balance), "currency": txn.currency},
            "balanceType": "interimBooked",
        }
    return body
