"""Balance gaps that heal themselves: each gap marts.recon_balance_gaps locates is recorded in
`ops.recon_refetch_requests` once, with the account's sources that can be asked again (the API
extracts; a statement file cannot be re-requested). Every evaluation of the balance-gap sensor
requests each gap still open: one run per (gap, source) over the gap's days that fetches them
again and rebuilds the models for them, its run key the same on every tick, so Dagster launches
it once even when a tick's runs were never submitted. A gap gone from the mart on a later run is
healed (the refetch brought the missed page or the late booking); one replaced by a narrower gap
on the same days (a new report in between) is superseded; one that stays is left requested, for a
person.
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
    status text not null,
    requested_at timestamptz not null default now(),
    healed_at timestamptz
);
alter table ops.recon_refetch_requests drop constraint if exists recon_refetch_requests_status_check;
alter table ops.recon_refetch_requests add constraint recon_refetch_requests_status_check
    check (status in ('requested', 'not_refetchable', 'healed', 'superseded'));
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


@dataclass(frozen=True)
class RefetchPlan:
    open: list[Refetch]  # every gap still requested, new or not: request them all (run keys dedupe)
    new: list[Refetch]
    not_refetchable: list[Refetch]
    healed: list[str]  # balance_gap_keys
    superseded: list[str]


def plan_refetches(
    conn: psycopg.Connection, refetchable: Collection[str], first_day: dt.date, last_day: dt.date
) -> RefetchPlan:
    """In one transaction: record the gaps of marts.recon_balance_gaps not seen before (requested
    when one of the account's sources is in `refetchable` and some of its days are partitions,
    i.e. within [first_day, last_day]), close the requested ones no longer there, and return
    every gap still requested."""
    with conn.transaction():
        gaps = conn.execute(
            "select balance_gap_key, account_key, sources, gap_first_day, gap_last_day, unexplained_amount, currency"
            " from marts.recon_balance_gaps as gaps"
            " where not exists (select 1 from ops.recon_refetch_requests as seen"
            "     where seen.balance_gap_key = gaps.balance_gap_key)"
            " order by balance_gap_key"
        ).fetchall()
        new, not_refetchable = [], []
        for key, account, sources, first, last, amount, currency in gaps:
            askable = tuple(s for s in sources.split(",") if s in refetchable)
            first, last = max(first, first_day), min(last, last_day)
            refetch = Refetch(key, account, askable, first, last, amount, currency)
            requestable = bool(askable) and first <= last
            (new if requestable else not_refetchable).append(refetch)
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
                    "requested" if requestable else "not_refetchable",
                ),
            )
        closed = conn.execute(
            "update ops.recon_refetch_requests as requests"
            " set status = case when exists (select 1 from marts.recon_balance_gaps as gaps"
            "         where gaps.account_key = requests.account_key"
            "             and gaps.gap_first_day <= requests.gap_last_day"
            "             and gaps.gap_last_day >= requests.gap_first_day)"
            "     then 'superseded' else 'healed' end,"
            " healed_at = now()"
            " where status = 'requested' and not exists (select 1 from marts.recon_balance_gaps as gaps"
            "     where gaps.balance_gap_key = requests.balance_gap_key)"
            " returning balance_gap_key, status"
        ).fetchall()
        still_open = [
            Refetch(key, account, tuple(sources.split(",")), first, last, amount, currency)
            for key, account, sources, first, last, amount, currency in conn.execute(
                "select balance_gap_key, account_key, refetch_sources, gap_first_day, gap_last_day,"
                " unexplained_amount, currency from ops.recon_refetch_requests"
                " where status = 'requested' order by balance_gap_key"
            )
        ]
    return RefetchPlan(
        open=still_open,
        new=new,
        not_refetchable=not_refetchable,
        healed=sorted(key for key, status in closed if status == "healed"),
        superseded=sorted(key for key, status in closed if status == "superseded"),
    )
