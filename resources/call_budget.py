"""Call budgets: providers that allow only a few calls per account per day (GoCardless: 4 per
scope, Berlin Group: frequencyPerDay) get them planned, not burnt.

Successful calls are counted in `ops.call_budget` per (provider, account, scope, UTC day). A
connector asks `remaining()` before a call, records it with `spend()` only when the call
succeeded (a failed call the bank did not count is not ours to count either), and orders its
accounts stalest first with `stalest_first()` so a short budget goes where data is oldest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import psycopg

CALL_BUDGET_DDL = """
create table if not exists ops.call_budget (
    provider text not null,
    account_ref text not null,
    scope text not null,
    day date not null,
    calls_made integer not null default 0,
    last_success_at timestamptz,
    primary key (provider, account_ref, scope, day)
);
"""


class CallBudget:
    def __init__(self, database_url: str, provider: str, calls_per_day: int) -> None:
        self._url = database_url
        self.provider = provider
        self.calls_per_day = calls_per_day

    def remaining(self, account_ref: str, scope: str, day: date | None = None) -> int:
        with psycopg.connect(self._url) as conn:
            row = conn.execute(
                "select calls_made from ops.call_budget"
                " where provider = %s and account_ref = %s and scope = %s and day = %s",
                (self.provider, account_ref, scope, day or _today()),
            ).fetchone()
        return max(0, self.calls_per_day - (row[0] if row else 0))

    def spend(self, account_ref: str, scope: str, day: date | None = None) -> None:
        """Record one successful call."""
        with psycopg.connect(self._url) as conn:
            conn.execute(
                """
                insert into ops.call_budget (provider, account_ref, scope, day, calls_made, last_success_at)
                values (%s, %s, %s, %s, 1, now())
                on conflict (provider, account_ref, scope, day) do update
                set calls_made = ops.call_budget.calls_made + 1, last_success_at = now()
                """,
                (self.provider, account_ref, scope, day or _today()),
            )

    def forget(self, day: date | None = None) -> None:
        """Drop the day's ledger, for a bank whose own counters started again (a new sandbox)."""
        with psycopg.connect(self._url) as conn:
            conn.execute(
                "delete from ops.call_budget where provider = %s and day = %s",
                (self.provider, day or _today()),
            )

    def stalest_first(self, account_refs: Sequence[str], scope: str) -> list[str]:
        """Accounts ordered by their last successful call in `scope`, never-fetched first."""
        with psycopg.connect(self._url) as conn:
            rows = conn.execute(
                "select account_ref, max(last_success_at) from ops.call_budget"
                " where provider = %s and scope = %s and account_ref = any(%s) group by account_ref",
                (self.provider, scope, list(account_refs)),
            ).fetchall()
        last = {ref: at for ref, at in rows}
        never = datetime.min.replace(tzinfo=UTC)
        return sorted(account_refs, key=lambda ref: (last.get(ref) or never, ref))


def _today() -> date:
    return datetime.now(UTC).date()
