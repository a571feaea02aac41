"""Call budgets: providers that allow only a few calls per account per day (GoCardless: 4 per
scope, Berlin Group: frequencyPerDay) get them planned, not burnt.

Successful calls are counted in `ops.call_budget` per (connection, account, scope, UTC day): the
bank counts per consent, and two connections to one provider are two consents. A
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
    connection_name text not null,
    account_ref text not null,
    scope text not null,
    day date not null,
    calls_made integer not null default 0,
    last_success_at timestamptz,
    primary key (connection_name, account_ref, scope, day)
);
do $$ begin
    -- ledgers written before budgets were keyed by connection (one consent, one quota)
    if exists (select from information_schema.columns
               where table_schema = 'ops' and table_name = 'call_budget' and column_name = 'provider') then
        alter table ops.call_budget rename column provider to connection_name;
    end if;
end $$;
"""


class CallBudget:
    def __init__(self, database_url: str, connection_name: str, calls_per_day: int) -> None:
        self._url = database_url
        self.connection_name = connection_name
        self.calls_per_day = calls_per_day

    def remaining(self, account_ref: str, scope: str, day: date | None = None) -> int:
        with psycopg.connect(self._url) as conn:
            row = conn.execute(
                "select calls_made from ops.call_budget"
                " where connection_name = %s and account_ref = %s and scope = %s and day = %s",
                (self.connection_name, account_ref, scope, day or _today()),
            ).fetchone()
        return max(0, self.calls_per_day - (row[0] if row else 0))

    def spend(self, account_ref: str, scope: str, day: date | None = None) -> None:
        """Record one successful call."""
        with psycopg.connect(self._url) as conn:
            conn.execute(
                """
                insert into ops.call_budget (connection_name, account_ref, scope, day, calls_made, last_success_at)
                values (%s, %s, %s, %s, 1, now())
                on conflict (connection_name, account_ref, scope, day) do update
                set calls_made = ops.call_budget.calls_made + 1, last_success_at = now()
                """,
                (self.connection_name, account_ref, scope, day or _today()),
            )

    def exhaust(self, account_ref: str, scope: str, day: date | None = None) -> None:
        """Mark the day's budget spent: the bank refused a call as over its limit, so it counted
        calls we did not make (another app, a lost response). No more go out today."""
        with psycopg.connect(self._url) as conn:
            conn.execute(
                """
                insert into ops.call_budget (connection_name, account_ref, scope, day, calls_made)
                values (%s, %s, %s, %s, %s)
                on conflict (connection_name, account_ref, scope, day) do update
                set calls_made = greatest(ops.call_budget.calls_made, excluded.calls_made)
                """,
                (self.connection_name, account_ref, scope, day or _today(), self.calls_per_day),
            )

    def forget(self, day: date | None = None) -> None:
        """Drop the day's ledger, for a bank whose own counters started again (a new sandbox)."""
        with psycopg.connect(self._url) as conn:
            conn.execute(
                "delete from ops.call_budget where connection_name = %s and day = %s",
                (self.connection_name, day or _today()),
            )

    def stalest_first(self, account_refs: Sequence[str], scope: str) -> list[str]:
        """Accounts ordered by their last successful call in `scope`, never-fetched first."""
        with psycopg.connect(self._url) as conn:
            rows = conn.execute(
                "select account_ref, max(last_success_at) from ops.call_budget"
                " where connection_name = %s and scope = %s and account_ref = any(%s) group by account_ref",
                (self.connection_name, scope, list(account_refs)),
            ).fetchall()
        last = {ref: at for ref, at in rows}
        never = datetime.min.replace(tzinfo=UTC)
        return sorted(account_refs, key=lambda ref: (last.get(ref) or never, ref))


def _today() -> date:
    return datetime.now(UTC).date()
