"""`bankflow recon`: a person's side of reconciliation (undo a match, resolve an exception,
back-test a rules change)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from resources.ledger_export import LedgerExportLanding, land_ledger_export
from resources.recon_backtest import PairChange, ReconBacktest

NUMBER_COLUMNS = frozenset({"entries landed", "rows quarantined", "replaced"})


def import_ledger_exports(database_url: str, paths: Sequence[Path]) -> list[LedgerExportLanding]:
    """Land each export file on its own: one file's failure keeps none of the others from landing."""
    fetched_at = datetime.now(UTC)
    run_id = f"cli-import-ledger-{fetched_at:%Y%m%dT%H%M%S}"
    with psycopg.connect(database_url) as conn:
        return [land_ledger_export(conn, path, run_id=run_id, fetched_at=fetched_at) for path in paths]


def print_ledger_imports(console: Console, landings: Sequence[LedgerExportLanding]) -> None:
    table = Table(title="bankflow recon import-ledger")
    for column in ("file", "format", "outcome", "entries landed", "rows quarantined", "replaced"):
        table.add_column(column, justify="right" if column in NUMBER_COLUMNS else "left")
    for landing in landings:
        outcome = "[red]quarantined[/]" if landing.error else "[green]landed[/]"
        table.add_row(
            landing.path.name,
            landing.format or "",
            outcome,
            str(landing.rows_landed),
            str(landing.rows_quarantined),
            str(landing.rows_replaced),
        )
    console.print(table)
    # Whole, not in a cell: a reason wrapped in a narrow column is hard to read and to search for.
    for landing in landings:
        if landing.error:
            console.print(f"[red]{landing.error}[/]", soft_wrap=True)
    if any(landing.rows_quarantined for landing in landings):
        console.print(
            "Quarantined rows are in ops.quarantine (source ledger_export) with the reason; fix them in"
            " the accounting system and export the file again."
        )
    console.print("Reconciliation picks the entries up on the next pipeline run.")


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
