"""Revolut Business record shapes from the world (contract: shared/reference/bank-contracts.md section 2).

The world knows dates only, so each transaction gets a deterministic time of day from its world id.
A world transfer whose two legs are both Revolut accounts (the weekly GBP->EUR exchange) is ONE
Revolut transaction with two legs; every other world row is one transaction with one leg.

Fees: Revolut reports a leg's fee apart from its amount (the balance moves by amount - fee). The
sandbox charges a fee on the outgoing leg of an exchange and serves ``amount = world amount + fee``,
so amount - fee is still the world's amount, to the cent.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sandbox.layout import stable_hex
from sandbox.model import Account, WorldTransaction

EXCHANGE_FEE_RATE = Decimal("0.004")
_CENT = Decimal("0.01")


def revolut_id(*parts: object) -> str:
    """A stable UUID-shaped id (Revolut ids are UUIDs)."""
    return str(uuid.UUID(hex=stable_hex("revolut", *parts, length=32)))


def iso_ms(moment: dt.datetime) -> str:
    """2025-06-15T10:04:05.123Z, Revolut's timestamp style."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def created_moment(txn: WorldTransaction, ties: bool) -> dt.datetime:
    """When the payment was made. With ``ties`` every transaction of a week shares one instant
    (Monday 00:00 UTC), so page borders fall inside runs of equal created_at."""
    if ties:
        monday = txn.transaction_date - dt.timedelta(days=txn.transaction_date.weekday())
        return dt.datetime.combine(monday, dt.time(0), tzinfo=dt.UTC)
    millis = int(stable_hex("rv-time", txn.world_id, length=8), 16) % (12 * 3600 * 1000)
    start = dt.datetime.combine(txn.transaction_date, dt.time(7), tzinfo=dt.UTC)
    return start + dt.timedelta(milliseconds=millis)


def completed_moment(txn: WorldTransaction, booking_date: dt.date) -> dt.datetime:
    """Booked on its booking date, one second after the time of day it was made (so never before it)."""
    made = created_moment(txn, ties=False)
    return dt.datetime.combine(booking_date, made.timetz()) + dt.timedelta(seconds=1)


def exchange_fee(amount: Decimal) -> Decimal:
    return (abs(amount) * EXCHANGE_FEE_RATE).quantize(_CENT)


def account_json(account: Account, balance: Decimal, created_at: str, updated_at: str) -> dict[str, Any]:
    return {
        "id": account.account_id,
        "name": account.display_name,
        "balance": balance,
        "currency": account.currency,
        "state": "active",
        "public": False,
        "created_at": created_at,
        "updated_at": updated_at,
    }


def bank_details_json(account: Account) -> list[dict[str, Any]]:
    details: dict[str, Any] = {
        "iban": account.iban,
        "bic": account.swift_bic,
        "beneficiary": account.owner_name,
        "beneficiary_address": {"street_line1": "1 Canada Square", "city": "London", "country": "GB"},
        "schemes": ["swift", "sepa"] if account.currency == "EUR" else ["faster_payments"],
    }
    if account.number:
        details["account_no"] = account.number
    if account.sort_code:
        details["sort_code"] = account.sort_code.replace("-", "")
    return [details]


def leg_json(
    txn: WorldTransaction, balance: Decimal | None, fee: Decimal, counterparty_type: str
) -> dict[str, Any]:
    leg: dict[str, Any] = {
        "leg_id": revolut_id("leg", txn.world_id),
        "account_id": txn.account_id,
        "amount": txn.amount + fee,
        "currency": txn.currency,
        "description": txn.description,
    }
    if fee:
        leg["fee"] = fee
    if balance is not None:
        leg["balance"] = balance
    if counterparty_type != "none":
        counterparty: dict[str, Any] = {"account_type": counterparty_type}
        if txn.counterparty_account_id and counterparty_type != "external":
            counterparty["account_id"] = txn.counterparty_account_id
        counterparty["id"] = revolut_id("counterparty", txn.counterparty_name or txn.description)
        leg["counterparty"] = counterparty
    return leg


def transaction_json(
    legs: Iterable[WorldTransaction],
    *,
    state: str,
    ties: bool,
    balances: dict[str, Decimal],
    new_id: bool = False,
) -> dict[str, Any]:
    """One Revolut transaction from one world row, or from both legs of a Revolut<->Revolut transfer.

    ``balances`` maps world ids to the account balance after the row (booked rows only).
    ``new_id`` serves a booked version under another id than its pending version had.
    """
    rows = sorted(legs, key=lambda txn: txn.amount)  # the outgoing leg first
    first = rows[0]
    is_exchange = len(rows) == 2
    created = created_moment(first, ties)
    updated = created
    body: dict[str, Any] = {
        "id": revolut_id("txn", "rebooked" if new_id else "", first.world_id),
        "type": _type(first, is_exchange),
        "request_id": revolut_id("request", first.world_id) if first.transfer_group else None,
        "state": state,
        "created_at": iso_ms(created),
    }
    if state == "completed":
        assert first.booking_date is not None
        completed = completed_moment(first, first.booking_date)
        if completed < created:  # only possible with ties: a tie instant is a Monday at 00:00
            completed = created
        body["completed_at"] = iso_ms(completed)
        updated = completed
    body["updated_at"] = iso_ms(updated)
    if first.transfer_group or first.transaction_category == "TRANSFER":
        body["reference"] = first.description
    if first.merchant_name:
        body["merchant"] = {
            "id": revolut_id("merchant", first.merchant_name),
            "name": first.merchant_name,
            "category_code": first.mcc,
            "country": "GB" if first.currency == "GBP" else "FR",
        }
        body["card"] = {"id": revolut_id("card", first.account_id), "card_number": "4596********1234"}
    body["legs"] = [
        leg_json(
            row,
            balances.get(row.world_id),
            exchange_fee(row.amount) if is_exchange and row.amount < 0 else Decimal(0),
            "self" if is_exchange else ("external" if first.transaction_category == "TRANSFER" else "none"),
        )
        for row in rows
    ]
    if body["request_id"] is None:
        del body["request_id"]
    return body


def _type(txn: WorldTransaction, is_exchange: bool) -> str:
    if is_exchange:
        return "exchange"
    if txn.merchant_name:
        return "card_payment"
    if txn.true_category == "fees":
        return "fee"
    if txn.transaction_category == "TRANSFER" and txn.amount > 0:
        return "topup"
    return "transfer"
