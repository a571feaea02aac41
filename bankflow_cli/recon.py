"""`bankflow recon`: a person's side of reconciliation (undo a match, resolve an exception,
back-test a rules change)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from resources.recon_backtest import PairChange, ReconBacktest


def print_recon_backtest(console: Console, result: ReconBacktest, rules_file: str, limit: int = 20) -> None:
    """The matches the rules in `rules_file` would add, remove or move to another rule."""
    console.print(
        f"Backtest of {rules_file}: {result.pairs_before} matched pairs now, {result.pairs_after} with the "
        f"new rules; [green]{len(result.added)} added[/], [red]{len(result.removed)} removed[/], "
        f"{len(result.rule_changed)} matched by another rule."
    )
    rules = Table(title="Pairs per rule")
    for column in ("rule", "now", "with the new rules"):
        rules.add_column(column, justify="left" if column == "rule" else "right")
    for rule in sorted(result.per_rule_before.keys() | result.per_rule_after.keys()):
        rules.add_row(rule, str(result.per_rule_before.get(rule, 0)), str(result.per_rule_after.get(rule, 0)))
    console.print(rules)
    for title, changes in (
        ("Added", result.added),
        ("Removed", result.removed),
        ("Matched by another rule", result.rule_changed),
    ):
        if changes:
            console.print(_changes_table(title, changes[:limit]))
            if len(changes) > limit:
                console.print(f"... and {len(changes) - limit} more.")
    console.print(
        "Nothing was applied. To apply: replace dbt_project/seeds/recon_rules.csv and run the pipeline."
    )


def _changes_table(title: str, changes: list[PairChange]) -> Table:
    table = Table(title=title)
    for column in ("bank line", "counterpart", "rule now", "rule after", "amount"):
        table.add_column(column, justify="right" if column == "amount" else "left")
    for change in changes:
        table.add_row(
            change.transaction_key,
            change.counterpart_key,
            change.rule_before or "-",
            change.rule_after or "-",
            f"{change.amount} {change.currency}",
        )
    return table
