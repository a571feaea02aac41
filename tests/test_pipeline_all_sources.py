"""All four open-banking sources through one pipeline run into one set of marts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
from pipeline_runs import clear_statement_files, rows, run_window

from pipelines.transform.assets import dbt_target_dir
from sandbox.server import Sandbox

SOURCES = {"truelayer", "berlin_group", "revolut", "gocardless", "fibank"}
# The declarative REST banks (connectors/rest/*.yaml): assets raw_rest_<bank>_*, source = the bank.
REST_BANKS = {"hdfc", "icici", "sbi"}


@pytest.fixture(scope="module")
def first_day() -> date:
    return datetime.now(UTC).date() - timedelta(days=2)


@pytest.fixture(scope="module")
def run(definitions: dg.Definitions, database_url: str, first_day: date) -> dg.ExecuteInProcessResult:
    today = datetime.now(UTC).date()
    # Statement files other modules on this worker's database landed are not this run's sources.
    clear_statement_files(database_url)
    # The folder of this process's steps (each test worker has its own).
    before = set(dbt_target_dir().iterdir())
    result = run_window(definitions, first_day, today)
    # Each dbt step's own target folder (5-20 MB) is gone once the step succeeded.
    left = {path.name for path in set(dbt_target_dir().iterdir()) - before if path.is_dir()}
    assert not result.success or left == set()
    return result


def test_every_source_lands_and_every_check_passes(run: dg.ExecuteInProcessResult) -> None:
    assert run.success
    landed = {event.asset_key.to_user_string() for event in run.get_asset_materialization_events()}
    assert {f"raw_{source}_transactions" for source in SOURCES} <= landed
    assert {f"raw_rest_{bank}_transactions" for bank in REST_BANKS} <= landed
    assert [e.check_name for e in run.get_asset_check_evaluations() if not e.passed] == []


def test_one_account_row_per_real_account(
    run: dg.ExecuteInProcessResult, sandbox: Sandbox, database_url: str
) -> None:
    accounts = dict(
        rows(database_url, "select coalesce(iban, provider_account_id), sources from marts.dim_accounts")
    )
    world = sandbox.world.accounts
    assert len(accounts) == len(world)
    # Accounts two providers report are one real account, with both sources named.
    for account in world:
        if account.iban and len(account.providers) > 1:
            assert accounts[account.iban] == ",".join(sorted(account.providers))
    assert any(len(a.providers) > 1 for a in world)


def test_the_canonical_marts_hold_every_source(
    run: dg.ExecuteInProcessResult, database_url: str, first_day: date
) -> None:
    # The run's days, which it rebuilt whole: rows of earlier days may be other modules' (a statement
    # file's day long ago stays in the incremental fct_transactions after its file is gone).
    transactions = {
        r[0]
        for r in rows(
            database_url,
            "select distinct source from marts.fct_transactions where booking_date >= %s",
            (first_day,),
        )
    }
    assert transactions == SOURCES | REST_BANKS
    balances = {r[0] for r in rows(database_url, "select distinct source from marts.fct_balances")}
    assert balances == SOURCES | REST_BANKS
