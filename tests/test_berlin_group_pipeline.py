"""End to end: the Berlin Group sandbox over HTTP -> raw_berlin_group -> dbt staging, in real Postgres.

A 90-day backfill lands exactly the world's rows; every fault switch ends in the clean run's tables
or in a clear error with the previous rows intact; a rerun lands nothing new; tokens stay secret.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import httpx
import psycopg
import pytest
from pipeline_runs import rows, scalar

from pipelines.sources.berlin_group.assets import raw_berlin_group
from pipelines.transform.project import DBT_PROJECT_DIR
from resources.providers.berlin_group import finish_consent, start_consent
from resources.providers.berlin_group_resource import BerlinGroupResource
from resources.vault import TokenVault
from resources.warehouse.loader import ensure_raw_table
from resources.warehouse.resource import WarehouseResource
from sandbox.berlin_group import BerlinGroupSandbox, BerlinGroupSwitches, build_berlin_group_app
from sandbox.server import serve
from sandbox.state import SandboxState
from sandbox.world import World

BACKFILL_DAYS = 90
MAX_HISTORY_DAYS = 90
# Not the session's "berlin_group": this module's consent belongs to its own sandbox, and a later
# module on the same database would read the session's bank with it (every full run then failed).
CONNECTION = "berlin_group_pipeline_test"
SNAPSHOT_TABLES = ("berlin_group_transactions", "berlin_group_pending_transactions", "berlin_group_accounts")


@dataclass
class Bank:
    url: str
    state: SandboxState
    bg: BerlinGroupSandbox
    world: World

    def resource(self, connection_name: str, frequency_per_day: int) -> BerlinGroupResource:
        return BerlinGroupResource(
            base_url=self.url,
            token_url=self.url + "/oauth/token",
            client_id=self.state.client_id,
            client_secret=self.state.client_secret,
            frequency_per_day=frequency_per_day,
            connection_name=connection_name,
            max_attempts=3,
            backoff_initial_seconds=0.01,
            timeout_seconds=0.5,
        )


@pytest.fixture(scope="module")
def bank() -> Iterator[Bank]:
    world, state = World(7), SandboxState()
    bg = BerlinGroupSandbox(BerlinGroupSwitches(max_frequency_per_day=500, max_history_days=MAX_HISTORY_DAYS))
    with serve(build_berlin_group_app(world, state, bg)) as url:
        yield Bank(url, state, bg, world)


def connect(resource: BerlinGroupResource, vault: TokenVault) -> None:
    """Play the user: open the bank's link, read the code from the redirect, store the tokens."""
    auth = resource.auth()
    pending = start_consent(auth)
    location = httpx.get(pending.url, follow_redirects=False).headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [pending.state]
    finish_consent(
        query["code"][0], pending, auth=auth, vault=vault, connection_name=resource.connection_name
    )


@pytest.fixture(scope="module")
def berlin_group(bank: Bank, warehouse: WarehouseResource) -> BerlinGroupResource:
    resource = bank.resource(CONNECTION, frequency_per_day=500)
    connect(resource, warehouse.vault())
    return resource


def run(
    resource: BerlinGroupResource, warehouse: WarehouseResource, first: date, last: date
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_berlin_group],
        resources={"berlin_group": resource, "warehouse": warehouse},
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        raise_on_error=False,
    )


def snapshot(database_url: str) -> dict[str, list[tuple]]:
    return {
        table: rows(
            database_url,
            f"select account_ref, partition_key, record_key, payload from raw.{table}"  # noqa: S608
            " order by account_ref, partition_key, record_key",
        )
        for table in SNAPSHOT_TABLES
    }


@dataclass(frozen=True)
class Backfill:
    first: date
    last: date
    result: dg.ExecuteInProcessResult
    clean: dict[str, list[tuple]]


@pytest.fixture(scope="module")
def backfill(
    bank: Bank, berlin_group: BerlinGroupResource, warehouse: WarehouseResource, database_url: str
) -> Backfill:
    today = bank.world.today
    first = today - timedelta(days=BACKFILL_DAYS - 1)
    result = run(berlin_group, warehouse, first, today)
    return Backfill(first, today, result, snapshot(database_url))


def world_by_day(bank: Bank, start: date, end: date) -> dict[tuple[str, str], tuple[int, Decimal]]:
    totals: dict[tuple[str, str], tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal(0)))
    for account in bank.world.accounts_for("berlin_group"):
        for txn in bank.world.booked(account.account_id, start, end):
            count, amount = totals[(account.iban, txn.booking_date.isoformat())]
            totals[(account.iban, txn.booking_date.isoformat())] = (count + 1, amount + txn.amount)
    return dict(totals)


def served_window(bank: Bank) -> tuple[date, date]:
    """[start, end) the bank serves: the backfill asks 3 lookback days more and is cut to the cap."""
    return bank.world.today - timedelta(days=MAX_HISTORY_DAYS), bank.world.today + timedelta(days=1)


def test_backfill_lands_exactly_the_worlds_transactions(
    backfill: Backfill, bank: Bank, database_url: str
) -> None:
    assert backfill.result.success
    start, end = served_window(bank)
    expected = world_by_day(bank, start, end)
    assert sum(count for count, _ in expected.values()) > 50
    actual = {
        (ref, day): (count, total)
        for ref, day, count, total in rows(
            database_url,
            "select account_ref, partition_key, count(*), sum((payload -> 'transactionAmount' ->> 'amount')::numeric)"
            " from raw.berlin_group_transactions group by 1, 2",
        )
    }
    assert actual == expected
    metadata = {
        m.asset_key.to_user_string(): m.metadata
        for m in backfill.result.asset_materializations_for_node("raw_berlin_group")
    }
    assert metadata["raw_berlin_group_transactions"]["window_fetched"].value == f"{start} .. {backfill.last}"
    pending = sum(len(bank.world.pending(a.account_id)) for a in bank.world.accounts_for("berlin_group"))
    assert scalar(database_url, "select count(*) from raw.berlin_group_pending_transactions") == pending


def test_second_run_of_the_same_window_lands_nothing_new(
    backfill: Backfill, berlin_group: BerlinGroupResource, warehouse: WarehouseResource, database_url: str
) -> None:
    again = run(berlin_group, warehouse, backfill.first, backfill.last)
    assert again.success
    assert snapshot(database_url) == backfill.clean
    landed = {
        m.asset_key.to_user_string(): m.metadata
        for m in again.asset_materializations_for_node("raw_berlin_group")
    }
    txns = landed["raw_berlin_group_transactions"]
    assert txns["rows_landed"].value == txns["rows_replaced"].value > 0


def _rate_limit(bank: Bank) -> None:
    bank.state.set_fault("rate_limit", count=2, path_prefix="/v1/accounts")


def _server_error(bank: Bank) -> None:
    bank.state.set_fault("server_error", count=2, path_prefix="/v1/accounts/")


def _slow(bank: Bank) -> None:
    bank.bg.switches.slow_seconds, bank.bg.switches.slow_calls = 1.0, 1


def _token_expiry(bank: Bank) -> None:
    bank.bg.switches.expire_token_after = 1


RECOVERING: dict[str, Callable[[Bank], None]] = {
    "rate_limit_storm": _rate_limit,
    "server_error": _server_error,
    "slow_response": _slow,
    "token_expiry_mid_run": _token_expiry,
}


@pytest.mark.parametrize("fault", sorted(RECOVERING))
def test_transient_faults_end_in_the_clean_tables(
    fault: str,
    backfill: Backfill,
    bank: Bank,
    berlin_group: BerlinGroupResource,
    warehouse: WarehouseResource,
    database_url: str,
) -> None:
    RECOVERING[fault](bank)
    try:
        result = run(berlin_group, warehouse, backfill.last - timedelta(days=4), backfill.last)
    finally:
        bank.state.clear_fault()
        bank.bg.switches.slow_calls, bank.bg.switches.expire_token_after = 0, None
    assert result.success
    assert snapshot(database_url) == backfill.clean


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("malformed_json", "response is not valid JSON"),
        ("expired", "CONSENT_EXPIRED). Reconnect with: bankflow connect berlin_group"),
        ("revokedByPsu", "CONSENT_INVALID). Reconnect with: bankflow connect berlin_group"),
    ],
)
def test_hard_faults_fail_clearly_and_keep_previous_rows(
    fault: str,
    message: str,
    backfill: Backfill,
    bank: Bank,
    berlin_group: BerlinGroupResource,
    warehouse: WarehouseResource,
    database_url: str,
) -> None:
    if fault == "malformed_json":
        bank.state.set_fault("malformed_json", path_prefix="/v1/accounts/")
    else:
        bank.bg.set_consent_status(fault)  # type: ignore[arg-type]
    try:
        result = run(berlin_group, warehouse, backfill.last - timedelta(days=4), backfill.last)
    finally:
        bank.state.clear_fault()
        bank.bg.set_consent_status("valid")
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert message in str(failure.event_specific_data.error)
    assert snapshot(database_url) == backfill.clean


def test_pending_rows_that_book_under_new_ids_end_in_the_clean_tables(
    backfill: Backfill,
    bank: Bank,
    berlin_group: BerlinGroupResource,
    warehouse: WarehouseResource,
    database_url: str,
) -> None:
    first = backfill.last - timedelta(days=4)
    bank.bg.switches.rebook_days = 2
    try:
        assert run(berlin_group, warehouse, first, backfill.last).success
    finally:
        bank.bg.switches.rebook_days = 0
    moved = world_by_day(bank, backfill.last - timedelta(days=1), backfill.last + timedelta(days=1))
    pending = scalar(database_url, "select count(*) from raw.berlin_group_pending_transactions")
    assert pending == sum(count for count, _ in moved.values()) + len(
        backfill.clean["berlin_group_pending_transactions"]
    )
    assert run(berlin_group, warehouse, first, backfill.last).success
    assert snapshot(database_url) == backfill.clean


def test_daily_budget_is_planned_and_access_exceeded_waits_for_tomorrow(
    backfill: Backfill, bank: Bank, warehouse: WarehouseResource, database_url: str
) -> None:
    bank.bg.switches.max_frequency_per_day = 4
    try:
        resource = bank.resource("berlin_group_budget", frequency_per_day=4)
        connect(resource, warehouse.vault())
    finally:
        bank.bg.switches.max_frequency_per_day = 500
    day = backfill.last
    assert all(run(resource, warehouse, day, day).success for _ in range(4))
    # Our ledger says the day is spent: no data call goes out.
    bank.state.reset_request_counts()
    refused = run(resource, warehouse, day, day)
    assert not refused.success
    assert "frequencyPerDay" in str(
        next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    )
    assert not any(path.startswith("/v1/accounts") for path in bank.state.request_counts)
    # A ledger that forgot (another process, a lost write): the bank's 429 ACCESS_EXCEEDED defers too.
    with psycopg.connect(database_url) as conn:
        conn.execute("delete from ops.call_budget where connection_name = %s", ("berlin_group_budget",))
    assert not run(resource, warehouse, day, day).success
    assert (
        scalar(
            database_url,
            "select min(calls_made) from ops.call_budget where connection_name = %s",
            ("berlin_group_budget",),
        )
        == 4
    )
    # A second connection to the same account re-reports the account (new resourceId), never its rows.
    after = snapshot(database_url)
    for table in ("berlin_group_transactions", "berlin_group_pending_transactions"):
        assert after[table] == backfill.clean[table]


def test_tokens_are_encrypted_and_never_logged(
    backfill: Backfill,
    bank: Bank,
    berlin_group: BerlinGroupResource,
    warehouse: WarehouseResource,
    database_url: str,
    secret_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        result = run(berlin_group, warehouse, backfill.last, backfill.last)
    assert result.success
    tokens = warehouse.vault().load(CONNECTION)
    assert tokens is not None
    stored = bytes(
        scalar(
            database_url,
            "select encrypted_tokens from ops.connections where connection_name = %s",
            (CONNECTION,),
        )
    )
    secrets = [tokens["access_token"], tokens["refresh_token"], berlin_group.client_secret, secret_key]
    for secret in secrets[:2]:
        assert secret.encode() not in stored
    text = caplog.text + "\n".join(str(event) for event in result.all_events + backfill.result.all_events)
    for secret in [*secrets, *bank.bg.issued_tokens]:
        assert secret not in text


def test_staging_models_match_the_world_and_the_truelayer_contract(
    backfill: Backfill, bank: Bank, warehouse: WarehouseResource, database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        for table in (
            "truelayer_transactions",
            "truelayer_pending_transactions",
            "truelayer_accounts",
            "truelayer_balances",
        ):
            ensure_raw_table(conn, table)
    dbt = str(Path(sys.executable).parent / "dbt")
    selection = [
        "staging.berlin_group",
        "stg_truelayer__transactions",
        "stg_truelayer__accounts",
        "stg_truelayer__balances",
    ]
    completed = subprocess.run(
        [
            dbt,
            "build",
            "--select",
            *selection,
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            "target/berlin_group_test",
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **warehouse.dbt_env()},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    start, end = served_window(bank)
    actual = {
        (ref, day.isoformat()): (count, total)
        for ref, day, count, total in rows(
            database_url,
            "select account_ref, booking_date, count(*), sum(amount) from staging.stg_berlin_group__transactions group by 1, 2",
        )
    }
    assert actual == world_by_day(bank, start, end)
    assert all(isinstance(total, Decimal) for _, total in actual.values())

    def columns(view: str) -> list[tuple]:
        return rows(
            database_url,
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'staging' and table_name = %s order by ordinal_position",
            (view,),
        )

    for ours, theirs in [
        ("stg_berlin_group__transactions", "stg_truelayer__transactions"),
        ("stg_berlin_group__pending_transactions", "stg_truelayer__transactions"),
        ("stg_berlin_group__accounts", "stg_truelayer__accounts"),
        ("stg_berlin_group__balances", "stg_truelayer__balances"),
    ]:
        assert columns(ours) == columns(theirs) != []
    balance = rows(
        database_url, "select current_balance, available_balance from staging.stg_berlin_group__balances"
    )
    account = bank.world.accounts_for("berlin_group")[0]
    assert balance[0][0] == bank.world.balance(account.account_id, bank.world.today)
