"""One deterministic synthetic bank world: parties, accounts, 400 days of history, pending card payments.

Same seed + same today -> the same world. Each calendar day is generated on its own (see
``sandbox.daybook``), lazily and cached, so every window query agrees with every other on shared days.
The ground truth (true categories, transfer pairs) lives here and is never served over an API.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections import defaultdict
from decimal import Decimal

from sandbox.daybook import CARD_LAG_DAYS, SETTLEMENT_CREDIT_KEY, generate_day, minor_to_decimal, world_row_id
from sandbox.layout import build_accounts, build_parties
from sandbox.model import (
    TRUE_CATEGORIES,
    Account,
    AnswerKeyEntry,
    Party,
    SettlementAnswerKeyEntry,
    WorldTransaction,
)
from sandbox.razorpay_ledger import MERCHANT_KEY, RazorpayMerchant, settlement_credit, settlement_on

__all__ = [
    "TRUE_CATEGORIES",
    "Account",
    "AnswerKeyEntry",
    "HISTORY_DAYS",
    "Party",
    "SettlementAnswerKeyEntry",
    "World",
    "WorldTransaction",
]

HISTORY_DAYS = 400
_MAX_LAG = max(CARD_LAG_DAYS)  # also bounds the late payout credits (settlement_credit: 2 days)
_CARD_CATEGORIES = frozenset({"PURCHASE", "ATM"})
_ONE_DAY = dt.timedelta(days=1)


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _order(txn: WorldTransaction) -> tuple[dt.date, str]:
    assert txn.booking_date is not None
    return txn.booking_date, txn.world_id


class World:
    """The simulated banks' view of their customers. Read-only after construction (caches aside)."""

    def __init__(self, seed: int = 42, today: dt.date | None = None) -> None:
        self.seed = seed
        self.today = today or utc_today()
        self.history_start = self.today - dt.timedelta(days=HISTORY_DAYS)
        self.parties: list[Party] = build_parties(seed)
        self.accounts: list[Account] = build_accounts(seed)
        self._by_id = {account.account_id: account for account in self.accounts}
        self._by_key = {account.key: account for account in self.accounts}
        # The Razorpay merchant's gateway ledger; its settlements are credits on its bank account.
        self.razorpay = RazorpayMerchant(seed, self.history_start, self.today)
        self._generated: set[dt.date] = set()
        # account_id -> booking date -> booked rows (sorted once the day is complete)
        self._booked: dict[str, dict[dt.date, list[WorldTransaction]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._pending: dict[str, list[WorldTransaction]] = defaultdict(list)
        self._complete: set[dt.date] = set()
        # account_id -> closing balances of history_start, history_start + 1, ...
        self._closings: dict[str, list[Decimal]] = defaultdict(list)
        # The caches are filled lazily from the server thread and the test thread alike.
        self._lock = threading.RLock()

    # -- accounts -------------------------------------------------------------------------------------

    def account(self, account_id: str) -> Account:
        """The account with this id; KeyError when the world has none."""
        return self._by_id[account_id]

    def accounts_for(self, provider: str, cards: bool | None = None) -> list[Account]:
        """Accounts exposed by a connector (e.g. "truelayer"), in the world's stable order;
        ``cards=False`` leaves card accounts out, ``cards=True`` keeps only them."""
        return [
            account
            for account in self.accounts
            if provider in account.providers and (cards is None or account.is_card == cards)
        ]

    # -- transactions ---------------------------------------------------------------------------------

    def booked(self, account_id: str, start: dt.date, end: dt.date) -> list[WorldTransaction]:
        """Booked rows with booking_date in [start, end), ordered by booking_date then world_id."""
        self.account(account_id)
        start, end = max(start, self.history_start), min(end, self.today + _ONE_DAY)
        rows: list[WorldTransaction] = []
        day = start
        while day < end:
            rows.extend(self._booked_on(account_id, day))
            day += _ONE_DAY
        return rows

    def pending(self, account_id: str) -> list[WorldTransaction]:
        """Card payments made but not yet booked as of today, ordered by transaction_date then world_id."""
        self.account(account_id)
        with self._lock:
            for offset in range(_MAX_LAG + 1):
                self._generate(self.today - dt.timedelta(days=offset))
            return sorted(self._pending[account_id], key=lambda txn: (txn.transaction_date, txn.world_id))

    def balance(self, account_id: str, as_of: dt.date) -> Decimal:
        """Opening balance plus every booked row with booking_date <= as_of."""
        account = self.account(account_id)
        if as_of < self.history_start:
            return account.opening_balance
        offset = (min(as_of, self.today) - self.history_start).days
        with self._lock:
            closings = self._closings[account_id]
            while len(closings) <= offset:
                previous = closings[-1] if closings else account.opening_balance
                day = self.history_start + dt.timedelta(days=len(closings))
                closings.append(
                    previous + sum((txn.amount for txn in self._booked_on(account_id, day)), Decimal(0))
                )
            return closings[offset]

    def running_balance(self, txn: WorldTransaction) -> Decimal:
        """The account balance right after this booked row, in the day's booking order."""
        if txn.booking_date is None:
            raise ValueError("pending transactions have no running balance")
        balance = self.balance(txn.account_id, txn.booking_date - _ONE_DAY)
        for row in self._booked_on(txn.account_id, txn.booking_date):
            balance += row.amount
            if row.world_id == txn.world_id:
                return balance
        raise KeyError(txn.world_id)

    # -- ground truth (never served) ------------------------------------------------------------------

    def answer_key(self, start: dt.date, end: dt.date) -> dict[str, AnswerKeyEntry]:
        """True category and transfer group of every booked row (all accounts) booked in [start, end)."""
        return {
            txn.world_id: AnswerKeyEntry(txn.world_id, txn.account_id, txn.true_category, txn.transfer_group)
            for account in self.accounts
            for txn in self.booked(account.account_id, start, end)
        }

    def settlement_answer_key(self, start: dt.date, end: dt.date) -> dict[str, SettlementAnswerKeyEntry]:
        """Which Razorpay settlement each bank credit booked in [start, end) pays out, by world id."""
        account = self._by_key[MERCHANT_KEY]
        key = {}
        for txn in self.booked(account.account_id, start, end):
            # The credit is made on the settlement's day, booked then or (late) a day or two after.
            settlement = settlement_on(self.seed, txn.transaction_date)
            if settlement is None or txn.world_id != world_row_id(
                self.seed, account.account_id, txn.transaction_date, SETTLEMENT_CREDIT_KEY
            ):
                continue
            key[txn.world_id] = SettlementAnswerKeyEntry(
                world_id=txn.world_id,
                account_id=account.account_id,
                settlement_id=settlement.settlement_id,
                utr=settlement.utr,
                amount=minor_to_decimal(settlement.amount),
                settled_on=settlement.day,
                utr_on_line=settlement_credit(self.seed, settlement).utr_on_line,
            )
        return key

    def transfer_pairs(self, start: dt.date, end: dt.date) -> list[tuple[str, str]]:
        """(outgoing leg, incoming leg) world ids of internal transfers booked in [start, end)."""
        legs: dict[str, dict[str, WorldTransaction]] = defaultdict(dict)
        for account in self.accounts:
            for txn in self.booked(account.account_id, start, end):
                if txn.transfer_group:
                    legs[txn.transfer_group]["out" if txn.amount < 0 else "in"] = txn
        pairs = [(group["out"], group["in"]) for group in legs.values() if len(group) == 2]
        pairs.sort(key=lambda pair: (pair[0].booking_date, pair[0].transfer_group))
        return [(out.world_id, into.world_id) for out, into in pairs]

    # -- generation -----------------------------------------------------------------------------------

    def _booked_on(self, account_id: str, day: dt.date) -> list[WorldTransaction]:
        """Rows booked on one day (any transaction date up to the longest booking lag before it)."""
        if day < self.history_start or day > self.today:
            return []
        with self._lock:
            if day not in self._complete:
                for offset in range(_MAX_LAG + 1):
                    self._generate(day - dt.timedelta(days=offset))
                for by_day in self._booked.values():
                    by_day[day].sort(key=_order)
                self._complete.add(day)
            return self._booked[account_id].get(day, [])

    def _generate(self, day: dt.date) -> None:
        if day in self._generated or day < self.history_start or day > self.today:
            return
        self._generated.add(day)
        for txn in generate_day(self.seed, self._by_key, day):
            assert txn.booking_date is not None
            if txn.booking_date > self.today:
                # A card payment shows as pending until booked; a credit the bank books late (a
                # payout) is not on the statement at all until then.
                if txn.transaction_category in _CARD_CATEGORIES:
                    self._pending[txn.account_id].append(
                        dataclasses.replace(txn, booking_date=None, status="pending")
                    )
            else:
                self._booked[txn.account_id][txn.booking_date].append(txn)
