"""The marts scored against the sandbox world's answer key: categorisation accuracy on spend rows
(with precision and recall per category) and internal-transfer detection (pair-level precision and
recall). The tests assert the targets on these figures and `bench/accuracy.py` prints them.

Warehouse rows are matched to the world's rows per account (IBAN, else the bank's account number
or provider id): same booking day and amount, the n-th world row with the n-th row in a stable order.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

import psycopg

from sandbox.company_ledger import MISSING_IN_BANK, MISSING_IN_LEDGER, CompanyBooks
from sandbox.model import Account
from sandbox.world import World

# A world row no fct_transactions row was matched to.
MISSING = "<missing>"
INCOME_CATEGORIES = frozenset({"salary", "sales", "interest", "income_other"})
SPEND_ACCURACY_TARGET = 0.95
TRANSFER_TARGET = 0.99

# Revolut lands a movement's fee as a row of its own ("Fee: ..."); the world books leg and fee as
# one movement, so a leg is compared with its fee added back and fee rows are not compared.
BOOKED_AS_THE_WORLD_BOOKS = """
    with booked as (
        select * from marts.fct_transactions
        where status = 'booked' and booking_date >= %s and booking_date < %s
    ),
    fees as (
        select account_key, source_transaction_id, sum(amount) as fee
        from booked
        where source = 'revolut' and description like 'Fee: %%'
        group by 1, 2
    )
    select booked.transaction_key, booked.account_key, booked.source, booked.booking_date,
        booked.amount + coalesce(fees.fee, 0)
    from booked
    left join fees using (account_key, source_transaction_id)
    where not (booked.source = 'revolut' and booked.description like 'Fee: %%')
    order by booked.transaction_key
"""


def _rows(database_url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchall()


def world_account_ids(database_url: str, world: World) -> dict[str, str]:
    """account_key -> world account id, by IBAN, else the bank's account number or provider id."""
    by_reference: dict[str, str] = {}
    for account in world.accounts:
        for reference in (account.iban, account.number, account.account_id):
            if reference:
                by_reference.setdefault(reference, account.account_id)
    mapped = {}
    for account_key, iban, provider_id in _rows(
        database_url, "select account_key, iban, provider_account_id from marts.dim_accounts"
    ):
        world_id = by_reference.get(iban or "") or by_reference.get(provider_id)
        if world_id:
            mapped[account_key] = world_id
    return mapped


# -- categorisation ----------------------------------------------------------------------------


def _dim_account_key(account: Account, dim: list[tuple[str, str | None, str]]) -> str | None:
    """The dim_accounts key of a world account: by IBAN, else by the bank's own account id or number."""
    for account_key, iban, provider_account_id in dim:
        if account.iban and iban == account.iban:
            return account_key
        if not account.iban and provider_account_id in (account.account_id, account.number):
            return account_key
    return None


def categorised_vs_true(
    database_url: str, world: World, start: dt.date, end: dt.date
) -> list[tuple[str, str]]:
    """(true category, fct_transactions category) per booked world row in [start, end); MISSING
    where no fct row matched it."""
    dim = _rows(database_url, "select account_key, iban, provider_account_id from marts.dim_accounts")
    pairs: list[tuple[str, str]] = []
    for account in world.accounts:
        account_key = _dim_account_key(account, dim)
        if account_key is None:
            continue
        fct: dict[tuple[dt.date, Decimal], list[str]] = defaultdict(list)
        for booking_date, amount, category in _rows(
            database_url,
            "select booking_date, amount, category from marts.fct_transactions"
            " where account_key = %s and status = 'booked' and booking_date >= %s and booking_date < %s"
            " order by booked_at, transaction_key",
            (account_key, start, end),
        ):
            fct[(booking_date, amount)].append(category)
        seen: Counter[tuple[dt.date, Decimal]] = Counter()
        for txn in world.booked(account.account_id, start, end):
            key = (txn.booking_date, txn.amount)
            index = seen[key]
            seen[key] += 1
            predicted = fct[key][index] if index < len(fct[key]) else MISSING
            pairs.append((txn.true_category, predicted))
    return pairs


def spend_only(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The spend rows: the world's money-out rows that are not transfers, i.e. exactly those whose
    true category is neither income nor a transfer."""
    return [(true, got) for true, got in pairs if true != "transfer" and true not in INCOME_CATEGORIES]


def accuracy(pairs: list[tuple[str, str]]) -> float:
    return sum(1 for true, got in pairs if true == got) / len(pairs) if pairs else 0.0


def precision_recall(pairs: list[tuple[str, str]]) -> dict[str, dict[str, float | int]]:
    """Per category: rows truly in it, rows put in it, precision and recall."""
    report: dict[str, dict[str, float | int]] = {}
    for category in sorted({t for t, _ in pairs} | {p for _, p in pairs}):
        true_positive = sum(1 for t, p in pairs if t == category and p == category)
        predicted = sum(1 for _, p in pairs if p == category)
        actual = sum(1 for t, _ in pairs if t == category)
        report[category] = {
            "rows": actual,
            "predicted": predicted,
            "precision": round(true_positive / predicted, 4) if predicted else 0.0,
            "recall": round(true_positive / actual, 4) if actual else 0.0,
        }
    return report


# -- internal transfers ------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferScore:
    """Pair-level precision and recall of internal-transfer detection.

    A predicted pair is right when its two legs are the two legs of one world transfer. Both sides
    are judged over [start, end) only: a world transfer with a leg outside it is not expected, and a
    predicted pair with a leg that maps to no world row of those days is left out of precision."""

    predicted: int  # predicted pairs with both legs mapped to world rows of the window
    correct: int  # of those, pairs that are one world transfer
    expected: int  # world transfers with both legs in the window
    unjudged: int  # predicted pairs with a leg outside the window or unmapped

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.expected if self.expected else 1.0


def fct_to_world(database_url: str, world: World, start: dt.date, end: dt.date) -> dict[str, str]:
    """transaction_key -> world id of every booked fct row in [start, end) that has a world twin."""
    accounts = world_account_ids(database_url, world)
    # (world account, day, amount) -> source -> that source's rows in a stable order
    landed: dict[tuple[str, dt.date, Decimal], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for key, account_key, source, day, amount in _rows(database_url, BOOKED_AS_THE_WORLD_BOOKS, (start, end)):
        if account_key in accounts:
            landed[(accounts[account_key], day, amount)][source].append(key)
    mapped = {}
    for account_id in set(accounts.values()):
        for txn in world.booked(account_id, start, end):
            if txn.booking_date is None:
                continue
            slot = landed.get((account_id, txn.booking_date, txn.amount))
            if not slot:
                continue
            # The n-th world row of the slot takes the n-th row of every source reporting it.
            for keys in slot.values():
                if keys:
                    mapped[keys.pop(0)] = txn.world_id
    return mapped


def score_transfers(database_url: str, world: World, start: dt.date, end: dt.date) -> TransferScore:
    """Compare the transfer groups in fct_transactions with the world's transfer pairs in [start, end)."""
    to_world = fct_to_world(database_url, world, start, end)
    expected = set(world.transfer_pairs(start, end))
    groups: dict[str, dict[str, str | None]] = defaultdict(dict)
    for key, group, amount in _rows(
        database_url,
        "select transaction_key, transfer_group_key, amount from marts.fct_transactions"
        " where is_internal_transfer",
    ):
        groups[group]["out" if amount < 0 else "in"] = to_world.get(key)
    # Two copies of one movement (two aggregators) can never both be paired, so predicted pairs
    # are distinct by the world ids of their legs.
    predicted, unjudged = set(), 0
    for legs in groups.values():
        out, into = legs.get("out"), legs.get("in")
        if out is None or into is None:
            unjudged += 1
        else:
            predicted.add((out, into))
    return TransferScore(
        predicted=len(predicted), correct=len(predicted & expected), expected=len(expected), unjudged=unjudged
    )


# -- reconciliation ------------------------------------------------------------------------------

RECON_PRECISION_TARGET = 0.995
RECON_RECALL_TARGET = 0.99


@dataclass(frozen=True)
class ReconScore:
    """Match links (bank line, counterpart) in recon_matches against the world's, and the
    exceptions the books' noise must raise against recon_exceptions."""

    predicted: int
    correct: int
    expected: int
    # counterpart key -> (expected world ids, predicted world ids) where they differ
    wrong: dict[str, tuple[frozenset[str], frozenset[str]]]
    exceptions_expected: int
    exceptions_found: int  # expected exceptions present with the expected reason
    # item -> (expected reason, reasons found) for every expected exception not found as expected
    exceptions_missed: dict[str, tuple[str, tuple[str, ...]]]
    # exceptions raised on items the key expects to match: item -> reason
    exceptions_unexpected: dict[str, str]

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.expected if self.expected else 0.0


def score_recon(
    database_url: str, world: World, books: CompanyBooks, start: dt.date, end: dt.date
) -> ReconScore:
    """Score recon_matches and recon_exceptions for bank lines booked in [start, end): the books'
    answer key for ledger entries, the world's settlement key for Razorpay settlements.

    A payout credit whose line lost the UTR must surface as two exceptions (the settlement
    missing_in_bank, the line missing_in_ledger); one booked late for a settlement made before
    the window is out of scope (its settlement was never fetched)."""
    to_world = fct_to_world(database_url, world, start, end)
    expected: dict[str, set[str]] = defaultdict(set)
    for entry_id, world_ids in books.settles.items():
        expected[f"ledger:{entry_id}"].update(world_ids)
    credited = world.settlement_answer_key(start, end)
    settlement_key = {
        world_id: settlement for world_id, settlement in credited.items() if settlement.settled_on >= start
    }
    out_of_scope = set(credited) - set(settlement_key)
    in_window = set(to_world.values()) - out_of_scope
    settlement_exceptions: dict[str, str] = {}
    for world_id, settlement in settlement_key.items():
        if settlement.utr_on_line == "missing":
            if world_id in in_window:
                settlement_exceptions[world_id] = MISSING_IN_LEDGER
            settlement_exceptions[f"razorpay:{settlement.settlement_id}"] = MISSING_IN_BANK
        else:
            expected[f"razorpay:{settlement.settlement_id}"].add(world_id)
    settlements_in_scope = {f"razorpay:{s.settlement_id}" for s in settlement_key.values()}
    predicted: dict[str, set[str]] = defaultdict(set)
    for counterpart_key, transaction_key in _rows(
        database_url, "select counterpart_key, transaction_key from marts.recon_matches"
    ):
        world_id = to_world.get(transaction_key)
        if world_id is not None:
            predicted[counterpart_key].add(world_id)
    expected_links = {(c, w) for c, ws in expected.items() for w in ws if w in in_window}
    predicted_links = {(c, w) for c, ws in predicted.items() for w in ws}
    wrong = {
        key: (
            frozenset(w for w in expected.get(key, ()) if w in in_window),
            frozenset(predicted.get(key, ())),
        )
        for key in {c for c, _ in expected_links ^ predicted_links}
    }

    found: dict[str, list[str]] = defaultdict(list)
    for item_kind, item_key, reason, related_key in _rows(
        database_url, "select item_kind, item_key, reason, related_key from marts.recon_exceptions"
    ):
        if item_kind == "bank_line":
            if item_key in to_world:
                found[to_world[item_key]].append(reason)
        elif item_kind == "settlement":
            found[f"razorpay:{item_key}"].append(reason)
        elif item_kind == "ledger_entry":
            found[item_key].append(reason)
            # A mismatch names the bank line carrying the entry's reference: it is that line's too.
            if reason == "amount_mismatch" and related_key in to_world:
                found[to_world[related_key]].append(reason)
    entry_ids = {entry.entry_id for entry in books.entries}
    expected_exceptions = {
        item: reason for item, reason in books.exceptions.items() if item in entry_ids or item in in_window
    } | settlement_exceptions
    missed = {
        item: (reason, tuple(found.get(item, ())))
        for item, reason in expected_exceptions.items()
        if reason not in found.get(item, ())
    }
    unexpected = {
        item: ",".join(reasons)
        for item, reasons in found.items()
        if item not in expected_exceptions
        and (item in entry_ids or item in in_window or item in settlements_in_scope)
    }
    return ReconScore(
        predicted=len(predicted_links),
        correct=len(predicted_links & expected_links),
        expected=len(expected_links),
        wrong=wrong,
        exceptions_expected=len(expected_exceptions),
        exceptions_found=len(expected_exceptions) - len(missed),
        exceptions_missed=missed,
        exceptions_unexpected=unexpected,
    )
