"""Daily partitions on booking date, shared by every API source and the incremental marts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import dagster as dg

# The first day any source is backfilled from; older history is a deliberate backfill choice.
PARTITIONS_START = "2025-01-01"
# Each run also re-fetches and rebuilds this many days before its window, for late bookings.
LOOKBACK_DAYS = 3

# end_offset=1: today is a partition too, refreshed during the day and finalised after it.
daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1)


@dataclass(frozen=True)
class BookingWindow:
    """Days a run covers: [first_day, last_day] inclusive, lookback included."""

    first_day: date
    last_day: date
    partitions_first_day: date

    @property
    def dbt_vars(self) -> dict[str, str | int]:
        return {
            "min_date": self.partitions_first_day.isoformat(),
            "max_date": (self.last_day + timedelta(days=1)).isoformat(),
            "lookback_days": LOOKBACK_DAYS,
        }

    @property
    def dbt_environment(self) -> dict[str, str]:
        """The same window as environment variables (dbt macro window_var): unlike --vars, a new
        value does not make dbt parse the whole project again."""
        return {f"BANKFLOW_WINDOW_{name.upper()}": str(value) for name, value in self.dbt_vars.items()}


def booking_window(start: datetime, end: datetime) -> BookingWindow:
    """From a partition time window [start, end) to the days fetched and rebuilt."""
    first = start.date()
    return BookingWindow(
        first_day=first - timedelta(days=LOOKBACK_DAYS),
        last_day=end.date() - timedelta(days=1),
        partitions_first_day=first,
    )
