"""Balance gaps that heal themselves: each gap marts.recon_balance_gaps locates is recorded in
`ops.recon_refetch_requests` once, with the account's sources that can be asked again (the API
extracts; a statement file cannot be re-requested), and the balance-gap sensor requests exactly
the gap's daily partitions of those extracts. A requested gap that is gone from the mart on a
later run (the refetch brought the missed page or the late booking) is marked healed; one that
stays is left requested, for a person, and never requested twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

import psycopg

REFETCH_DDL = """
create table if not exists ops.recon_refetch_requests (
    balance_gap_key text primary key,
    account_key text not null,
    sources text not null,
    refetch_sources text not null,
    gap_first_day date not null,
    gap_last_day date not null,
    unexplained_amount numeric(18, 2) not null,
    currency text not null,
    status text not null check (status in ('requested', 'not_refetchable', 'healed')),
    requested_at timestamptz not null default now(),
    healed_at timestamptz
);
"""


@dataclass(frozen=True)
class Refetch:
    """One located gap and the sources to ask for its days again."""

    balance_gap_key: str
    account_key: str
    sources: tuple[str, ...]
    first_day: dt.date
    last_day: dt.date
    unexplained_amount: Decimal
    currency: str

    def days(self) -> list[dt.date]:
        return [
            self.first_day + dt.timedelta(days=n) for n in range((self.last_day - self.first_day).days + 1)
        ]


@dataclass(frozen=True)
class RefetchPlan:
    requested: list[Refetch]
    not_refetchable: list[Refetch]
    healed: list[str]  # balance_gap_keys


def plan_refetches(conn: psycopg.Connection, refetchable: Collection[str]) -> RefetchPlan:
    """Record the gaps of marts.recon_balance_gaps not seen before (requested when one of the
    account's sources is in `refetchable`) and mark healed the requested ones no longer there, in
    one transaction. Returns what to request now."""
    with conn.transaction():
        gaps = conn.execute(
            "select balance_gap_key, account_key, sources, gap_first_day, gap_last_day, unexplained_amount, currency"
            " from marts.recon_balance_gaps as gaps"
            " where not exists (select 1 from ops.recon_refetch_requests as seen"
            "     where seen.balance_gap_key = gaps.balance_gap_key)"
            " order by balance_gap_key"
        ).fetchall()
        requested, not_refetchable = [], []
        for key, account, sources, first, last, amount, currency in gaps:
            askable = tuple(s for s in sources.split(",") if s in refetchable)
            refetch = Refetch(key, account, askable, first, last, amount, currency)
            (requested if askable else not_refetchable).append(refetch)
            conn.execute(
                "insert into ops.recon_refetch_requests (balance_gap_key, account_key, sources,"
                " refetch_sources, gap_first_day, gap_last_day, unexplained_amount, currency, status)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    key,
                    account,
                    sources,
                    ",".join(askable),
                    first,
                    last,
                    amount,
                    currency,
                    "requested" if askable else "not_refetchable",
                ),
            )
        healed = [
            key
            for (key,) in conn.execute(
                "update ops.recon_refetch_requests as requests set status = 'healed', healed_at = now()"
                " where status = 'requested' and not exists (select 1 from marts.recon_balance_gaps as gaps"
                "     where gaps.balance_gap_key = requests.balance_gap_key)"
                " returning balance_gap_key"
            ).fetchall()
        ]
    return RefetchPlan(requested, not_refetchable, sorted(healed))
