"""The Razorpay client against the sandbox and small odd servers over real HTTP: a full backfill equals
the world, count/skip paging (an exact multiple of 100 included), retries, errors and quarantine."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from test_razorpay_sandbox import RunningRazorpay, ist_midnight, running_razorpay

from resources.errors import AuthorizationRequired, ProviderResponseError, TransientProviderError
from resources.http import RetryPolicy, loads_exact
from resources.providers.razorpay import (
    TABLES,
    KeysRejected,
    RazorpayClient,
    RazorpayConfig,
    extract_window,
    ist_date,
)
from sandbox.server import serve

FAST = RetryPolicy(max_attempts=4, backoff_initial=0.01)
DAY = dt.timedelta(days=1)
BACKFILL_DAYS = 45


@pytest.fixture(scope="module")
def rzp() -> Iterator[RunningRazorpay]:
    yield from running_razorpay()


@pytest.fixture(autouse=True)
def _clean(rzp: RunningRazorpay) -> Iterator[None]:
    yield
    rzp.reset()


def client(rzp: RunningRazorpay, **options: Any) -> RazorpayClient:
    config = RazorpayConfig(rzp.api_url, rzp.state.client_id, rzp.state.client_secret)
    return RazorpayClient(config, retry=FAST, **options)


@pytest.fixture(scope="module")
def backfill(rzp: RunningRazorpay):  # noqa: ANN201 - an Extract
    last = rzp.world.today
    with client(rzp) as razorpay:
        return extract_window(razorpay, last - (BACKFILL_DAYS - 1) * DAY, last)


def per_day(records: list, amount: str = "amount") -> dict[str, tuple[int, int]]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for record in records:
        totals[record.partition_key][0] += 1
        totals[record.partition_key][1] += loads_exact(record.payload)[amount]
    return {day: (count, total) for day, (count, total) in totals.items()}


def truth_per_day(items: list, amount: str = "amount") -> dict[str, tuple[int, int]]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in items:
        totals[item.day.isoformat()][0] += 1
        totals[item.day.isoformat()][1] += getattr(item, amount)
    return {day: (count, total) for day, (count, total) in totals.items()}


def test_a_backfill_equals_the_world_day_by_day(rzp: RunningRazorpay, backfill) -> None:  # noqa: ANN001
    world = rzp.world
    start, end = world.today - (BACKFILL_DAYS - 1) * DAY, world.today + DAY
    assert backfill.quarantined == []
    payments = backfill.load(TABLES["payments"]).records
    assert per_day(payments) == truth_per_day(world.razorpay.payments(start, end))
    assert len(payments) > 40 * 15
    refunds = backfill.load(TABLES["refunds"]).records
    assert per_day(refunds) == truth_per_day(world.razorpay.refunds(start, end))
    settlements = backfill.load(TABLES["settlements"]).records
    assert per_day(settlements) == truth_per_day(world.razorpay.settlements(start, end))
    # Recon items: per settlement day, every item of that day's settlement, net = the settlement.
    recon = backfill.load(TABLES["recon"]).records
    net: Counter = Counter()
    for record in recon:
        item = loads_exact(record.payload)
        assert record.record_key == f"{item['settlement_id']}:{item['entity_id']}"
        assert record.partition_key == ist_date(item["settled_at"])
        net[(record.partition_key, item["settlement_id"])] += item["credit"] - item["debit"]
    assert net == Counter(
        {(s.day.isoformat(), s.settlement_id): s.amount for s in world.razorpay.settlements(start, end)}
    )
    assert {r.account_ref for load in backfill.loads for r in load.records} == {"razorpay"}
    assert all(load.scope.partition_keys == [d for d in backfill_days(start, end)] for load in backfill.loads)


def backfill_days(start: dt.date, end: dt.date) -> list[str]:
    return [(start + n * DAY).isoformat() for n in range((end - start).days)]


def test_days_are_ist_days() -> None:
    """20:30 UTC on the 9th is 02:00 IST on the 10th: Razorpay's (and the bank's) day is the 10th."""
    late_evening_utc = int(dt.datetime(2025, 6, 9, 20, 30, tzinfo=dt.UTC).timestamp())
    assert ist_date(late_evening_utc) == "2025-06-10"
    assert ist_date(late_evening_utc - 2 * 3600 - 1) == "2025-06-09"  # 23:59:59 IST
    assert ist_date("1749500000") is None and ist_date(True) is None


def test_pages_of_100_until_a_short_page_exact_multiple_included(rzp: RunningRazorpay) -> None:
    truth = sorted(
        rzp.world.razorpay.payments(rzp.world.today - 20 * DAY, rzp.world.today), key=lambda p: p.created_at
    )
    assert len(truth) > 300
    start = truth[0].created_at

    def window_of(size: int) -> tuple[int, int]:
        # `to` on the size-th payment, provided the next one is a later second (bounds are inclusive).
        assert truth[size - 1].created_at < truth[size].created_at
        return start, truth[size - 1].created_at

    for size, expected_requests in ((200, 3), (250, 3), (100, 2), (99, 1)):
        with client(rzp) as razorpay:
            low, high = window_of(size)
            items = list(razorpay.collection("/payments", {"from": low, "to": high}))
            assert (len(items), razorpay.requests_sent) == (size, expected_requests), size
            assert sorted(i["id"] for i in items) == sorted(p.payment_id for p in truth[:size])
    assert rzp.state.request_count("/v1/payments") >= 9


def test_small_pages_give_the_same_records_as_full_ones(rzp: RunningRazorpay) -> None:
    day = rzp.world.today - 5 * DAY
    with client(rzp, page_size=7) as small, client(rzp) as full:
        assert [r.record_key for r in extract_window(small, day, day).loads[0].records] == [
            r.record_key for r in extract_window(full, day, day).loads[0].records
        ]


def test_notes_arrive_in_all_three_shapes(backfill) -> None:  # noqa: ANN001
    shapes = Counter()
    for table in (TABLES["payments"], TABLES["refunds"], TABLES["recon"]):
        for record in backfill.load(table).records:
            shapes[type(loads_exact(record.payload)["notes"]).__name__] += 1
    assert {"dict", "list", "str"} <= set(shapes)


def test_rate_limits_and_server_errors_are_retried(rzp: RunningRazorpay) -> None:
    day = rzp.world.today - 3 * DAY
    with client(rzp) as razorpay:
        reference = extract_window(razorpay, day, day)
    rzp.options.retry_after_seconds = 0
    rzp.state.set_fault("rate_limit", 2, "/v1")
    with client(rzp) as razorpay:
        limited = extract_window(razorpay, day, day)
    rzp.state.set_fault("server_error", 2, "/v1/settlements")
    with client(rzp) as razorpay:
        failing = extract_window(razorpay, day, day)
    for extract in (limited, failing):
        assert [load.records for load in extract.loads] == [load.records for load in reference.loads]


def test_a_persistent_outage_is_a_transient_error_and_malformed_json_a_response_error(
    rzp: RunningRazorpay,
) -> None:
    day = rzp.world.today - 3 * DAY
    rzp.state.set_fault("server_error", None, "/v1")
    with (
        client(rzp) as razorpay,
        pytest.raises(TransientProviderError, match="razorpay: GET /payments: HTTP 500"),
    ):
        extract_window(razorpay, day, day)
    rzp.state.set_fault("malformed_json", 1, "/v1/refunds")
    with client(rzp) as razorpay, pytest.raises(ProviderResponseError, match="not valid JSON"):
        extract_window(razorpay, day, day)


def test_rejected_keys_say_which_settings_to_fix_and_never_show_the_secret(rzp: RunningRazorpay) -> None:
    secret = "rzp-secret-that-must-not-leak"
    config = RazorpayConfig(rzp.api_url, rzp.state.client_id, secret)
    with RazorpayClient(config, retry=FAST) as razorpay, pytest.raises(KeysRejected) as error:
        list(razorpay.collection("/payments"))
    assert isinstance(error.value, AuthorizationRequired)
    message = str(error.value)
    assert "BANKFLOW_RAZORPAY_KEY_SECRET" in message and "bankflow connect" not in message
    assert secret not in message and secret not in repr(config) and secret not in repr(razorpay)
    assert rzp.state.request_count("/v1/payments") >= 1


def test_bad_requests_name_the_field(rzp: RunningRazorpay) -> None:
    with (
        client(rzp) as razorpay,
        pytest.raises(ProviderResponseError, match=r"BAD_REQUEST_ERROR \(field from\)"),
    ):
        list(razorpay.collection("/payments", {"from": 5}))


# -- odd servers ------------------------------------------------------------------------------------


def odd_server(pages: dict[str, list[Any]]) -> Starlette:
    """Serves fixed items per path with Razorpay's count/skip semantics."""

    async def listing(request: Request) -> Response:
        items = pages[request.url.path]
        count, skip = int(request.query_params["count"]), int(request.query_params["skip"])
        page = items[skip : skip + count]
        return JSONResponse({"entity": "collection", "count": len(page), "items": page})

    return Starlette(routes=[Route(path, listing) for path in pages])


def test_unusable_records_are_quarantined_with_the_reason_and_the_rest_land() -> None:
    day = dt.date(2025, 6, 10)
    noon = ist_midnight(day) + 12 * 3600
    good = {"id": "pay_Good0000000001", "amount": 1000, "created_at": noon, "notes": []}
    payments = [
        good,
        {"id": "pay_Fraction000001", "amount": 10.5, "created_at": noon},
        {"id": "pay_Text0000000001", "amount": "1000", "created_at": noon},
        {"amount": 1000, "created_at": noon},
        {"id": "pay_NoTime00000001", "amount": 1000, "created_at": "2025-06-10"},
        "not an object",
        good,  # seen twice across a page border: landed once
    ]
    recon = [
        {
            "entity_id": "pay_Good0000000001",
            "settlement_id": "setl_A",
            "amount": 1000,
            "credit": 980,
            "debit": 0,
        },
        {"entity_id": "adj_X", "settlement_id": None, "amount": 5, "credit": 5, "debit": 0},
    ]
    app = odd_server(
        {
            "/v1/payments": payments,
            "/v1/refunds": [],
            "/v1/settlements": [],
            "/v1/settlements/recon/combined": recon,
        }
    )
    with (
        serve(app) as url,
        RazorpayClient(RazorpayConfig(f"{url}/v1", "id", "secret"), page_size=2) as razorpay,
    ):
        extract = extract_window(razorpay, day, day)
    assert [r.record_key for r in extract.load(TABLES["payments"]).records] == ["pay_Good0000000001"]
    assert [r.record_key for r in extract.load(TABLES["recon"]).records] == ["setl_A:pay_Good0000000001"]
    reasons = Counter(item.reason for item in extract.quarantined)
    assert reasons == {
        "amount is missing or not a whole number of paise": 2,
        "id is missing or not a pay_… id": 1,
        "created_at is missing or not unix seconds": 1,
        "not a JSON object": 1,
        "settlement_id is missing or not a setl_… id": 1,
    }
    assert all(item.original for item in extract.quarantined)


def test_a_non_collection_body_is_a_clear_error() -> None:
    async def wrong(request: Request) -> Response:
        return JSONResponse([{"id": "pay_1"}])

    app = Starlette(routes=[Route("/v1/payments", wrong)])
    with serve(app) as url, RazorpayClient(RazorpayConfig(f"{url}/v1", "id", "secret")) as razorpay:
        with pytest.raises(ProviderResponseError, match="not a collection"):
            list(razorpay.collection("/payments"))


def test_page_size_is_bounded_by_the_contract() -> None:
    with pytest.raises(ValueError):
        RazorpayClient(RazorpayConfig("http://x/v1", "id", "secret"), page_size=101)
