"""TrueLayer Data API v1 record shapes (contract: shared/reference/bank-contracts.md section 3).

Identifier policy: ``provider_transaction_id`` and ``normalised_provider_transaction_id`` are derived from
the world id and stable across pulls; ``transaction_id`` is stable too except for providers listed in
``UNSTABLE_TRANSACTION_IDS``, where it is new on every request (as the contract warns). A pending row gets
ids of its own, different from the ids of the same payment once booked.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sandbox.layout import stable_hex
from sandbox.model import Account, Bank, WorldTransaction

UNSTABLE_TRANSACTION_IDS = frozenset({"ob-barclays"})
MOCK_PROVIDER = {
    "provider_id": "mock",
    "display_name": "Mock Bank",
    "logo_uri": "https://truelayer-provider-assets.s3.amazonaws.com/global/logos/mock.svg",
}

_CLASSIFICATION: dict[str, list[str]] = {
    "groceries": ["Shopping", "Groceries"],
    "eating_out": ["Food & Dining", "Restaurants"],
    "transport": ["Auto & Transport", "Public Transportation"],
    "shopping": ["Shopping", "General"],
    "health": ["Health & Fitness", "Pharmacy"],
    "entertainment": ["Entertainment", "Movies & DVDs"],
    "subscriptions": ["Entertainment", "Music"],
    "utilities": ["Bills and Utilities", "Utilities"],
    "rent": ["Home", "Rent"],
    "salary": ["Income", "Paycheck"],
    "sales": ["Income", "Business Income"],
    "suppliers": ["Business Services", "General"],
    "fees": ["Fees & Charges", "Bank Fee"],
    "interest": ["Income", "Interest Income"],
    "cash": ["Cash", "ATM"],
    "income_other": ["Income", "Other"],
}
_SUB_BY_MCC = {"5814": "Fast Food", "4121": "Taxi", "5541": "Gas & Fuel", "4899": "Television"}

# UK bank statement codes, as banks report them in meta.provider_transaction_category.
_PROVIDER_CATEGORY = {
    "PURCHASE": "DEB",
    "DIRECT_DEBIT": "DD",
    "STANDING_ORDER": "SO",
    "CREDIT": "BGC",
    "FEE_CHARGE": "CHG",
    "INTEREST": "INT",
    "ATM": "CPT",
}


def provider_json(bank: Bank) -> dict[str, str]:
    slug = bank.provider_id.removeprefix("ob-")
    return {
        "provider_id": bank.provider_id,
        "display_name": bank.display_name,
        "logo_uri": f"https://truelayer-provider-assets.s3.amazonaws.com/global/logos/{slug}.svg",
    }


def account_json(account: Account, update_timestamp: str) -> dict[str, Any]:
    number = {
        "iban": account.iban,
        "number": account.number,
        "sort_code": account.sort_code,
        "swift_bic": account.swift_bic,
    }
    return {
        "update_timestamp": update_timestamp,
        "account_id": account.account_id,
        "account_type": account.account_type,
        "display_name": account.display_name,
        "currency": account.currency,
        "account_number": {key: value for key, value in number.items() if value is not None},
        "provider": provider_json(account.bank),
    }


def balance_json(account: Account, current: Decimal, pending_total: Decimal, update_timestamp: str) -> dict:
    """``available`` is the booked balance less pending card payments; the overdraft is reported apart."""
    return {
        "currency": account.currency,
        "available": current + pending_total,
        "current": current,
        "overdraft": account.overdraft,
        "update_timestamp": update_timestamp,
    }


def transaction_json(
    txn: WorldTransaction, account: Account, running_balance: Decimal | None = None
) -> dict[str, Any]:
    """A booked row (with ``running_balance``) or a pending one (without, stamped with its payment date)."""
    pending = txn.booking_date is None
    salt = "pending" if pending else "booked"
    posted = txn.transaction_date if pending else txn.booking_date
    if account.provider_id in UNSTABLE_TRANSACTION_IDS:
        transaction_id = uuid.uuid4().hex
    else:
        transaction_id = stable_hex("tl-transaction-id", salt, txn.world_id, length=32)
    body: dict[str, Any] = {
        "transaction_id": transaction_id,
        "timestamp": f"{posted}T00:00:00+00:00",
        "description": txn.description,
        "amount": txn.amount,
        "currency": txn.currency,
        "transaction_type": txn.transaction_type,
        "transaction_category": txn.transaction_category,
        "transaction_classification": classification(txn),
    }
    if txn.merchant_name:
        body["merchant_name"] = txn.merchant_name
    if running_balance is not None:
        body["running_balance"] = {"amount": running_balance, "currency": txn.currency}
    body["meta"] = {
        "bank_transaction_id": stable_hex("tl-bank-id", salt, txn.world_id, length=20),
        "provider_transaction_category": provider_category(txn),
    }
    body["provider_transaction_id"] = stable_hex("tl-provider-id", salt, txn.world_id, length=24)
    body["normalised_provider_transaction_id"] = (
        f"txn-{stable_hex('tl-normalised', salt, txn.world_id, length=24)}"
    )
    return body


def classification(txn: WorldTransaction) -> list[str]:
    """[primary, sub] enrichment from the true category; [] for transfers, payroll and ~1 row in 16."""
    pair = _CLASSIFICATION.get(txn.true_category)
    if pair is None or stable_hex("tl-classified", txn.world_id, length=1) == "0":
        return []
    return [pair[0], _SUB_BY_MCC.get(txn.mcc or "", pair[1])]


def provider_category(txn: WorldTransaction) -> str:
    if txn.transaction_category == "TRANSFER":
        return "FPI" if txn.transaction_type == "CREDIT" else "FPO"
    return _PROVIDER_CATEGORY.get(txn.transaction_category, "OTH")


def update_timestamp(today: dt.date) -> str:
    """Now, moved onto the world's today (the world may be set in the past), e.g. 2025-06-15T10:04:05.123Z."""
    now = dt.datetime.now(dt.UTC)
    return f"{today.isoformat()}T{now:%H:%M:%S}.{now.microsecond // 1000:03d}Z"


def card_json(card: Account, update_timestamp: str) -> dict[str, Any]:
    return {
        "account_id": card.account_id,
        "card_network": "VISA",
        "card_type": "CREDIT",
        "currency": card.currency,
        "display_name": card.display_name,
        "partial_card_number": card.number,
        "name_on_card": card.owner_name.upper(),
        "update_timestamp": update_timestamp,
        "provider": provider_json(card.bank),
    }


def card_balance_json(card: Account, balance: Decimal, pending_total: Decimal, update_timestamp: str) -> dict:
    """Cards report what is owed as a positive ``current`` (the world keeps it as a negative balance)."""
    limit = Decimal("5000.00")
    owed = -balance
    return {
        "currency": card.currency,
        "available": limit - owed + pending_total,
        "current": owed,
        "credit_limit": limit,
        "update_timestamp": update_timestamp,
    }


def card_transaction_json(
    txn: WorldTransaction, card: Account, running_balance: Decimal | None = None
) -> dict[str, Any]:
    """Card accounts report purchases as positive amounts (type DEBIT) and repayments as negative
    ones (type CREDIT), the opposite sign of an account (contract §3 and §10)."""
    body = transaction_json(txn, card, running_balance)
    body["amount"] = -txn.amount
    if running_balance is not None:
        body["running_balance"] = {"amount": -running_balance, "currency": txn.currency}
    return body
