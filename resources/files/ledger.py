"""The file ledger (`ops.file_ledger`): every statement file bankflow has seen, and what became of it.

A file lands exactly once. Its identity is its content (sha256), not its name: the same bytes
dropped again, renamed, or listed by a second connection are recorded as a `duplicate` of the
sighting that landed them, and land nothing. A file whose name stays but whose bytes change is a
new version of that path and lands as such. A partial unique index on sha256 makes the rule hold
even when two runs race on the same file: the second one's registration fails, not its load.

Statuses: `landed` (downloaded, kept in the local store, not parsed yet: a run that dies here is
picked up again), `parsed` (its entries are in raw), `quarantined` (it could not be parsed: the
reason and the kept original say why), `duplicate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

LedgerStatus = Literal["landed", "parsed", "quarantined", "duplicate"]

FILE_LEDGER_DDL = """
create table if not exists ops.file_ledger (
    ledger_id bigint generated always as identity primary key,
    connection text not null,
    path text not null,
    size bigint not null,
    mtime timestamptz,
    sha256 text not null,
    -- 1 for the first content seen under this connection and path, 2 for the next, ...
    version integer not null,
    status text not null check (status in ('landed', 'parsed', 'quarantined', 'duplicate')),
    duplicate_of bigint references ops.file_ledger (ledger_id),
    format text,
    statements integer,
    entries integer,
    accounts text[],
    period_start date,
    period_end date,
    -- reconciled | mismatch | no_balances: the worst of the file's statements
    balance_status text,
    balance_checks jsonb,
    reason text,
    stored_path text,
    archived_to text,
    -- A later version of the same connection and path replaced this one's rows in raw.
    superseded_by bigint references ops.file_ledger (ledger_id),
    partition_key text,
    run_id text,
    registered_at timestamptz not null default now(),
    parsed_at timestamptz,
    unique (connection, path, sha256)
);
create unique index if not exists file_ledger_one_landing_per_content
    on ops.file_ledger (sha256) where status <> 'duplicate';
"""


@dataclass(frozen=True)
class FileSighting:
    """A file as fetched: where it was, and its content's digest."""

    connection: str
    path: str
    size: int
    mtime: datetime | None
    sha256: str


@dataclass(frozen=True)
class LedgerEntry:
    ledger_id: int
    connection: str
    path: str
    sha256: str
    version: int
    status: LedgerStatus
    duplicate_of: int | None
    stored_path: str | None


@dataclass(frozen=True)
class ParseOutcome:
    """What parsing a landed file found, recorded on its ledger row."""

    format: str
    statements: int
    entries: int
    accounts: list[str]
    period_start: date | None
    period_end: date | None
    balance_status: str
    balance_checks: list[dict[str, Any]]


_COLUMNS = "ledger_id, connection, path, sha256, version, status, duplicate_of, stored_path"


def register(
    conn: psycopg.Connection,
    sighting: FileSighting,
    *,
    stored_path: str,
    partition_key: str,
    run_id: str,
) -> tuple[LedgerEntry, bool]:
    """Record a fetched file; returns its ledger row and whether this sighting is the one to land.

    Not to land: the same content already landed (from any path or connection), which records a
    `duplicate` row the first time this path shows it; or this very sighting was registered
    before. A sighting registered but never parsed (`landed`, a run that died) is to land again.
    Runs in its own transaction, so the registration is durable before the slow parse begins.
    """
    with conn.transaction():
        # Serialise registrations of one content: the check-then-insert below must not interleave.
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (sighting.sha256,))
        landed = _fetch(conn, "sha256 = %s and status <> 'duplicate'", (sighting.sha256,))
        if landed is not None:
            if landed.status == "landed":
                return landed, True
            same_place = (landed.connection, landed.path) == (sighting.connection, sighting.path)
            if same_place:
                return landed, False
            seen = _fetch(
                conn,
                "connection = %s and path = %s and sha256 = %s",
                (sighting.connection, sighting.path, sighting.sha256),
            )
            if seen is not None:
                return seen, False
            return _insert(conn, sighting, "duplicate", landed.ledger_id, None, partition_key, run_id), False
        return _insert(conn, sighting, "landed", None, stored_path, partition_key, run_id), True


def record_parsed(conn: psycopg.Connection, ledger_id: int, outcome: ParseOutcome) -> None:
    """Mark a landed file parsed, with what it held. Runs in the caller's transaction (the load's)."""
    conn.execute(
        """
        update ops.file_ledger set
            status = 'parsed', reason = null, format = %s, statements = %s, entries = %s, accounts = %s,
            period_start = %s, period_end = %s, balance_status = %s, balance_checks = %s, parsed_at = now()
        where ledger_id = %s
        """,
        (
            outcome.format,
            outcome.statements,
            outcome.entries,
            outcome.accounts,
            outcome.period_start,
            outcome.period_end,
            outcome.balance_status,
            Jsonb(outcome.balance_checks, dumps=_dumps),
            ledger_id,
        ),
    )


def record_quarantined(
    conn: psycopg.Connection, ledger_id: int, reason: str, file_format: str | None
) -> None:
    """Mark a landed file quarantined. Runs in the caller's transaction (with the quarantine row)."""
    conn.execute(
        "update ops.file_ledger set status = 'quarantined', reason = %s, format = %s, parsed_at = now()"
        " where ledger_id = %s",
        (reason, file_format, ledger_id),
    )


def earlier_versions(conn: psycopg.Connection, entry: LedgerEntry) -> list[tuple[int, str]]:
    """(ledger_id, sha256) of the versions of the same connection and path landed before `entry`:
    a corrected file replaces what its earlier version put in raw."""
    return conn.execute(
        "select ledger_id, sha256 from ops.file_ledger where connection = %s and path = %s"
        " and ledger_id < %s and status = 'parsed'",
        (entry.connection, entry.path, entry.ledger_id),
    ).fetchall()


def record_superseded(conn: psycopg.Connection, ledger_ids: list[int], by: int) -> None:
    conn.execute("update ops.file_ledger set superseded_by = %s where ledger_id = any(%s)", (by, ledger_ids))


def record_archived(conn: psycopg.Connection, ledger_id: int, archived_to: str) -> None:
    conn.execute("update ops.file_ledger set archived_to = %s where ledger_id = %s", (archived_to, ledger_id))


def seen_sightings(conn: psycopg.Connection, connection: str) -> set[tuple[str, int, datetime | None]]:
    """(path, size, mtime) of every sighting of a connection that needs no new run: what the
    sensor skips. A `landed` sighting is not in it: its run died and the file is fetched again."""
    rows = conn.execute(
        "select path, size, mtime from ops.file_ledger where connection = %s and status <> 'landed'",
        (connection,),
    ).fetchall()
    return {(path, size, mtime) for path, size, mtime in rows}


def ledger_rows(conn: psycopg.Connection, connection: str | None = None) -> list[dict[str, Any]]:
    """The ledger as dicts, newest first (the CLI and tests read it)."""
    where, params = ("where connection = %s", (connection,)) if connection else ("", ())
    cur = conn.execute(f"select * from ops.file_ledger {where} order by ledger_id desc", params)  # noqa: S608
    names = [column.name for column in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _fetch(conn: psycopg.Connection, where: str, params: tuple[object, ...]) -> LedgerEntry | None:
    row = conn.execute(
        f"select {_COLUMNS} from ops.file_ledger where {where} order by ledger_id limit 1",  # noqa: S608
        params,
    ).fetchone()
    return LedgerEntry(*row) if row else None


def _insert(
    conn: psycopg.Connection,
    sighting: FileSighting,
    status: LedgerStatus,
    duplicate_of: int | None,
    stored_path: str | None,
    partition_key: str,
    run_id: str,
) -> LedgerEntry:
    # A new content under a known path is that path's next version.
    version = conn.execute(
        "select count(distinct sha256) + 1 from ops.file_ledger where connection = %s and path = %s",
        (sighting.connection, sighting.path),
    ).fetchone()[0]
    row = conn.execute(
        f"""
        insert into ops.file_ledger
            (connection, path, size, mtime, sha256, version, status, duplicate_of, stored_path,
             partition_key, run_id)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        returning {_COLUMNS}
        """,  # noqa: S608
        (
            sighting.connection,
            sighting.path,
            sighting.size,
            sighting.mtime,
            sighting.sha256,
            version,
            status,
            duplicate_of,
            stored_path,
            partition_key,
            run_id,
        ),
    ).fetchone()
    return LedgerEntry(*row)


def _dumps(value: Any) -> str:
    import simplejson

    return simplejson.dumps(value, use_decimal=True, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
