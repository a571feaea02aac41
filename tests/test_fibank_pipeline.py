"""End to end: Fibank e-banking sandbox over HTTP -> raw_fibank -> dbt staging and marts, in real Postgres.

A 90-day backfill equals the world (counts and exact sums per account and Sofia day), read in
<= 30-day statements; summary rows are counted, not landed; one account's HTTP 500 keeps that
account's rows and the next run fills them; a session timing out mid-run costs one login; a
wrong password stops the run with a clear message and no password anywhere; a rerun lands
nothing new; every fault switch ends in the same tables or a clear error with the data intact.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from pipeline_runs import MODELS_AND_SEEDS_ONLY, rows
from test_fibank_sandbox import TODAY, RunningFibank, running_fibank

from pipelines.partitions import LOOKBACK_DAYS
from pipelines.sources.fibank.assets import ACCOUNTS_CHECK, RAW_TABLES, raw_fibank
from pipelines.sources.landing import QUARANTINE_CHECK
from pipelines.transform.project import DBT_PROJECT_DIR
from resources.providers.fibank_resource import FibankResource
from resources.warehouse.resource import WarehouseResource
from sandbox.fibank import API_PREFIX, LOGIN, SOFIA, STATEMENT, StatementRequest
from tests.pipeline_runs import forget_staged

BACKFILL_DAYS = 90
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def fb() -> Iterator[RunningFibank]:
    yield from running_fibank()


@pytest.fixture(autouse=True)
def _clean(fb: RunningFibank) -> Iterator[None]:
    yield
    fb.reset()


def make_resource(fb: RunningFibank, **overrides: object) -> FibankResource:
    settings: dict[str, object] = {
        "base_url": fb.url,
        "username": fb.state.client_id,
        "password": fb.state.client_secret,
        "max_attempts": 3,
        "backoff_initial_seconds": 0.01,
        "requests_per_minute": 0,
        **overrides,
    }
    return FibankResource(**settings)  # type: ignore[arg-type]


def run(
    fb: RunningFibank,
    warehouse: WarehouseResource,
    first: date,
    last: date,
    instance: dg.DagsterInstance | None = None,
    **overrides: object,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_fibank],
        instance=instance,
        resources={"fibank": make_resource(fb, **overrides), "warehouse": warehouse},
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        raise_on_error=False,
    )


def fetched(first: date, last: date) -> tuple[date, date]:
    """Half-open booking days a run over first..last covers, lookback included."""
    return first - timedelta(days=LOOKBACK_DAYS), last + DAY


@dataclass(frozen=True)
class Backfill:
    first: date
    last: date
    result: dg.ExecuteInProcessResult
    log_text: str
    statement_requests: list[StatementRequest]

    @property
    def fetched(self) -> tuple[date, date]:
        return fetched(self.first, self.last)

    def metadata(self, asset: str) -> dict:
        return {
            m.asset_key.to_user_string(): m.metadata
            for m in self.result.asset_materializations_for_node("raw_fibank")
        }[asset]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def captured_run(
    fb: RunningFibank, warehouse: WarehouseResource, first: date, last: date, **overrides: object
) -> tuple[dg.ExecuteInProcessResult, str]:
    """A run, with every log record it produced: Python logging (any logger, any level) and the
    run's Dagster log (what `context.log` wrote)."""
    handler, root = _Capture(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            result = run(fb, warehouse, first, last, instance=instance, **overrides)
            dagster_log = [entry.user_message for entry in instance.all_logs(result.run_id)]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return result, "\n".join(handler.lines + dagster_log)


@pytest.fixture(scope="module")
def backfill(fb: RunningFibank, warehouse: WarehouseResource, database_url: str) -> Backfill:
    # Other tests of the session may have landed Fibank rows from another sandbox world.
    with psycopg.connect(database_url) as conn:
        for table in RAW_TABLES:
            conn.execute(f"delete from raw.{table}")  # noqa: S608 - fixed names
        forget_staged(conn, "stg_fibank__transactions")
    last = TODAY
    first = last - timedelta(days=BACKFILL_DAYS - 1)
    fb.reset()
    result, log_text = captured_run(fb, warehouse, first, last)
    assert result.success
    dbt_build(warehouse)
    return Backfill(first, last, result, log_text, fb.options.statement_requests)


def dbt(warehouse: WarehouseResource, *args: str) -> None:
    executable = str(Path(sys.executable).parent / "dbt")
    completed = subprocess.run(
        [
            executable,
            *args,
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            "target/fibank_pipeline_test",
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **warehouse.dbt_env()},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]


def dbt_build(warehouse: WarehouseResource) -> None:
    """Fibank's staging models with their tests, unit test and the Sofia-day check."""
    dbt(warehouse, "build", "--select", "staging.fibank", "assert_fibank_booking_date_is_the_sofia_day")


# -- what the world says and what the warehouse holds -------------------------------------------------


def world_per_account_day(fb: RunningFibank, start: date, end: date) -> dict[tuple[str, date], tuple]:
    totals: dict = defaultdict(lambda: [0, Decimal(0)])
    for account in fb.accounts:
        for txn in fb.world.booked(account.account_id, start, end):
            totals[(account.iban, txn.booking_date)][0] += 1
            totals[(account.iban, txn.booking_date)][1] += txn.amount
    return {key: tuple(value) for key, value in totals.items()}


def raw_snapshot(database_url: str) -> list[tuple]:
    return rows(
        database_url,
        "select account_ref, partition_key, record_key, payload from raw.fibank_transactions"
        " order by account_ref, record_key",
    )


def raw_of(database_url: str, iban: str, days: list[str]) -> list[tuple]:
    return rows(
        database_url,
        "select partition_key, record_key, payload from raw.fibank_transactions"
        " where account_ref = %s and partition_key = any(%s) order by record_key",
        (iban, days),
    )


def days_of(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


# -- the backfill --------------------------------------------------------------------------------------


def test_backfill_equals_the_worlds_truth_per_account_and_day(
    backfill: Backfill, fb: RunningFibank, database_url: str
) -> None:
    start, end = backfill.fetched
    expected = world_per_account_day(fb, start, end)
    assert sum(count for count, _ in expected.values()) > 150
    raw_counts = Counter(
        {
            (account, date.fromisoformat(day)): count
            for account, day, count in rows(
                database_url,
                "select account_ref, partition_key, count(*) from raw.fibank_transactions group by 1, 2",
            )
        }
    )
    assert raw_counts == Counter({key: count for key, (count, _) in expected.items()})
    staged = {
        (account, day): (count, total)
        for account, day, count, total in rows(
            database_url,
            "select account_ref, booking_date, count(*), sum(amount) from staging.stg_fibank__transactions"
            " group by 1, 2",
        )
    }
    assert staged == expected
    assert all(isinstance(total, Decimal) for _, total in staged.values())


def test_backfill_is_read_in_30_day_statements_with_no_gap_or_duplicate(
    backfill: Backfill, fb: RunningFibank, database_url: str
) -> None:
    start, end = backfill.fetched
    assert backfill.metadata("raw_fibank_transactions")["statement_periods"].value == 4  # 93 days
    for account in fb.accounts:
        # The window ends in the world's past: one more statement of the real today gives the balance.
        requests = [r for r in backfill.statement_requests if r.iban == account.iban]
        periods = sorted((r.start, r.end) for r in requests if r.start.date() < end)
        assert len(periods) == 4 and len(requests) == 5
        assert periods[0][0] == datetime.combine(start, time(0), tzinfo=SOFIA)
        assert periods[-1][1] == datetime.combine(end - DAY, time(23, 59, 59), tzinfo=SOFIA)
        for (_, previous_end), (next_start, _) in zip(periods, periods[1:], strict=False):
            assert next_start - previous_end == timedelta(seconds=1)
        assert all(
            (stop.astimezone(SOFIA).date() - begin.astimezone(SOFIA).date()).days + 1 <= 30
            for begin, stop in periods
        )
    assert {r.status for r in backfill.statement_requests} == {200}
    assert (
        rows(
            database_url,
            "select account_ref, record_key from raw.fibank_transactions group by 1, 2 having count(*) > 1",
        )
        == []
    )


def test_summary_rows_are_dropped_and_counted(
    backfill: Backfill, fb: RunningFibank, database_url: str
) -> None:
    calls = 4 * len(fb.accounts)
    metadata = backfill.metadata("raw_fibank_transactions")
    assert metadata["summary_rows_dropped"].value == 4 * calls
    assert metadata["summary_rows_by_type"].value == {"OP": calls, "CL": calls, "DT": calls, "CT": calls}
    assert metadata["accounts_failed"].value == 0
    assert rows(database_url, "select distinct payload ->> 'trnType' from raw.fibank_transactions") == [
        ("TR",)
    ]
    checks = backfill.result.get_asset_check_evaluations()
    assert {c.check_name: c.passed for c in checks} == {ACCOUNTS_CHECK: True, QUARANTINE_CHECK: True}


def test_a_0030_summer_row_is_booked_on_its_sofia_day(backfill: Backfill, database_url: str) -> None:
    batch = rows(
        database_url,
        "select booking_date, booked_at, value_date from staging.stg_fibank__transactions"
        " where bank_transaction_code = 'FEE' order by booking_date",
    )
    summer = [row for row in batch if row[0] < date(2025, 10, 26)]
    winter = [row for row in batch if row[0] > date(2025, 10, 26)]
    assert summer and winter
    for booking_date, booked_at, _ in summer:
        # 00:30 +0300 is 21:30 UTC of the day before; the movement is still on its Sofia day.
        assert booked_at.astimezone(SOFIA).strftime("%H:%M%z") == "00:30+0300"
        assert booked_at.astimezone(UTC).date() == booking_date - DAY
    for booking_date, booked_at, _ in winter:
        assert booked_at.astimezone(SOFIA).strftime("%H:%M%z") == "00:30+0200"
        assert booked_at.astimezone(UTC).date() == booking_date - DAY
    raw = rows(
        database_url,
        "select partition_key, payload ->> 'dateTime' from raw.fibank_transactions"
        " where payload ->> 'dateTime' like '%%T00:30:00+0300'",
    )
    assert raw and all(day == text[:10] for day, text in raw)


def test_balances_accounts_and_staging_shape(
    backfill: Backfill, fb: RunningFibank, database_url: str
) -> None:
    balances = dict(
        rows(database_url, "select account_ref, current_balance from staging.stg_fibank__balances")
    )
    assert balances == {a.iban: fb.world.balance(a.account_id, TODAY) for a in fb.accounts}
    accounts = rows(
        database_url,
        "select iban, currency, account_type, bank_name from staging.stg_fibank__accounts order by 1",
    )
    assert accounts == sorted((a.iban, a.currency, "TRANSACTION", "Fibank") for a in fb.accounts)

    def columns(table: str) -> list[tuple]:
        return rows(
            database_url,
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'staging' and table_name = %s order by ordinal_position",
            (table,),
        )

    for fibank, other in [
        ("stg_fibank__transactions", "stg_truelayer__transactions"),
        ("stg_fibank__accounts", "stg_truelayer__accounts"),
        ("stg_fibank__balances", "stg_truelayer__balances"),
    ]:
        if columns(other):  # built when the TrueLayer pipeline tests ran in this session
            assert columns(fibank) == columns(other)
    assert [name for name, _ in columns("stg_fibank__transactions")] == [
        "transaction_key", "source", "account_ref", "source_transaction_id", "entry_reference",
        "end_to_end_id", "status", "booking_date", "value_date", "booked_at", "amount", "currency",
        "counterparty_name", "counterparty_iban", "merchant_name", "mcc", "description",
        "transaction_type", "bank_transaction_code", "provider_category", "provider_subcategory",
        "balance_after", "raw_record_key", "raw_partition_key", "fetched_at",
    ]  # fmt: skip


def test_the_rows_reach_the_canonical_marts(
    backfill: Backfill, fb: RunningFibank, warehouse: WarehouseResource, database_url: str
) -> None:
    # build, not run: the marts join seeds (FX rates), which only build (or seed) loads.
    dbt(
        warehouse,
        "build",
        "--select",
        "+fct_transactions",
        "+dim_accounts",
        "+fct_balances",
        "--full-refresh",
        *MODELS_AND_SEEDS_ONLY,
    )
    marts = {
        (iban, day): (count, total)
        for iban, day, count, total in rows(
            database_url,
            "select d.iban, f.booking_date, count(*), sum(f.amount) from marts.fct_transactions f"
            " join marts.dim_accounts d using (account_key) where f.source = 'fibank' group by 1, 2",
        )
    }
    assert marts == world_per_account_day(fb, *backfill.fetched)
    dim = rows(
        database_url,
        "select iban, currency, sources from marts.dim_accounts where iban = any(%s) order by 1",
        ([a.iban for a in fb.accounts],),
    )
    assert dim == sorted((a.iban, a.currency, "fibank") for a in fb.accounts)
    balances = dict(
        rows(
            database_url,
            "select account_key, current_balance from marts.fct_balances where source = 'fibank'",
        )
    )
    assert sorted(balances.values()) == sorted(fb.world.balance(a.account_id, TODAY) for a in fb.accounts)


# -- reruns and failures -------------------------------------------------------------------------------


def test_a_second_run_of_the_same_window_lands_nothing_new(
    backfill: Backfill, fb: RunningFibank, warehouse: WarehouseResource, database_url: str
) -> None:
    before = raw_snapshot(database_url)
    again = run(fb, warehouse, backfill.first, backfill.last)
    assert again.success
    assert raw_snapshot(database_url) == before
    landed = {
        m.asset_key.to_user_string(): m.metadata for m in again.asset_materializations_for_node("raw_fibank")
    }
    transactions = landed["raw_fibank_transactions"]
    assert transactions["rows_landed"].value == transactions["rows_replaced"].value > 0


def test_one_accounts_500_keeps_its_rows_lands_the_others_and_the_next_run_fills_it(
    backfill: Backfill, fb: RunningFibank, warehouse: WarehouseResource, database_url: str
) -> None:
    failing, healthy = fb.accounts
    day = backfill.last - timedelta(days=20)
    days = days_of(*fetched(day, day)[:1], day)
    before_failing, before_healthy = (
        raw_of(database_url, failing.iban, days),
        raw_of(database_url, healthy.iban, days),
    )
    assert before_failing and before_healthy
    fb.options.fail_account(failing.iban)
    result, log_text = captured_run(fb, warehouse, day, day)
    assert result.success
    assert raw_of(database_url, failing.iban, days) == before_failing  # kept, not wiped
    assert raw_of(database_url, healthy.iban, days) == before_healthy  # replaced by the same rows
    landed = {
        m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("raw_fibank")
    }
    assert landed["raw_fibank_transactions"]["accounts_failed"].value == 1
    assert list(landed["raw_fibank_transactions"]["failed_accounts"].value) == [failing.iban]
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == ACCOUNTS_CHECK]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert f"fibank account {failing.iban} not read" in log_text

    # An account that missed its rows gets them from the next run once the bank serves it again.
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "delete from raw.fibank_transactions where account_ref = %s and partition_key = any(%s)",
            (failing.iban, days),
        )
    assert run(fb, warehouse, day, day).success
    assert raw_of(database_url, failing.iban, days) == []
    fb.options.heal_accounts()
    assert run(fb, warehouse, day, day).success
    assert [r[:2] for r in raw_of(database_url, failing.iban, days)] == [r[:2] for r in before_failing]
    assert raw_of(database_url, failing.iban, days) == before_failing


def test_a_session_expiring_mid_run_logs_in_once_more(
    backfill: Backfill, fb: RunningFibank, warehouse: WarehouseResource, database_url: str
) -> None:
    before = raw_snapshot(database_url)
    fb.options.expire_sessions_after = 3
    assert run(fb, warehouse, backfill.first, backfill.last).success
    assert fb.options.logins == 2
    assert raw_snapshot(database_url) == before


def test_a_wrong_password_stops_with_a_clear_error_and_leaks_nothing(
    backfill: Backfill, fb: RunningFibank, warehouse: WarehouseResource, database_url: str
) -> None:
    before = raw_snapshot(database_url)
    password = "N0t-The-Passw0rd"
    result, log_text = captured_run(fb, warehouse, backfill.last, backfill.last, password=password)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert "fibank: the bank refused the username or password" in failure.message
    assert "BANKFLOW_FIBANK_PASSWORD" in failure.message
    events = "\n".join(str(event) for event in result.all_events)
    for secret in (password, fb.state.client_secret, fb.state.client_id):
        assert secret not in events and secret not in log_text
    assert fb.options.failed_logins == 1  # not retried into a lockout
    assert raw_snapshot(database_url) == before


def test_the_session_token_never_reaches_logs_events_or_the_warehouse(
    backfill: Backfill, fb: RunningFibank, database_url: str
) -> None:
    events = "\n".join(str(event) for event in backfill.result.all_events)
    for secret in (fb.state.client_secret, fb.state.client_id):
        assert secret not in events and secret not in backfill.log_text
    tokens = list(fb.options._tokens)
    assert tokens
    for token in tokens:
        assert token not in events and token not in backfill.log_text
    assert rows(database_url, "select count(*) from ops.connections where provider = 'fibank'") == [(0,)]


def _faults() -> dict[str, tuple[Callable[[RunningFibank], None], dict[str, object], bool]]:
    """name -> (switch, resource overrides, ends in success)."""
    return {
        "5xx burst": (lambda fb: fb.state.set_fault("server_error", 2, API_PREFIX), {}, True),
        "429 with Retry-After": (lambda fb: fb.state.set_fault("rate_limit", 2, API_PREFIX), {}, True),
        "unauthorized burst": (lambda fb: fb.state.set_fault("unauthorized", 1, STATEMENT), {}, True),
        "session expiry": (lambda fb: setattr(fb.options, "expire_sessions_after", 1), {}, True),
        "slow responses": (
            lambda fb: (setattr(fb.state, "slow_seconds", 0.4), fb.state.set_fault("slow", 2, API_PREFIX)),
            {"timeout_seconds": 0.2},
            True,
        ),
        "one account's HTTP 500": (lambda fb: fb.options.fail_account(fb.accounts[0].iban), {}, True),
        "malformed statement JSON": (lambda fb: fb.state.set_fault("malformed_json", 1, STATEMENT), {}, True),
        "every account's HTTP 500": (
            lambda fb: [fb.options.fail_account(a.iban) for a in fb.accounts] and None,
            {},
            False,
        ),
        "5xx outage": (lambda fb: fb.state.set_fault("server_error", None, API_PREFIX), {}, False),
        "login page outage": (lambda fb: fb.state.set_fault("server_error", None, LOGIN), {}, False),
    }


@pytest.mark.parametrize("name", list(_faults()))
def test_every_fault_ends_in_the_clean_tables_or_a_clear_error(
    name: str, backfill: Backfill, fb: RunningFibank, warehouse: WarehouseResource, database_url: str
) -> None:
    switch, overrides, succeeds = _faults()[name]
    day = backfill.last - timedelta(days=30)
    before = raw_snapshot(database_url)
    switch(fb)
    result = run(fb, warehouse, day, day, **overrides)
    fb.reset()
    assert result.success is succeeds
    if not succeeds:
        failure = result.get_step_failure_events()[0].event_specific_data.error
        assert "fibank:" in failure.message
    assert raw_snapshot(database_url) == before
