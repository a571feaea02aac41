"""What a changed reconciliation rules file would do to the matches, before it is applied
(`bankflow recon backtest`).

The pipeline's own models decide: int_recon_reference_candidates, int_recon_amount_date_pairs,
int_recon_candidates and int_recon_matched are compiled with dbt vars pointing them at the new
rules and at each earlier step under those rules (temporary tables), and the result is compared
with marts.recon_matches pair by pair.
Nothing is written: the temporary relations belong to this session and are dropped with it.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import psycopg
from psycopg import sql

from resources.warehouse.dbt_compile import compile_models

MATCHED_MODEL = "int_recon_matched"
RULES_TABLE = "backtest_recon_rules"
# The steps before the matching, in order: (model, the temporary table that holds it, the dbt var
# through which the later steps read it).
STEPS = (
    (
        "int_recon_reference_candidates",
        "backtest_recon_reference_candidates",
        "recon_reference_candidates_relation",
    ),
    ("int_recon_amount_date_pairs", "backtest_recon_amount_date_pairs", "recon_amount_date_pairs_relation"),
    ("int_recon_candidates", "backtest_recon_candidates", "recon_candidates_relation"),
)
RULE_COLUMNS = (
    "rule_id",
    "priority",
    "side",
    "method",
    "amount_tolerance",
    "date_window_days",
    "min_name_similarity",
    "enabled",
    "description",
)
SIDES = frozenset({"settlement", "ledger"})
METHODS = frozenset(
    {
        "reference_exact",
        "reference_normalised",
        "amount_date_name",
        "amount_date_unique",
        "many_to_one",
        "one_to_many",
    }
)
_TRUE, _FALSE = frozenset({"true", "t", "yes", "1"}), frozenset({"false", "f", "no", "0"})


class InvalidReconRules(ValueError):
    """The rules file cannot be used: the message names the line and the problem."""


@dataclass(frozen=True)
class ReconRule:
    rule_id: str
    priority: int
    side: str
    method: str
    amount_tolerance: Decimal
    date_window_days: int
    min_name_similarity: Decimal | None
    enabled: bool
    description: str


@dataclass(frozen=True)
class PairChange:
    """One (bank line, counterpart) pair the new rules add or remove, or match by another rule."""

    transaction_key: str
    counterpart_key: str
    rule_before: str | None
    rule_after: str | None
    amount: Decimal
    currency: str


@dataclass
class ReconBacktest:
    pairs_before: int
    pairs_after: int
    added: list[PairChange] = field(default_factory=list)
    removed: list[PairChange] = field(default_factory=list)
    rule_changed: list[PairChange] = field(default_factory=list)
    per_rule_before: dict[str, int] = field(default_factory=dict)
    per_rule_after: dict[str, int] = field(default_factory=dict)


def read_recon_rules(path: Path) -> list[ReconRule]:
    """Parse and check a rules CSV (the recon_rules seed's columns)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in RULE_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise InvalidReconRules(f"{path}: missing columns {', '.join(missing)}")
        rules = [_rule(path, number, row) for number, row in enumerate(reader, start=2)]
    for attribute in ("rule_id", "priority"):
        counts = Counter(getattr(rule, attribute) for rule in rules)
        repeated = sorted(str(value) for value, count in counts.items() if count > 1)
        if repeated:
            raise InvalidReconRules(f"{path}: {attribute} must be unique, repeated: {', '.join(repeated)}")
    return rules


def _rule(path: Path, line: int, row: dict[str, str]) -> ReconRule:
    def fail(problem: str) -> InvalidReconRules:
        return InvalidReconRules(f"{path}:{line}: {problem}")

    values = {key: (value or "").strip() for key, value in row.items() if key}
    if not values["rule_id"]:
        raise fail("rule_id is empty")
    if values["side"] not in SIDES:
        raise fail(f"side {values['side']!r} is not one of {', '.join(sorted(SIDES))}")
    if values["method"] not in METHODS:
        raise fail(f"method {values['method']!r} is not one of {', '.join(sorted(METHODS))}")
    if values["method"] in ("many_to_one", "one_to_many") and values["side"] != "ledger":
        raise fail(f"{values['method']} matches ledger entries only")
    enabled = values["enabled"].lower()
    if enabled not in _TRUE | _FALSE:
        raise fail(f"enabled {values['enabled']!r} is not true or false")
    try:
        priority, window = int(values["priority"]), int(values["date_window_days"])
        tolerance = Decimal(values["amount_tolerance"])
        similarity = Decimal(values["min_name_similarity"]) if values["min_name_similarity"] else None
    except (ValueError, InvalidOperation):
        raise fail(
            "priority and date_window_days must be integers, the tolerance and similarity numbers"
        ) from None
    if tolerance < 0 or window < 0 or (similarity is not None and not 0 <= similarity <= 1):
        raise fail("tolerance and window must be >= 0, the similarity between 0 and 1")
    if values["method"] in ("amount_date_name", "many_to_one") and similarity is None:
        raise fail(f"{values['method']} needs min_name_similarity")
    return ReconRule(
        rule_id=values["rule_id"],
        priority=priority,
        side=values["side"],
        method=values["method"],
        amount_tolerance=tolerance,
        date_window_days=window,
        min_name_similarity=similarity,
        enabled=enabled in _TRUE,
        description=values["description"],
    )


def backtest_recon_rules(database_url: str, rules: list[ReconRule], project_dir: Path) -> ReconBacktest:
    """The matches under `rules` against marts.recon_matches, over all the history the marts hold."""
    compiled = compile_models(
        project_dir,
        database_url,
        (*(model for model, _, _ in STEPS), MATCHED_MODEL),
        {"recon_rules_relation": f"pg_temp.{RULES_TABLE}"}
        | {var: f"pg_temp.{table}" for _, table, var in STEPS},
    )
    with psycopg.connect(database_url) as conn:
        if conn.execute("select to_regclass('marts.recon_matches')").fetchone()[0] is None:
            raise InvalidReconRules("marts.recon_matches does not exist yet: run the pipeline first")
        # The pipeline's settings for these models (dbt_project.yml, int_recon_matched).
        conn.execute("set local enable_nestloop = off")
        conn.execute("set local work_mem = '256MB'")
        conn.execute("set local jit = off")  # as dbt's sessions (DBT_SESSION_OPTIONS)
        conn.execute(
            sql.SQL(
                "create temporary table {} (rule_id text, priority integer, side text, method text,"
                " amount_tolerance numeric(18, 2), date_window_days integer, min_name_similarity numeric(4, 3),"
                " enabled boolean, description text) on commit drop"
            ).format(sql.Identifier(RULES_TABLE))
        )
        with conn.cursor().copy(sql.SQL("copy {} from stdin").format(sql.Identifier(RULES_TABLE))) as copy:
            for rule in rules:
                copy.write_row([getattr(rule, column) for column in RULE_COLUMNS])
        # Each step as a temporary table (analyzed, as the pipeline's tables are) for the next.
        for model, table, _ in STEPS:
            conn.execute(
                sql.SQL("create temporary table {} on commit drop as {}").format(
                    sql.Identifier(table), sql.SQL(compiled[model])
                )
            )
            conn.execute(sql.SQL("analyze {}").format(sql.Identifier(table)))
        after = _pairs(conn, sql.SQL(compiled[MATCHED_MODEL]))
        before = _pairs(conn, sql.SQL("select * from marts.recon_matches"))
    return _compare(before, after)


def _pairs(
    conn: psycopg.Connection, matches: sql.Composable
) -> dict[tuple[str, str], tuple[str, Decimal, str]]:
    query = sql.SQL(
        "select transaction_key, counterpart_key, rule_id, bank_amount, currency from ({}) as matches"
    ).format(matches)
    return {(t, c): (rule, amount, currency) for t, c, rule, amount, currency in conn.execute(query)}


def _compare(
    before: dict[tuple[str, str], tuple[str, Decimal, str]],
    after: dict[tuple[str, str], tuple[str, Decimal, str]],
) -> ReconBacktest:
    result = ReconBacktest(
        pairs_before=len(before),
        pairs_after=len(after),
        per_rule_before=dict(sorted(Counter(rule for rule, _, _ in before.values()).items())),
        per_rule_after=dict(sorted(Counter(rule for rule, _, _ in after.values()).items())),
    )
    for pair in sorted(before.keys() | after.keys()):
        old, new = before.get(pair), after.get(pair)
        amount, currency = (new or old)[1], (new or old)[2]  # type: ignore[index]
        change = PairChange(pair[0], pair[1], old and old[0], new and new[0], amount, currency)
        if old is None:
            result.added.append(change)
        elif new is None:
            result.removed.append(change)
        elif old[0] != new[0]:
            result.rule_changed.append(change)
    return result
