"""The Razorpay sandbox speaks the contract and agrees with the world: Basic auth, count/skip lists,
the combined recon report, T+2 settlements net of fees and GST that land on the merchant's HDFC
account with their UTR, and an answer key that ties each bank credit to its settlement."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest

from sandbox.razorpay import RazorpayOptions, build_razorpay_app
from sandbox.razorpay_ledger import (
    MERCHANT_KEY,
    fee_and_tax,
    ist_day,
    payments_on,
    settlement_credit,
    settlement_day,
    settlement_on,
)
from sandbox.server import serve
from sandbox.state import SandboxState
from sandbox.world import World

SEED = 7
DAY = dt.timedelta(days=1)


@dataclass
class RunningRazorpay:
    url: str
    world: World
    state: SandboxState
    options: RazorpayOptions

    @property
    def api_url(self) -> str:
        return self.url + "/v1"

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, auth=(self.state.client_id, self.state.client_secret))

    def reset(self) -> None:
        self.state.clear_fault()
        self.options.retry_after_seconds = None
        self.options.amount_multiplier = 1


def running_razorpay(world: World | None = None) -> Iterator[RunningRazorpay]:
    """Serve the Razorpay sandbox app of a world (seed 7, today = now unless given)."""
    state = SandboxState()
    options = RazorpayOptions()
    world = world or World(SEED)
    with serve(build_razorpay_app(world, state, options)) as url:
        yield RunningRazorpay(url, world, state, options)


def ist_midnight(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(0), tzinfo=dt.timezone(dt.timedelta(hours=5.5))).timestamp())


@pytest.fixture(scope="module")
def rzp() -> Iterator[RunningRazorpay]:
    yield from running_razorpay(World(SEED, dt.date(2025, 11, 20)))


@pytest.fixture(autouse=True)
def _clean(rzp: RunningRazorpay) -> Iterator[None]:
    yield
    rzp.reset()


def all_pages(http: httpx.Client, path: str, params: dict[str, object]) -> list[dict]:
    items, skip = [], 0
    while True:
        body = http.get(path, params={**params, "count": 100, "skip": skip}).json()
        items += body["items"]
        if body["count"] < 100:
            return items
        skip += 100


# -- the contract ---------------------------------------------------------------------------------------


def test_basic_auth_is_required_and_errors_have_razorpay_shape(rzp: RunningRazorpay) -> None:
    anonymous = httpx.get(f"{rzp.api_url}/payments")
    wrong = httpx.get(f"{rzp.api_url}/payments", auth=(rzp.state.client_id, "not-the-secret"))
    for response in (anonymous, wrong):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "BAD_REQUEST_ERROR"
        assert response.json()["error"]["description"] == "The api key provided is invalid"
    with rzp.http() as http:
        too_many = http.get("/payments", params={"count": 101})
        bad_from = http.get("/payments", params={"from": 5})
        no_month = http.get("/settlements/recon/combined", params={"year": 2025})
    assert too_many.status_code == 400 and too_many.json()["error"]["field"] == "count"
    assert bad_from.status_code == 400 and "946684800" in bad_from.json()["error"]["description"]
    assert no_month.status_code == 400


def test_lists_are_newest_first_default_ten_and_carry_no_total(rzp: RunningRazorpay) -> None:
    with rzp.http() as http:
        body = http.get("/payments").json()
    assert body["entity"] == "collection" and body["count"] == len(body["items"]) == 10
    created = [item["created_at"] for item in body["items"]]
    assert created == sorted(created, reverse=True)
    assert set(body) == {"entity", "count", "items"}


def test_from_and_to_are_inclusive_unix_seconds_and_skip_pages(rzp: RunningRazorpay) -> None:
    day = rzp.world.today - 10 * DAY
    truth = payments_on(SEED, day)
    first, last = truth[0].created_at, truth[-1].created_at
    with rzp.http() as http:
        exact = all_pages(http, "/payments", {"from": first, "to": last})
        narrower = all_pages(http, "/payments", {"from": first + 1, "to": last - 1})
        by_three = []
        while True:
            page = http.get(
                "/payments", params={"from": first, "to": last, "count": 3, "skip": len(by_three)}
            ).json()
            by_three += page["items"]
            if page["count"] < 3:
                break
    assert sorted(p["id"] for p in exact) == sorted(p.payment_id for p in truth)
    assert {p["id"] for p in narrower} == {p.payment_id for p in truth[1:-1]} - {
        p.payment_id for p in truth if p.created_at in (first, last)
    }
    assert [p["id"] for p in by_three] == [p["id"] for p in exact]


def test_payments_have_the_contract_fields_and_notes_in_both_shapes(rzp: RunningRazorpay) -> None:
    start = rzp.world.today - 30 * DAY
    with rzp.http() as http:
        payments = all_pages(
            http, "/payments", {"from": ist_midnight(start), "to": ist_midnight(rzp.world.today + DAY)}
        )
    assert len(payments) > 500
    for payment in payments:
        assert payment["id"].startswith("pay_") and len(payment["id"]) == 18
        assert isinstance(payment["amount"], int) and payment["currency"] == "INR"
        assert payment["status"] in {"captured", "refunded", "failed"}
        if payment["status"] == "failed":
            assert payment["fee"] is None and payment["error_code"] and not payment["captured"]
        else:
            fee, tax = fee_and_tax(payment["amount"], payment["international"])
            assert (payment["fee"], payment["tax"]) == (fee, tax)
    shapes = Counter(type(p["notes"]).__name__ for p in payments)
    assert shapes["dict"] > 0 and shapes["list"] > 0 and set(shapes) == {"dict", "list"}
    assert all(p["notes"] == [] for p in payments if isinstance(p["notes"], list))
    assert Counter(p["status"] for p in payments)["refunded"] > 0
    assert {p["refund_status"] for p in payments} == {None, "full", "partial"}


def test_recon_report_by_day_and_month_lists_each_settlements_items(rzp: RunningRazorpay) -> None:
    month_start = (rzp.world.today - 40 * DAY).replace(day=1)
    with rzp.http() as http:
        month = all_pages(
            http,
            "/settlements/recon/combined",
            {"year": month_start.year, "month": f"{month_start.month:02d}"},
        )
        days: list[dict] = []
        day = month_start
        while day.month == month_start.month:
            days += all_pages(
                http, "/settlements/recon/combined", {"year": day.year, "month": day.month, "day": day.day}
            )
            day += DAY
    assert sorted(i["entity_id"] for i in month) == sorted(i["entity_id"] for i in days)
    assert {i["type"] for i in month} == {"payment", "refund", "adjustment"}
    for item in month:
        assert isinstance(item["notes"], str | None)
        if item["type"] == "payment":
            assert item["credit"] == item["amount"] - item["fee"] and item["debit"] == 0
        if item["type"] == "adjustment":
            assert item["settlement_utr"] is None and item["settlement_id"].startswith("setl_")
        assert ist_day(item["settled_at"]).month == month_start.month


# -- the world: settlements, bank credits, answer key ---------------------------------------------------


def test_settlements_are_t_plus_two_working_days_some_batched() -> None:
    assert settlement_day(dt.date(2025, 6, 11)) == dt.date(2025, 6, 13)  # Wed -> Fri
    for weekend_day in (dt.date(2025, 6, 13), dt.date(2025, 6, 14), dt.date(2025, 6, 15)):
        assert settlement_day(weekend_day) == dt.date(2025, 6, 17)  # Fri, Sat, Sun -> Tue
    assert settlement_day(dt.date(2025, 8, 13)) == dt.date(2025, 8, 18)  # Independence Day on the 15th
    assert settlement_on(SEED, dt.date(2025, 6, 14)) is None  # no payouts on a Saturday
    tuesday = settlement_on(SEED, dt.date(2025, 6, 17))
    assert tuesday is not None and {p.day for p in tuesday.payments} == {
        dt.date(2025, 6, 13),
        dt.date(2025, 6, 14),
        dt.date(2025, 6, 15),
    }


def test_each_settlement_is_its_items_net_of_fees_and_gst(rzp: RunningRazorpay) -> None:
    world = rzp.world
    settlements = world.razorpay.settlements(world.history_start, world.today + DAY)
    assert len(settlements) > 250
    with_refunds = [s for s in settlements if s.refunds]
    with_adjustments = [s for s in settlements if s.adjustments]
    assert with_refunds and with_adjustments
    for settlement in settlements:
        gross = sum(p.amount for p in settlement.payments)
        assert settlement.fees == sum(p.fee for p in settlement.payments)
        # ~2% fee (3% international) plus 18% GST on the fee, rounded per payment.
        assert Decimal("0.0235") <= Decimal(settlement.fees) / gross <= Decimal("0.0355")
        assert abs(settlement.tax * 100 - settlement.fees * 18 * 100 // 118) <= 100 * len(settlement.payments)
        assert settlement.amount == (
            gross
            - settlement.fees
            - sum(r.amount for r in settlement.refunds)
            + sum(a.amount for a in settlement.adjustments)
        )
        assert settlement.amount > 0


def test_recon_items_over_http_sum_to_each_settlement(rzp: RunningRazorpay) -> None:
    start = rzp.world.today - 60 * DAY
    with rzp.http() as http:
        settlements = all_pages(
            http, "/settlements", {"from": ist_midnight(start), "to": ist_midnight(rzp.world.today + DAY)}
        )
        items = all_pages(
            http,
            "/settlements/recon/combined",
            {"year": rzp.world.today.year, "month": rzp.world.today.month},
        )
    net: Counter = Counter()
    for item in items:
        net[item["settlement_id"]] += item["credit"] - item["debit"]
    by_id = {s["id"]: s for s in settlements}
    assert net and set(net) <= set(by_id)
    for settlement_id, total in net.items():
        assert total == by_id[settlement_id]["amount"]


def test_answer_key_ties_every_settlement_to_one_bank_credit_with_its_utr(rzp: RunningRazorpay) -> None:
    world = rzp.world
    [account] = [a for a in world.accounts_for("hdfc") if a.key == MERCHANT_KEY]
    assert account.currency == "INR" and account.iban is None and account.owner_name.endswith("Pvt Ltd")
    start, end = world.history_start, world.today + DAY
    key = world.settlement_answer_key(start, end)
    settlements = world.razorpay.settlements(start, end)
    # Every settlement's credit, except those booked late, after today.
    credited = [s for s in settlements if s.day + DAY * settlement_credit(world.seed, s).lag_days < end]
    assert sorted(e.settlement_id for e in key.values()) == sorted(s.settlement_id for s in credited)
    booked = {txn.world_id: txn for txn in world.booked(account.account_id, start, end)}
    lags, kinds = set(), set()
    for entry in key.values():
        credit = booked[entry.world_id]
        settlement = settlement_on(world.seed, entry.settled_on)
        assert settlement is not None and settlement.settlement_id == entry.settlement_id
        assert credit.amount == entry.amount == Decimal(settlement.amount).scaleb(-2)
        assert (
            credit.transaction_date == settlement.day
            and credit.currency == "INR"
            and entry.utr == settlement.utr
        )
        lags.add((credit.booking_date - settlement.day).days)
        kinds.add(entry.utr_on_line)
        # The bank's noise: the UTR as the reference and in the text, only lower-cased in the
        # text, or lost; the credit booked on the day or late.
        if entry.utr_on_line == "exact":
            assert credit.reference == settlement.utr and settlement.utr in credit.description
        elif entry.utr_on_line == "mangled":
            assert credit.reference is None and settlement.utr.lower() in credit.description
        else:
            assert credit.reference is None and settlement.utr.lower() not in credit.description.lower()
    assert kinds == {"exact", "mangled", "missing"} and lags == {0, 1, 2}
    # Not every credit on the account is a settlement: the key is what tells them apart.
    other_credits = [t for t in booked.values() if t.amount > 0 and t.world_id not in key]
    assert other_credits and all(t.reference not in {e.utr for e in key.values()} for t in other_credits)
