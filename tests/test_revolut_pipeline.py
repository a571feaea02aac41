"""End to end: Revolut sandbox over HTTP -> raw_revolut -> dbt staging, in real Postgres.

A 90-day backfill lands exactly the world's Revolut transactions; every fault switch ends in the
same tables as a clean run or in a clear error with the previous data intact; a rerun lands
nothing new; tokens are encrypted at rest and never logged.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from pipeline_runs import rows
from psycopg import sql
from test_revolut_sandbox import RunningRevolut, consent_code, running_revolut, world_with_pending

from pipelines.partitions import LOOKBACK_DAYS
from pipelines.sources.revolut.assets import RAW_TABLES, raw_revolut
from pipelines.transform.project import DBT_PROJECT_DIR
from resources.providers.revolut import exchange_code
from resources.providers.revolut_resource import RevolutResource
from resources.vault import TokenVault
from resources.warehouse.resource import WarehouseResource

BACKFILL_DAYS = 90
TRANSACTION_COLUMNS = [
    ("transaction_key", "text"),
    ("source", "text"),
    ("account_ref", "text"),
    ("source_transaction_id", "text"),
    ("entry_reference", "text"),
    ("end_to_end_id", "text"),
    ("status", "text"),
    ("booking_date", "date"),
    ("value_date", "date"),
    ("booked_at", "timestamp with time zone"),
    ("amount", "numeric"),
    ("currency", "text"),
    ("counterparty_name", "text"),
    ("counterparty_iban", "text"),
    ("merchant_name", "text"),
    ("mcc", "text"),
    ("description", "text"),
    ("transaction_type", "text"),
    ("bank_transaction_code", "text"),
    ("provider_category", "text"),
    ("provider_subcategory", "text"),
    ("balance_after", "numeric"),
    ("raw_record_key", "text"),
    ("raw_partition_key", "text"),
    ("fetched_at", "timestamp with time zone"),
]


@pytest.fixture(scope="module")
def rv() -> Iterator[RunningRevolut]:
    # A world whose today has card payments still pending, so the pending path runs end to end.
    yield from running_revolut(world_with_pending())


@pytest.fixture(autouse=True)
def _clean(rv: RunningRevolut) -> Iterator[None]:
    yield
    rv.reset()


def make_resource(rv: RunningRevolut, **overrides: object) -> RevolutResource:
    settings: dict[str, object] = {
        "api_url": rv.api_url,
        "consent_url": rv.consent_url,
        "client_id": rv.state.client_id,
        "private_key_pem": rv.keys.private_pem,
        "max_attempts": 4,
        "backoff_initial_seconds": 0.01,
        # Tests are not throttled to 60/min; pacing has its own test in test_revolut_client.
        "requests_per_minute": 0,
        **overrides,
    }
    return RevolutResource(**settings)  # type: ignore[arg-type]


def connect(rv: RunningRevolut, resource: RevolutResource, vault: TokenVault) -> None:
    exchange_code(resource.config(), consent_code(rv), vault=vault, connection_name=resource.connection_name)


@pytest.fixture(scope="module")
def vault(database_url: str, secret_key: str) -> Iterator[TokenVault]:
    """The session's vault with this module's Revolut connection in it; the session's own
    connection (to the shared sandbox, which later modules run against) is put back afterwards."""
    with psycopg.connect(database_url) as conn:
        for table in RAW_TABLES:
            conn.execute(f"drop table if exists raw.{table} cascade")  # noqa: S608 - fixed names
        saved = conn.execute("select * from ops.connections where connection_name = 'revolut'")
        columns = [column.name for column in saved.description]
        session_rows = saved.fetchall()
        conn.execute("delete from ops.connections where connection_name = 'revolut'")
    yield TokenVault(database_url, secret_key)
    with psycopg.connect(database_url) as conn:
        conn.execute("delete from ops.connections where connection_name = 'revolut'")
        insert = sql.SQL("insert into ops.connections ({}) values ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        )
        for row in session_rows:
            conn.execute(insert, row)


def run(
    rv: RunningRevolut, warehouse: WarehouseResource, first: date, last: date, **overrides: object
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_revolut],
        resources={"revolut": make_resource(rv, **overrides), "warehouse": warehouse},
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        raise_on_error=False,
    )


@dataclass(frozen=True)
class Backfill:
    first: date
    last: date
    result: dg.ExecuteInProcessResult
    log_text: str

    @property
    def fetched(self) -> tuple[date, date]:
        """Half-open booking days the run covered, lookback included."""
        return self.first - timedelta(days=LOOKBACK_DAYS), self.last + timedelta(days=1)


@pytest.fixture(scope="module")
def backfill(rv: RunningRevolut, warehouse: WarehouseResource, vault: TokenVault) -> Iterator[Backfill]:
    connect(rv, make_resource(rv), vault)
    last = rv.world.today
    first = last - timedelta(days=BACKFILL_DAYS - 1)
    handler = _Capture()
    logging.getLogger().addHandler(handler)
    try:
        result = run(rv, warehouse, first, last)
    finally:
        logging.getLogger().removeHandler(handler)
    assert result.success
    dbt_build(warehouse)
    yield Backfill(first, last, result, "\n".join(handler.lines))


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def dbt_build(warehouse: WarehouseResource, *selection: str) -> None:
    dbt = str(Path(sys.executable).parent / "dbt")
    completed = subprocess.run(
        [
            dbt,
            "build",
            "--select",
            *(selection or ["staging.revolut"]),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
        ]
        + ["--target-path", "target/revolut_pipeline_test"],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **warehouse.dbt_env()},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]


# -- what the world says ------------------------------------------------------------------------------


def world_rows(rv: RunningRevolut, start: date, end: date) -> list:
    return [
        txn for a in rv.world.accounts_for("revolut") for txn in rv.world.booked(a.account_id, start, end)
    ]


def expected_raw_counts(rv: RunningRevolut, start: date, end: date) -> Counter:
    """One raw row per Revolut transaction: an exchange's incoming leg is in its outgoing leg's row."""
    ours = {a.account_id for a in rv.world.accounts_for("revolut")}
    counts: Counter = Counter()
    for txn in world_rows(rv, start, end):
        if txn.transfer_group and txn.counterparty_account_id in ours and txn.amount > 0:
            continue
        counts[(txn.account_id, txn.booking_date.isoformat())] += 1
    return counts


def expected_per_account_day(rv: RunningRevolut, start: date, end: date) -> dict:
    totals: dict = defaultdict(lambda: [0, Decimal(0)])
    for txn in world_rows(rv, start, end):
        key = (txn.account_id, txn.booking_date)
        totals[key][0] += 1
        totals[key][1] += txn.amount
    return {key: tuple(value) for key, value in totals.items()}


# -- what the warehouse holds ---------------------------------------------------------------------------


def raw_snapshot(database_url: str) -> list[tuple]:
    return rows(
        database_url,
        "select account_ref, partition_key, record_key, payload from raw.revolut_transactions"
        " order by account_ref, record_key",
    )


def staging_snapshot(database_url: str) -> list[tuple]:
    return rows(
        database_url,
        "select transaction_key, account_ref, status, booking_date, booked_at, amount, currency, description,"
        " balance_after from staging.stg_revolut__transactions"
        " union all select transaction_key, account_ref, status, booking_date, booked_at, amount, currency,"
        " description, balance_after from staging.stg_revolut__fees order by 1",
    )


def snapshot(
    database_url: str, restaged_by: WarehouseResource | None = None
) -> tuple[list[tuple], list[tuple]]:
    """Raw and staging; staging restaged first (`restaged_by`) after a run landed raw again: the
    staging tables change only when dbt runs."""
    if restaged_by is not None:
        restage(restaged_by)
    return raw_snapshot(database_url), staging_snapshot(database_url)


def restage(warehouse: WarehouseResource) -> None:
    """The incremental Revolut staging models (the pipeline's dbt step after an extract)."""
    dbt_build(warehouse, "stg_revolut__transactions", "stg_revolut__fees")


# -- tests ----------------------------------------------------------------------------------------------


def test_backfill_lands_exactly_the_worlds_transactions_in_raw(
    backfill: Backfill, rv: RunningRevolut, database_url: str
) -> None:
    start, end = backfill.fetched
    expected = expected_raw_counts(rv, start, end)
    actual = Counter(
        {
            (account, day): count
            for account, day, count in rows(
                database_url,
                "select account_ref, partition_key, count(*) from raw.revolut_transactions group by 1, 2",
            )
        }
    )
    assert sum(expected.values()) > 40
    assert actual == expected
    assert rows(database_url, "select count(*) from raw.revolut_accounts")[0][0] == 2
    assert rows(database_url, "select count(*) from raw.revolut_balances")[0][0] == 2


def test_staging_counts_and_exact_sums_per_account_and_day_equal_the_world(
    backfill: Backfill, rv: RunningRevolut, database_url: str
) -> None:
    start, end = backfill.fetched
    legs = {
        (account, day): (count, total)
        for account, day, count, total in rows(
            database_url,
            "select account_ref, booking_date, count(*), sum(amount) from staging.stg_revolut__transactions"
            " group by 1, 2",
        )
    }
    fees = dict(
        ((account, day), total)
        for account, day, total in rows(
            database_url,
            "select account_ref, booking_date, sum(amount) from staging.stg_revolut__fees group by 1, 2",
        )
    )
    assert fees, "the sandbox charges exchange fees: the fee model must have rows"
    actual = {key: (count, total + fees.get(key, Decimal(0))) for key, (count, total) in legs.items()}
    assert actual == expected_per_account_day(rv, start, end)
    assert all(isinstance(total, Decimal) for _, total in actual.values())


def test_exchanges_are_two_legs_of_one_transaction(backfill: Backfill, database_url: str) -> None:
    legs_per_exchange = rows(
        database_url,
        "select source_transaction_id, count(*), count(distinct account_ref), count(distinct currency)"
        " from staging.stg_revolut__transactions where bank_transaction_code = 'exchange' group by 1",
    )
    assert legs_per_exchange and all(row[1:] == (2, 2, 2) for row in legs_per_exchange)


def test_staging_columns_match_the_truelayer_contract(backfill: Backfill, database_url: str) -> None:
    def columns(table: str) -> list[tuple]:
        return rows(
            database_url,
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'staging' and table_name = %s order by ordinal_position",
            (table,),
        )

    for model in ("stg_revolut__transactions", "stg_revolut__pending_transactions", "stg_revolut__fees"):
        assert columns(model) == TRANSACTION_COLUMNS, model
    for revolut, truelayer in [
        ("stg_revolut__transactions", "stg_truelayer__transactions"),
        ("stg_revolut__accounts", "stg_truelayer__accounts"),
        ("stg_revolut__balances", "stg_truelayer__balances"),
    ]:
        if columns(truelayer):  # built when the TrueLayer pipeline tests ran in this session
            assert columns(revolut) == columns(truelayer)
    assert [name for name, _ in columns("stg_revolut__accounts")] == [
        "source", "account_ref", "iban", "account_number", "sort_code", "swift_bic", "currency",
        "account_type", "display_name", "bank_provider_id", "bank_name", "owner_name", "fetched_at",
    ]  # fmt: skip
    assert [name for name, _ in columns("stg_revolut__balances")] == [
        "balance_key", "source", "account_ref", "fetched_on", "currency", "current_balance",
        "available_balance", "overdraft_limit", "reported_at", "fetched_at",
    ]  # fmt: skip


def test_a_second_run_of_the_same_window_lands_nothing_new(
    backfill: Backfill, rv: RunningRevolut, warehouse: WarehouseResource, database_url: str
) -> None:
    before = snapshot(database_url)
    again = run(rv, warehouse, backfill.first, backfill.last)
    assert again.success
    assert snapshot(database_url, restaged_by=warehouse) == before
    landed = {
        m.asset_key.to_user_string(): m.metadata for m in again.asset_materializations_for_node("raw_revolut")
    }
    transactions = landed["raw_revolut_transactions"]
    assert transactions["rows_landed"].value == transactions["rows_replaced"].value > 0


def _faults() -> dict[str, tuple[Callable[[RunningRevolut], None], dict[str, object], bool]]:
    """name -> (switch, resource overrides, ends in success)."""
    return {
        "429 storm with Retry-After": (lambda rv: rv.state.set_fault("rate_limit", 3, "/api/1.0"), {}, True),
        "5xx burst": (lambda rv: rv.state.set_fault("server_error", 2, "/api/1.0"), {}, True),
        "slow responses": (
            lambda rv: (setattr(rv.options, "slow_seconds", 0.4), setattr(rv.options, "slow_requests", 2)),
            {"timeout_seconds": 0.2},
            True,
        ),
        "token expiry mid-run": (lambda rv: rv.options.expire_access_tokens(), {}, True),
        "unauthorized burst": (
            lambda rv: rv.state.set_fault("unauthorized", 1, "/api/1.0/accounts"),
            {},
            True,
        ),
        "page-border ties": (
            lambda rv: setattr(rv.options, "page_border_ties", True),
            {"page_size": 2},
            True,
        ),
        "malformed JSON": (
            lambda rv: rv.state.set_fault("malformed_json", 1, "/api/1.0/transactions"),
            {},
            False,
        ),
        "5xx outage": (lambda rv: rv.state.set_fault("server_error", None, "/api/1.0"), {}, False),
    }


@pytest.mark.parametrize("name", list(_faults()))
def test_every_fault_ends_in_the_clean_tables_or_a_clear_error(
    name: str, backfill: Backfill, rv: RunningRevolut, warehouse: WarehouseResource, database_url: str
) -> None:
    switch, overrides, succeeds = _faults()[name]
    day = backfill.last - timedelta(days=20)
    raw_before, staging_before = snapshot(database_url)
    switch(rv)
    result = run(rv, warehouse, day, day, **overrides)
    rv.reset()
    assert result.success is succeeds
    if not succeeds:
        failure = result.get_step_failure_events()[0].event_specific_data.error
        assert "revolut:" in failure.message
    raw_after, staging_after = snapshot(database_url, restaged_by=warehouse)
    assert staging_after == staging_before
    if name == "page-border ties":
        # created_at moved onto the tie instant; identities and days are unchanged.
        assert [r[:3] for r in raw_after] == [r[:3] for r in raw_before]
    else:
        assert raw_after == raw_before


def test_revoked_consent_stops_with_the_reconnect_command_and_keeps_data(
    backfill: Backfill, rv: RunningRevolut, warehouse: WarehouseResource, database_url: str, vault: TokenVault
) -> None:
    before = snapshot(database_url)
    rv.options.revoke_consent()
    try:
        result = run(rv, warehouse, backfill.last, backfill.last)
        assert not result.success
        failure = result.get_step_failure_events()[0].event_specific_data.error
        assert "bankflow connect revolut" in failure.message
        assert snapshot(database_url, restaged_by=warehouse) == before
    finally:
        connect(rv, make_resource(rv), vault)


def test_tokens_are_encrypted_at_rest_and_never_logged(
    backfill: Backfill, rv: RunningRevolut, database_url: str, vault: TokenVault, secret_key: str
) -> None:
    tokens = vault.load("revolut")
    assert tokens is not None
    stored = bytes(
        rows(database_url, "select encrypted_tokens from ops.connections where connection_name = 'revolut'")[
            0
        ][0]
    )
    events = "\n".join(str(event) for event in backfill.result.all_events)
    key_body = rv.keys.private_pem.splitlines()[1]
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert token.encode() not in stored
    for secret in (tokens["access_token"], tokens["refresh_token"], key_body, secret_key):
        assert secret not in events
        assert secret not in backfill.log_text
    assert "oa_sand_" not in events and "oa_sand_" not in backfill.log_text


def test_pending_payments_booked_under_a_new_id_are_not_doubled(
    backfill: Backfill, rv: RunningRevolut, warehouse: WarehouseResource, database_url: str
) -> None:
    today = rv.world.today
    pending = [txn for a in rv.world.accounts_for("revolut") for txn in rv.world.pending(a.account_id)]
    pending_ids = {
        row[0]
        for row in rows(
            database_url, "select source_transaction_id from staging.stg_revolut__pending_transactions"
        )
    }
    assert len(pending_ids) == len(pending) > 0
    assert rows(database_url, "select sum(amount) from staging.stg_revolut__pending_transactions")[0][
        0
    ] == sum((txn.amount for txn in pending), Decimal(0))
    before = snapshot(database_url)

    def booked_today() -> tuple[int, Decimal]:
        count, total = rows(
            database_url,
            "select count(*), coalesce(sum(amount), 0) from staging.stg_revolut__transactions where booking_date = %s",
            (today,),
        )[0]
        fees = rows(
            database_url,
            "select coalesce(sum(amount), 0) from staging.stg_revolut__fees where booking_date = %s",
            (today,),
        )[0][0]
        return count, total + fees

    world_today = expected_per_account_day(rv, today, today + timedelta(days=1))
    world_count = sum(count for count, _ in world_today.values())
    world_total = sum((total for _, total in world_today.values()), Decimal(0))
    assert booked_today() == (world_count, world_total)

    rv.options.book_pending, rv.options.rebook_under_new_id = True, True
    try:
        assert run(rv, warehouse, today, today).success
        restage(warehouse)
        assert rows(database_url, "select count(*) from staging.stg_revolut__pending_transactions")[0][0] == 0
        assert booked_today() == (
            world_count + len(pending),
            world_total + sum((t.amount for t in pending), Decimal(0)),
        )
        booked_ids = {
            row[0]
            for row in rows(
                database_url, "select source_transaction_id from staging.stg_revolut__transactions"
            )
        }
        assert not booked_ids & pending_ids
    finally:
        rv.reset()
        assert run(rv, warehouse, today, today).success
    assert snapshot(database_url, restaged_by=warehouse) == before
