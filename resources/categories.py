"""User category overrides (layer 1 of the categorisation): the `ops.category_overrides` table
and the functions the CLI uses to set and clear an override."""

from __future__ import annotations

import psycopg

CATEGORY_OVERRIDES_DDL = """
create table if not exists ops.category_overrides (
    transaction_key text primary key,
    category text not null,
    note text,
    created_at timestamptz not null default now()
);
"""

# Layer 5: the learned model's answer per row no layer 1-4 decided, replaced whole by the
# category_predictions asset (resources/category_model.py). It exists from bootstrap on, so the
# staging view on it builds before the model has ever run.
CATEGORY_PREDICTIONS_DDL = """
create table if not exists ops.category_predictions (
    transaction_key text primary key,
    category text not null,
    confidence numeric(5, 4) not null check (confidence between 0 and 1),
    model_version text not null,
    trained_rows integer not null,
    predicted_at timestamptz not null default now()
);
"""

# The taxonomy is a dbt seed; it exists once dbt has run, and then it is the list to check against.
TAXONOMY_TABLE = "marts.categories"


class UnknownCategory(ValueError):
    """The category is not in the taxonomy seed."""


def known_categories(conn: psycopg.Connection) -> set[str] | None:
    """The taxonomy's categories, or None when the seed table has not been built yet."""
    if conn.execute("select to_regclass(%s)", (TAXONOMY_TABLE,)).fetchone()[0] is None:
        return None
    return {row[0] for row in conn.execute("select category from marts.categories")}


def set_category_override(
    database_url: str, transaction_key: str, category: str, note: str | None = None
) -> None:
    """Record (or replace) the user's category for one transaction; the next dbt run applies it.

    Raises UnknownCategory when the taxonomy exists and does not hold `category`.
    """
    with psycopg.connect(database_url) as conn:
        categories = known_categories(conn)
        if categories is not None and category not in categories:
            raise UnknownCategory(
                f"unknown category {category!r}: choose one of {', '.join(sorted(categories))}"
            )
        conn.execute(
            "insert into ops.category_overrides (transaction_key, category, note) values (%s, %s, %s)"
            " on conflict (transaction_key) do update"
            " set category = excluded.category, note = excluded.note, created_at = now()",
            (transaction_key, category, note),
        )


def clear_category_override(database_url: str, transaction_key: str) -> bool:
    """Remove the user's category for one transaction; False when there was none."""
    with psycopg.connect(database_url) as conn:
        cursor = conn.execute(
            "delete from ops.category_overrides where transaction_key = %s", (transaction_key,)
        )
        return cursor.rowcount > 0


def transaction_exists(database_url: str, transaction_key: str) -> bool | None:
    """Whether marts.fct_transactions holds the key; None when the mart has not been built yet."""
    with psycopg.connect(database_url) as conn:
        if conn.execute("select to_regclass('marts.fct_transactions')").fetchone()[0] is None:
            return None
        row = conn.execute(
            "select 1 from marts.fct_transactions where transaction_key = %s", (transaction_key,)
        ).fetchone()
        return row is not None
