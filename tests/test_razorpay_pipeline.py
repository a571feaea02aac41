"""End to end: Razorpay sandbox over HTTP -> raw_razorpay -> dbt staging, in real Postgres.

A 60-day backfill lands exactly the world's payments, refunds, settlements and recon items; staging
turns paise into exact numeric rupees (also for sums far beyond float's and bigint's range) and
reads notes in all three shapes; every fault switch ends in the same tables or a clear error with
the previous data intact; a rerun lands nothing new; the key secret never shows.
"""

from __future__ import annotations

import base64
import json
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

import dagster as dg
import psycopg
import pytest
from pipeline_runs import rows
from test_razorpay_sandbox import RunningRazorpay, running_razorpay

from pipelines.partitions import LOOKBACK_DAYS
from pipelines.sources.razorpay.assets import RAW_TABLES, raw_razorpay
from pipelines.transform.project import DBT_PROJECT_DIR
from resources.providers.razorpay_resource import RazorpayResource
from resources.warehouse.resource import WarehouseResource
from sandbox.razorpay_ledger import settlement_credit

BACKFILL_DAYS = 60
TARGET_PATH = "target/razorpay_pipeline_test"


@pytest.fixture(scope="module")
def rzp() -> Iterator[RunningRazorpay]:
    yield from running_razorpay()


@pytest.fixture(autouse=True)
def _clean(rzp: RunningRazorpay) -> Iterator[None]:
    yield
    rzp.reset()


def make_resource(rzp: RunningRazorpay, **overrides: object) -> RazorpayResource:
    settings: dict[str, object] = {
        "base_url": rzp.api_url,
        "key_id": rzp.state.client_id,
        "key_secret": rzp.state.client_secret,
        "max_attempts": 4,
        "backoff_initial_seconds": 0.01,
        **overrides,
    }
    return RazorpayResource(**settings)  # type: ignore[arg-type]


def run(
    rzp: RunningRazorpay, warehouse: WarehouseResource, first: date, last: date, **overrides: object
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_razorpay],
        resources={"razorpay": make_resource(rzp, **overrides), "warehouse": warehouse},
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
    dbt_results: dict[str, str]

    @property
    def fetched(self) -> tuple[date, date]:
        """Half-open IST days the run covered, lookback included."""
        return self.first - timedelta(days=LOOKBACK_DAYS), self.last + timedelta(days=1)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def backfill(rzp: RunningRazorpay, warehouse: WarehouseResource, database_url: str) -> Iterator[Backfill]:
    with psycopg.connect(database_url) as conn:
        for table in RAW_TABLES:
            conn.execute(f"delete from raw.{table}")  # noqa: S608 - fixed names
    last = rzp.world.today
    first = last - timedelta(days=BACKFILL_DAYS - 1)
    handler = _Capture()
    logging.getLogger().addHandler(handler)
    try:
        result = run(rzp, warehouse, first, last)
    finally:
        logging.getLogger().removeHandler(handler)
    assert result.success
    yield Backfill(first, last, result, "\n".join(handler.lines), dbt_build(warehouse))


def dbt_build(warehouse: WarehouseResource) -> dict[str, str]:
    """Build (and test) the Razorpay staging models; returns each dbt node's status."""
    dbt = str(Path(sys.executable).parent / "dbt")
    completed = subprocess.run(
        [dbt, "build", "--select", "staging.razorpay", "--profiles-dir", str(DBT_PROJECT_DIR)]
        + ["--target-path", TARGET_PATH],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **warehouse.dbt_env()},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    results = json.loads((DBT_PROJECT_DIR / TARGET_PATH / "run_results.json").read_text())["results"]
    return {result["unique_id"]: result["status"] for result in results}


# -- what the world says ----------------------------------------------------------------------------


def rupees(paise: int) -> Decimal:
    return Decimal(paise).scaleb(-2)


def truth_per_day(items: list, amount: str = "amount", scale: int = 1) -> dict[date, tuple[int, Decimal]]:
    totals: dict[date, list] = defaultdict(lambda: [0, Decimal(0)])
    for item in items:
        totals[item.day][0] += 1
        totals[item.day][1] += rupees(getattr(item, amount) * scale)
    return {day: (count, total) for day, (count, total) in totals.items()}


def staged_per_day(
    database_url: str, model: str, merchant: str = "razorpay"
) -> dict[date, tuple[int, Decimal]]:
    return {
        day: (count, total)
        for day, count, total in rows(
            database_url,
            f"select created_date, count(*), sum(amount) from staging.{model}"  # noqa: S608 - fixed names
            " where merchant_ref = %s group by 1",
            (merchant,),
        )
    }


def snapshot(database_url: str) -> list[tuple]:
    """Every Razorpay raw row (identity, day, payload) and the staged settlements and recon items."""
    raw = [
        row
        for table in RAW_TABLES
        for row in rows(
            database_url,
            f"select %s, account_ref, partition_key, record_key, payload from raw.{table}"  # noqa: S608
            " order by partition_key, record_key",
            (table,),
        )
    ]
    staged = rows(
        database_url,
        "select settlement_id, amount, utr from staging.stg_razorpay__settlements order by 1",
    ) + rows(
        database_url,
        "select recon_item_key, net_amount, settled_date from staging.stg_razorpay__settlement_recon_items"
        " order by 1",
    )
    return raw + staged


# -- tests ------------------------------------------------------------------------------------------


def test_backfill_lands_exactly_the_worlds_records_per_ist_day(
    backfill: Backfill, rzp: RunningRazorpay, database_url: str
) -> None:
    start, end = backfill.fetched
    merchant = rzp.world.razorpay
    expected = {
        "razorpay_payments": truth_per_day(merchant.payments(start, end)),
        "razorpay_refunds": truth_per_day(merchant.refunds(start, end)),
        "razorpay_settlements": truth_per_day(merchant.settlements(start, end)),
    }
    for table, truth in expected.items():
        landed = {
            date.fromisoformat(day): count
            for day, count in rows(
                database_url,
                f"select partition_key, count(*) from raw.{table} group by 1",  # noqa: S608
            )
        }
        assert landed == {day: count for day, (count, _) in truth.items()}, table
    recon_days = {
        date.fromisoformat(day): count
        for day, count in rows(
            database_url, "select partition_key, count(*) from raw.razorpay_settlement_recon group by 1"
        )
    }
    settlements = merchant.settlements(start, end)
    assert recon_days == {s.day: len(s.payments) + len(s.refunds) + len(s.adjustments) for s in settlements}
    assert sum(recon_days.values()) > 1000


def test_staging_counts_and_exact_rupee_sums_per_day_equal_the_world(
    backfill: Backfill, rzp: RunningRazorpay, database_url: str
) -> None:
    start, end = backfill.fetched
    merchant = rzp.world.razorpay
    assert staged_per_day(database_url, "stg_razorpay__payments") == truth_per_day(
        merchant.payments(start, end)
    )
    assert staged_per_day(database_url, "stg_razorpay__refunds") == truth_per_day(
        merchant.refunds(start, end)
    )
    assert staged_per_day(database_url, "stg_razorpay__settlements") == truth_per_day(
        merchant.settlements(start, end)
    )
    fees = rows(
        database_url,
        "select sum(fee), sum(tax) from staging.stg_razorpay__payments where is_captured",
    )[0]
    captured = [p for p in merchant.payments(start, end) if p.captured]
    assert fees == (rupees(sum(p.fee for p in captured)), rupees(sum(p.tax for p in captured)))
    amount_type = rows(
        database_url,
        "select data_type from information_schema.columns where table_schema = 'staging'"
        " and table_name = 'stg_razorpay__payments' and column_name = 'amount'",
    )
    assert amount_type == [("numeric",)]


def test_recon_items_sum_to_each_settlement_and_the_answer_key_matches_the_bank_credit(
    backfill: Backfill, rzp: RunningRazorpay, database_url: str
) -> None:
    start, end = backfill.fetched
    staged = dict(
        rows(
            database_url,
            "select s.utr, s.amount from staging.stg_razorpay__settlements as s"
            " inner join (select settlement_id, sum(net_amount) as net"
            " from staging.stg_razorpay__settlement_recon_items group by 1) as items"
            " on items.settlement_id = s.settlement_id where items.net = s.amount",
        )
    )
    # What the reconciliation will do: bank credit on the HDFC account <-> settlement. A credit
    # booked late belongs to the window its settlement was made in.
    credited = {
        entry.utr: entry.amount
        for entry in rzp.world.settlement_answer_key(start, end).values()
        if entry.settled_on >= start
    }
    seed = rzp.world.seed
    booked_after = {
        s.utr
        for s in rzp.world.razorpay.settlements(start, end)
        if s.day + timedelta(days=settlement_credit(seed, s).lag_days) >= end
    }
    assert len(credited) > 30
    assert credited == {utr: amount for utr, amount in staged.items() if utr not in booked_after}
    unreferenced = rows(
        database_url,
        "select count(*) from staging.stg_razorpay__settlement_recon_items"
        " where item_type = 'adjustment' and settlement_utr is null",
    )[0][0]
    assert unreferenced == sum(len(s.adjustments) for s in rzp.world.razorpay.settlements(start, end))
    singular = [uid for uid in backfill.dbt_results if "assert_razorpay_recon_items_sum_to_settlement" in uid]
    assert singular and all(backfill.dbt_results[uid] == "pass" for uid in singular)


def test_every_dbt_test_passes(backfill: Backfill) -> None:
    assert {status for status in backfill.dbt_results.values()} == {"pass", "success"}
    assert len(backfill.dbt_results) > 60


def test_notes_in_all_three_shapes_become_one_object(backfill: Backfill, database_url: str) -> None:
    shapes = dict(
        rows(
            database_url,
            "select jsonb_typeof(payload -> 'notes'), count(*) from raw.razorpay_payments group by 1",
        )
    )
    assert set(shapes) == {"object", "array"}
    assert rows(
        database_url,
        "select count(*) filter (where notes = '{}'::jsonb), count(*) filter (where notes_text is not null),"
        " count(*) filter (where notes is null) from staging.stg_razorpay__payments p"
        " join raw.razorpay_payments r on r.record_key = p.payment_id"
        " where jsonb_typeof(r.payload -> 'notes') = 'array'",
    ) == [(shapes["array"], 0, 0)]
    # The recon report sends the payment's notes as a JSON string: staged as the same object.
    mismatched = rows(
        database_url,
        "select count(*) from staging.stg_razorpay__settlement_recon_items i"
        " join staging.stg_razorpay__payments p on p.payment_id = i.entity_id"
        " where i.notes is distinct from p.notes or i.notes_text is null",
    )
    assert mismatched == [(0,)]
    assert (
        rows(
            database_url,
            "select count(*) from staging.stg_razorpay__settlement_recon_items"
            " where item_type = 'payment' and notes ? 'order_ref'",
        )[0][0]
        > 0
    )


ODD_NOTES = {
    "setl_OddNotes000001:pay_Object": (
        '{"order_ref":"KH-1","n":12.5,"ok":true,"x":null}',
        {"order_ref": "KH-1", "n": 12.5, "ok": True, "x": None},
    ),
    "setl_OddNotes000001:pay_Empty": ("{}", {}),
    "setl_OddNotes000001:pay_EmptyList": ("[]", {}),
    "setl_OddNotes000001:pay_Unicode": (
        '{"city":"\\u092e\\u0941\\u0902\\u092c\\u0908 \\ud83d\\ude00"}',
        {"city": "मुंबई 😀"},
    ),
    "setl_OddNotes000001:pay_Text": ("deliver after 6pm", None),
    "setl_OddNotes000001:pay_Broken": ('{"a":"b"', None),
    "setl_OddNotes000001:pay_Nested": ('{"a":{"b":1}}', None),
    "setl_OddNotes000001:pay_Nul": ('{"a":"\\u0000"}', None),
    "setl_OddNotes000001:pay_Lone": ('{"a":"\\ud800"}', None),
    "setl_OddNotes000001:pay_Control": ('{"a":"tab\there"}', None),
    "setl_OddNotes000001:pay_HugeExp": ('{"a":1e999999}', None),
}


def test_notes_strings_that_are_not_a_flat_json_object_never_fail_the_view(
    backfill: Backfill, database_url: str
) -> None:
    """Odd recon rows in a day of their own, read through the staging view, then removed."""
    with psycopg.connect(database_url) as conn:
        for key, (text, _) in ODD_NOTES.items():
            settlement_id, entity_id = key.split(":")
            payload = {
                "entity_id": entity_id,
                "settlement_id": settlement_id,
                "type": "payment",
                "notes": text,
            }
            conn.execute(
                "insert into raw.razorpay_settlement_recon (payload, source, account_ref, partition_key,"
                " record_key, fetched_at, run_id) values (%s, 'razorpay', 'odd', '2001-01-01', %s, now(), 'test')",
                (json.dumps(payload), key),
            )
    try:
        staged = {
            key: (notes, text)
            for key, notes, text in rows(
                database_url,
                "select recon_item_key, notes, notes_text from staging.stg_razorpay__settlement_recon_items"
                " where merchant_ref = 'odd'",
            )
        }
        assert staged == {key: (expected, text) for key, (text, expected) in ODD_NOTES.items()}
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("delete from raw.razorpay_settlement_recon where account_ref = 'odd'")


def test_paise_to_rupees_is_exact_on_sums_beyond_float_and_bigint(
    backfill: Backfill, rzp: RunningRazorpay, warehouse: WarehouseResource, database_url: str
) -> None:
    """Every amount served times 10^15 (payments of ~10^20 paise, days of ~10^21), landed under a
    merchant of its own: staging sums per day equal the world's, to the paisa."""
    scale = 10**15
    last = backfill.last - timedelta(days=12)
    first = last - timedelta(days=2)
    rzp.options.amount_multiplier = scale
    try:
        result = run(rzp, warehouse, first, last, merchant_ref="whale")
        assert result.success
        start, end = first - timedelta(days=LOOKBACK_DAYS), last + timedelta(days=1)
        merchant = rzp.world.razorpay
        staged = staged_per_day(database_url, "stg_razorpay__payments", "whale")
        assert staged == truth_per_day(merchant.payments(start, end), scale=scale)
        assert min(total for _, total in staged.values()) > Decimal(10**13)
        assert staged_per_day(database_url, "stg_razorpay__settlements", "whale") == truth_per_day(
            merchant.settlements(start, end), scale=scale
        )
        biggest = rows(
            database_url,
            "select max(amount) from staging.stg_razorpay__payments where merchant_ref = 'whale'",
        )[0][0]
        # Paise beyond bigint (no ::bigint on the way), rupees with their two decimals intact.
        assert biggest > Decimal(2**63) / 100 and biggest == biggest.quantize(Decimal("0.01"))
    finally:
        with psycopg.connect(database_url) as conn:
            for table in RAW_TABLES:
                conn.execute(f"delete from raw.{table} where account_ref = 'whale'")  # noqa: S608


def test_a_second_run_of_the_same_window_lands_nothing_new(
    backfill: Backfill, rzp: RunningRazorpay, warehouse: WarehouseResource, database_url: str
) -> None:
    before = snapshot(database_url)
    again = run(rzp, warehouse, backfill.first, backfill.last)
    assert again.success
    assert snapshot(database_url) == before
    landed = {
        m.asset_key.to_user_string(): m.metadata
        for m in again.asset_materializations_for_node("raw_razorpay")
    }
    assert set(landed) == {f"raw_{table}" for table in RAW_TABLES}
    for metadata in landed.values():
        assert metadata["rows_landed"].value == metadata["rows_replaced"].value > 0


def _faults() -> dict[str, tuple[Callable[[RunningRazorpay], None], dict[str, object], bool]]:
    """name -> (switch, resource overrides, ends in success)."""

    def slow(rzp: RunningRazorpay) -> None:
        rzp.state.slow_seconds = 0.6
        rzp.state.set_fault("slow", 1, "/v1/settlements")

    return {
        "429 storm": (lambda rzp: rzp.state.set_fault("rate_limit", 3, "/v1"), {}, True),
        "429 with Retry-After": (
            lambda rzp: (
                setattr(rzp.options, "retry_after_seconds", 0),
                rzp.state.set_fault("rate_limit", 2, "/v1"),
            ),
            {},
            True,
        ),
        "5xx burst": (lambda rzp: rzp.state.set_fault("server_error", 2, "/v1/settlements/recon"), {}, True),
        "slow response": (slow, {"timeout_seconds": 0.3}, True),
        "small pages": (lambda rzp: None, {"page_size": 9}, True),
        "malformed JSON": (lambda rzp: rzp.state.set_fault("malformed_json", 1, "/v1/refunds"), {}, False),
        "5xx outage": (lambda rzp: rzp.state.set_fault("server_error", None, "/v1"), {}, False),
        "keys revoked": (lambda rzp: rzp.state.set_fault("unauthorized", None, "/v1"), {}, False),
    }


@pytest.mark.parametrize("name", list(_faults()))
def test_every_fault_ends_in_the_clean_tables_or_a_clear_error(
    name: str, backfill: Backfill, rzp: RunningRazorpay, warehouse: WarehouseResource, database_url: str
) -> None:
    switch, overrides, succeeds = _faults()[name]
    day = backfill.last - timedelta(days=20)
    before = snapshot(database_url)
    switch(rzp)
    result = run(rzp, warehouse, day, day, **overrides)
    rzp.reset()
    assert result.success is succeeds
    if not succeeds:
        failure = result.get_step_failure_events()[0].event_specific_data.error
        assert "razorpay:" in failure.message
        if name == "keys revoked":
            assert "BANKFLOW_RAZORPAY_KEY_ID" in failure.message
    assert snapshot(database_url) == before


def test_the_key_secret_never_shows_in_logs_events_or_reprs(
    backfill: Backfill, rzp: RunningRazorpay, warehouse: WarehouseResource
) -> None:
    secret = rzp.state.client_secret
    basic = base64.b64encode(f"{rzp.state.client_id}:{secret}".encode()).decode()
    rzp.state.set_fault("unauthorized", None, "/v1")
    failed = run(rzp, warehouse, backfill.last, backfill.last)
    assert not failed.success
    for result in (backfill.result, failed):
        events = "\n".join(str(event) for event in result.all_events)
        for leak in (secret, basic):
            assert leak not in events
    for leak in (secret, basic):
        assert leak not in backfill.log_text
    resource = make_resource(rzp)
    assert secret not in repr(resource) and secret not in repr(resource.config())
    with resource.open_client() as client:
        assert secret not in repr(client) and basic not in repr(client)
