"""The world's value types: parties, accounts, transactions and the ground-truth answer key."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

PartyKind = Literal["person", "company"]
AccountType = Literal["TRANSACTION", "SAVINGS", "CREDIT_CARD"]
Status = Literal["booked", "pending"]

# Our own category taxonomy (the answer key); providers never see it directly.
TRUE_CATEGORIES: tuple[str, ...] = (
    "groceries",
    "eating_out",
    "transport",
    "shopping",
    "health",
    "entertainment",
    "subscriptions",
    "utilities",
    "rent",
    "salary",
    "payroll",
    "sales",
    "suppliers",
    "transfer",
    "fees",
    "interest",
    "cash",
    "income_other",
)


@dataclass(frozen=True)
class Party:
    """A customer of the banks: a person or a company."""

    party_id: str
    name: str
    kind: PartyKind


@dataclass(frozen=True)
class Bank:
    """A bank as the open-banking aggregators name it."""

    provider_id: str  # TrueLayer-style, e.g. "ob-monzo"
    display_name: str
    bank_code: str  # the 4 letters of a GB IBAN
    swift_bic: str
    sort_code_prefix: str  # first two digits of the bank's sort codes


@dataclass(frozen=True)
class Account:
    """One real bank account of one party."""

    account_id: str
    key: str  # human-readable stable name used in seeds and ids, e.g. "alice-current"
    owner_party_id: str
    owner_name: str
    bank: Bank
    iban: str | None  # None for cards and Indian accounts (India has no IBANs)
    sort_code: str | None  # "04-00-04"; None for non-UK accounts and cards
    number: str | None  # for a card, the last four digits
    swift_bic: str
    currency: str
    account_type: AccountType
    display_name: str
    opening_balance: Decimal  # balance at the start of the first history day
    overdraft: Decimal
    providers: tuple[str, ...]  # which connectors expose this account, e.g. ("truelayer",)

    @property
    def provider_id(self) -> str:
        return self.bank.provider_id

    @property
    def is_card(self) -> bool:
        return self.account_type == "CREDIT_CARD"

    @property
    def bank_name(self) -> str:
        return self.bank.display_name


@dataclass(frozen=True)
class WorldTransaction:
    """One money movement on one account, as the world knows it (including the ground truth)."""

    world_id: str
    account_id: str
    booking_date: dt.date | None  # None while pending
    transaction_date: dt.date
    amount: Decimal  # signed: + in, - out; 2 decimals
    currency: str
    description: str
    merchant_name: str | None
    mcc: str | None
    counterparty_name: str | None
    counterparty_iban: str | None
    counterparty_account_id: str | None  # the other world account, when the money stays in the world
    transaction_type: Literal["DEBIT", "CREDIT"]
    transaction_category: str  # TrueLayer-ish: PURCHASE, DIRECT_DEBIT, STANDING_ORDER, TRANSFER, ...
    true_category: str  # one of TRUE_CATEGORIES
    transfer_group: str | None  # shared by the two legs of a transfer between one owner's accounts
    status: Status
    # The bank's reference for the movement when it has one worth matching on (e.g. the NEFT UTR
    # of a Razorpay settlement credit); None for everything else.
    reference: str | None = None


@dataclass(frozen=True)
class AnswerKeyEntry:
    """What the pipeline should conclude about one booked transaction."""

    world_id: str
    account_id: str
    true_category: str
    transfer_group: str | None


@dataclass(frozen=True)
class SettlementAnswerKeyEntry:
    """Which payment-gateway settlement one bank credit pays out (ground truth for reconciliation)."""

    world_id: str  # the bank credit
    account_id: str
    settlement_id: str
    utr: str
    amount: Decimal  # the settlement amount in rupees = the credit's amount
    settled_on: dt.date
    utr_on_line: str = "exact"  # exact, mangled (lower case, in the text only) or missing
