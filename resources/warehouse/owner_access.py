"""Per-owner BI roles: each owner's dashboards read the marts and see that owner's rows only.

The rows are filtered by Postgres row-level security, not by views: the policies live on the mart
tables themselves (dbt's post-hook `owner_row_security` puts them back every time dbt re-creates a
table), so any tool that logs in as `bankflow_bi_<owner>` gets the same answer. A policy lets a
role see a row when it is a member of `bankflow_owner_<owner>` for the row's owner (dim_accounts.owner,
and through dim_accounts every mart keyed by account), or of `bankflow_all_owners`.

Only marts with row security are granted to owners: an aggregate over everyone (the categoriser's
quality) would show other owners' money, so it is not theirs to read. The finance aggregates carry
the owner (spend and cash flow per owner, a budget when its holder's accounts are one owner's).
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql

from resources.owners import OwnerError, valid_owner
from resources.warehouse.bi_access import BI_SCHEMA, close_private_schemas_to, ensure_role, open_marts_to

OWNER_ROLE_PREFIX = "bankflow_owner_"
# What the marts' policies call (macros/owner_row_security.sql). A policy naming marts.dim_accounts
# itself would depend on that table: dbt drops the old table with `cascade` when it re-creates it,
# which would drop every other mart's policy with it. A SQL function's body is looked up when it
# runs, so the policies outlive any rebuild, and it runs as the reader, so dim_accounts' own policy
# applies inside it. Created at bootstrap, before dbt has built a mart (hence no body check).
ROW_SECURITY_DDL = """
create schema if not exists bi_access;
grant usage on schema bi_access to public;
set local check_function_bodies = off;
create or replace function bi_access.sees_every_owner() returns boolean
language sql stable as $$
    select exists (
        select from pg_catalog.pg_roles as r
        where r.rolname = 'bankflow_all_owners' and pg_catalog.pg_has_role(current_user, r.oid, 'member')
    )
$$;
create or replace function bi_access.visible_owners() returns text[]
language sql stable as $$
    select coalesce(array_agg(substr(r.rolname, length('bankflow_owner_') + 1)), '{}')
    from pg_catalog.pg_roles as r
    where r.rolname like 'bankflow\\_owner\\_%' and pg_catalog.pg_has_role(current_user, r.oid, 'member')
$$;
create or replace function bi_access.visible_account_keys() returns setof text
language sql stable as $$
    select account_key from marts.dim_accounts
$$;
"""
# Every per-owner login role is a member; the post-hook grants it the marts with row security.
OWNER_READERS_ROLE = "bankflow_owners"
OWNER_LOGIN_PREFIX = "bankflow_bi_"
PASSWORD_VARIABLE_PREFIX = "BANKFLOW_BI_PASSWORD_"


def owner_role(owner: str) -> str:
    return OWNER_ROLE_PREFIX + valid_owner(owner)


def owner_login_role(owner: str) -> str:
    return OWNER_LOGIN_PREFIX + valid_owner(owner)


def owner_passwords(environ: Mapping[str, str]) -> dict[str, str]:
    """Owners whose BI role has a password in the environment: BANKFLOW_BI_PASSWORD_<OWNER>."""
    return {
        valid_owner(name.removeprefix(PASSWORD_VARIABLE_PREFIX).lower()): password
        for name, password in environ.items()
        if name.startswith(PASSWORD_VARIABLE_PREFIX) and password
    }


def connect_as_owner(database_url: str, owner: str, environ: Mapping[str, str]) -> psycopg.Connection:
    """A connection as `owner`'s BI login: what the owner's dashboards see, row security applied."""
    password = owner_passwords(environ).get(valid_owner(owner))
    if password is None:
        raise OwnerError(
            f"owner {owner} has no BI login: set {PASSWORD_VARIABLE_PREFIX}{owner.upper()} in the"
            f" environment or .env (bankflow then creates the role {owner_login_role(owner)})"
        )
    try:
        return psycopg.connect(database_url, user=owner_login_role(owner), password=password)
    except psycopg.OperationalError as error:
        # libpq's reason names the role, never the password.
        raise OwnerError(f"cannot log in as {owner_login_role(owner)}: {error}".strip()) from None


def ensure_owner_reader(database_url: str, owner: str, password: str) -> str:
    """Create (or update the password of) `owner`'s BI login role; its name."""
    login = owner_login_role(owner)
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_role(conn, owner_role(owner))
        ensure_role(conn, OWNER_READERS_ROLE)
        ensure_role(conn, login, password)
        conn.execute(
            sql.SQL("grant {}, {} to {}").format(
                sql.Identifier(owner_role(owner)), sql.Identifier(OWNER_READERS_ROLE), sql.Identifier(login)
            )
        )
        with conn.transaction():
            open_marts_to(conn, OWNER_READERS_ROLE)
            # The post-hook grants each table as dbt builds it; these are the ones built before
            # the first owner role existed.
            for (table,) in conn.execute(
                """
                select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where n.nspname = %s and c.relkind = 'r' and c.relrowsecurity
                """,
                (BI_SCHEMA,),
            ).fetchall():
                conn.execute(
                    sql.SQL("grant select on {} to {}").format(
                        sql.Identifier(BI_SCHEMA, table), sql.Identifier(OWNER_READERS_ROLE)
                    )
                )
            close_private_schemas_to(conn, login)
    return login
