"""`bankflow categorise` and `bankflow rules backtest`: the user's side of the categorisation."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from resources.category_backtest import BacktestResult


def print_backtest(console: Console, result: BacktestResult, rules_file: str, limit: int = 20) -> None:
    """What the rules in `rules_file` would change, as tables: totals, moves, categories before/after."""
    moved = ", ".join(f"{amount} {currency}" for currency, amount in result.amount_moved.items()) or "nothing"
    console.print(
        f"Backtest of {rules_file} over {result.rows_compared} transactions: "
        f"[bold]{result.rows_changed}[/] would change category; amount moved: {moved}."
    )
    if not result.rows_changed:
        return
    moves = Table(title="Moves (rows leaving one category for another)")
    for column in ("from", "to", "currency", "rows", "amount"):
        moves.add_column(column, justify="right" if column in ("rows", "amount") else "left")
    for move in result.moves[:limit]:
        moves.add_row(move.before, move.after, move.currency, str(move.rows), str(move.amount))
    console.print(moves)
    if len(result.moves) > limit:
        console.print(f"... and {len(result.moves) - limit} smaller moves.")
    shifts = Table(title="Categories before / after")
    for column in ("category", "currency", "rows before", "rows after", "amount before", "amount after"):
        shifts.add_column(column, justify="left" if column in ("category", "currency") else "right")
    for shift in result.shifts:
        shifts.add_row(
            shift.category,
            shift.currency,
            str(shift.rows_before),
            str(shift.rows_after),
            str(shift.amount_before),
            str(shift.amount_after),
        )
    console.print(shifts)
    console.print(
        "Nothing was applied. To apply: replace dbt_project/seeds/category_rules.csv and run the pipeline."
    )
