"""A mart's rows as a file (`bankflow export`): CSV, Excel or Parquet, amounts exact in each.

CSV holds the decimal text; Excel cells get the Decimal (the file stores its exact text); Parquet
columns of money are decimal128, never float64.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from resources.marts_export import Page

FORMATS = ("csv", "xlsx", "parquet")


def write_export(page: Page, path: Path, file_format: str) -> None:
    if file_format not in FORMATS:
        raise ValueError(f"format is one of {', '.join(FORMATS)}, not {file_format!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    {"csv": _csv, "xlsx": _xlsx, "parquet": _parquet}[file_format](page, path)


def _plain(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _csv(page: Page, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        write_csv(page, handle)


def write_csv(page: Page, handle: TextIO) -> None:
    """The page as CSV (the file export and the HTTP export): decimals and ISO dates as text."""
    writer = csv.writer(handle)
    writer.writerow(page.mart.columns)
    for row in page.rows:
        writer.writerow(
            ["" if v is None else v.isoformat() if hasattr(v, "isoformat") else _plain(v) for v in row]
        )


def _xlsx(page: Page, path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(page.mart.name[:31])  # Excel's limit on a sheet name
    sheet.append(list(page.mart.columns))
    for row in page.rows:
        # Excel has no time zones: timestamps go in as UTC wall time.
        sheet.append(
            [_plain(v.replace(tzinfo=None)) if getattr(v, "tzinfo", None) else _plain(v) for v in row]
        )
    book.save(path)


def _parquet(page: Page, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: [_plain(row[i]) for row in page.rows] for i, name in enumerate(page.mart.columns)}
    arrays = {}
    for name, values in columns.items():
        decimals = [v for v in values if isinstance(v, Decimal)]
        if decimals:
            # One scale for the column (the largest), so every amount keeps its digits.
            scale = max(-v.as_tuple().exponent for v in decimals)
            arrays[name] = pa.array(values, type=pa.decimal128(38, max(scale, 0)))
        else:
            arrays[name] = pa.array(values)
    pq.write_table(pa.table(arrays), path)
