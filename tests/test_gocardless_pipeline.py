"""End to end: sandbox GoCardless over HTTP -> raw -> dbt staging, in real Postgres, with the
per-account call budget and every fault switch."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import httpx
import psycopg
import pytest
from pipeline_runs import rows, scalar

from pipelines.partitions import LOOKBACK_DAYS
from pipelines.sources.gocardless.assets import raw_gocardless
from pipelines.transform.project import DBT_PROJECT_DIR
from resources.providers.gocardless_resource import GoCardlessResource
from resources.vault import TokenVault
from resources.warehouse.loader import ensure_raw_table
from resources.warehouse.resource import WarehouseResource
from sandbox.gocardless import API_PREFIX, GoCardlessControls, build_gocardless_app
from sandbox.gocardless_json import gc_account_id, institution_id
from sandbox.server import serve
from sandbox.state import SandboxState
from sandbox.world import World

BACKFILL_DAYS = 90
SEED = 7
# Its own connection: the session's `gocardless` connection (on the shared sandbox) must
# survive this module for the all-sources pipeline tests.
CONNECTION = "gocardless_pipeline_test"
TRUELAYER_TABLES = ("transactions", "accounts", "balances")
RAW_TABLES = (
    "gocardless_transactions",
    "gocardless_pending_transactions",
    "gocardless_accounts",
    "gocardless_balances",
)


@dataclass
class GoCardlessSandbox:
    world: World
    state: SandboxState
    controls: GoCardlessControls
    url: str


@dataclass(frozen=True)
class Backfill:
    first: date
    last: date
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def gc_sandbox() -> Iterator[GoCardlessSandbox]:
    world, state, controls = World(SEED), SandboxState(), GoCardlessControls()
    with serve(build_gocardless_app(world, state, controls)) as url:
        yield GoCardlessSandbox(world, state, controls, url)


@pytest.fixture(autouse=True)
def _no_gocardless_fault_left(gc_sandbox: GoCardlessSandbox) -> Iterator[None]:
    yield
    gc_sandbox.state.clear_fault()
    gc_sandbox.controls.clear()


@pytest.fixture(scope="module")
def gocardless(gc_sandbox: GoCardlessSandbox, warehouse: WarehouseResource) -> GoCardlessResource:
    """GoCardless linked to all three banks through the real connect flow (the user is an HTTP GET)."""
    resource = GoCardlessResource(
        base_url=gc_sandbox.url + API_PREFIX,
        secret_id=gc_sandbox.state.client_id,
        secret_key=gc_sandbox.state.client_secret,
        connection_name=CONNECTION,
        max_attempts=4,
        backoff_initial_seconds=0.01,
        # A call the bank answered but the client gave up on counts against the 4 a day: on a
        # loaded machine 1 s was not enough, and the budget test saw the bank count 3 for 2 runs.
        timeout_seconds=5.0,
    )
    vault = warehouse.vault()
    for account in gc_sandbox.world.accounts_for("gocardless"):
        pending = resource.start_connection(vault, institution_id(account.bank), "http://127.0.0.1:9/done")
        back = httpx.get(pending.link, follow_redirects=False)
        assert back.status_code == 302 and back.headers["location"].endswith(f"?ref={pending.reference}")
        resource.finish_connection(vault, pending.requisition_id)
    return resource


def new_day(gc_sandbox: GoCardlessSandbox, database_url: str) -> None:
    """Roll the per-account limits over, at the bank and in our budget (as midnight UTC would)."""
    gc_sandbox.controls.reset_limits()
    with psycopg.connect(database_url) as conn:
        conn.execute("delete from ops.call_budget where connection_name = %s", (CONNECTION,))


def run(
    gocardless: GoCardlessResource, warehouse: WarehouseResource, first: date, last: date
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_gocardless],
        resources={"gocardless": gocardless, "warehouse": warehouse},
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def backfill(
    gocardless: GoCardlessResource,
    warehouse: WarehouseResource,
    gc_sandbox: GoCardlessSandbox,
    database_url: str,
) -> Backfill:
    new_day(gc_sandbox, database_url)
    today = datetime.now(UTC).date()
    first = today - timedelta(days=BACKFILL_DAYS - 1)
    return Backfill(first, today, run(gocardless, warehouse, first, today))


@pytest.fixture(scope="module")
def staged(
    backfill: Backfill, warehouse: WarehouseResource, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert backfill.result.success
    dbt_build(warehouse, tmp_path_factory.mktemp("dbt"))


def dbt_build(warehouse: WarehouseResource, workdir: Path) -> None:
    """`dbt build` of the GoCardless staging models (and TrueLayer's, to compare columns with).

    It runs on a copy of the project holding only those two sources, so that models other
    people are writing in the same tree at the same time cannot break this test's parse.
    """
    project = workdir / "dbt_project"
    shutil.copytree(
        DBT_PROJECT_DIR,
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "intermediate", "marts", "snapshots"),
    )
    for folder in (project / "models" / "staging").iterdir():
        if folder.name not in {"gocardless", "truelayer"}:
            shutil.rmtree(folder)
    with warehouse.connect() as conn:
        for table in TRUELAYER_TABLES:
            ensure_raw_table(conn, f"truelayer_{table}")
    dbt = str(Path(sys.executable).parent / "dbt")
    completed = subprocess.run(
        [
            dbt,
            "build",
            "--select",
            "staging.gocardless",
            *(f"stg_truelayer__{table}" for table in TRUELAYER_TABLES),
            "--profiles-dir",
            str(project),
        ],
        cwd=project,
        env={**os.environ, **warehouse.dbt_env()},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]


def world_days(
    gc_sandbox: GoCardlessSandbox, first: date, last: date
) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """(IBAN, day) -> (count, exact sum) of the world's booked rows in first..last."""
    expected: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for account in gc_sandbox.world.accounts_for("gocardless"):
        by_day: dict[str, list[Decimal]] = defaultdict(list)
        for txn in gc_sandbox.world.booked(account.account_id, first, last + timedelta(days=1)):
            by_day[txn.booking_date.isoformat()].append(txn.amount)  # type: ignore[union-attr]
        for day, amounts in by_day.items():
            expected[(account.iban, day)] = (len(amounts), sum(amounts, Decimal(0)))
    return expected


def iban_of(gc_sandbox: GoCardlessSandbox) -> dict[str, str]:
    return {gc_account_id(SEED, a): a.iban for a in gc_sandbox.world.accounts_for("gocardless")}


def raw_snapshot(database_url: str, ignore: str = "") -> dict[str, list[tuple]]:
    """Every raw row's identity and payload (less the `ignore` field, e.g. a re-keyed bank id)."""
    return {
        table: rows(
            database_url,
            f"select account_ref, partition_key, record_key, payload - %s from raw.{table}"  # noqa: S608
            " order by account_ref, partition_key, record_key",
            (ignore,),
        )
        for table in RAW_TABLES
    }


def test_backfill_lands_exactly_the_worlds_transactions(
    backfill: Backfill, gc_sandbox: GoCardlessSandbox, database_url: str
) -> None:
    assert backfill.result.success
    first_fetched = backfill.first - timedelta(days=LOOKBACK_DAYS)
    expected = world_days(gc_sandbox, first_fetched, backfill.last)
    assert sum(count for count, _ in expected.values()) > 200
    ibans = iban_of(gc_sandbox)
    landed = rows(
        database_url,
        "select account_ref, partition_key, count(*),"
        " sum((payload -> 'transactionAmount' ->> 'amount')::numeric)"
        " from raw.gocardless_transactions group by account_ref, partition_key",
    )
    assert {(ibans[ref], day): (count, total) for ref, day, count, total in landed} == expected
    pending = sum(
        len(gc_sandbox.world.pending(a.account_id)) for a in gc_sandbox.world.accounts_for("gocardless")
    )
    assert scalar(database_url, "select count(*) from raw.gocardless_pending_transactions") == pending
    assert scalar(database_url, "select count(*) from raw.gocardless_accounts") == 3
    assert scalar(database_url, "select count(*) from raw.gocardless_balances") == 3
    assert scalar(database_url, "select count(*) from ops.quarantine where source = 'gocardless'") == 0


def test_staging_equals_the_world_per_account_and_day(
    backfill: Backfill, staged: None, gc_sandbox: GoCardlessSandbox, database_url: str
) -> None:
    first_fetched = backfill.first - timedelta(days=LOOKBACK_DAYS)
    expected = world_days(gc_sandbox, first_fetched, backfill.last)
    staged_days = rows(
        database_url,
        "select a.iban, t.booking_date::text, count(*), sum(t.amount)"
        " from staging.stg_gocardless__transactions t join staging.stg_gocardless__accounts a using (account_ref)"
        " group by a.iban, t.booking_date",
    )
    actual = {(iban, day): (count, total) for iban, day, count, total in staged_days}
    assert actual == expected
    assert all(isinstance(total, Decimal) for _, total in actual.values())
    balances = dict(
        rows(
            database_url,
            "select a.iban, b.current_balance from staging.stg_gocardless__balances b"
            " join staging.stg_gocardless__accounts a using (account_ref)",
        )
    )
    world = gc_sandbox.world
    assert balances == {
        a.iban: world.balance(a.account_id, world.today) for a in world.accounts_for("gocardless")
    }
    pending = rows(database_url, "select status, amount from staging.stg_gocardless__pending_transactions")
    assert sorted(amount for _, amount in pending) == sorted(
        t.amount for a in world.accounts_for("gocardless") for t in world.pending(a.account_id)
    )


def columns(database_url: str, view: str) -> list[tuple]:
    return rows(
        database_url,
        "select column_name, data_type from information_schema.columns"
        " where table_schema = 'staging' and table_name = %s order by ordinal_position",
        (view,),
    )


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("stg_gocardless__transactions", "stg_truelayer__transactions"),
        ("stg_gocardless__pending_transactions", "stg_truelayer__transactions"),
        ("stg_gocardless__accounts", "stg_truelayer__accounts"),
        ("stg_gocardless__balances", "stg_truelayer__balances"),
    ],
)
def test_staging_columns_match_truelayer_for_the_union(
    staged: None, database_url: str, ours: str, theirs: str
) -> None:
    assert columns(database_url, ours) == columns(database_url, theirs) != []


def test_accounts_carry_the_iban(staged: None, gc_sandbox: GoCardlessSandbox, database_url: str) -> None:
    ibans = {r[0] for r in rows(database_url, "select iban from staging.stg_gocardless__accounts")}
    assert ibans == {a.iban for a in gc_sandbox.world.accounts_for("gocardless")}


def test_second_run_same_day_lands_nothing_new_within_budget(
    backfill: Backfill,
    gocardless: GoCardlessResource,
    warehouse: WarehouseResource,
    gc_sandbox: GoCardlessSandbox,
    database_url: str,
) -> None:
    before = raw_snapshot(database_url)
    second = run(gocardless, warehouse, backfill.first, backfill.last)
    assert second.success
    assert raw_snapshot(database_url) == before
    landed = {
        m.asset_key.to_user_string(): m.metadata
        for m in second.asset_materializations_for_node("raw_gocardless")
    }
    txns = landed["raw_gocardless_transactions"]
    assert txns["rows_landed"].value == txns["rows_replaced"].value
    # One call per account and scope per run: two runs, two of the four calls of the day.
    budget = gocardless.budget(database_url)
    for account_id in iban_of(gc_sandbox):
        for scope in ("details", "balances", "transactions"):
            assert budget.remaining(account_id, scope) == 2
            assert gc_sandbox.controls.successes(account_id, scope, gc_sandbox.world.today) == 2
    left = gocardless.calls_left_today(warehouse.vault(), database_url)
    assert left == {a: {"balances": 2, "details": 2, "transactions": 2} for a in iban_of(gc_sandbox)}


def test_spent_budget_plans_no_call_and_keeps_the_data(
    backfill: Backfill,
    gocardless: GoCardlessResource,
    warehouse: WarehouseResource,
    gc_sandbox: GoCardlessSandbox,
    database_url: str,
) -> None:
    before = raw_snapshot(database_url)
    budget = gocardless.budget(database_url)
    for account_id in iban_of(gc_sandbox):
        for scope in ("details", "balances", "transactions"):
            while budget.remaining(account_id, scope):
                budget.spend(account_id, scope)
    gc_sandbox.state.reset_request_counts()
    result = run(gocardless, warehouse, backfill.last, backfill.last)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert failure is not None and "no account could be fetched today" in failure.message
    assert not any("/transactions/" in path for path in gc_sandbox.state.request_counts)
    assert raw_snapshot(database_url) == before
    new_day(gc_sandbox, database_url)


def test_daily_limit_at_the_bank_skips_that_account_only(
    backfill: Backfill,
    gocardless: GoCardlessResource,
    warehouse: WarehouseResource,
    gc_sandbox: GoCardlessSandbox,
    database_url: str,
) -> None:
    new_day(gc_sandbox, database_url)
    before = raw_snapshot(database_url)
    limited = next(iter(iban_of(gc_sandbox)))
    # Another app spent the day's calls: the bank refuses, though our budget thinks 4 are left.
    for _ in range(4):
        gc_sandbox.controls.count_success(limited, "transactions", gc_sandbox.world.today)
    gc_sandbox.state.reset_request_counts()
    result = run(gocardless, warehouse, backfill.last, backfill.last)
    assert result.success
    path = f"{API_PREFIX}/accounts/{limited}/transactions/"
    assert gc_sandbox.state.request_count(path) == 1  # the 429 of the daily limit is not retried
    assert gocardless.budget(database_url).remaining(limited, "transactions") == 0
    landed = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.asset_materializations_for_node("raw_gocardless")
    }
    assert (
        f"transactions of account {limited}: the daily limit is reached"
        in landed["raw_gocardless_transactions"]["accounts_skipped"].value
    )
    assert raw_snapshot(database_url) == before
    new_day(gc_sandbox, database_url)


@pytest.mark.parametrize(
    "switch",
    ["rate_limit_storm", "server_errors", "slow_response", "token_expiry_mid_run", "rebooked_ids"],
)
def test_recoverable_faults_end_in_the_clean_tables(
    switch: str,
    backfill: Backfill,
    gocardless: GoCardlessResource,
    warehouse: WarehouseResource,
    gc_sandbox: GoCardlessSandbox,
    database_url: str,
) -> None:
    new_day(gc_sandbox, database_url)
    # Re-keyed bookings keep their internalTransactionId, so identity (and every other field)
    # stays; only the bank's own transactionId in the payload differs from the clean run.
    ignore = "transactionId" if switch == "rebooked_ids" else ""
    before = raw_snapshot(database_url, ignore)
    state, controls = gc_sandbox.state, gc_sandbox.controls
    if switch == "rate_limit_storm":
        state.set_fault("rate_limit", 3, path_prefix=f"{API_PREFIX}/accounts")
    elif switch == "server_errors":
        state.set_fault("server_error", 2, path_prefix=f"{API_PREFIX}/accounts")
    elif switch == "slow_response":
        controls.set_slow(7.5, count=1)  # the client gives up after 5 s and asks again
    elif switch == "token_expiry_mid_run":
        controls.expire_access_tokens(after_calls=3)
    else:
        controls.rebooked_ids = True
    result = run(gocardless, warehouse, backfill.last - timedelta(days=2), backfill.last)
    assert result.success, switch
    assert raw_snapshot(database_url, ignore) == before
    if switch == "rebooked_ids":  # leave the bank's own ids as the next test expects them
        controls.rebooked_ids = False
        assert run(gocardless, warehouse, backfill.last - timedelta(days=2), backfill.last).success
    new_day(gc_sandbox, database_url)


def test_pending_that_books_under_a_new_id_is_not_counted_twice(
    backfill: Backfill,
    gocardless: GoCardlessResource,
    warehouse: WarehouseResource,
    gc_sandbox: GoCardlessSandbox,
    database_url: str,
) -> None:
    new_day(gc_sandbox, database_url)
    before = raw_snapshot(database_url)
    money = (
        "select (select coalesce(sum((payload -> 'transactionAmount' ->> 'amount')::numeric), 0)"
        " from raw.gocardless_transactions), (select coalesce(sum((payload -> 'transactionAmount' ->>"
        " 'amount')::numeric), 0) from raw.gocardless_pending_transactions)"
    )
    booked_before, pending_before = rows(database_url, money)[0]
    pending_count = scalar(database_url, "select count(*) from raw.gocardless_pending_transactions")
    assert pending_count > 0  # the world has card payments in flight today
    gc_sandbox.controls.book_pending = True
    assert run(gocardless, warehouse, backfill.last - timedelta(days=2), backfill.last).success
    booked_after, pending_after = rows(database_url, money)[0]
    # The pending set is replaced, not appended to: each payment is in exactly one table.
    assert pending_after == 0
    assert scalar(database_url, "select count(*) from raw.gocardless_pending_transactions") == 0
    assert booked_after == booked_before + pending_before
    gc_sandbox.controls.book_pending = False
    assert run(gocardless, warehouse, backfill.last - timedelta(days=2), backfill.last).success
    assert raw_snapshot(database_url) == before
    new_day(gc_sandbox, database_url)


@pytest.mark.parametrize("switch", ["malformed_json", "consent_expired", "consent_revoked"])
def test_unrecoverable_faults_fail_clearly_and_keep_the_data(
    switch: str,
    backfill: Backfill,
    gocardless: GoCardlessResource,
    warehouse: WarehouseResource,
    gc_sandbox: GoCardlessSandbox,
    database_url: str,
) -> None:
    new_day(gc_sandbox, database_url)
    before = raw_snapshot(database_url)
    if switch == "malformed_json":
        gc_sandbox.state.set_fault("malformed_json", 1, path_prefix=f"{API_PREFIX}/accounts")
    else:
        gc_sandbox.controls.set_consent_problem("expired" if switch == "consent_expired" else "revoked")
    result = run(gocardless, warehouse, backfill.last - timedelta(days=2), backfill.last)
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message  # type: ignore[union-attr]
    if switch == "malformed_json":
        assert "not valid JSON" in message
    else:
        assert "bankflow connect gocardless" in message
    assert raw_snapshot(database_url) == before
    new_day(gc_sandbox, database_url)


def test_tokens_are_encrypted_and_never_logged(
    backfill: Backfill,
    gocardless: GoCardlessResource,
    warehouse: WarehouseResource,
    gc_sandbox: GoCardlessSandbox,
    database_url: str,
    secret_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    new_day(gc_sandbox, database_url)
    gc_sandbox.controls.expire_access_tokens()  # force a refresh inside the captured run
    with caplog.at_level(logging.DEBUG):
        result = run(gocardless, warehouse, backfill.last, backfill.last)
    assert result.success
    tokens = TokenVault(database_url, secret_key).load(CONNECTION)
    assert tokens is not None
    stored = bytes(
        scalar(
            database_url,
            "select encrypted_tokens from ops.connections where connection_name = %s",
            (CONNECTION,),
        )  # type: ignore[arg-type]
    )
    secrets = (tokens["access"], tokens["refresh"], gocardless.secret_key)
    captured = caplog.text + "\n".join(str(event) for event in result.all_events)
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret not in captured
    new_day(gc_sandbox, database_url)
