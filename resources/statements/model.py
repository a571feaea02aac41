"""What every statement parser produces: one interface, one event stream, whatever the file format.

A parser reads a file and yields, in file order, a `StatementHeader` followed by that statement's
`StatementEntry`s, then the next header, and so on. The stream keeps memory bounded by the largest
entry (a 200 MB camt.053 is never held whole); the header already carries every balance of its
statement, so a parser of a format whose closing balance follows the entries (MT940) buffers that
one statement, which is small. `collect()` folds the stream into `Statement`s for callers that want
them whole (tests, `bankflow import`'s summary).

Money is `Decimal` from the file's text, signed (+ money in, - money out), never float.
A parser raises `StatementParseError` (or a subclass) for anything it cannot read, and nothing
else: the landing step quarantines the file with that message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

BalanceKind = Literal[
    "opening",  # camt OPBD / PRCD, MT940 :60F:, BAI 010
    "closing",  # camt CLBD, MT940 :62F:, BAI 015
    "interim_opening",  # MT940 :60M: (a page of a multi-page statement)
    "interim_closing",  # MT940 :62M:, camt ITBD
    "opening_available",  # camt OPAV, BAI 040
    "closing_available",  # camt CLAV, MT940 :64:, BAI 045
    "forward_available",  # camt FWAV, MT940 :65:
    "other",  # anything else the file reports (BAI 072, ...): kept, never used for continuity
]
EntryStatus = Literal["booked", "pending", "info"]


class StatementParseError(ValueError):
    """The file cannot be read as a statement of this format; the message says where and why."""


@dataclass(frozen=True)
class StatementBalance:
    kind: BalanceKind
    code: str  # as the file says it: OPBD, PRCD, 60F, 62M, BAI 010, ...
    amount: Decimal  # signed: a debit balance is negative
    currency: str
    date: date | None


@dataclass(frozen=True)
class StatementHeader:
    """One statement (camt Stmt, MT940 :20:..:62F:, a CSV/JSON/OFX file's account) before its entries."""

    index: int  # 0-based position of the statement in the file
    account_id: str  # IBAN when the file gives one, else the bank's account id as written
    account_iban: str | None  # validated IBAN (schwifty), None when the id is not one
    currency: str | None  # account currency, when the file says it
    statement_id: str | None = None  # camt Stmt/Id, MT940 :20:
    sequence: str | None = None  # camt ElctrncSeqNb/LglSeqNb, MT940 :28C:
    created_at: datetime | None = None
    period_start: date | None = None
    period_end: date | None = None
    account_name: str | None = None
    account_owner: str | None = None
    bank_bic: str | None = None
    balances: tuple[StatementBalance, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)  # format-specific extras, JSON-ready

    def balance(self, *kinds: BalanceKind) -> StatementBalance | None:
        """The first balance of the first kind given that the statement reports."""
        for kind in kinds:
            for balance in self.balances:
                if balance.kind == kind:
                    return balance
        return None


@dataclass(frozen=True)
class StatementEntry:
    """One movement (camt Ntry, MT940 :61:+:86:, a CSV row, ...) of the statement before it."""

    statement_index: int
    index: int  # 0-based position within its statement: part of identity (refs repeat in the wild)
    amount: Decimal  # signed: + money in, - money out (camt: CdtDbtInd only; MT940: C/RD +, D/RC -)
    currency: str
    status: EntryStatus
    booking_date: date | None
    value_date: date | None = None
    booked_at: datetime | None = None  # when the file gives a time; aware (UTC offset known) or None
    is_reversal: bool = False
    entry_reference: str | None = None  # camt NtryRef, MT940 customer reference (not NONREF)
    bank_reference: str | None = None  # camt AcctSvcrRef, MT940 `//` bank reference
    end_to_end_id: str | None = None  # camt EndToEndId, MT940 EREF
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    counterparty_bic: str | None = None
    description: str | None = None  # remittance / :86: purpose text, whitespace folded
    bank_transaction_code: str | None = None  # camt Domn/Fmly/SubFmly or Prtry, MT940 type (NTRF), GVC
    details: dict[str, Any] = field(default_factory=dict)  # format-specific extras, JSON-ready


StatementEvent = StatementHeader | StatementEntry


@dataclass(frozen=True)
class BalanceCheck:
    """Opening + sum of entries = closing, for one statement. A mismatch is a warning, not an error."""

    opening: Decimal | None
    entries_total: Decimal
    closing: Decimal | None
    entry_count: int

    @property
    def difference(self) -> Decimal | None:
        if self.opening is None or self.closing is None:
            return None
        return self.opening + self.entries_total - self.closing

    @property
    def status(self) -> Literal["reconciled", "mismatch", "no_balances"]:
        difference = self.difference
        if difference is None:
            return "no_balances"
        return "reconciled" if difference == 0 else "mismatch"


def balance_check(header: StatementHeader, entries: Iterable[StatementEntry]) -> BalanceCheck:
    """Continuity of one statement. Only booked entries move the ledger balance (info lines and
    pending items do not); opening falls back to the interim opening of a continuation page."""
    total = Decimal(0)
    count = 0
    for entry in entries:
        count += 1
        if entry.status == "booked":
            total += entry.amount
    opening = header.balance("opening", "interim_opening")
    closing = header.balance("closing", "interim_closing")
    return BalanceCheck(
        opening=opening.amount if opening else None,
        entries_total=total,
        closing=closing.amount if closing else None,
        entry_count=count,
    )


@dataclass(frozen=True)
class Statement:
    """A statement with its entries, as `collect()` folds them."""

    header: StatementHeader
    entries: tuple[StatementEntry, ...]

    @property
    def check(self) -> BalanceCheck:
        return balance_check(self.header, self.entries)


def collect(events: Iterable[StatementEvent]) -> list[Statement]:
    """Fold a parser's event stream into whole statements (holds every entry: small files only)."""
    statements: list[Statement] = []
    header: StatementHeader | None = None
    entries: list[StatementEntry] = []
    for event in events:
        if isinstance(event, StatementHeader):
            if header is not None:
                statements.append(Statement(header, tuple(entries)))
            header, entries = event, []
        else:
            if header is None or event.statement_index != header.index:
                raise StatementParseError("an entry came before its statement's header")
            entries.append(event)
    if header is not None:
        statements.append(Statement(header, tuple(entries)))
    return statements


class StatementParser(Protocol):
    """One per format (`camt053`, `mt940`, `csv`, `json`, `ofx`)."""

    format: str

    def sniff(self, head: bytes, filename: str) -> bool:
        """Whether a file starting with `head` (its first 4 KiB) is in this parser's format."""
        ...

    def parse(self, path: Path) -> Iterator[StatementEvent]:
        """The file's statements and entries in file order; raises StatementParseError only."""
        ...
