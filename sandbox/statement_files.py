"""The world's daily statement files, as banks drop them on SFTP: one file per account and day.

| account         | bank     | format                        | folder       | file name                           |
|-----------------|----------|-------------------------------|--------------|-------------------------------------|
| northwind-gbp   | Lloyds   | camt.053.001.08 XML           | northwind/   | NORTHWIND_GBP_20261204.camt053.xml  |
| northwind-eur   | Barclays | MT940 in a SWIFT envelope     | northwind/   | NORTHWIND_EUR_20261204.sta          |
| kaveri-icici    | ICICI    | CSV (issue 6 layout)          | kaveri/      | KAVERI_ICICI_20261204.csv           |
| kaveri-sbi      | SBI      | JSON, seed standard format    | kaveri/      | KAVERI_SBI_20261204.json            |

Each file holds the account's rows booked that day: opening = the previous day's closing
(``World.balance`` is a day's closing), opening + entries = closing exactly. Days without rows still
get a file (equal balances; ``[]`` for JSON). Content depends only on the world and the day: the
creation moment written into a file is the next day 06:00 UTC, which is also the file's mtime.
Written from shared/reference/bank-contracts.md §5 and §11, never from the client's parsers.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sandbox.model import Account
from sandbox.rest_banks_json import served_transactions
from sandbox.statement_camt import render_camt053
from sandbox.statement_csv import render_icici_csv
from sandbox.statement_json import render_seed_json
from sandbox.statement_mt940 import render_mt940
from sandbox.world import World

STATEMENT_FORMATS: dict[str, str] = {
    "northwind-gbp": "camt053",
    "northwind-eur": "mt940",
    "kaveri-icici": "csv",
    "kaveri-sbi": "json",
}
FILE_SUFFIXES: dict[str, str] = {"camt053": "camt053.xml", "mt940": "sta", "csv": "csv", "json": "json"}
# Banks build the day's files overnight; this is when each one appears on the server.
DELIVERY_TIME = dt.time(6, 0, tzinfo=dt.UTC)
_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class StatementAnswer:
    """What one day's statement file of one account must say (for tests)."""

    entries: int
    total: Decimal  # signed sum of the entries
    opening: Decimal
    closing: Decimal


def delivered_at(day: dt.date) -> dt.datetime:
    """When the statement of ``day`` is created and dropped: the next day at 06:00 UTC."""
    return dt.datetime.combine(day + _ONE_DAY, DELIVERY_TIME)


def statement_name(account: Account, day: dt.date) -> str:
    """The file name of an account's statement for a day, e.g. ``KAVERI_SBI_20261204.json``."""
    suffix = FILE_SUFFIXES[STATEMENT_FORMATS[account.key]]
    return f"{account.key.upper().replace('-', '_')}_{day:%Y%m%d}.{suffix}"


def statement_folder(account: Account) -> str:
    """The drop folder of an account's files: its owner's name, e.g. ``northwind``."""
    return account.key.split("-", 1)[0]


def render_statement(world: World, account: Account, day: dt.date) -> tuple[str, bytes]:
    """(file name, content) of ``account``'s statement for ``day`` in the account's bank format."""
    fmt = STATEMENT_FORMATS[account.key]
    opening = world.balance(account.account_id, day - _ONE_DAY)
    entries = world.booked(account.account_id, day, day + _ONE_DAY)
    created = delivered_at(day)
    if fmt == "camt053":
        content = render_camt053(account, day, opening, entries, created)
    elif fmt == "mt940":
        content = render_mt940(account, day, opening, entries, created)
    elif fmt == "csv":
        content = render_icici_csv(account, day, opening, entries)
    else:
        rows = [row for row in served_transactions(world, account, day, day) if row.status == "SUCCESS"]
        content = render_seed_json(account, rows)
    return statement_name(account, day), content


def statement_accounts(world: World) -> list[Account]:
    """The world's accounts that get statement files, in STATEMENT_FORMATS order."""
    by_key = {account.key: account for account in world.accounts}
    return [by_key[key] for key in STATEMENT_FORMATS]


def write_drop(world: World, root: Path, first_day: dt.date, last_day: dt.date) -> list[Path]:
    """Write every statement account's file for every day in [first_day, last_day] under
    ``root/<folder>/``, each with mtime = its delivery moment. A file that already holds the same
    bytes is left alone; returns the paths written (new or changed)."""
    written: list[Path] = []
    for account in statement_accounts(world):
        folder = root / statement_folder(account)
        folder.mkdir(parents=True, exist_ok=True)
        day = first_day
        while day <= last_day:
            name, content = render_statement(world, account, day)
            path = folder / name
            if not (path.is_file() and path.read_bytes() == content):
                _write_atomically(path, content, delivered_at(day))
                written.append(path)
            day += _ONE_DAY
    return written


def _write_atomically(path: Path, content: bytes, modified: dt.datetime) -> None:
    # A reader listing the folder (the SFTP sensor) must never see half a file under the final name.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content)
    stamp = modified.timestamp()
    os.utime(partial, (stamp, stamp))
    os.replace(partial, path)


def statement_answer_key(
    world: World, first_day: dt.date, last_day: dt.date
) -> dict[tuple[str, dt.date], StatementAnswer]:
    """Per (account key, day) in [first_day, last_day]: entry count, signed sum, opening and closing."""
    answers: dict[tuple[str, dt.date], StatementAnswer] = {}
    for account in statement_accounts(world):
        day = first_day
        while day <= last_day:
            entries = world.booked(account.account_id, day, day + _ONE_DAY)
            answers[(account.key, day)] = StatementAnswer(
                entries=len(entries),
                total=sum((txn.amount for txn in entries), Decimal(0)),
                opening=world.balance(account.account_id, day - _ONE_DAY),
                closing=world.balance(account.account_id, day),
            )
            day += _ONE_DAY
    return answers
