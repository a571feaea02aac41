"""The company ledger from an accounting system's export file: CSV or JSON, the columns of the
ledger contract (docs/reconciliation.md).

Each row is checked before it lands, so that staging's casts cannot fail on it: a row that cannot be
read is quarantined with the reason (ops.quarantine, source `ledger_export`) and the rest of the file
lands. Rows land untouched (the file's own text for each value) in raw.ledger_export_entries through
the one loader. A file replaces whatever an earlier file of the same name landed, in one
transaction with its quarantine rows, so re-landing a file gives the same tables and a failure
leaves the previous ones.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import psycopg
import simplejson

from resources.warehouse.loader import RawRecord, ReplaceScope, land
from resources.warehouse.quarantine import QuarantineItem, quarantine

LEDGER_EXPORT_TABLE = "ledger_export_entries"
SOURCE = "ledger_export"
REQUIRED_COLUMNS = ("entry_id", "bank_account", "document_number", "amount", "currency", "expected_date")
OPTIONAL_COLUMNS = ("entry_type", "payment_reference", "counterparty_name")
ENTRY_TYPES = frozenset({"receivable", "payable"})
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_AMOUNT = re.compile(r"^[+-]?\d{1,16}(\.\d{1,2})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # what staging's cast reads; fromisoformat takes more


class LedgerExportError(ValueError):
    """The whole file cannot be read as a ledger export: the message says why."""


@dataclass(frozen=True)
class LedgerExportLanding:
    """What became of one export file."""

    path: Path
    file_id: str
    format: str | None
    rows_landed: int
    rows_quarantined: int
    rows_replaced: int
    error: str | None = None

    @property
    def outcome(self) -> str:
        return "quarantined" if self.error else "landed"


def file_id_of(path: Path) -> str:
    """A file is identified by its name: re-sending `books-2026-11.csv` replaces what it landed."""
    return f"{SOURCE}:{path.name}"


def read_ledger_export(path: Path) -> tuple[str, list[RawRecord], list[QuarantineItem]]:
    """(format, the rows that can land, the rows quarantined with their reason) of one file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerExportError(f"{path.name}: cannot read the file ({exc})") from None
    if not text.strip():
        raise LedgerExportError(f"{path.name}: the file is empty")
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("[", "{"):
        kind, rows = "json", _json_rows(path, text)
    else:
        kind, rows = "csv", _csv_rows(path, text)
    return (kind, *_checked(rows))


def _checked(rows: list[tuple[str, Any]]) -> tuple[list[RawRecord], list[QuarantineItem]]:
    """(position, row) pairs -> the rows that land and the rows quarantined with the reason."""
    records: list[RawRecord] = []
    rejected: list[QuarantineItem] = []
    seen: set[str] = set()
    for position, row in rows:
        original = simplejson.dumps(row, use_decimal=True, sort_keys=True, default=str)
        problem = _problem(row) if isinstance(row, Mapping) else "not an object"
        if problem is None and str(row["entry_id"]).strip() in seen:
            problem = f"entry_id {str(row['entry_id']).strip()!r} repeats an earlier row of the file"
        if problem is not None:
            rejected.append(
                QuarantineItem(entity="ledger_entry", reason=f"{position}: {problem}", original=original)
            )
            continue
        entry_id = str(row["entry_id"]).strip()
        seen.add(entry_id)
        records.append(
            RawRecord(
                payload=original,
                partition_key=str(row["expected_date"]).strip(),
                record_key=entry_id,
                account_ref=str(row["bank_account"]).strip(),
            )
        )
    return records, rejected


def land_ledger_export(
    conn: psycopg.Connection, path: Path, *, run_id: str, fetched_at: dt.datetime
) -> LedgerExportLanding:
    """Land one export file (see the module's docstring); a file that cannot be read at all is
    quarantined whole and lands nothing, its earlier landing kept."""
    file_id = file_id_of(path)
    try:
        kind, records, rejected = read_ledger_export(path)
        if rejected and not records:
            # A re-export in another date format, a file still being written: replacing the
            # earlier landing with nothing would drop every entry from reconciliation.
            raise LedgerExportError(
                f"{path.name}: no row can be read ({len(rejected)} rows; the first: {rejected[0].reason})"
            )
    except LedgerExportError as exc:
        with conn.transaction():
            # The earlier landing stays, and so do the reasons its bad rows were quarantined for.
            _forget_quarantined(conn, file_id, entity="file")
            quarantine(
                conn,
                source=SOURCE,
                items=[QuarantineItem(entity="file", reason=str(exc), original=path.name)],
                run_id=run_id,
                file_id=file_id,
            )
        return LedgerExportLanding(path, file_id, None, 0, 0, 0, error=str(exc))
    with conn.transaction():
        _forget_quarantined(conn, file_id)
        result = land(
            conn,
            table=LEDGER_EXPORT_TABLE,
            source=SOURCE,
            records=records,
            scope=ReplaceScope(file_ids=[file_id]),
            run_id=run_id,
            fetched_at=fetched_at,
            file_id=file_id,
        )
        quarantined = quarantine(conn, source=SOURCE, items=rejected, run_id=run_id, file_id=file_id)
    return LedgerExportLanding(path, file_id, kind, result.rows_inserted, quarantined, result.rows_deleted)


def _forget_quarantined(conn: psycopg.Connection, file_id: str, entity: str | None = None) -> None:
    # The file's earlier quarantine rows go with its earlier landing: re-landing it must not count
    # its bad rows twice.
    conn.execute(
        "delete from ops.quarantine where source = %s and file_id = %s and entity = coalesce(%s, entity)",
        (SOURCE, file_id, entity),
    )


def _csv_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise LedgerExportError(
            f"{path.name}: not a ledger export: the header lacks {', '.join(missing)}"
            f" (expected columns: {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})"
        )
    reader.fieldnames = header
    try:
        return [(f"line {reader.line_num}", _without_extra(row)) for row in reader]
    except csv.Error as exc:
        raise LedgerExportError(f"{path.name}: line {reader.line_num} is not CSV ({exc})") from None


def _without_extra(row: dict[str | None, Any]) -> dict[str, Any]:
    # A row with more cells than the header: csv puts the rest under None; keep them visibly.
    extra = row.pop(None, None)
    cleaned: dict[str, Any] = {key: value for key, value in row.items() if key is not None}
    if extra:
        cleaned["_extra_cells"] = extra
    return cleaned


def _json_rows(path: Path, text: str) -> list[tuple[str, Any]]:
    try:
        document = simplejson.loads(text, use_decimal=True)
    except simplejson.JSONDecodeError as exc:
        raise LedgerExportError(f"{path.name}: not valid JSON ({exc})") from None
    entries = document.get("entries") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise LedgerExportError(f"{path.name}: expected a JSON array of entries, or an object with 'entries'")
    return [(f"entry {index}", entry) for index, entry in enumerate(entries, start=1)]


def _problem(row: Mapping[str, Any]) -> str | None:
    """Why a row cannot land, or None."""
    if "_extra_cells" in row:
        return "more cells than the header has columns"
    for column in REQUIRED_COLUMNS:
        value = row.get(column)
        if value is None or not str(value).strip():
            return f"{column} is missing"
    amount = row["amount"]
    if isinstance(amount, float):
        return "amount is a binary float"  # simplejson with use_decimal never gives one; be explicit
    if isinstance(amount, bool) or not _AMOUNT.match(str(amount).strip()):
        return f"amount {amount!r} is not a number with at most 2 decimals"
    try:
        if Decimal(str(amount).strip()) == 0:
            return "amount is zero"
    except InvalidOperation:
        return f"amount {amount!r} is not a number"
    if not _CURRENCY.match(str(row["currency"]).strip()):
        return f"currency {row['currency']!r} is not an ISO 4217 code"
    try:
        if not _DATE.match(str(row["expected_date"]).strip()):
            raise ValueError
        dt.date.fromisoformat(str(row["expected_date"]).strip())
    except ValueError:
        return f"expected_date {row['expected_date']!r} is not a date (YYYY-MM-DD)"
    entry_type = row.get("entry_type")
    if entry_type not in (None, "") and str(entry_type).strip().lower() not in ENTRY_TYPES:
        return f"entry_type {entry_type!r} is not receivable or payable"
    return None


def export_files(folder: Path) -> list[Path]:
    """The export files of a drop folder, oldest first (by modification time, then name), so that
    the newest landing of an entry id is the newest file's: CSV and JSON only."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".json")]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))
