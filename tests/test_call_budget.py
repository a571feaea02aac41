"""Call budgets count successful calls per account, scope and day, and order accounts stalest first."""

from __future__ import annotations

from datetime import date

from resources.call_budget import CallBudget


def test_budget_counts_down_per_account_scope_and_day(database_url: str) -> None:
    budget = CallBudget(database_url, "budget-test", calls_per_day=4)
    day = date(2026, 11, 23)
    assert budget.remaining("acc-1", "transactions", day) == 4
    for _ in range(3):
        budget.spend("acc-1", "transactions", day)
    assert budget.remaining("acc-1", "transactions", day) == 1
    assert budget.remaining("acc-1", "balances", day) == 4
    assert budget.remaining("acc-2", "transactions", day) == 4
    assert budget.remaining("acc-1", "transactions", date(2026, 11, 24)) == 4
    budget.spend("acc-1", "transactions", day)
    budget.spend("acc-1", "transactions", day)
    assert budget.remaining("acc-1", "transactions", day) == 0


def test_stalest_accounts_come_first(database_url: str) -> None:
    budget = CallBudget(database_url, "budget-order-test", calls_per_day=4)
    budget.spend("acc-b", "transactions")
    budget.spend("acc-a", "transactions")
    assert budget.stalest_first(["acc-a", "acc-b", "acc-new"], "transactions") == [
        "acc-new",
        "acc-b",
        "acc-a",
    ]


def test_forgetting_a_day_restores_the_budget(database_url: str) -> None:
    budget = CallBudget(database_url, "budget-forget-test", calls_per_day=2)
    budget.spend("acc-1", "transactions")
    budget.spend("acc-1", "transactions")
    assert budget.remaining("acc-1", "transactions") == 0
    budget.forget()
    assert budget.remaining("acc-1", "transactions") == 2


def test_exhausting_spends_what_is_left_and_never_lowers_the_count(database_url: str) -> None:
    budget = CallBudget(database_url, "budget-exhaust-test", calls_per_day=4)
    budget.spend("acc-1", "transactions")
    budget.exhaust("acc-1", "transactions")
    assert budget.remaining("acc-1", "transactions") == 0
    budget.exhaust("acc-2", "balances")
    assert budget.remaining("acc-2", "balances") == 0
    assert budget.remaining("acc-2", "transactions") == 4


def test_budgets_of_two_connections_are_apart(database_url: str) -> None:
    first = CallBudget(database_url, "budget-bank-a", calls_per_day=1)
    second = CallBudget(database_url, "budget-bank-b", calls_per_day=1)
    first.spend("*", "accounts")
    assert first.remaining("*", "accounts") == 0
    assert second.remaining("*", "accounts") == 1
