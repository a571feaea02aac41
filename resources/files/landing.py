"""Landing one statement file: register it in the ledger, parse it, load raw, or quarantine it.

Each file is its own unit of work. Its statements and entries replace whatever that file (and
earlier versions of the same path) put in raw, in one transaction with its ledger row, so a
re-run of the same file gives the same tables and a crash leaves the previous state. A file that
cannot be parsed is quarantined with the parser's reason and its original kept in the store; a
JSON record that cannot be read is quarantined alone and the rest of its file lands.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import simplejson

from resources.files.connections import file_partition_key
from resources.files.ledger import (
    FileSighting,
    LedgerEntry,
    ParseOutcome,
    earlier_versions,
    record_archived,
    record_parsed,
    record_quarantined,
    record_superseded,
    register,
)
from resources.files.sources import FileSource, ListedFile
from resources.files.store import FileStore
from resources.statements.formats import detect
from resources.statements.model import (
    BalanceCheck,
    StatementEntry,
    StatementHeader,
    StatementParseError,
    StatementParser,
    balance_check,
)
from resources.warehouse.loader import RawRecord, ReplaceScope, land
from resources.warehouse.quarantine import QuarantineItem, quarantine

STATEMENTS_TABLE = "file_statements"
ENTRIES_TABLE = "file_entries"


@dataclass
class FileLandResult:
    """What became of one file; `outcome` is parsed, quarantined, duplicate or seen (landed before)."""

    ledger: LedgerEntry
    outcome: str
    format: str | None = None
    statements: int = 0
    entries: int = 0
    records_quarantined: int = 0
    accounts: list[str] = field(default_factory=list)
    period_start: date | None = None
    period_end: date | None = None
    balance_checks: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    # The booking days of the entries of the earlier versions this file replaced: they leave raw, and
    # the marts refresh must rebuild their days too (incremental staging follows raw by day).
    replaced_days: tuple[date, date] | None = None

    @property
    def balance_mismatches(self) -> list[dict[str, Any]]:
        return [check for check in self.balance_checks if check["status"] == "mismatch"]


def land_statement_file(
    conn: psycopg.Connection,
    *,
    sighting: FileSighting,
    stored_path: Path,
    parsers: Sequence[StatementParser],
    partition_key: str,
    run_id: str,
    fetched_at: datetime,
    bank: str | None = None,
) -> FileLandResult:
    """Register, parse and land one stored file (see the module docstring)."""
    entry, to_land = register(
        conn, sighting, stored_path=str(stored_path), partition_key=partition_key, run_id=run_id
    )
    if not to_land:
        return FileLandResult(
            ledger=entry, outcome="duplicate" if entry.status == "duplicate" else "seen", format=None
        )
    parser: StatementParser | None = None
    try:
        parser = detect(stored_path, parsers)
        with conn.transaction():
            result = _load(conn, entry, parser, stored_path, sighting, run_id, fetched_at, bank)
        return result
    except StatementParseError as exc:
        reason = f"{exc}"
        file_format = parser.format if parser is not None else None
        with conn.transaction():
            record_quarantined(conn, entry.ledger_id, reason, file_format)
            quarantine(
                conn,
                source=file_format or "statement_file",
                items=[QuarantineItem(entity="file", reason=reason, original=str(stored_path))],
                run_id=run_id,
                file_id=sighting.sha256,
            )
        return FileLandResult(ledger=entry, outcome="quarantined", format=file_format, reason=reason)


def fetch_and_land(
    conn: psycopg.Connection,
    source: FileSource,
    listed: ListedFile,
    *,
    store: FileStore,
    parsers: Sequence[StatementParser],
    run_id: str,
    fetched_at: datetime,
    bank: str | None = None,
) -> FileLandResult:
    """Fetch one listed file into the store, land it, and archive it on its drop once parsed.
    The one path every file takes: the files asset, `bankflow import` and the tests."""
    stored = source.fetch(listed, store)
    result = land_statement_file(
        conn,
        sighting=FileSighting(source.name, listed.path, stored.size, listed.mtime, stored.sha256),
        stored_path=stored.path,
        parsers=parsers,
        partition_key=file_partition_key(source.name, listed.path, listed.mtime_epoch, listed.size),
        run_id=run_id,
        fetched_at=fetched_at,
        bank=bank,
    )
    if result.outcome == "parsed" and (archived := source.archive(listed)):
        with conn.transaction():
            record_archived(conn, result.ledger.ledger_id, archived)
    return result


def _load(
    conn: psycopg.Connection,
    entry: LedgerEntry,
    parser: StatementParser,
    stored_path: Path,
    sighting: FileSighting,
    run_id: str,
    fetched_at: datetime,
    bank: str | None,
) -> FileLandResult:
    lineage = {
        "connection": sighting.connection,
        "path": sighting.path,
        "bank": bank,
        "format": parser.format,
    }
    folded = _Fold(parser.format, lineage)
    replaced = earlier_versions(conn, entry)
    scope = ReplaceScope(file_ids=[sighting.sha256, *(sha for _, sha in replaced)])
    replaced_days = _entry_days(conn, [sha for _, sha in replaced])
    common = {"source": parser.format, "scope": scope, "run_id": run_id, "fetched_at": fetched_at}
    # Entries stream into COPY; the fold keeps only headers and running totals.
    land(
        conn,
        table=ENTRIES_TABLE,
        records=folded.entries(parser.parse(stored_path)),
        **common,
        file_id=sighting.sha256,
    )
    land(conn, table=STATEMENTS_TABLE, records=folded.statement_records(), **common, file_id=sighting.sha256)
    rejected = [
        QuarantineItem(entity="record", reason=reason, original=original)
        for _, reason, original in getattr(parser, "rejected", [])
    ]
    quarantined = quarantine(
        conn, source=parser.format, items=rejected, run_id=run_id, file_id=sighting.sha256
    )
    checks = folded.checks()
    outcome = ParseOutcome(
        format=parser.format,
        statements=len(folded.headers),
        entries=folded.entry_count,
        accounts=sorted({header.account_id for header in folded.headers}),
        period_start=folded.period_start,
        period_end=folded.period_end,
        balance_status=_worst(checks),
        balance_checks=checks,
    )
    record_parsed(conn, entry.ledger_id, outcome)
    if replaced:
        record_superseded(conn, [ledger_id for ledger_id, _ in replaced], entry.ledger_id)
    return FileLandResult(
        ledger=entry,
        outcome="parsed",
        format=parser.format,
        statements=outcome.statements,
        entries=outcome.entries,
        records_quarantined=quarantined,
        accounts=outcome.accounts,
        period_start=outcome.period_start,
        period_end=outcome.period_end,
        balance_checks=checks,
        replaced_days=replaced_days,
    )


def _entry_days(conn: psycopg.Connection, file_ids: list[str]) -> tuple[date, date] | None:
    """First and last booking day of the landed entries of these files (None for none)."""
    if not file_ids:
        return None
    first, last = conn.execute(
        f"select min(partition_key), max(partition_key) from raw.{ENTRIES_TABLE}"  # noqa: S608 - a constant
        " where file_id = any(%s) and partition_key <> 'undated'",
        (file_ids,),
    ).fetchone()
    return (date.fromisoformat(first), date.fromisoformat(last)) if first else None


class _Fold:
    """Turns a parser's event stream into raw records, keeping per statement only its header and
    the running balance check (memory: the headers, not the entries)."""

    def __init__(self, file_format: str, lineage: dict[str, Any]) -> None:
        self.format = file_format
        self.lineage = lineage
        self.headers: list[StatementHeader] = []
        self._sums: dict[int, tuple[Decimal, int]] = {}
        self._occurrences: Counter[tuple[Any, ...]] = Counter()
        self.entry_count = 0
        self.period_start: date | None = None
        self.period_end: date | None = None

    def entries(self, events: Iterator[StatementHeader | StatementEntry]) -> Iterator[RawRecord]:
        header: StatementHeader | None = None
        for event in events:
            if isinstance(event, StatementHeader):
                header = event
                self.headers.append(event)
                self._sums[event.index] = (Decimal(0), 0)
                self._widen(event.period_start, event.period_end)
                continue
            if header is None or event.statement_index != header.index:
                raise StatementParseError("an entry came before its statement's header")
            booked, count = self._sums[header.index]
            self._sums[header.index] = (booked + (event.amount if event.status == "booked" else 0), count + 1)
            self.entry_count += 1
            self._widen(event.booking_date, event.booking_date)
            yield self._entry_record(header, event)

    def statement_records(self) -> Iterator[RawRecord]:
        for header, check in zip(self.headers, self._check_objects(), strict=True):
            payload = {
                **self.lineage,
                **_plain(asdict(header)),
                "balance_check": _check_dict(header, check),
            }
            day = header.period_end or (header.created_at.date() if header.created_at else None)
            yield RawRecord(
                payload=_json(payload),
                partition_key=day.isoformat() if day else "undated",
                record_key=_digest(
                    self.format,
                    header.account_id,
                    header.currency,
                    header.statement_id,
                    header.sequence,
                    header.period_start,
                    header.period_end,
                    header.index,
                ),
                account_ref=header.account_id,
            )

    def checks(self) -> list[dict[str, Any]]:
        return [_check_dict(h, c) for h, c in zip(self.headers, self._check_objects(), strict=True)]

    def _check_objects(self) -> list[BalanceCheck]:
        checks = []
        for header in self.headers:
            total, count = self._sums[header.index]
            base = balance_check(header, [])
            checks.append(
                BalanceCheck(
                    opening=base.opening, entries_total=total, closing=base.closing, entry_count=count
                )
            )
        return checks

    def _entry_record(self, header: StatementHeader, entry: StatementEntry) -> RawRecord:
        identity = (
            header.account_id,
            entry.currency,
            entry.booking_date,
            entry.value_date,
            entry.amount,
            entry.is_reversal,
            entry.status,
            entry.bank_reference or entry.entry_reference or "",
        )
        # The same movement twice in one file (refs repeat in the wild): the n-th of its kind.
        self._occurrences[identity] += 1
        payload = {
            **self.lineage,
            "account_id": header.account_id,
            "account_iban": header.account_iban,
            "account_currency": header.currency,
            "statement_id": header.statement_id,
            **_plain(asdict(entry)),
        }
        day = entry.booking_date or entry.value_date or header.period_end
        return RawRecord(
            payload=_json(payload),
            partition_key=day.isoformat() if day else "undated",
            record_key=_digest(*identity, self._occurrences[identity]),
            account_ref=header.account_id,
        )

    def _widen(self, first: date | None, last: date | None) -> None:
        if first is not None and (self.period_start is None or first < self.period_start):
            self.period_start = first
        if last is not None and (self.period_end is None or last > self.period_end):
            self.period_end = last


def _check_dict(header: StatementHeader, check: BalanceCheck) -> dict[str, Any]:
    return {
        "statement_index": header.index,
        "statement_id": header.statement_id,
        "account_id": header.account_id,
        "currency": header.currency,
        "opening": check.opening,
        "entries_total": check.entries_total,
        "closing": check.closing,
        "difference": check.difference,
        "entry_count": check.entry_count,
        "status": check.status,
    }


def _worst(checks: list[dict[str, Any]]) -> str:
    statuses = {check["status"] for check in checks}
    for status in ("mismatch", "reconciled"):
        if status in statuses:
            return status
    return "no_balances"


def _plain(value: Any) -> Any:
    """Dates as ISO text; Decimals stay Decimals (written as JSON numbers, exactly)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, str) and "\x00" in value:
        # jsonb cannot hold NUL; a file carrying one keeps it in the stored original.
        return value.replace("\x00", "\ufffd")
    return value


def _json(payload: dict[str, Any]) -> str:
    return simplejson.dumps(_plain(payload), use_decimal=True, ensure_ascii=False)


def _digest(*parts: object) -> str:
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
