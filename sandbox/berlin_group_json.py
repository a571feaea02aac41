"""Berlin Group NextGenPSD2 record shapes (contract: shared/reference/bank-contracts.md section 1).

Amounts are strings ("-12.34"), signed. Booked rows carry an ``entryReference`` (except about one in
sixteen, which only have a ``transactionId``, as the spec allows); pending rows carry a ``transactionId``
of their own and no ``entryReference``, so a payment that books shows up under a new id.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sandbox.jsonbody import decimal_text
from sandbox.layout import stable_hex
from sandbox.model import Account, WorldTransaction

# World categories as ISO 20022 bank transaction codes (Domain-Family-SubFamily).
_ISO_CODE = {
    "PURCHASE": "PMNT-CCRD-POSD",
    "DIRECT_DEBIT": "PMNT-RDDT-ESDD",
    "STANDING_ORDER": "PMNT-ICDT-STDO",
    "TRANSFER": "PMNT-ICDT-ESCT",
    "CREDIT": "PMNT-RCDT-ESCT",
    "FEE_CHARGE": "ACMT-MDOP-CHRG",
    "INTEREST": "ACMT-MDOP-INTR",
    "ATM": "CAMT-CAPL-CWDL",
}


def amount_json(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": decimal_text(amount), "currency": currency}


def account_json(account: Account, resource_id: str) -> dict[str, Any]:
    return {
        "resourceId": resource_id,
        "iban": account.iban,
        "currency": account.currency,
        "name": account.display_name,
        "product": "Cont Curent" if account.account_type == "TRANSACTION" else "Cont de Economii",
        "cashAccountType": "CACC" if account.account_type == "TRANSACTION" else "SVGS",
        "status": "enabled",
        "bic": account.swift_bic,
        "usage": "PRIV",
        "ownerName": account.owner_name,
        "_links": {
            "balances": {"href": f"/v1/accounts/{resource_id}/balances"},
            "transactions": {"href": f"/v1/accounts/{resource_id}/transactions"},
        },
    }


def balances_json(
    account: Account, closing: Decimal, interim: Decimal, pending_total: Decimal, today: dt.date, now: str
) -> list[dict[str, Any]]:
    return [
        {
            "balanceAmount": amount_json(closing, account.currency),
            "balanceType": "closingBooked",
            "referenceDate": (today - dt.timedelta(days=1)).isoformat(),
        },
        {
            "balanceAmount": amount_json(interim, account.currency),
            "balanceType": "interimBooked",
            "referenceDate": today.isoformat(),
            "lastChangeDateTime": now,
        },
        {
            "balanceAmount": amount_json(interim + pending_total, account.currency),
            "balanceType": "interimAvailable",
            "referenceDate": today.isoformat(),
            "lastChangeDateTime": now,
        },
    ]


def entry_reference(txn: WorldTransaction) -> str | None:
    """The booked row's camt entry reference; None for pending rows and ~1 booked row in 16."""
    if txn.booking_date is None or stable_hex("bg-no-entry-ref", txn.world_id, length=1) == "0":
        return None
    return stable_hex("bg-entry", txn.world_id, length=20).upper()


def transaction_json(
    txn: WorldTransaction, account: Account, *, pending: bool, balance_after: Decimal | None = None
) -> dict[str, Any]:
    """One entry of ``transactions.booked`` (pending=False) or ``transactions.pending`` (pending=True)."""
    salt = "pending" if pending else "booked"
    body: dict[str, Any] = {"transactionId": stable_hex("bg-txn", salt, txn.world_id, length=24)}
    reference = None if pending else entry_reference(txn)
    if reference:
        body["entryReference"] = reference
    if txn.transfer_group:
        body["endToEndId"] = stable_hex("bg-e2e", txn.transfer_group, length=16).upper()
    if not pending and txn.booking_date is not None:
        body["bookingDate"] = txn.booking_date.isoformat()
    body["valueDate"] = txn.transaction_date.isoformat()
    body["transactionAmount"] = amount_json(txn.amount, txn.currency)
    # The other party: we pay a creditor, or a debtor pays us.
    party = "creditor" if txn.amount < 0 else "debtor"
    if txn.counterparty_name:
        body[f"{party}Name"] = txn.counterparty_name
    if txn.counterparty_iban:
        body[f"{party}Account"] = {"iban": txn.counterparty_iban}
    own = "debtor" if party == "creditor" else "creditor"
    body[f"{own}Account"] = {"iban": account.iban}
    body["remittanceInformationUnstructured"] = txn.description[:140]
    body["bankTransactionCode"] = _ISO_CODE.get(txn.transaction_category, "PMNT-OTHR-OTHR")
    body["proprietaryBankTransactionCode"] = txn.transaction_category
    if balance_after is not None:
        body["balanceAfterTransaction"] = {
            "balanceType": "interimBooked",
            "balanceAmount": amount_json(balance_after, txn.currency),
        }
    return body
