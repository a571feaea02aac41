"""End to end: the HDFC-, ICICI- and SBI-style sandbox banks over HTTP -> raw_rest_<bank> ->
stg_rest__* -> int_* -> fct_transactions / dim_accounts, in real Postgres.

A 90-day backfill per bank equals the world's truth (counts and exact sums per account and day);
records missing a required field are quarantined and counted while the rest land; a rerun lands
nothing new; every fault switch ends in the same tables or in a clear error; no secret is logged;
and a fourth bank defined only by a YAML file written here works with no code change.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import textwrap
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from pipeline_runs import MODELS_AND_SEEDS_ONLY, rows, run_dbt
from test_rest_bank_sandbox import RunningBank, running_banks, shipped_banks

from pipelines.partitions import LOOKBACK_DAYS
from pipelines.sources.rest.assets import rest_bank_asset
from resources.providers.rest_bank_config import RestBank, configured_rest_banks
from resources.providers.rest_bank_resource import RestBanksResource
from resources.warehouse.resource import WarehouseResource
from sandbox.rest_banks import ICICI, STYLES
from sandbox.rest_banks_json import ServedTransaction, icici_transaction, served_transactions
from sandbox.world import World
from tests.pipeline_runs import forget_staged

SEED = 7
BANKS = ("hdfc", "icici", "sbi")
BACKFILL_DAYS = 90
TABLES = ("rest_transactions", "rest_accounts", "rest_balances")


@pytest.fixture(scope="module")
def world() -> World:
    return World(SEED)


@pytest.fixture(scope="module")
def banks(world: World, database_url: str) -> Iterator[dict[str, RunningBank]]:
    """The three banks served, their connector files' env pointed at them, their raw rows cleared."""
    configs = shipped_banks()
    with running_banks(world, {name: (configs[name], STYLES[name]) for name in BANKS}) as running:
        env = {name: value for bank in running.values() for name, value in bank.env.items()}
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        forget(database_url, BANKS)
        try:
            yield running
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@pytest.fixture(autouse=True)
def _clean(banks: dict[str, RunningBank]) -> Iterator[None]:
    yield
    for bank in banks.values():
        bank.reset()


def forget(database_url: str, sources: tuple[str, ...]) -> None:
    with psycopg.connect(database_url) as conn:
        for table in TABLES:
            conn.execute(f"delete from raw.{table} where source = any(%s)", (list(sources),))  # noqa: S608
        conn.execute("delete from ops.quarantine where source = any(%s)", (list(sources),))
        forget_staged(conn, "stg_rest__transactions", "source = any(%s)", (list(sources),))


def resource(**overrides: object) -> RestBanksResource:
    settings: dict[str, Any] = {"max_attempts": 4, "backoff_initial_seconds": 0.01, "timeout_seconds": 5.0}
    return RestBanksResource(**{**settings, **overrides})


def run(
    bank: RestBank, warehouse: WarehouseResource, first: date, last: date, **overrides: object
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [rest_bank_asset(bank)],
        resources={"rest_banks": resource(**overrides), "warehouse": warehouse},
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        raise_on_error=False,
    )


def dbt(warehouse: WarehouseResource, *args: str) -> None:
    run_dbt(warehouse, "rest_bank_pipeline_test", *args)


def restage(warehouse: WarehouseResource) -> None:
    """The incremental staging model (the pipeline's dbt step after an extract): staging tables change
    only when dbt runs."""
    dbt(warehouse, "run", "--select", "stg_rest__transactions")


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclasses.dataclass(frozen=True)
class Backfill:
    first: date
    last: date
    results: dict[str, dg.ExecuteInProcessResult]
    log_text: str

    @property
    def fetched(self) -> tuple[date, date]:
        """Inclusive days the runs covered, lookback included."""
        return self.first - timedelta(days=LOOKBACK_DAYS), self.last


@pytest.fixture(scope="module")
def backfill(banks: dict[str, RunningBank], warehouse: WarehouseResource, world: World) -> Backfill:
    last = world.today
    first = last - timedelta(days=BACKFILL_DAYS - 1)
    handler = _Capture()
    logging.getLogger().addHandler(handler)
    try:
        results = {name: run(bank.config, warehouse, first, last) for name, bank in banks.items()}
    finally:
        logging.getLogger().removeHandler(handler)
    for name, result in results.items():
        assert result.success, name
    dbt(warehouse, "build", "--select", "staging.rest")
    return Backfill(first, last, results, "\n".join(handler.lines))


# -- what the world says ------------------------------------------------------------------------------


def served(bank: RunningBank, first: date, last: date) -> list[tuple[str, ServedTransaction]]:
    """(account number, row) for everything the bank lists for the days."""
    return [
        (account.number, row)
        for account in bank.world.accounts_for(bank.style.provider)
        for row in served_transactions(bank.world, account, first, last)
    ]


def truth(
    bank: RunningBank, first: date, last: date, status: str = "SUCCESS"
) -> dict[tuple[str, date], tuple]:
    """(account, day) -> (count, exact sum) of the world's movements with that status."""
    totals: dict[tuple[str, date], list] = defaultdict(lambda: [0, Decimal(0)])
    for number, row in served(bank, first, last):
        if row.status == status:
            totals[(number, row.day)][0] += 1
            totals[(number, row.day)][1] += row.txn.amount
    return {key: tuple(value) for key, value in totals.items()}


# -- what the warehouse holds ---------------------------------------------------------------------------


def raw_snapshot(database_url: str, source: str) -> list[tuple]:
    return rows(
        database_url,
        "select account_ref, partition_key, record_key, payload from raw.rest_transactions"
        " where source = %s order by account_ref, record_key",
        (source,),
    )


def staging_snapshot(database_url: str, source: str) -> list[tuple]:
    return rows(
        database_url,
        "select transaction_key, account_ref, status, booking_date, booked_at, amount, currency, description,"
        " end_to_end_id from staging.stg_rest__transactions where source = %s order by 1",
        (source,),
    )


def staged(database_url: str, source: str, status: str) -> dict[tuple[str, date], tuple]:
    return {
        (account, day): (count, total)
        for account, day, count, total in rows(
            database_url,
            "select account_ref, booking_date, count(*), sum(amount) from staging.stg_rest__transactions"
            " where source = %s and status = %s group by 1, 2",
            (source, status),
        )
    }


# -- tests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BANKS)
def test_backfill_equals_the_worlds_truth(
    name: str, backfill: Backfill, banks: dict[str, RunningBank], database_url: str
) -> None:
    bank = banks[name]
    first, last = backfill.fetched
    booked = truth(bank, first, last)
    assert sum(count for count, _ in booked.values()) > 30
    assert staged(database_url, name, "booked") == booked
    assert staged(database_url, name, "pending") == truth(bank, first, last, "PENDING")
    assert all(isinstance(total, Decimal) for _, total in booked.values())
    # Raw keeps what the bank listed, failed attempts included; staging leaves those out.
    statuses = Counter(
        dict(
            rows(
                database_url,
                "select payload ->> 'status', count(*) from raw.rest_transactions where source = %s group by 1",
                (name,),
            )
        )
    )
    assert statuses == Counter(row.status for _, row in served(bank, first, last))
    assert statuses["FAILED"] > 0


@pytest.mark.parametrize("name", BANKS)
def test_accounts_and_balances(
    name: str, backfill: Backfill, banks: dict[str, RunningBank], database_url: str
) -> None:
    world = banks[name].world
    accounts = world.accounts_for(name)
    staged_accounts = rows(
        database_url,
        "select account_ref, currency, account_type, bank_name, iban from staging.stg_rest__accounts"
        " where source = %s order by 1",
        (name,),
    )
    assert staged_accounts == sorted(
        (a.number, "INR", "TRANSACTION", banks[name].config.display_name, None) for a in accounts
    )
    balances = dict(
        rows(
            database_url,
            "select account_ref, current_balance from staging.stg_rest__balances where source = %s",
            (name,),
        )
    )
    assert balances == {a.number: world.balance(a.account_id, world.today) for a in accounts}


def test_the_banks_reach_the_marts(
    backfill: Backfill, banks: dict[str, RunningBank], database_url: str, warehouse: WarehouseResource
) -> None:
    # build, not run: the marts join seeds (FX rates), which only build (or seed) loads.
    dbt(
        warehouse,
        "build",
        "--select",
        "+fct_transactions",
        "+dim_accounts",
        "+fct_balances",
        *MODELS_AND_SEEDS_ONLY,
    )
    dbt(
        warehouse,
        "test",
        "--select",
        "fct_transactions",
        "dim_accounts",
        "int_accounts_unified",
        "staging.rest",
    )
    first, last = backfill.fetched
    for name, bank in banks.items():
        booked = truth(bank, first, last)
        marts = rows(
            database_url,
            "select count(*), sum(amount) from marts.fct_transactions"
            " where source = %s and status = 'booked' and booking_date between %s and %s",
            (name, first, last),
        )[0]
        assert marts == (sum(c for c, _ in booked.values()), sum((t for _, t in booked.values()), Decimal(0)))
        accounts = rows(
            database_url,
            "select provider_account_id, sources, bank_name from marts.dim_accounts where sources = %s",
            (name,),
        )
        assert sorted(a[0] for a in accounts) == sorted(a.number for a in bank.world.accounts_for(name))


def test_a_second_run_lands_nothing_new(
    backfill: Backfill, banks: dict[str, RunningBank], warehouse: WarehouseResource, database_url: str
) -> None:
    for name, bank in banks.items():
        before = raw_snapshot(database_url, name), staging_snapshot(database_url, name)
        again = run(bank.config, warehouse, backfill.first, backfill.last)
        assert again.success
        restage(warehouse)
        assert (raw_snapshot(database_url, name), staging_snapshot(database_url, name)) == before
        landed = {
            m.asset_key.to_user_string(): m.metadata
            for m in again.asset_materializations_for_node(f"raw_rest_{name}")
        }
        transactions = landed[f"raw_rest_{name}_transactions"]
        assert transactions["rows_landed"].value == transactions["rows_replaced"].value > 0
        assert transactions["records_quarantined"].value == 0


@pytest.mark.parametrize("name", BANKS)
def test_records_missing_required_fields_are_quarantined_and_the_rest_land(
    name: str,
    backfill: Backfill,
    banks: dict[str, RunningBank],
    warehouse: WarehouseResource,
    database_url: str,
) -> None:
    bank = banks[name]
    last = backfill.last
    first = last - timedelta(days=30)
    fetched_first = first - timedelta(days=LOOKBACK_DAYS)
    bank.options.drop_required_every = 3
    result = run(bank.config, warehouse, first, last)
    dropped = set(bank.options.dropped)
    bank.reset()
    try:
        assert result.success
        assert dropped
        quarantined = rows(
            database_url,
            "select reason from ops.quarantine where source = %s and run_id = %s",
            (name, result.run_id),
        )
        assert len(quarantined) == len(dropped)
        assert all(reason.startswith("missing required field: ") for (reason,) in quarantined)
        metadata = {
            m.asset_key.to_user_string(): m.metadata
            for m in result.asset_materializations_for_node(f"raw_rest_{name}")
        }
        assert metadata[f"raw_rest_{name}_transactions"]["records_quarantined"].value == len(dropped)
        listed = served(bank, fetched_first, last)
        landed = rows(
            database_url,
            "select count(*) from raw.rest_transactions where source = %s and partition_key >= %s",
            (name, fetched_first.isoformat()),
        )[0][0]
        assert landed == len(listed) - len(dropped)
    finally:
        assert run(bank.config, warehouse, first, last).success  # the full window again


def _faults() -> dict[str, tuple[str, Callable[[RunningBank], None], dict[str, object], bool]]:
    """name -> (bank, switch, resource overrides, ends in success)."""

    def shared(mode: str, count: int | None, suffix: str = "") -> Callable[[RunningBank], None]:
        return lambda bank: bank.state.set_fault(mode, count, bank.style.prefix + suffix)

    def slow(bank: RunningBank) -> None:
        bank.state.slow_seconds = 1.5
        bank.state.set_fault("slow", 1, bank.style.prefix)

    return {
        "hdfc 429 storm with Retry-After": ("hdfc", shared("rate_limit", 3), {}, True),
        "icici 5xx burst": ("icici", shared("server_error", 2), {}, True),
        "sbi slow response": ("sbi", slow, {"timeout_seconds": 0.75}, True),
        "hdfc rows shift between pages": (
            "hdfc",
            lambda b: setattr(b.options, "repeat_page_border", True),
            {},
            True,
        ),
        "sbi token refused mid-run": ("sbi", shared("unauthorized", 1, "/accounts/"), {}, True),
        "hdfc token refused": ("hdfc", shared("unauthorized", 1), {}, False),
        "icici malformed JSON": ("icici", shared("malformed_json", 1, "/accounts/statement"), {}, False),
        "sbi 5xx outage": ("sbi", shared("server_error", None), {}, False),
    }


@pytest.mark.parametrize("fault", list(_faults()))
def test_every_fault_ends_in_the_same_tables_or_a_clear_error(
    fault: str,
    backfill: Backfill,
    banks: dict[str, RunningBank],
    warehouse: WarehouseResource,
    database_url: str,
) -> None:
    name, switch, overrides, succeeds = _faults()[fault]
    bank = banks[name]
    # The whole backfill: HDFC's 100-row pages have a border in it.
    first, last = backfill.first, backfill.last
    before = raw_snapshot(database_url, name), staging_snapshot(database_url, name)
    switch(bank)
    result = run(bank.config, warehouse, first, last, **overrides)
    bank.reset()
    assert result.success is succeeds, fault
    if not succeeds:
        failure = result.get_step_failure_events()[0].event_specific_data.error
        assert f"{name}: " in failure.message
        if "token refused" in fault:
            assert (
                "BANKFLOW_HDFC_TOKEN" in failure.message and bank.state.client_secret not in failure.message
            )
    restage(warehouse)
    assert (raw_snapshot(database_url, name), staging_snapshot(database_url, name)) == before


def test_missing_or_wrong_credentials_stop_the_bank_naming_the_variable(
    backfill: Backfill, banks: dict[str, RunningBank], warehouse: WarehouseResource, database_url: str
) -> None:
    bank = banks["icici"]
    before = raw_snapshot(database_url, "icici")
    saved = os.environ.pop("BANKFLOW_ICICI_TOKEN")
    try:
        missing = run(bank.config, warehouse, backfill.last, backfill.last)
        os.environ["BANKFLOW_ICICI_TOKEN"] = "wrong-token-value"
        wrong = run(bank.config, warehouse, backfill.last, backfill.last)
    finally:
        os.environ["BANKFLOW_ICICI_TOKEN"] = saved
    for result, expected in (
        (missing, "Set BANKFLOW_ICICI_TOKEN (named in icici.yaml)"),
        (wrong, "HTTP 401). Check BANKFLOW_ICICI_API_KEY and BANKFLOW_ICICI_TOKEN"),
    ):
        assert not result.success
        error = result.get_step_failure_events()[0].event_specific_data.error
        assert expected in error.message
        assert "wrong-token-value" not in error.message and bank.state.client_id not in error.message
    assert raw_snapshot(database_url, "icici") == before


def test_no_secret_in_logs_events_or_raw(
    backfill: Backfill, banks: dict[str, RunningBank], database_url: str
) -> None:
    events = "\n".join(str(event) for result in backfill.results.values() for event in result.all_events)
    stored = "\n".join(
        str(row)
        for table in TABLES
        for row in rows(database_url, f"select payload from raw.{table}")  # noqa: S608
    )
    quarantine = "\n".join(
        str(row) for row in rows(database_url, "select reason, original from ops.quarantine")
    )
    for bank in banks.values():
        for secret in bank.secrets():
            for text in (events, backfill.log_text, stored, quarantine):
                assert secret not in text, bank.name


# -- a fourth bank, defined only by a file -------------------------------------------------------------

KOTAK_YAML = textwrap.dedent(
    """\
    # A fourth bank: API key only, cursor paging, records nested under result.items, its own
    # field names, and an exclusive end date. No Python was written for it.
    name: kotak
    display_name: Kotak Mahindra Bank
    bank_code: KKBK
    base_url: https://api.kotak.example
    base_url_env: BANKFLOW_KOTAK_BASE_URL
    timezone: Asia/Kolkata
    auth:
      kind: api_key
      api_key_header: X-Api-Key
      api_key_env: BANKFLOW_KOTAK_API_KEY
    accounts:
      path: /kotak/v1/accounts
      records: result.accounts
      fields:
        account_id: accountNo
        currency: currency
        display_name: nickName
        account_type: {path: acctType, values: {CA: TRANSACTION, SB: SAVINGS}}
        balance: balance
    transactions:
      path: /kotak/v1/ledger
      params:
        account: "{account_id}"
        start: "{first_day:%Y-%m-%d}"
        end: "{end_day:%Y-%m-%d}"
      records: result.items
      pagination:
        kind: cursor
        cursor_param: after
        next_cursor: result.next
        size_param: size
        page_size: 40
      fields:
        txn_id: ref
        amount: value
        currency: ccy
        status: {path: state, values: {S: SUCCESS, P: PENDING, F: FAILED}}
        timestamp: {path: at, format: "%d-%m-%Y %H:%M:%S"}
        account_id: acct
        channel: rail
        reference_number: utr
        description: text
    """
)
_KOTAK_NAMES = {
    "txnId": "ref",
    "txnAmount": "value",
    "currency": "ccy",
    "txnStatus": "state",
    "txnDate": "at",
    "accountNo": "acct",
    "mode": "rail",
    "bankRefNo": "utr",
    "remarks": "text",
}


def kotak_transaction(row: ServedTransaction, account: Any) -> dict[str, Any]:
    """ICICI's records under Kotak's field names."""
    return {_KOTAK_NAMES.get(key, key): value for key, value in icici_transaction(row, account).items()}


KOTAK_STYLE = dataclasses.replace(
    ICICI,
    auth="api_key",
    api_key_header="X-Api-Key",
    prefix="/kotak/v1",
    accounts_path="/kotak/v1/accounts",
    transactions_path="/kotak/v1/ledger",
    account_param="account",
    from_param="start",
    to_param="end",
    date_format="%Y-%m-%d",
    end_exclusive=True,
    max_days=None,
    paging="cursor",
    cursor_param="after",
    size_param="size",
    next_key="result.next",
    accounts_key="result.accounts",
    records_key="result.items",
    transaction_json=kotak_transaction,
    required_keys=("ref", "value", "ccy", "state", "at", "acct"),
    envelope=(),
)


def test_a_fourth_bank_from_a_yaml_file_alone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    world: World,
    warehouse: WarehouseResource,
    database_url: str,
) -> None:
    (tmp_path / "kotak.yaml").write_text(KOTAK_YAML)
    monkeypatch.setenv("BANKFLOW_REST_CONNECTORS_DIR", str(tmp_path))
    kotak = next(bank for bank in configured_rest_banks() if bank.name == "kotak")
    # The sandbox serves the world's ICICI accounts in Kotak's style.
    with running_banks(world, {"kotak": (kotak, KOTAK_STYLE)}) as running:
        bank = running["kotak"]
        for name, value in bank.env.items():
            monkeypatch.setenv(name, value)
        try:
            last = world.today
            first = last - timedelta(days=40)
            bank.options.drop_required_every = 9
            result = run(kotak, warehouse, first, last)
            dropped = len(bank.options.dropped)
            assert result.success
            dbt(warehouse, "build", "--select", "staging.rest")
            fetched_first = first - timedelta(days=LOOKBACK_DAYS)
            expected = truth(bank, fetched_first, last)
            dropped_booked = {
                (number, row.day)
                for number, row in served(bank, fetched_first, last)
                if row.key in bank.options.dropped and row.status == "SUCCESS"
            }
            staged_kotak = staged(database_url, "kotak", "booked")
            assert {k: v for k, v in staged_kotak.items() if k not in dropped_booked} == {
                k: v for k, v in expected.items() if k not in dropped_booked
            }
            quarantined = rows(
                database_url,
                "select count(*) from ops.quarantine where source = 'kotak' and run_id = %s",
                (result.run_id,),
            )[0][0]
            assert quarantined == dropped > 0
            assert rows(
                database_url, "select bank_name from staging.stg_rest__accounts where source = 'kotak'"
            ) == [("Kotak Mahindra Bank",)] * len(world.accounts_for("icici"))
            # A fresh code location with the directory configured has the bank, upstream of the marts.
            assert (
                _lineage_in_fresh_code_location(str(tmp_path))
                == "raw_rest_kotak_transactions upstream of fct_transactions"
            )
        finally:
            forget(database_url, ("kotak",))


def _lineage_in_fresh_code_location(connectors_dir: str) -> str:
    script = textwrap.dedent(
        """
        from pipelines.definitions import defs
        graph = defs.get_repository_def().asset_graph
        keys = {k.to_user_string(): k for k in graph.get_all_asset_keys()}
        seen, frontier = set(), [keys["fct_transactions"]]
        while frontier:
            for parent in graph.get(frontier.pop()).parent_keys:
                if parent not in seen:
                    seen.add(parent)
                    frontier.append(parent)
        if keys["raw_rest_kotak_transactions"] in seen:
            print("raw_rest_kotak_transactions upstream of fct_transactions")
        """
    )
    from test_definitions import PLACEHOLDER_ENV

    completed = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **PLACEHOLDER_ENV, "BANKFLOW_REST_CONNECTORS_DIR": connectors_dir},
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout.strip()
