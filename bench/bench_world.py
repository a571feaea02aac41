"""A duck-typed sandbox world for benchmarks: N accounts x M booked transactions, one provider.

It answers the calls the sandbox apps make on `sandbox.world.World` (accounts_for, account,
booked, pending, balance, running_balance, today, history_start, seed), with every row generated
up front and every answer an index lookup, so the simulated bank's own work stays small next to
the request latency being measured. Deterministic for a seed; Decimal amounts; valid IBANs.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from sandbox.iban import gb_iban, make_iban
from sandbox.model import Account, Bank, Party, WorldTransaction

# One bank per provider, as the sandbox's own layout reaches them (GoCardless: ING NL, BG: BT RO).
BANKS: dict[str, Bank] = {
    "truelayer": Bank("ob-monzo", "Monzo", "MONZ", "MONZGB2L", "04"),
    "berlin_group": Bank("ro-btrl", "Banca Transilvania", "BTRL", "BTRLRO22", ""),
    "revolut": Bank("revolut-business", "Revolut Business", "REVO", "REVOGB21", "04"),
    "gocardless": Bank("ING_INGBNL2A", "ING", "INGB", "INGBNL2A", ""),
}
CURRENCIES = {"truelayer": "GBP", "berlin_group": "RON", "revolut": "GBP", "gocardless": "EUR"}
COUNTRIES = {"truelayer": "GB", "berlin_group": "RO", "revolut": "GB", "gocardless": "NL"}

# (description, merchant, mcc, TrueLayer-ish category, true category, credit?)
_KINDS: tuple[tuple[str, str | None, str | None, str, str, bool], ...] = (
    ("TESCO STORES 2041", "Tesco", "5411", "PURCHASE", "groceries", False),
    ("PRET A MANGER", "Pret A Manger", "5814", "PURCHASE", "eating_out", False),
    ("TFL TRAVEL CH", "Transport for London", "4111", "PURCHASE", "transport", False),
    ("AMAZON MKTPLACE", "Amazon", "5942", "PURCHASE", "shopping", False),
    ("BRITISH GAS", None, None, "DIRECT_DEBIT", "utilities", False),
    ("ACME LTD SALARY", None, None, "CREDIT", "salary", True),
    ("INVOICE 2026-114", None, None, "CREDIT", "sales", True),
)


@dataclass(frozen=True)
class _Ledger:
    rows: list[WorldTransaction]  # booking order: (booking_date, world_id)
    ordinals: list[int]  # booking_date.toordinal() of each row, for bisect
    after: list[Decimal]  # balance right after each row


class BenchWorld:
    """`accounts` accounts of one provider, each with `transactions` booked rows spread evenly over
    [first_day, last_day]; nothing pending. `today` is the day after last_day unless given."""

    def __init__(
        self,
        provider: str,
        accounts: int,
        transactions: int,
        first_day: dt.date,
        last_day: dt.date,
        *,
        today: dt.date | None = None,
        seed: int = 20261123,
    ) -> None:
        self.seed = seed
        self.provider = provider
        self.today = today or last_day + dt.timedelta(days=1)
        self.history_start = first_day - dt.timedelta(days=30)
        self.first_day, self.last_day = first_day, last_day
        rng = random.Random(f"{seed}:{provider}")
        bank = BANKS[provider]
        self.parties = [
            Party(f"bench-party-{i:03d}", f"Bench Customer {i:03d}", "person") for i in range(accounts)
        ]
        self.accounts: list[Account] = [
            self._account(provider, bank, index, rng) for index in range(accounts)
        ]
        self._by_id = {account.account_id: account for account in self.accounts}
        span = (last_day - first_day).days + 1
        self._ledgers = {
            account.account_id: self._ledger(account, transactions, first_day, span, rng)
            for account in self.accounts
        }
        self._after = {
            txn.world_id: balance
            for ledger in self._ledgers.values()
            for txn, balance in zip(ledger.rows, ledger.after, strict=True)
        }

    @staticmethod
    def _account(provider: str, bank: Bank, index: int, rng: random.Random) -> Account:
        number = f"{rng.randrange(10**8):08d}"
        country = COUNTRIES[provider]
        if country == "GB":
            sort_code = f"{bank.sort_code_prefix}-{rng.randrange(100):02d}-{rng.randrange(100):02d}"
            iban = gb_iban(bank.bank_code, sort_code, number)
        else:
            sort_code = None
            digits = 16 if country == "RO" else 10
            iban = make_iban(country, bank.bank_code + f"{rng.randrange(10**digits):0{digits}d}")
        return Account(
            account_id=f"bench-{provider}-{index:03d}",
            key=f"bench-{provider}-{index:03d}",
            owner_party_id=f"bench-party-{index:03d}",
            owner_name=f"Bench Customer {index:03d}",
            bank=bank,
            iban=iban,
            sort_code=sort_code,
            number=number,
            swift_bic=bank.swift_bic,
            currency=CURRENCIES[provider],
            account_type="TRANSACTION",
            display_name=f"Bench account {index:03d}",
            opening_balance=Decimal(rng.randrange(100_000, 5_000_000)).scaleb(-2),
            overdraft=Decimal("0.00"),
            providers=(provider,),
        )

    @staticmethod
    def _ledger(account: Account, count: int, first_day: dt.date, span: int, rng: random.Random) -> _Ledger:
        rows: list[WorldTransaction] = []
        after: list[Decimal] = []
        balance = account.opening_balance
        for i in range(count):
            day = first_day + dt.timedelta(days=i * span // count)
            description, merchant, mcc, category, true_category, credit = rng.choice(_KINDS)
            cents = rng.randrange(100, 300_000 if credit else 15_000)
            amount = Decimal(cents if credit else -cents).scaleb(-2)
            balance += amount
            rows.append(
                WorldTransaction(
                    world_id=f"{account.account_id}-{i:06d}",  # sorts in booking order within a day
                    account_id=account.account_id,
                    booking_date=day,
                    transaction_date=day,
                    amount=amount,
                    currency=account.currency,
                    description=description,
                    merchant_name=merchant,
                    mcc=mcc,
                    counterparty_name=merchant or description.title(),
                    counterparty_iban=None,
                    counterparty_account_id=None,
                    transaction_type="CREDIT" if credit else "DEBIT",
                    transaction_category=category,
                    true_category=true_category,
                    transfer_group=None,
                    status="booked",
                )
            )
            after.append(balance)
        ordinals = [txn.booking_date.toordinal() for txn in rows if txn.booking_date is not None]
        return _Ledger(rows, ordinals, after)

    # -- the World API the sandbox apps call -------------------------------------------------------------

    def account(self, account_id: str) -> Account:
        return self._by_id[account_id]

    def accounts_for(self, provider: str, cards: bool | None = None) -> list[Account]:
        return [
            account
            for account in self.accounts
            if provider in account.providers and (cards is None or account.is_card == cards)
        ]

    def booked(self, account_id: str, start: dt.date, end: dt.date) -> list[WorldTransaction]:
        """Booked rows with booking_date in [start, end), in booking order."""
        ledger = self._ledgers[account_id]
        low = bisect.bisect_left(ledger.ordinals, start.toordinal())
        high = bisect.bisect_left(ledger.ordinals, end.toordinal())
        return ledger.rows[low:high]

    def pending(self, account_id: str) -> list[WorldTransaction]:
        self.account(account_id)
        return []

    def balance(self, account_id: str, as_of: dt.date) -> Decimal:
        ledger = self._ledgers[account_id]
        index = bisect.bisect_right(ledger.ordinals, as_of.toordinal())
        return ledger.after[index - 1] if index else self._by_id[account_id].opening_balance

    def running_balance(self, txn: WorldTransaction) -> Decimal:
        return self._after[txn.world_id]

    def expected_booked(self) -> tuple[int, Decimal]:
        """(rows, exact sum of amounts) booked in [first_day, last_day] over all accounts."""
        rows = [txn for ledger in self._ledgers.values() for txn in ledger.rows]
        return len(rows), sum((txn.amount for txn in rows), Decimal(0))
