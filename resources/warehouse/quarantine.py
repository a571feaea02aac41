"""Quarantine: records a source sent that cannot be landed, kept with the reason.

Nothing is dropped silently: a rejected record is stored here with its original text, and the
asset that rejected it reports the count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

QUARANTINE_DDL = """
create table if not exists ops.quarantine (
    quarantine_id bigint generated always as identity primary key,
    source text not null,
    entity text not null,
    account_ref text,
    reason text not null,
    original text not null,
    run_id text not null,
    file_id text,
    quarantined_at timestamptz not null default now()
);
"""


@dataclass(frozen=True)
class QuarantineItem:
    entity: str
    reason: str
    original: str
    account_ref: str | None = None


def quarantine(
    conn: psycopg.Connection,
    *,
    source: str,
    items: Iterable[QuarantineItem],
    run_id: str,
    file_id: str | None = None,
) -> int:
    """Store rejected records; returns how many. Runs in the caller's transaction."""
    rows = [(source, i.entity, i.account_ref, i.reason, i.original, run_id, file_id) for i in items]
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "insert into ops.quarantine (source, entity, account_ref, reason, original, run_id, file_id)"
                " values (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
    return len(rows)
