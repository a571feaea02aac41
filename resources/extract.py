"""What every connector hands to the loader: per raw table, the records and the scope they replace.

Connectors differ in auth, paging and record shape; what they produce is the same, so one
landing step (and one set of tests for it) serves them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from resources.warehouse.loader import RawRecord, ReplaceScope
from resources.warehouse.quarantine import QuarantineItem

# (date, description, amount, currency) rows shown in the asset's metadata preview.
PreviewRow = tuple[str, str, str, str]


@dataclass(frozen=True)
class TableLoad:
    """Records for one raw table and the scope of existing rows they replace."""

    table: str
    records: list[RawRecord]
    scope: ReplaceScope
    preview: list[PreviewRow] = field(default_factory=list)


@dataclass
class Extract:
    """One run's fetch from one connection: every table it replaces, and what it rejected."""

    first_day: date
    last_day: date
    account_refs: list[str] = field(default_factory=list)
    loads: list[TableLoad] = field(default_factory=list)
    quarantined: list[QuarantineItem] = field(default_factory=list)

    def load(self, table: str) -> TableLoad:
        return next(load for load in self.loads if load.table == table)


def window_days(first_day: date, last_day: date) -> list[str]:
    """Every day from first_day to last_day inclusive, as partition keys."""
    return [(first_day + timedelta(days=n)).isoformat() for n in range((last_day - first_day).days + 1)]


_CALENDAR_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def impossible_dates(record: Mapping[str, Any], fields: Sequence[str]) -> str | None:
    """Why the record cannot be staged, if one of `fields` names a day no calendar has (Feb 30).

    Staging turns malformed date text into null, but a well-formed impossible day fails the
    cast and with it the whole view: such a row is quarantined at extract instead.
    """
    for name in fields:
        value = record.get(name)
        match = _CALENDAR_DAY.match(value) if isinstance(value, str) else None
        if match is None:
            continue
        try:
            date(*(int(part) for part in match.groups()))
        except ValueError:
            return f"{name} {value!r} is not a calendar date"
    return None
