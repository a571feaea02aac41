"""CSV statement layouts: one YAML mapping file per bank layout, validated here.

A bank's CSV export differs from the next one's in encoding, delimiter, preamble lines, date and
number formats and column names, never in what the columns mean. So a new layout is a YAML file in
`connectors/csv/` (or a directory the caller adds), not Python: it says how to read the file and
which column becomes which field of a `StatementEntry`.

Amounts come from exactly one of: a signed `amount` column; `debit` + `credit` columns (unsigned,
an empty cell is zero); or `amount` plus a `direction` column whose values say debit or credit.
The account comes from exactly one of: an `account` column, a constant `account_id`, a regex on the
file name (`account_from_filename`, its first group or the group named `account`), or a cell of
the preamble (`account_from_preamble: {line: 0, column: 1}`).

Every model forbids unknown keys, so a misspelt setting is an error, not a silent default; a bad
file fails with its path and the field.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from resources.yaml_config import load_yaml_model

DEFAULT_CSV_CONNECTORS_DIR = Path(__file__).resolve().parents[2] / "connectors" / "csv"

ColumnName = str


class CsvMappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DirectionColumn(_Strict):
    """A column saying whether the row's unsigned `amount` is money out (debit) or in (credit)."""

    column: ColumnName
    debit_values: list[str] = Field(min_length=1)
    credit_values: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _disjoint(self) -> DirectionColumn:
        both = {v.strip().casefold() for v in self.debit_values} & {
            v.strip().casefold() for v in self.credit_values
        }
        if both:
            raise ValueError(f"value(s) {', '.join(sorted(both))} are both debit and credit")
        return self

    def sign_of(self, cell: str) -> int | None:
        """-1 for a debit value, +1 for a credit value (case and spaces ignored), None otherwise."""
        value = cell.strip().casefold()
        if value in (v.strip().casefold() for v in self.debit_values):
            return -1
        if value in (v.strip().casefold() for v in self.credit_values):
            return 1
        return None


class CsvColumns(_Strict):
    """Which header column holds each field; None where the layout has no such column."""

    booking_date: ColumnName
    value_date: ColumnName | None = None
    amount: ColumnName | None = None
    debit: ColumnName | None = None
    credit: ColumnName | None = None
    direction: DirectionColumn | None = None
    currency: ColumnName | None = None
    # Several columns are joined with a space, empty cells left out.
    description: list[ColumnName] = Field(default_factory=list)
    counterparty_name: ColumnName | None = None
    counterparty_iban: ColumnName | None = None
    reference: ColumnName | None = None  # the bank's reference -> StatementEntry.bank_reference
    end_to_end_id: ColumnName | None = None
    balance_after: ColumnName | None = None
    account: ColumnName | None = None

    @field_validator("description", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_amount_source(self) -> CsvColumns:
        if (self.debit is None) != (self.credit is None):
            raise ValueError("give both `debit` and `credit` columns, or neither")
        if self.debit is not None and (self.amount is not None or self.direction is not None):
            raise ValueError("give `amount` (optionally with `direction`) or `debit` + `credit`, not both")
        if self.debit is None and self.amount is None:
            raise ValueError("no amount: give `amount`, `amount` + `direction`, or `debit` + `credit`")
        return self

    def names(self) -> list[ColumnName]:
        """Every header column the mapping reads, in declaration order, once each."""
        names: list[str] = []
        for field_name in type(self).model_fields:
            value = getattr(self, field_name)
            if isinstance(value, DirectionColumn):
                names.append(value.column)
            elif isinstance(value, list):
                names.extend(value)
            elif value is not None:
                names.append(value)
        return list(dict.fromkeys(names))


class PreambleCell(_Strict):
    """A cell of the preamble (0-based line among the `skip_rows` lines, 0-based column)."""

    line: int = Field(ge=0)
    column: int = Field(ge=0)


class CsvMapping(_Strict):
    """One CSV layout."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,40}$")
    encoding: str = "utf-8"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    skip_rows: int = Field(default=0, ge=0)  # preamble lines before the header
    date_format: str = "%Y-%m-%d"  # strptime
    decimal_separator: Literal[".", ","] = "."
    thousands_separator: str | None = Field(default=None, min_length=1, max_length=1)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")  # when no column says it
    account_id: str | None = Field(default=None, min_length=1)
    account_from_filename: str | None = None
    account_from_preamble: PreambleCell | None = None
    columns: CsvColumns
    # Columns that must be in the header for `sniff` to claim a file; default: every mapped column.
    header_match: list[ColumnName] = Field(default_factory=list)
    # Where the file was read from (set by the loader; for messages only).
    source_file: Path | None = Field(default=None, exclude=True)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, encoding: str) -> str:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {encoding!r} (e.g. utf-8, utf-8-sig, cp1252)") from None
        return encoding

    @field_validator("date_format")
    @classmethod
    def _strptime_format(cls, date_format: str) -> str:
        if "%" not in date_format:
            raise ValueError(f"{date_format!r} is not a strptime format (e.g. %d/%m/%Y)")
        return date_format

    @field_validator("account_from_filename")
    @classmethod
    def _filename_regex(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        if compiled.groups == 0:
            raise ValueError("needs a group capturing the account (the first, or one named `account`)")
        return pattern

    @model_validator(mode="after")
    def _consistent(self) -> CsvMapping:
        if self.thousands_separator == self.decimal_separator:
            raise ValueError("thousands_separator and decimal_separator must differ")
        if self.delimiter == self.quotechar:
            raise ValueError("delimiter and quotechar must differ")
        if (self.currency is None) == (self.columns.currency is None):
            raise ValueError("give exactly one of `currency` (a constant) or `columns.currency`")
        account_sources = [
            self.columns.account is not None,
            self.account_id is not None,
            self.account_from_filename is not None,
            self.account_from_preamble is not None,
        ]
        if sum(account_sources) != 1:
            raise ValueError(
                "give exactly one of `columns.account`, `account_id`, `account_from_filename` "
                "or `account_from_preamble`"
            )
        if self.account_from_preamble is not None and self.account_from_preamble.line >= self.skip_rows:
            raise ValueError(
                f"account_from_preamble.line {self.account_from_preamble.line} is not one of the "
                f"{self.skip_rows} preamble line(s) (skip_rows)"
            )
        return self

    @property
    def required_header(self) -> list[ColumnName]:
        """The columns sniff looks for: `header_match`, or every mapped column when it is empty."""
        return self.header_match or self.columns.names()

    def account_from(self, filename: str) -> str | None:
        """The account id the file name carries, for `account_from_filename` layouts."""
        if self.account_from_filename is None:
            return None
        match = re.search(self.account_from_filename, filename)
        if match is None:
            return None
        group = match.group("account") if "account" in match.re.groupindex else match.group(1)
        return group or None


def load_csv_mapping(path: Path) -> CsvMapping:
    """Read and validate one mapping file; errors name the file and each bad field."""
    mapping = load_yaml_model(path, CsvMapping, CsvMappingError)
    return mapping.model_copy(update={"source_file": path})


def load_csv_mappings(directories: Sequence[Path] = ()) -> list[CsvMapping]:
    """Every `*.yaml`/`*.yml` of `connectors/csv/` and of `directories`, by name; a name may appear once."""
    mappings: dict[str, CsvMapping] = {}
    seen: set[Path] = set()
    for directory in [DEFAULT_CSV_CONNECTORS_DIR, *directories]:
        if directory.resolve() in seen:
            continue
        seen.add(directory.resolve())
        if not directory.is_dir():
            raise CsvMappingError(f"{directory}: CSV mapping directory does not exist")
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            mapping = load_csv_mapping(path)
            if mapping.name in mappings:
                raise CsvMappingError(
                    f"{path}: mapping name {mapping.name!r} is already defined in "
                    f"{mappings[mapping.name].source_file}"
                )
            mappings[mapping.name] = mapping
    return [mappings[name] for name in sorted(mappings)]
