"""What every connector hands to the loader: per raw table, the records and the scope they replace.

Connectors differ in auth, paging and record shape; what they produce is the same, so one
landing step (and one set of tests for it) serves them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

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
