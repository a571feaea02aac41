"""CSV statement drops, read through a per-layout `CsvMapping` (no Python per bank).

One statement per account in the file, in the order accounts first appear; its entries in file
order. CSV carries no balances of its own: when the layout has a running-balance column, the
statement's closing balance is the last row's balance and its opening balance the first row's
balance minus the first row's amount, so the usual continuity check applies.

A row that cannot be read (a bad date, a bad amount, a missing cell) fails the whole file with the
line and the column: a CSV row has no identity of its own to quarantine it by, and a file with a
hole in its running balance is not a statement worth landing in part. The parser therefore reads
every row before it yields anything; bank CSV exports are small enough for that.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from resources.statements.account_iban import account_iban
from resources.statements.csv_mapping import CsvMapping
from resources.statements.model import (
    StatementBalance,
    StatementEntry,
    StatementEvent,
    StatementHeader,
    StatementParseError,
)

_WHITESPACE = re.compile(r"\s+")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DIGITS = re.compile(r"[0-9]+")


def parse_csv_amount(
    text: str, decimal_separator: str = ".", thousands_separator: str | None = None
) -> Decimal:
    """A money amount as a bank's CSV writes it, exactly: `-1,234.56`, `1.234,56`, `(12.00)`,
    `+5`, `1,23,456.78` (Indian grouping). Raises ValueError saying what is wrong."""
    value = text.strip()
    negative = False
    if value.startswith("(") and value.endswith(")"):
        negative, value = True, value[1:-1].strip()
    elif value[:1] in ("+", "-"):
        negative, value = value[0] == "-", value[1:]
    integer, separator, fraction = value.partition(decimal_separator)
    if separator and not _DIGITS.fullmatch(fraction):
        raise ValueError("digits expected after the decimal separator")
    if thousands_separator and thousands_separator in integer:
        sep = re.escape(thousands_separator)
        # Western (1,234,567) and Indian (12,34,567) grouping: the last group has three digits.
        if not re.fullmatch(rf"[0-9]{{1,3}}(?:{sep}[0-9]{{2,3}})*{sep}[0-9]{{3}}", integer):
            raise ValueError("digit grouping is not a thousands grouping")
        integer = integer.replace(thousands_separator, "")
    if integer == "" and separator:
        integer = "0"
    if not _DIGITS.fullmatch(integer):
        raise ValueError("not a number")
    amount = Decimal(f"{integer}.{fraction}" if separator else integer)
    return -amount if negative and amount else amount


@dataclass(frozen=True)
class _Row:
    line: int
    account_id: str
    entry: StatementEntry  # statement_index and index are set when the rows are grouped
    balance_after: Decimal | None


class CsvStatementParser:
    """Reads CSV files of one layout; `format` is "csv", `mapping.name` says which layout."""

    format = "csv"

    def __init__(self, mapping: CsvMapping) -> None:
        self.mapping = mapping

    def __repr__(self) -> str:
        return f"CsvStatementParser({self.mapping.name!r})"

    def sniff(self, head: bytes, filename: str) -> bool:
        """The layout's `header_match` columns are in its header row (after `skip_rows` lines)."""
        if b"\x00" in head:
            return False
        text = head.decode(self.mapping.encoding, errors="replace").lstrip("\ufeff")
        reader = csv.reader(
            io.StringIO(text), delimiter=self.mapping.delimiter, quotechar=self.mapping.quotechar
        )
        try:
            for _ in range(self.mapping.skip_rows):
                next(reader)
            header = {cell.strip() for cell in next(reader)}
        except (StopIteration, csv.Error):
            return False
        return all(column in header for column in self.mapping.required_header)

    def parse(self, path: Path) -> Iterator[StatementEvent]:
        """One statement per account, in order of first appearance; StatementParseError only."""
        file_account, rows = self._read_rows(path)
        accounts: dict[str, list[_Row]] = {}
        if file_account is not None:
            # The account is known without rows: a period without movements is still a statement.
            accounts[file_account] = []
        for row in rows:
            accounts.setdefault(row.account_id, []).append(row)
        for statement_index, (account_id, account_rows) in enumerate(accounts.items()):
            yield self._header(statement_index, account_id, account_rows)
            for index, row in enumerate(account_rows):
                yield replace(row.entry, statement_index=statement_index, index=index)

    # -- reading ---------------------------------------------------------------------------------

    def _read_rows(self, path: Path) -> tuple[str | None, list[_Row]]:
        mapping = self.mapping
        try:
            with path.open(encoding=mapping.encoding, newline="") as handle:
                reader = csv.reader(
                    handle, delimiter=mapping.delimiter, quotechar=mapping.quotechar, strict=True
                )
                preamble = [next(reader, []) for _ in range(mapping.skip_rows)]
                account_id = self._file_account(path, preamble)
                header = next(reader, None)
                while header is not None and not any(cell.strip() for cell in header):
                    header = next(reader, None)
                if header is None:
                    raise StatementParseError(f"{path.name}: no header row after {mapping.skip_rows} line(s)")
                header = [cell.strip().lstrip("\ufeff") for cell in header]
                positions = self._positions(path, header)
                rows: list[_Row] = []
                for record in reader:
                    if not any(cell.strip() for cell in record):
                        continue
                    rows.append(self._row(path, reader.line_num, record, header, positions, account_id))
                return account_id, rows
        except UnicodeDecodeError as exc:
            raise StatementParseError(
                f"{path.name}: not {mapping.encoding} text (byte {exc.start}: {exc.reason})"
            ) from None
        except csv.Error as exc:
            raise StatementParseError(f"{path.name}: not a readable CSV file ({exc})") from None
        except OSError as exc:
            raise StatementParseError(f"{path.name}: cannot read ({exc.strerror})") from None

    def _file_account(self, path: Path, preamble: Sequence[list[str]]) -> str | None:
        mapping = self.mapping
        if mapping.account_id is not None:
            return mapping.account_id
        if mapping.account_from_filename is not None:
            account = mapping.account_from(path.name)
            if account is None:
                raise StatementParseError(
                    f"{path.name}: the file name does not match account_from_filename "
                    f"{mapping.account_from_filename!r}"
                )
            return account
        cell = mapping.account_from_preamble
        if cell is not None:
            line = preamble[cell.line] if cell.line < len(preamble) else []
            account = line[cell.column].strip() if cell.column < len(line) else ""
            if not account:
                raise StatementParseError(
                    f"{path.name}: no account number in preamble line {cell.line + 1}, cell {cell.column + 1}"
                )
            return account
        return None  # from a column, row by row

    def _positions(self, path: Path, header: list[str]) -> dict[str, int]:
        positions: dict[str, int] = {}
        for name in self.mapping.columns.names():
            found = [i for i, cell in enumerate(header) if cell == name]
            if not found:
                raise StatementParseError(f"{path.name}: the header has no column {name!r}")
            if len(found) > 1:
                raise StatementParseError(f"{path.name}: the header has column {name!r} twice")
            positions[name] = found[0]
        return positions

    def _row(
        self,
        path: Path,
        line: int,
        record: list[str],
        header: list[str],
        positions: dict[str, int],
        file_account: str | None,
    ) -> _Row:
        mapping, columns = self.mapping, self.mapping.columns
        if len(record) < len(header) or any(cell.strip() for cell in record[len(header) :]):
            raise StatementParseError(
                f"{path.name}: line {line}: {len(record)} cells where the header has {len(header)}"
            )
        cells = _RowCells(path.name, line, record, positions, mapping)

        account_id = file_account
        if columns.account is not None:
            account_id = cells.text(columns.account)
            if not account_id:
                raise cells.error(columns.account, "no account")
        assert account_id is not None  # the mapping guarantees exactly one account source

        currency = mapping.currency
        if columns.currency is not None:
            currency = cells.text(columns.currency).upper()
            if not _CURRENCY.match(currency):
                raise cells.error(columns.currency, "not an ISO 4217 currency code")
        assert currency is not None

        amount = self._amount(cells)
        description = " ".join(text for text in map(cells.text, columns.description) if text)
        balance_after = cells.amount(columns.balance_after) if columns.balance_after else None
        details: dict[str, object] = {
            "line": line,
            "row": {name: record[i] for i, name in enumerate(header) if name},
        }
        if balance_after is not None:
            details["balance_after"] = str(balance_after)
        entry = StatementEntry(
            statement_index=0,
            index=0,
            amount=amount,
            currency=currency,
            status="booked",
            booking_date=cells.date(columns.booking_date, required=True),
            value_date=cells.date(columns.value_date, required=False) if columns.value_date else None,
            bank_reference=cells.text(columns.reference) or None,
            end_to_end_id=cells.text(columns.end_to_end_id) or None,
            counterparty_name=cells.text(columns.counterparty_name) or None,
            counterparty_iban=cells.text(columns.counterparty_iban).replace(" ", "") or None,
            description=_WHITESPACE.sub(" ", description).strip() or None,
            details=details,
        )
        return _Row(line=line, account_id=account_id, entry=entry, balance_after=balance_after)

    def _amount(self, cells: _RowCells) -> Decimal:
        columns = self.mapping.columns
        if columns.debit is not None and columns.credit is not None:
            debit, credit = cells.amount(columns.debit), cells.amount(columns.credit)
            if debit is None and credit is None:
                raise cells.error(columns.debit, f"no amount in {columns.debit!r} nor {columns.credit!r}")
            if debit and credit:
                raise cells.error(
                    columns.debit, f"both {columns.debit!r} and {columns.credit!r} hold an amount"
                )
            # The column says the direction, whatever sign a bank writes in it.
            return -abs(debit) if debit else abs(credit or Decimal(0))
        assert columns.amount is not None
        amount = cells.amount(columns.amount)
        if amount is None:
            raise cells.error(columns.amount, "no amount")
        if columns.direction is None:
            return amount
        sign = columns.direction.sign_of(cells.text(columns.direction.column))
        if sign is None:
            raise cells.error(columns.direction.column, "neither a debit nor a credit value")
        return abs(amount) * sign

    def _header(self, statement_index: int, account_id: str, rows: list[_Row]) -> StatementHeader:
        currencies = {row.entry.currency for row in rows}
        currency = currencies.pop() if len(currencies) == 1 else None
        balances: list[StatementBalance] = []
        if not rows:
            return StatementHeader(
                index=statement_index,
                account_id=account_id,
                account_iban=account_iban(account_id),
                currency=self.mapping.currency,
                details={"mapping": self.mapping.name},
            )
        first, last = rows[0], rows[-1]
        if first.balance_after is not None:
            balances.append(
                StatementBalance(
                    kind="opening",
                    code="balance_after",
                    amount=first.balance_after - first.entry.amount,
                    currency=first.entry.currency,
                    date=first.entry.booking_date,
                )
            )
        if last.balance_after is not None:
            balances.append(
                StatementBalance(
                    kind="closing",
                    code="balance_after",
                    amount=last.balance_after,
                    currency=last.entry.currency,
                    date=last.entry.booking_date,
                )
            )
        return StatementHeader(
            index=statement_index,
            account_id=account_id,
            account_iban=account_iban(account_id),
            currency=currency,
            balances=tuple(balances),
            details={"mapping": self.mapping.name},
        )


@dataclass(frozen=True)
class _RowCells:
    """One data row's cells by column name, read with the mapping's formats; errors name the cell."""

    filename: str
    line: int
    record: list[str]
    positions: dict[str, int]
    mapping: CsvMapping

    def text(self, name: str | None) -> str:
        return self.record[self.positions[name]].strip() if name is not None else ""

    def error(self, name: str, what: str) -> StatementParseError:
        shown = self.text(name)
        shown = shown if len(shown) <= 40 else shown[:40] + "..."
        return StatementParseError(f"{self.filename}: line {self.line}, column {name!r}: {what} ({shown!r})")

    def date(self, name: str, required: bool) -> date | None:
        text = self.text(name)
        if not text:
            if required:
                raise self.error(name, "no date")
            return None
        try:
            return datetime.strptime(text, self.mapping.date_format).date()
        except ValueError:
            raise self.error(name, f"not a date in the format {self.mapping.date_format}") from None

    def amount(self, name: str) -> Decimal | None:
        text = self.text(name)
        if not text:
            return None
        try:
            return parse_csv_amount(text, self.mapping.decimal_separator, self.mapping.thousands_separator)
        except ValueError as exc:
            raise self.error(name, f"cannot read the amount: {exc}") from None
