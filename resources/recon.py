"""A person's word on reconciliation, kept in `ops` so that every later run respects it:

- `ops.recon_verdicts`: a match someone undid (`bankflow recon unmatch <match_key>`). Each of its
  (bank line, counterpart) pairs is rejected: no rule proposes that pair again.
- `ops.recon_resolutions`: an exception someone accepted or resolved (`bankflow recon resolve
  <exception_key> --note ...`). The exception stays in recon_exceptions with the verdict beside it,
  because its key is stable across runs and full refreshes.
"""

from __future__ import annotations

from typing import Literal

import psycopg

RECON_DDL = """
create table if not exists ops.recon_verdicts (
    transaction_key text not null,
    counterpart_key text not null,
    verdict text not null check (verdict in ('rejected')),
    match_key text,
    note text,
    created_at timestamptz not null default now(),
    primary key (transaction_key, counterpart_key)
);
create table if not exists ops.recon_resolutions (
    exception_key text primary key,
    status text not null check (status in ('accepted', 'resolved')),
    note text not null,
    created_at timestamptz not null default now()
);
"""

Resolution = Literal["accepted", "resolved"]


class UnknownReconItem(LookupError):
    """No match or exception has that key in the marts."""


def unmatch(database_url: str, match_key: str, note: str | None = None) -> int:
    """Reject every pair of the match `match_key` (from marts.recon_matches); the next dbt run
    leaves those pairs unmatched for good. Returns the pairs rejected."""
    with psycopg.connect(database_url) as conn:
        if conn.execute("select to_regclass('marts.recon_matches')").fetchone()[0] is None:
            raise UnknownReconItem("marts.recon_matches does not exist yet: run the pipeline first")
        pairs = conn.execute(
            "select transaction_key, counterpart_key from marts.recon_matches where match_key = %s",
            (match_key,),
        ).fetchall()
        if not pairs:
            raise UnknownReconItem(f"no match {match_key!r} in marts.recon_matches")
        for transaction_key, counterpart_key in pairs:
            conn.execute(
                "insert into ops.recon_verdicts (transaction_key, counterpart_key, verdict, match_key, note)"
                " values (%s, %s, 'rejected', %s, %s) on conflict (transaction_key, counterpart_key)"
                " do update set note = excluded.note, match_key = excluded.match_key, created_at = now()",
                (transaction_key, counterpart_key, match_key, note),
            )
        return len(pairs)


def resolve(database_url: str, exception_key: str, note: str, status: Resolution = "resolved") -> None:
    """Record a person's verdict on one exception of marts.recon_exceptions."""
    if not note.strip():
        raise ValueError("a resolution needs a note saying why")
    with psycopg.connect(database_url) as conn:
        if conn.execute("select to_regclass('marts.recon_exceptions')").fetchone()[0] is None:
            raise UnknownReconItem("marts.recon_exceptions does not exist yet: run the pipeline first")
        found = conn.execute(
            "select 1 from marts.recon_exceptions where exception_key = %s", (exception_key,)
        ).fetchone()
        if found is None:
            raise UnknownReconItem(f"no exception {exception_key!r} in marts.recon_exceptions")
        conn.execute(
            "insert into ops.recon_resolutions (exception_key, status, note) values (%s, %s, %s)"
            " on conflict (exception_key) do update"
            " set status = excluded.status, note = excluded.note, created_at = now()",
            (exception_key, status, note),
        )
