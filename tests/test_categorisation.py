"""Categorisation layers 1-4 over the daily pipeline, measured against the sandbox world's answer key."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from cli_runs import bankflow_command
from pipeline_runs import fetched_days, rows
from typer.testing import Result

from resources.category_backtest import InvalidRules, backtest_rules, read_rules
from sandbox.answer_key import categorised_vs_true, precision_recall
from sandbox.model import TRUE_CATEGORIES
from sandbox.server import Sandbox

# Measured with layers 1-4 on seed 7 over 35 days: 1.0 (617 of 617 spend rows). That is the rules
# pack naming the real chains and billers the sandbox world uses (Tesco, Octopus Energy, ...), not
# evidence of real-world accuracy; the floor leaves room for other days' draws. The issue's 95%
# target counts the learned model (layer 5) too.
ACCURACY_FLOOR = 0.97
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEED_RULES = PROJECT_ROOT / "dbt_project" / "seeds" / "category_rules.csv"
REPORT = PROJECT_ROOT / ".bankflow" / "reports" / "categorisation_accuracy.json"


@pytest.fixture(scope="module")
def window(categorisation_window: tuple[date, date]) -> tuple[date, date]:
    return categorisation_window


@pytest.fixture(scope="module")
def run(categorisation_run: dg.ExecuteInProcessResult) -> dg.ExecuteInProcessResult:
    return categorisation_run


def test_the_run_categorises_every_row_from_the_taxonomy(
    run: dg.ExecuteInProcessResult, database_url: str
) -> None:
    assert run.success
    assert [e.check_name for e in run.get_asset_check_evaluations() if not e.passed] == []
    outside = rows(
        database_url,
        "select count(*) from marts.fct_transactions f"
        " where f.category is null or f.category not in (select category from marts.categories)",
    )[0][0]
    assert outside == 0
    sources = dict(
        rows(
            database_url,
            "select coalesce(category_source, 'none'), count(*) from marts.fct_transactions group by 1",
        )
    )
    # Rules and the provider decide sandbox rows; the MCC layer sits behind rules that already know
    # the sandbox's card merchants (the dbt unit tests cover it), so it may decide none here.
    assert {"rule", "provider"} <= set(sources)


def test_every_world_category_is_a_taxonomy_category(
    run: dg.ExecuteInProcessResult, database_url: str
) -> None:
    taxonomy = {r[0] for r in rows(database_url, "select category from marts.categories")}
    assert set(TRUE_CATEGORIES) <= taxonomy


def test_spend_accuracy_against_the_answer_key(
    run: dg.ExecuteInProcessResult, sandbox: Sandbox, database_url: str, window: tuple[date, date]
) -> None:
    pairs = categorised_vs_true(database_url, sandbox.world, *fetched_days(*window))
    spend = [
        (true, predicted)
        for (true, predicted) in pairs
        if true != "transfer" and true not in {"salary", "sales", "interest", "income_other"}
    ]
    # Spend rows are the world's money-out rows that are not transfers: their true categories are
    # exactly the non-income ones.
    missing = sum(1 for _, p in spend if p == "<missing>")
    assert len(spend) > 300 and missing <= len(spend) * 0.02
    accuracy = sum(1 for t, p in spend if t == p) / len(spend)
    report = {
        "window": [d.isoformat() for d in window],
        "spend_rows": len(spend),
        "missing_in_marts": missing,
        "accuracy": round(accuracy, 4),
        "per_category": precision_recall(spend),
        "confusions": Counter(f"{t} -> {p}" for t, p in spend if t != p).most_common(15),
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    assert accuracy >= ACCURACY_FLOOR


def test_quality_mart_adds_up(run: dg.ExecuteInProcessResult, database_url: str) -> None:
    per_currency = dict(
        rows(database_url, "select currency, count(*) from marts.fct_transactions group by currency")
    )
    mart = rows(
        database_url,
        "select currency, sum(transaction_count), sum(share_of_transactions),"
        " bool_and(share_by_override + share_by_rule + share_by_mcc + share_by_provider + share_by_model"
        "          between 0.999 and 1.001 or category = 'uncategorised')"
        " from marts.mart_categorisation_quality group by currency",
    )
    assert {currency: count for currency, count, _, _ in mart} == per_currency
    for _, _, shares, layers_add_up in mart:
        assert abs(shares - 1) < Decimal("0.01")
        assert layers_add_up is True


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    return bankflow_command(database_url, monkeypatch)


def _categorised(database_url: str, transaction_key: str) -> tuple[str, str | None, str | None]:
    return rows(
        database_url,
        "select category, category_source, rule_id from intermediate.int_transactions_categorised"
        " where transaction_key = %s",
        (transaction_key,),
    )[0]


def test_categorise_sets_and_clears_an_override(
    run: dg.ExecuteInProcessResult, database_url: str, cli: Callable[..., Result]
) -> None:
    key, category, source, rule_id = rows(
        database_url,
        "select transaction_key, category, category_source, rule_id from intermediate.int_transactions_categorised"
        " where category_source = 'rule' and category <> 'entertainment' order by transaction_key limit 1",
    )[0]
    result = cli("categorise", key, "entertainment", "--note", "concert tickets")
    assert result.exit_code == 0, result.output
    # The view reads ops.category_overrides directly: the override wins over the rule at once.
    assert _categorised(database_url, key) == ("entertainment", "override", None)
    assert rows(
        database_url, "select note from ops.category_overrides where transaction_key = %s", (key,)
    ) == [("concert tickets",)]

    unknown = cli("categorise", key, "no_such_category")
    assert unknown.exit_code == 2 and "unknown category 'no_such_category'" in " ".join(
        unknown.output.split()
    )
    assert _categorised(database_url, key)[0] == "entertainment"
    missing = cli("categorise", "no-such-transaction", "health")
    assert missing.exit_code == 2 and "No transaction" in missing.output

    cleared = cli("categorise", key, "--clear")
    assert cleared.exit_code == 0 and "Override removed" in cleared.output
    assert _categorised(database_url, key) == (category, source, rule_id)
    assert cli("categorise", key, "--clear").output.startswith("No override")


def _rules_file(tmp_path: Path, extra: list[dict[str, str]]) -> Path:
    with SEED_RULES.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fieldnames, existing = reader.fieldnames, list(reader)
    path = tmp_path / "category_rules.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(existing + extra)
    return path


def test_rules_backtest_reports_what_a_new_rule_would_move(
    run: dg.ExecuteInProcessResult, database_url: str, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    new_rule = {
        "rule_id": "coffee_is_entertainment",
        "priority": "999",
        "field": "description",
        "pattern": "costa coffee",
        "amount_sign": "out",
        "account_key": "",
        "category": "entertainment",
        "note": "",
    }
    changed = tmp_path / "changed.csv"
    _rules_file(tmp_path, [new_rule]).rename(changed)
    # What the rule must move, counted independently of the backtest's SQL.
    expected = dict(
        (currency, (count, total))
        for currency, count, total in rows(
            database_url,
            "select f.currency, count(*), sum(abs(f.amount)) from marts.fct_transactions f"
            " join intermediate.int_transactions_categorised c using (transaction_key)"
            " where f.description ~* 'costa coffee' and f.amount < 0"
            " and c.category_source is distinct from 'override' and c.category <> 'entertainment'"
            " group by 1",
        )
    )
    assert sum(count for count, _ in expected.values()) > 0

    result = backtest_rules(database_url, read_rules(changed), PROJECT_ROOT / "dbt_project")
    assert result.rows_changed == sum(count for count, _ in expected.values())
    assert result.amount_moved == {currency: total for currency, (_, total) in expected.items()}
    assert {move.after for move in result.moves} == {"entertainment"}
    for shift in result.shifts:
        if shift.category == "entertainment":
            assert shift.rows_after - shift.rows_before == expected[shift.currency][0]

    shown = cli("rules", "backtest", "--rules", str(changed))
    assert shown.exit_code == 0, shown.output
    words = " ".join(shown.output.split())
    assert f"{result.rows_changed} would change category" in words
    assert "Nothing was applied" in words
    # Nothing was applied: the seed table and the categories are as before.
    assert rows(
        database_url, "select count(*) from marts.category_rules where rule_id = %s", (new_rule["rule_id"],)
    ) == [(0,)]

    unchanged = backtest_rules(database_url, read_rules(SEED_RULES), PROJECT_ROOT / "dbt_project")
    assert unchanged.rows_changed == 0 and unchanged.moves == [] and unchanged.rows_compared > 0


def test_rules_backtest_refuses_a_broken_rules_file(
    run: dg.ExecuteInProcessResult, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    broken = _rules_file(
        tmp_path,
        [
            {
                "rule_id": "bad",
                "priority": "1",
                "field": "description",
                "pattern": "(unclosed",
                "amount_sign": "out",
                "account_key": "",
                "category": "shopping",
                "note": "",
            }
        ],
    )
    result = cli("rules", "backtest", "--rules", str(broken))
    assert result.exit_code == 2 and "not a valid regular expression" in " ".join(result.output.split())
    with pytest.raises(InvalidRules, match="amount_sign"):
        read_rules(
            _rules_file(
                tmp_path,
                [
                    {
                        "rule_id": "x",
                        "priority": "1",
                        "field": "description",
                        "pattern": "x",
                        "amount_sign": "both",
                        "account_key": "",
                        "category": "shopping",
                        "note": "",
                    }
                ],
            )
        )
