"""Who owns which money: owners of connections and of accounts, kept in `ops`.

An owner is a person or team of one bankflow deployment (`alice`, `finance`). A connection's owner
owns every account the connection reaches; an account's own assignment wins over its connection's
(an SFTP drop or a bank with no connection row, or one of a couple's accounts under a shared
login). dbt's `int_account_owners` resolves each real account's owner from both, and Postgres
row-level security on the marts shows an owner's BI role only that owner's rows
(resources/warehouse/owner_access.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

# The owner names a Postgres role (bankflow_owner_<owner>): lower case, no quoting needed, and
# short enough for the 63-byte role names with the prefix.
OWNER_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")

OWNERS_DDL = """
alter table ops.connections add column if not exists owner text;
create table if not exists ops.account_owners (
    source text not null,
    account_ref text not null,
    owner text not null,
    assigned_at timestamptz not null default now(),
    primary key (source, account_ref)
);
"""


class OwnerError(ValueError):
    """An owner name that cannot be one, or a connection that does not exist."""


@dataclass(frozen=True)
class Assignment:
    kind: str  # connection | account
    subject: str  # connection name, or source:account_ref
    owner: str


def valid_owner(owner: str) -> str:
    if not OWNER_PATTERN.fullmatch(owner):
        raise OwnerError(
            f"owner {owner!r} is not a valid name: lower-case letters, digits and _, "
            "starting with a letter, at most 40 characters"
        )
    return owner


def set_connection_owner(database_url: str, connection_name: str, owner: str | None) -> None:
    """Give a connection (and so its accounts) to `owner`; None takes the owner away."""
    if owner is not None:
        valid_owner(owner)
    with psycopg.connect(database_url) as conn:
        updated = conn.execute(
            "update ops.connections set owner = %s where connection_name = %s", (owner, connection_name)
        ).rowcount
    if not updated:
        raise OwnerError(f"no connection named {connection_name!r}: `bankflow connections` lists them")


def assign_account(database_url: str, source: str, account_ref: str, owner: str | None) -> None:
    """Give one account of a source to `owner` (over its connection's); None removes the assignment."""
    with psycopg.connect(database_url) as conn:
        if owner is None:
            conn.execute(
                "delete from ops.account_owners where source = %s and account_ref = %s", (source, account_ref)
            )
            return
        conn.execute(
            """
            insert into ops.account_owners (source, account_ref, owner) values (%s, %s, %s)
            on conflict (source, account_ref) do update set owner = excluded.owner, assigned_at = now()
            """,
            (source, account_ref, valid_owner(owner)),
        )


def assignments(database_url: str) -> list[Assignment]:
    """Every owner assignment, connections first."""
    with psycopg.connect(database_url) as conn:
        connections = conn.execute(
            "select connection_name, owner from ops.connections where owner is not null order by 1"
        ).fetchall()
        accounts = conn.execute(
            "select source, account_ref, owner from ops.account_owners order by 1, 2"
        ).fetchall()
    return [Assignment("connection", name, owner) for name, owner in connections] + [
        Assignment("account", f"{source}:{ref}", owner) for source, ref, owner in accounts
    ]
