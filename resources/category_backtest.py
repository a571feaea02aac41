"""What a changed rules file would do to history, before it is applied (`bankflow rules backtest`).

The new rules are loaded into a temporary table and the categorisation models themselves are
compiled against it, so the precedence is never written twice: the lookups of layers 2-4 over every
row (int_transactions_rule_matches, dbt var `category_rules_relation`) against the new rules, layers
1-4 (int_transactions_rule_categorised, var `category_matches_relation`) over those, and the final
model (int_transactions_categorised, var `category_layers_relation`) over that result, which
adds the learned model's current predictions (layer 5) where layers 1-4 leave a row undecided. The
comparison is the final model's current view (what fct_transactions shows: each row's rules as
matched when it was last built) against the same model over the new rules. The model
is not retrained: a row the new rules leave undecided keeps its current prediction if it had one
(rows the old rules decided have none, so they show as uncategorised).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

from resources.warehouse.dbt_compile import compile_models

MODEL = "int_transactions_categorised"
LAYERS_MODEL = "int_transactions_rule_categorised"
MATCHES_MODEL = "int_transactions_rule_matches"
BACKTEST_RULES_TABLE = "backtest_category_rules"
BACKTEST_MATCHES_VIEW = "backtest_rule_matches"
BACKTEST_LAYERS_VIEW = "backtest_rule_categorised"
RULE_COLUMNS = ("rule_id", "priority", "field", "pattern", "amount_sign", "account_key", "category")
FIELDS = frozenset({"merchant", "description", "counterparty", "any"})
AMOUNT_SIGNS = frozenset({"in", "out", "any"})


class InvalidRules(ValueError):
    """The rules file cannot be used: the message names the line and the problem."""


@dataclass(frozen=True)
class Rule:
    rule_id: str
    priority: int
    field: str
    pattern: str
    amount_sign: str
    account_key: str | None
    category: str


@dataclass(frozen=True)
class CategoryShift:
    """One category in one currency, before and after the change."""

    category: str
    currency: str
    rows_before: int
    rows_after: int
    amount_before: Decimal
    amount_after: Decimal


@dataclass(frozen=True)
class Move:
    """Rows that would leave one category for another."""

    before: str
    after: str
    currency: str
    rows: int
    amount: Decimal


@dataclass(frozen=True)
class BacktestResult:
    rows_compared: int
    rows_changed: int
    amount_moved: dict[str, Decimal]  # per currency: sum of |amount| of the rows that change category
    moves: list[Move]
    shifts: list[CategoryShift]  # only categories whose rows or amount change


def read_rules(path: Path) -> list[Rule]:
    """Parse and check a rules CSV (the category_rules seed's columns); InvalidRules says what is wrong."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in RULE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidRules(f"{path}: missing column(s) {', '.join(missing)}")
        rules, seen = [], set()
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            rule_id = (row["rule_id"] or "").strip()
            if not rule_id or rule_id in seen:
                raise InvalidRules(f"{where}: rule_id {rule_id!r} is empty or repeated")
            seen.add(rule_id)
            try:
                priority = int(row["priority"])
            except (TypeError, ValueError):
                raise InvalidRules(f"{where}: priority {row['priority']!r} is not an integer") from None
            if row["field"] not in FIELDS:
                raise InvalidRules(f"{where}: field {row['field']!r} is not one of {sorted(FIELDS)}")
            if row["amount_sign"] not in AMOUNT_SIGNS:
                raise InvalidRules(
                    f"{where}: amount_sign {row['amount_sign']!r} is not one of {sorted(AMOUNT_SIGNS)}"
                )
            if not row["pattern"] or not row["category"]:
                raise InvalidRules(f"{where}: pattern and category are required")
            rules.append(
                Rule(
                    rule_id=rule_id,
                    priority=priority,
                    field=row["field"],
                    pattern=row["pattern"],
                    amount_sign=row["amount_sign"],
                    account_key=(row["account_key"] or "").strip() or None,
                    category=row["category"].strip(),
                )
            )
    return rules


def compiled_models_sql(
    project_dir: Path, database_url: str, rules_relation: str, matches_relation: str, layers_relation: str
) -> dict[str, str]:
    """The categorisation models' SQL, by model name, compiled against `rules_relation` instead of
    the rules seed, `matches_relation` instead of the kept layers 2-4 lookups and `layers_relation`
    instead of the layers 1-4 view (one dbt call for the three)."""
    return compile_models(
        project_dir,
        database_url,
        (MATCHES_MODEL, LAYERS_MODEL, MODEL),
        {
            "category_rules_relation": rules_relation,
            "category_matches_relation": matches_relation,
            "category_layers_relation": layers_relation,
        },
    )


def backtest_rules(database_url: str, rules: list[Rule], project_dir: Path) -> BacktestResult:
    """Categories with `rules` vs. the current ones, over every row of marts.fct_transactions.

    Nothing is written: the new rules live in a temporary table of this session only.
    """
    compiled = compiled_models_sql(
        project_dir,
        database_url,
        f"pg_temp.{BACKTEST_RULES_TABLE}",
        f"pg_temp.{BACKTEST_MATCHES_VIEW}",
        f"pg_temp.{BACKTEST_LAYERS_VIEW}",
    )
    with psycopg.connect(database_url) as conn:
        _check_rules_in_database(conn, rules)
        conn.execute(
            sql.SQL(
                "create temporary table {} (rule_id text, priority integer, field text, pattern text,"
                " amount_sign text, account_key text, category text) on commit drop"
            ).format(sql.Identifier(BACKTEST_RULES_TABLE))
        )
        with conn.cursor().copy(
            sql.SQL("copy {} ({}) from stdin").format(
                sql.Identifier(BACKTEST_RULES_TABLE), sql.SQL(", ").join(map(sql.Identifier, RULE_COLUMNS))
            )
        ) as copy:
            for rule in rules:
                copy.write_row([getattr(rule, column) for column in RULE_COLUMNS])
        # Every row matched against the new rules, then layers 1-4 over those matches, as the
        # relations the next models read them from.
        conn.execute(
            sql.SQL("create temporary view {} as {}").format(
                sql.Identifier(BACKTEST_MATCHES_VIEW), sql.SQL(compiled[MATCHES_MODEL])
            )
        )
        conn.execute(
            sql.SQL("create temporary view {} as {}").format(
                sql.Identifier(BACKTEST_LAYERS_VIEW), sql.SQL(compiled[LAYERS_MODEL])
            )
        )
        # The model's view is the current categorisation; the compiled SQL is the new one.
        compared = conn.execute(
            sql.SQL(
                "with new_categories as ({new_sql}) "
                "select facts.currency, current_categories.category, new_categories.category, count(*), sum(facts.amount)"
                " from marts.fct_transactions as facts"
                " join intermediate.int_transactions_categorised as current_categories using (transaction_key)"
                " join new_categories using (transaction_key)"
                " group by 1, 2, 3"
            ).format(new_sql=sql.SQL(compiled[MODEL]))
        ).fetchall()
        # Before the commit drops the rules table under it.
        conn.execute(sql.SQL("drop view {}").format(sql.Identifier(BACKTEST_LAYERS_VIEW)))
        conn.execute(sql.SQL("drop view {}").format(sql.Identifier(BACKTEST_MATCHES_VIEW)))
    return summarise(compared)


def summarise(compared: list[tuple[str, str, str, int, Decimal]]) -> BacktestResult:
    """Fold (currency, before, after, rows, amount) groups into the backtest's totals."""
    moves = [
        Move(before, after, currency, rows, amount)
        for currency, before, after, rows, amount in compared
        if before != after
    ]
    moved: dict[str, Decimal] = {}
    for move in moves:
        moved[move.currency] = moved.get(move.currency, Decimal(0)) + abs(move.amount)
    totals: dict[tuple[str, str], list] = {}
    for currency, before, after, rows, amount in compared:
        totals.setdefault((before, currency), [0, 0, Decimal(0), Decimal(0)])
        totals.setdefault((after, currency), [0, 0, Decimal(0), Decimal(0)])
        totals[(before, currency)][0] += rows
        totals[(before, currency)][2] += amount
        totals[(after, currency)][1] += rows
        totals[(after, currency)][3] += amount
    shifts = [
        CategoryShift(category, currency, *values)
        for (category, currency), values in sorted(totals.items())
        if values[0] != values[1] or values[2] != values[3]
    ]
    return BacktestResult(
        rows_compared=sum(group[3] for group in compared),
        rows_changed=sum(move.rows for move in moves),
        amount_moved=dict(sorted(moved.items())),
        moves=sorted(moves, key=lambda m: (-m.rows, m.before, m.after, m.currency)),
        shifts=shifts,
    )


def _check_rules_in_database(conn: psycopg.Connection, rules: list[Rule]) -> None:
    # Postgres is the regex dialect that counts: every pattern must compile there.
    for rule in rules:
        try:
            with conn.transaction():
                conn.execute("select '' ~* %s", (rule.pattern,))
        except psycopg.errors.InvalidRegularExpression as exc:
            raise InvalidRules(
                f"rule {rule.rule_id}: pattern is not a valid regular expression ({exc})"
            ) from None
    if conn.execute("select to_regclass('marts.categories')").fetchone()[0] is not None:
        known = {row[0] for row in conn.execute("select category from marts.categories")}
        unknown = sorted({rule.category for rule in rules} - known)
        if unknown:
            raise InvalidRules(
                f"unknown categories {', '.join(unknown)}: add them to seeds/categories.csv first"
            )
