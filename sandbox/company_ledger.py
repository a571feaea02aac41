"""The companies' own books: what their accounting system expects to receive and to pay (customer
invoices, supplier bills, rent, utilities, payroll) against their main bank accounts, and the answer
key of which bank lines settle each entry. Reconciliation matches these entries to the bank.

The books are derived from the world's booked rows on Northwind's GBP current account and Kaveri's
HDFC account, with the noise real books carry, each drawn from ``Random(f"{seed}:ledger:{world_id}")``
so a row's fate never depends on the window asked for:

- ``clean``: the invoice or PO number the bank text carries is recorded as the payment reference;
- ``mangled_reference``: the same number typed differently (``inv 40213``, ``INV40213``);
- ``no_reference``: no reference, and the counterparty's name with a typo;
- ``batched``: one bank credit pays two or three invoices of the same customer and date;
- ``paid_in_parts``: one invoice, two bank credits quoting it (the world's instalments); when the
  balance is not booked yet (or falls outside the window), the first part is an amount mismatch;
- ``amount_mismatch``: the reference is right but the amount booked differs (a short payment);
- ``not_in_ledger``: nobody booked it (also every bank line of a kind the books never hold:
  card spend and bank charges; Razorpay settlement credits are reconciled against the gateway);
- ``duplicate``: an entry keyed in twice (the copy has its own id);
- ``unpaid``: an invoice the customer never paid: no bank line at all.

The table (``ledger.entries`` by default) follows the contract in docs/reconciliation.md; the
``noise`` column is ground truth and is never written there.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal

import psycopg
import simplejson
from psycopg import sql

from sandbox.daybook import INSTALMENT_ACCOUNT, INSTALMENT_GAPS, Instalments, instalments_from, world_row_id
from sandbox.layout import stable_hex
from sandbox.model import WorldTransaction
from sandbox.razorpay_ledger import MERCHANT_KEY, SETTLEMENT_CREDIT_TEXT
from sandbox.world import World

LEDGER_ACCOUNTS = ("northwind-gbp", MERCHANT_KEY)
Noise = Literal[
    "clean",
    "mangled_reference",
    "no_reference",
    "batched",
    "paid_in_parts",
    "amount_mismatch",
    "duplicate",
    "unpaid",
]
# Expected exception reasons (recon_exceptions.reason) for the rows that must not match.
MISSING_IN_BANK = "missing_in_bank"
MISSING_IN_LEDGER = "missing_in_ledger"
AMOUNT_MISMATCH = "amount_mismatch"
DUPLICATE = "duplicate"

_INVOICE = re.compile(r"\b(INV-?\d+|PO-\d+)\b")
_UNPAID_PER_WEEKDAY = 0.12


@dataclass(frozen=True)
class LedgerEntry:
    entry_id: str
    bank_account: str  # the IBAN, else the bank's account number: which account it books against
    entry_type: Literal["receivable", "payable"]
    document_number: str
    payment_reference: str | None
    counterparty_name: str
    amount: Decimal  # signed as the bank books it: + money in, - money out
    currency: str
    expected_date: dt.date
    noise: Noise


@dataclass
class CompanyBooks:
    """The entries, which world rows settle each entry, and what must surface as an exception."""

    entries: list[LedgerEntry] = field(default_factory=list)
    settles: dict[str, frozenset[str]] = field(default_factory=dict)  # entry_id -> world ids
    # entry_id or world_id -> expected reason in recon_exceptions
    exceptions: dict[str, str] = field(default_factory=dict)


def company_books(world: World, start: dt.date, end: dt.date) -> CompanyBooks:
    """The books of the rows booked in [start, end) on the ledger accounts, plus unpaid invoices
    expected in that range."""
    books = CompanyBooks()
    for key in LEDGER_ACCOUNTS:
        account = next(a for a in world.accounts if a.key == key)
        bank_account = account.iban or account.number
        assert bank_account is not None
        booked = world.booked(account.account_id, start, end)
        booked_ids = {txn.world_id for txn in booked}
        parts = (
            _instalment_parts(world.seed, account.account_id, start, end) if key == INSTALMENT_ACCOUNT else {}
        )
        orphans: list[WorldTransaction] = []
        for txn in booked:
            if txn.world_id not in parts:
                _book_row(books, world.seed, bank_account, txn)
                continue
            plan, first_id, balance_id = parts[txn.world_id]
            if txn.world_id == first_id:
                _book_instalments(books, world.seed, bank_account, txn, plan, balance_id, booked_ids)
            elif first_id not in booked_ids:
                orphans.append(txn)
        day = start
        while day < end:
            _book_unpaid(books, world.seed, bank_account, account.currency, key, day)
            day += dt.timedelta(days=1)
        # A balance whose invoice was booked before the export's window: nothing in these books
        # explains it, once reconciliation covers its day (from the account's first expected day).
        first_expected = min(
            (e.expected_date for e in books.entries if e.bank_account == bank_account), default=None
        )
        for txn in orphans:
            assert txn.booking_date is not None
            if first_expected is not None and txn.booking_date >= first_expected:
                books.exceptions[txn.world_id] = MISSING_IN_LEDGER
    return books


def _instalment_parts(
    seed: int, account_id: str, start: dt.date, end: dt.date
) -> dict[str, tuple[Instalments, str, str]]:
    """world id of each part of the invoices paid in instalments around [start, end) -> (the plan,
    the first part's world id, the balance's world id)."""
    parts: dict[str, tuple[Instalments, str, str]] = {}
    day = start - dt.timedelta(days=max(INSTALMENT_GAPS))
    while day < end:
        plan = instalments_from(seed, day)
        if plan is not None:
            first_id = world_row_id(seed, account_id, plan.day, "instalment:1")
            balance_id = world_row_id(seed, account_id, plan.balance_day, f"instalment:2:{plan.gap}")
            parts[first_id] = parts[balance_id] = (plan, first_id, balance_id)
        day += dt.timedelta(days=1)
    return parts


def _book_instalments(
    books: CompanyBooks,
    seed: int,
    bank_account: str,
    first: WorldTransaction,
    plan: Instalments,
    balance_id: str,
    booked_ids: set[str],
) -> None:
    """The invoice the customer paid in two parts, booked once for its whole amount."""
    rng = random.Random(f"{seed}:ledger:{first.world_id}")
    entry_id = f"le-{stable_hex(seed, first.world_id, length=12)}"
    books.entries.append(
        LedgerEntry(
            entry_id=entry_id,
            bank_account=bank_account,
            entry_type="receivable",
            document_number=plan.invoice,
            payment_reference=plan.invoice,
            counterparty_name=plan.customer.name,
            amount=Decimal(plan.total_minor).scaleb(-2),
            currency=first.currency,
            expected_date=plan.day - dt.timedelta(days=rng.randint(0, 5)),
            noise="paid_in_parts",
        )
    )
    if balance_id in booked_ids:
        books.settles[entry_id] = frozenset({first.world_id, balance_id})
    else:
        books.exceptions[entry_id] = AMOUNT_MISMATCH
        books.exceptions[first.world_id] = AMOUNT_MISMATCH


def _book_row(books: CompanyBooks, seed: int, bank_account: str, txn: WorldTransaction) -> None:
    if txn.description.startswith(SETTLEMENT_CREDIT_TEXT) or txn.transfer_group:
        return  # reconciled against the gateway's settlement, or against the owner's other account
    kind = _kind(txn)
    if kind is None:
        books.exceptions[txn.world_id] = MISSING_IN_LEDGER
        return
    rng = random.Random(f"{seed}:ledger:{txn.world_id}")
    assert txn.booking_date is not None
    number = _INVOICE.search(txn.description)
    document = (
        number.group(1) if number else f"{kind[:3].upper()}-{stable_hex(txn.world_id, length=6).upper()}"
    )
    name = txn.counterparty_name or _payee_from_text(txn.description)
    receivable = txn.amount > 0
    expected = txn.booking_date - dt.timedelta(days=rng.randint(0, 5 if receivable else 2))
    draw = rng.random()
    entry_id = f"le-{stable_hex(seed, txn.world_id, length=12)}"

    def entry(noise: Noise, **changes: object) -> LedgerEntry:
        fields: dict[str, object] = {
            "entry_id": entry_id,
            "bank_account": bank_account,
            "entry_type": "receivable" if receivable else "payable",
            "document_number": document,
            "payment_reference": number.group(1) if number else None,
            "counterparty_name": name,
            "amount": txn.amount,
            "currency": txn.currency,
            "expected_date": expected,
            "noise": noise,
        }
        fields.update(changes)
        return LedgerEntry(**fields)  # type: ignore[arg-type]

    if number and draw < 0.06:
        books.exceptions[txn.world_id] = MISSING_IN_LEDGER
        return
    if number and draw < 0.10:
        short = (txn.amount * Decimal(rng.choice((97, 98, 99))) / 100).quantize(Decimal("0.01"))
        mismatched = entry("amount_mismatch", amount=short)
        books.entries.append(mismatched)
        books.exceptions[entry_id] = AMOUNT_MISMATCH
        books.exceptions[txn.world_id] = AMOUNT_MISMATCH
        return
    if number and draw < 0.22:
        books.entries.append(entry("mangled_reference", payment_reference=_mangle(rng, number.group(1))))
    elif receivable and draw < 0.32:
        parts = _batched(rng, txn, entry)
        books.entries.extend(parts)
        books.settles.update({part.entry_id: frozenset({txn.world_id}) for part in parts})
        return
    elif draw < 0.45 or not number:
        books.entries.append(
            entry("no_reference", payment_reference=None, counterparty_name=_typo(rng, name))
        )
    else:
        books.entries.append(entry("clean"))
    books.settles[entry_id] = frozenset({txn.world_id})
    if rng.random() < 0.03:
        copy = entry("duplicate", entry_id=f"{entry_id}-dup")
        books.entries.append(copy)
        books.exceptions[copy.entry_id] = DUPLICATE


def _batched(rng: random.Random, txn: WorldTransaction, entry) -> list[LedgerEntry]:  # noqa: ANN001
    """Two or three invoices of the credit's customer, raised the same day, paid by one credit."""
    parts = rng.choice((2, 3))
    minor = int(txn.amount * 100)
    cuts = sorted(rng.sample(range(1, minor), parts - 1))
    amounts = [b - a for a, b in zip([0, *cuts], [*cuts, minor], strict=True)]
    base = entry("batched")
    return [
        entry(
            "batched",
            entry_id=f"{base.entry_id}-{index}",
            document_number=f"INV-{rng.randrange(10000, 100000)}",
            payment_reference=None,
            amount=Decimal(part).scaleb(-2),
        )
        for index, part in enumerate(amounts, start=1)
    ]


def _book_unpaid(
    books: CompanyBooks, seed: int, bank_account: str, currency: str, account_key: str, day: dt.date
) -> None:
    rng = random.Random(f"{seed}:ledger:unpaid:{account_key}:{day.isoformat()}")
    if day.weekday() >= 5 or rng.random() >= _UNPAID_PER_WEEKDAY:
        return
    entry_id = f"le-{stable_hex(seed, 'unpaid', account_key, day.isoformat(), length=12)}"
    minor = rng.randrange(20000, 300000)
    books.entries.append(
        LedgerEntry(
            entry_id=entry_id,
            bank_account=bank_account,
            entry_type="receivable",
            document_number=f"INV-{rng.randrange(10000, 100000)}",
            payment_reference=None,
            counterparty_name=rng.choice(
                ("Harbour Supplies Ltd", "Meridian Retail Group", "Sundaram Textiles")
            ),
            amount=Decimal(minor).scaleb(-2),
            currency=currency,
            expected_date=day,
            noise="unpaid",
        )
    )
    books.exceptions[entry_id] = MISSING_IN_BANK


def _kind(txn: WorldTransaction) -> str | None:
    """What the books call this bank line, or None when the books never hold its kind."""
    if txn.true_category in {"fees", "transfer"}:
        return None
    if txn.merchant_name or txn.mcc:
        return None  # card spend: expensed from card statements, not from the ledger
    return {
        "sales": "invoice",
        "suppliers": "bill",
        "rent": "rent",
        "utilities": "utility",
        "payroll": "payroll",
    }.get(txn.true_category)


def _payee_from_text(description: str) -> str:
    if "SALARY" in description:
        return "Kaveri Staff Salaries"
    return description.title()


def _mangle(rng: random.Random, reference: str) -> str:
    letters, digits = re.match(r"([A-Z]+)-?(\d+)", reference).groups()  # type: ignore[union-attr]
    typed = (
        f"{letters.lower()} {digits}",
        f"{letters}{digits}",
        f" {letters}/{digits}",
        f"{letters}.{digits}",
    )
    return rng.choice([variant for variant in typed if variant != reference])


def _typo(rng: random.Random, name: str) -> str:
    """The name as a hurried clerk types it: a dropped or swapped letter, the legal suffix gone."""
    typed = re.sub(r"\s+(Ltd|Limited|Pvt Ltd|LLP|plc)$", "", name) if rng.random() < 0.5 else name
    letters = [i for i, c in enumerate(typed) if c.isalpha()]
    if len(letters) > 4:
        i = rng.choice(letters[1:-1])
        typed = (
            typed[:i] + typed[i + 1 :]
            if rng.random() < 0.5
            else typed[:i] + typed[i + 1] + typed[i] + typed[i + 2 :]
        )
    return typed.upper() if rng.random() < 0.3 else typed


LEDGER_DDL = """
create table if not exists {table} (
    entry_id text primary key,
    bank_account text not null,
    entry_type text not null,
    document_number text not null,
    payment_reference text,
    counterparty_name text not null,
    amount numeric(18, 2) not null,
    currency text not null,
    expected_date date not null
)
"""


EXPORT_COLUMNS = (
    "entry_id",
    "bank_account",
    "entry_type",
    "document_number",
    "payment_reference",
    "counterparty_name",
    "amount",
    "currency",
    "expected_date",
)


def write_books_export(path: Path, entries: Iterable[LedgerEntry]) -> int:
    """The books as the accounting system exports them: CSV, or JSON (exact decimal numbers) when
    the path ends in .json. Returns the number of entries written."""
    rows = [
        {
            column: (value.isoformat() if isinstance(value, dt.date) else value)
            for column in EXPORT_COLUMNS
            for value in [getattr(entry, column)]
        }
        for entry in entries
    ]
    if path.suffix.lower() == ".json":
        path.write_text(simplejson.dumps({"entries": rows}, use_decimal=True, indent=1), encoding="utf-8")
    else:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return len(rows)


def write_books(
    database_url: str, entries: Iterable[LedgerEntry], schema: str = "ledger", table: str = "entries"
) -> int:
    """Replace the table's rows with these entries (the company's accounting system's export)."""
    target = sql.Identifier(schema, table)
    rows = [
        (
            e.entry_id,
            e.bank_account,
            e.entry_type,
            e.document_number,
            e.payment_reference,
            e.counterparty_name,
            e.amount,
            e.currency,
            e.expected_date,
        )
        for e in entries
    ]
    with psycopg.connect(database_url) as conn:
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL(LEDGER_DDL).format(table=target))
        conn.execute(sql.SQL("truncate {}").format(target))
        with conn.cursor().copy(sql.SQL("copy {} from stdin").format(target)) as copy:
            for row in rows:
                copy.write_row(row)
    return len(rows)
