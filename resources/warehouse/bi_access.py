"""The read-only role BI tools log in as: the marts, and nothing else.

`raw` holds what the banks sent, `ops` the encrypted tokens and consents, `staging` and
`intermediate` rows before their checks: a dashboard never needs them, so the role cannot see
them. dbt drops and re-creates the marts on every build, so the grant on the tables there now is
not enough: default privileges give the role every table the warehouse user creates in `marts`
from here on.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

DEFAULT_BI_ROLE = "bankflow_bi"
BI_SCHEMA = "marts"
# Every schema bankflow writes besides the marts: the role is refused each explicitly.
PRIVATE_SCHEMAS = ("raw", "ops", "staging", "intermediate", "ledger")


# The group role whose members see every owner's rows through the marts' row-level security
# (macros/owner_row_security.sql); the shared BI role is one.
ALL_OWNERS_ROLE = "bankflow_all_owners"


def ensure_bi_reader(database_url: str, password: str, role: str = DEFAULT_BI_ROLE) -> None:
    """Create (or update the password of) `role`, able to log in and read `marts` only, every
    owner's rows."""
    role_id = sql.Identifier(role)
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_role(conn, role, password)
        ensure_role(conn, ALL_OWNERS_ROLE)
        conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(ALL_OWNERS_ROLE), role_id))
        with conn.transaction():
            open_marts_to(conn, role)
            conn.execute(
                sql.SQL("grant select on all tables in schema {} to {}").format(
                    sql.Identifier(BI_SCHEMA), role_id
                )
            )
            conn.execute(
                sql.SQL("alter default privileges in schema {} grant select on tables to {}").format(
                    sql.Identifier(BI_SCHEMA), role_id
                )
            )
            close_private_schemas_to(conn, role)


def ensure_role(conn: psycopg.Connection, role: str, password: str | None = None) -> None:
    """Create `role` (a login role when it has a password, else a group), or set its password."""
    role_id = sql.Identifier(role)
    login = sql.SQL("login password {}").format(sql.Literal(password)) if password else sql.SQL("nologin")
    # Roles are the server's, not the database's: another database (a test worker's, a second
    # warehouse) may have created it first, perhaps at the same moment.
    try:
        conn.execute(sql.SQL("create role {} {}").format(role_id, login))
    except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
        if password:
            conn.execute(sql.SQL("alter role {} {}").format(role_id, login))


def open_marts_to(conn: psycopg.Connection, role: str) -> None:
    """Let `role` connect to this database and look into `marts` (each table still needs a grant)."""
    role_id = sql.Identifier(role)
    (database,) = conn.execute("select current_database()").fetchone()
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(BI_SCHEMA)))
    conn.execute(sql.SQL("grant connect on database {} to {}").format(sql.Identifier(database), role_id))
    conn.execute(sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(BI_SCHEMA), role_id))


def close_private_schemas_to(conn: psycopg.Connection, role: str) -> None:
    """Refuse `role` every schema besides the marts explicitly."""
    role_id = sql.Identifier(role)
    existing = {
        name
        for (name,) in conn.execute(
            "select nspname from pg_namespace where nspname = any(%s)", (list(PRIVATE_SCHEMAS),)
        )
    }
    for schema in sorted(existing):
        conn.execute(sql.SQL("revoke all on schema {} from {}").format(sql.Identifier(schema), role_id))
        conn.execute(
            sql.SQL("revoke all on all tables in schema {} from {}").format(sql.Identifier(schema), role_id)
        )
