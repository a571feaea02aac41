"""The Razorpay merchant's gateway ledger: payments, refunds and adjustments, and the settlements that
pay them out (net of fees and GST) to the merchant's bank account.

Like ``sandbox.daybook``, everything is a pure function of (seed, day), cached: payments of day D come
from ``Random(f"{seed}:razorpay:{MERCHANT_KEY}:{D}")`` and never touch a bank account's stream, so
adding the merchant changed no other account's rows. Razorpay lives in India: every day here is an IST
calendar day and every timestamp is IST-based unix seconds.

Money is integer paise throughout (Razorpay's unit). Settlement cycle: T+2 working days (Mon-Fri, three
national holidays), so Friday-to-Sunday payments settle together on Tuesday. Items settle with the cycle
of the day they were created: payments (credit = amount - fee), refunds (debit = amount) and the odd
adjustment (credit or debit). A settlement's amount is Σ credit - Σ debit of its items.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from sandbox.layout import stable_hex

IST = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
MERCHANT_KEY = "kaveri-hdfc"  # the merchant's bank account (sandbox.layout), where settlements land
MERCHANT_NAME = "Kaveri Handlooms Pvt Ltd"
SETTLEMENT_LAG_WORKING_DAYS = 2
GST_PERCENT = 18
FEE_BASIS_POINTS = {False: 200, True: 300}  # domestic 2%, international cards 3% (before GST)
# Fixed-date national holidays: no settlements, so the next working day settles a bigger batch.
HOLIDAYS = frozenset({(1, 26), (8, 15), (10, 2)})
# Refunds of a day are admitted up to this share of the day's payment credits, so that every
# settlement is a positive credit (Razorpay would otherwise carry a negative balance forward).
_REFUND_SHARE_CAP = (1, 2)
_MAX_REFUND_LAG = 7
_MAX_CYCLE_DAYS = 12  # longer than any T+2 cycle, holidays and weekends included
# The bank side of a payout (settlement_credit): shares of credits without the UTR, with it
# mangled, and booked late.
_UTR_MISSING = 0.06
_UTR_MANGLED = 0.12
_LATE_SETTLEMENT_CREDITS = 0.15
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

_METHODS = ("upi", "card", "netbanking", "wallet")
_METHOD_WEIGHTS = (45, 30, 15, 10)
_BANKS = ("HDFC", "ICIC", "SBIN", "UTIB", "KKBK")
_WALLETS = ("paytm", "phonepe", "freecharge", "mobikwik")
_CARD_NETWORKS = ("Visa", "MasterCard", "RuPay")
_VPA_HANDLES = ("okhdfcbank", "okaxis", "oksbi", "ybl", "paytm")
_PRODUCTS = ("Kanchipuram silk saree", "Ikat cotton dupatta", "Handloom bedsheet", "Chanderi kurta fabric")
_REFUND_REASONS = ("Damaged in transit", "Size exchange", "Order cancelled by customer")
_ADJUSTMENTS_CREDIT = ("Fee reversal for failed payment", "Refund fee reversal")
_ADJUSTMENTS_DEBIT = ("Chargeback fee", "Dispute lost")


def rzp_id(prefix: str, *parts: object) -> str:
    """A stable Razorpay-style id: prefix + 14 base62 characters, e.g. pay_G8VaL2Z68LRtDs."""
    number = int(stable_hex("razorpay", prefix, *parts, length=24), 16)
    chars = []
    for _ in range(14):
        number, digit = divmod(number, 62)
        chars.append(_BASE62[digit])
    return f"{prefix}_{''.join(chars)}"


def unix_at(day: dt.date, seconds: int) -> int:
    """Unix seconds of ``seconds`` after IST midnight of ``day``."""
    return int(dt.datetime.combine(day, dt.time(0), tzinfo=IST).timestamp()) + seconds


def ist_day(unix_seconds: int) -> dt.date:
    return dt.datetime.fromtimestamp(unix_seconds, IST).date()


def is_working_day(day: dt.date) -> bool:
    return day.weekday() < 5 and (day.month, day.day) not in HOLIDAYS


def settlement_day(day: dt.date) -> dt.date:
    """The working day on which items created on ``day`` are settled (T+2 working days)."""
    counted, current = 0, day
    while counted < SETTLEMENT_LAG_WORKING_DAYS:
        current += dt.timedelta(days=1)
        if is_working_day(current):
            counted += 1
    return current


def fee_and_tax(amount: int, international: bool) -> tuple[int, int]:
    """(fee including GST, the GST part), in paise, rounded half up like Razorpay's invoices."""
    fee_before_tax = (amount * FEE_BASIS_POINTS[international] + 5000) // 10000
    tax = (fee_before_tax * GST_PERCENT + 50) // 100
    return fee_before_tax + tax, tax


@dataclass(frozen=True)
class RefundPlan:
    """Decided when the payment is made: refund ``amount`` paise ``lag`` days later (if admitted)."""

    lag: int
    amount: int


@dataclass(frozen=True)
class GatewayPayment:
    payment_id: str
    day: dt.date
    created_at: int  # unix seconds
    amount: int  # paise
    method: str
    international: bool
    captured: bool  # False = failed (never settles)
    fee: int  # incl. GST; 0 for a failed payment
    tax: int
    description: str
    order_id: str
    notes: dict[str, str] | list[Any]  # Razorpay sends an empty notes map as []
    email: str
    contact: str
    details: dict[str, Any]  # method-specific fields: bank, wallet, vpa, card_id, acquirer_data, card
    refund_plan: RefundPlan | None

    @property
    def credit(self) -> int:
        return self.amount - self.fee if self.captured else 0


@dataclass(frozen=True)
class GatewayRefund:
    refund_id: str
    payment_id: str
    day: dt.date
    created_at: int
    amount: int
    notes: dict[str, str] | list[Any]
    arn: str
    payment: GatewayPayment = field(repr=False, compare=False)  # what it refunds (order, method, card)


@dataclass(frozen=True)
class GatewayAdjustment:
    adjustment_id: str
    day: dt.date
    created_at: int
    amount: int  # signed: + credit to the merchant, - debit
    description: str


@dataclass(frozen=True)
class Settlement:
    settlement_id: str
    day: dt.date
    created_at: int
    utr: str
    amount: int  # net credited to the bank: Σ credit - Σ debit of the items
    fees: int
    tax: int
    payments: tuple[GatewayPayment, ...] = field(repr=False)
    refunds: tuple[GatewayRefund, ...] = field(repr=False)
    adjustments: tuple[GatewayAdjustment, ...] = field(repr=False)


@cache
def payments_on(seed: int, day: dt.date) -> tuple[GatewayPayment, ...]:
    """Every payment created on ``day`` (IST), in created_at order."""
    rng = random.Random(f"{seed}:razorpay:{MERCHANT_KEY}:{day.isoformat()}")
    mean = 30 if day.weekday() < 5 else 18
    if day.month in (10, 11):  # the festive season sells more saris
        mean = mean * 3 // 2
    count = max(6, round(rng.gauss(mean, math.sqrt(mean))))
    times = sorted(round(rng.triangular(6 * 3600, 86399, 15 * 3600)) for _ in range(count))
    return tuple(_payment(seed, day, index, seconds, rng) for index, seconds in enumerate(times))


def _payment(seed: int, day: dt.date, index: int, seconds: int, rng: random.Random) -> GatewayPayment:
    payment_id = rzp_id("pay", seed, day.isoformat(), index)
    method = rng.choices(_METHODS, weights=_METHOD_WEIGHTS)[0]
    international = method == "card" and rng.random() < 0.08
    amount = int(rng.triangular(199, 25000, 1499)) * 100
    if rng.random() < 0.1:
        amount += rng.randrange(1, 100)
    # The first payment of a day always succeeds, so every settlement cycle has a credit.
    captured = index == 0 or rng.random() >= 0.06
    fee, tax = fee_and_tax(amount, international) if captured else (0, 0)
    order_number = rng.randrange(10000, 100000)
    notes: dict[str, str] | list[Any] = (
        {"order_ref": f"KH-{order_number}", "channel": rng.choice(("web", "app"))}
        if rng.random() < 0.65
        else []
    )
    refund_plan = None
    if captured and rng.random() < 0.05:
        full = rng.random() < 0.7
        refund_amount = amount if full else max(100, amount * rng.randrange(20, 81) // 10000 * 100)
        refund_plan = RefundPlan(rng.randint(1, _MAX_REFUND_LAG), refund_amount)
    return GatewayPayment(
        payment_id=payment_id,
        day=day,
        created_at=unix_at(day, seconds),
        amount=amount,
        method=method,
        international=international,
        captured=captured,
        fee=fee,
        tax=tax,
        description=f"Order KH-{order_number}: {rng.choice(_PRODUCTS)}",
        order_id=rzp_id("order", seed, payment_id),
        notes=notes,
        email=f"customer{rng.randrange(1000, 100000)}@example.in",
        contact=f"+9198{rng.randrange(10**7, 10**8)}",
        details=_method_details(seed, payment_id, method, international, rng),
        refund_plan=refund_plan,
    )


def _method_details(
    seed: int, payment_id: str, method: str, international: bool, rng: random.Random
) -> dict[str, Any]:
    details: dict[str, Any] = {"bank": None, "wallet": None, "vpa": None, "card_id": None, "card": None}
    if method == "card":
        details["card_id"] = rzp_id("card", seed, payment_id)
        details["card"] = {
            "network": rng.choice(_CARD_NETWORKS),
            "issuer": None if international else rng.choice(_BANKS),
            "type": rng.choice(("credit", "debit")),
            "international": international,
        }
        details["acquirer_data"] = {"auth_code": f"{rng.randrange(10**6):06d}"}
    elif method == "netbanking":
        details["bank"] = rng.choice(_BANKS)
        details["acquirer_data"] = {"bank_transaction_id": f"{rng.randrange(10**9, 10**10)}"}
    elif method == "wallet":
        details["wallet"] = rng.choice(_WALLETS)
        details["acquirer_data"] = {"transaction_id": None}
    else:
        details["vpa"] = f"buyer{rng.randrange(100, 10000)}@{rng.choice(_VPA_HANDLES)}"
        details["acquirer_data"] = {"rrn": f"{rng.randrange(10**11, 10**12)}"}
    return details


def _payment_credits(seed: int, day: dt.date) -> int:
    return sum(payment.credit for payment in payments_on(seed, day))


@cache
def refunds_on(seed: int, day: dt.date) -> tuple[GatewayRefund, ...]:
    """Refunds created on ``day``: the planned refunds of earlier payments, admitted in id order up to
    a share of the day's payment credits (the rest of the plans never happen)."""
    planned = sorted(
        (
            payment
            for lag in range(1, _MAX_REFUND_LAG + 1)
            for payment in payments_on(seed, day - dt.timedelta(days=lag))
            if payment.refund_plan is not None and payment.refund_plan.lag == lag
        ),
        key=lambda payment: payment.payment_id,
    )
    numerator, denominator = _REFUND_SHARE_CAP
    room = _payment_credits(seed, day) * numerator // denominator
    rng = random.Random(f"{seed}:razorpay-refunds:{MERCHANT_KEY}:{day.isoformat()}")
    refunds = []
    for payment in planned:
        assert payment.refund_plan is not None
        if payment.refund_plan.amount > room:
            continue
        room -= payment.refund_plan.amount
        notes: dict[str, str] | list[Any] = (
            {"reason": rng.choice(_REFUND_REASONS)} if rng.random() < 0.6 else []
        )
        refunds.append(
            GatewayRefund(
                refund_id=rzp_id("rfnd", seed, payment.payment_id),
                payment_id=payment.payment_id,
                day=day,
                created_at=unix_at(day, rng.randrange(9 * 3600, 20 * 3600)),
                amount=payment.refund_plan.amount,
                notes=notes,
                arn=f"{rng.randrange(10**22, 10**23)}",
                payment=payment,
            )
        )
    return tuple(sorted(refunds, key=lambda refund: (refund.created_at, refund.refund_id)))


def refund_of(seed: int, payment: GatewayPayment) -> GatewayRefund | None:
    """The refund of a payment, if its plan was admitted (it may still lie in the future)."""
    if payment.refund_plan is None:
        return None
    day = payment.day + dt.timedelta(days=payment.refund_plan.lag)
    return next((r for r in refunds_on(seed, day) if r.payment_id == payment.payment_id), None)


@cache
def adjustments_on(seed: int, day: dt.date) -> tuple[GatewayAdjustment, ...]:
    """The odd adjustment: a fee reversal (credit) or a chargeback fee (debit) on about 7% of days."""
    rng = random.Random(f"{seed}:razorpay-adjustments:{MERCHANT_KEY}:{day.isoformat()}")
    if rng.random() >= 0.07:
        return ()
    if rng.random() < 0.5:
        amount = rng.randrange(500, 25001)
        description = rng.choice(_ADJUSTMENTS_CREDIT)
    else:
        amount = -rng.randrange(10000, 150001)
        description = rng.choice(_ADJUSTMENTS_DEBIT)
        refunded = sum(refund.amount for refund in refunds_on(seed, day))
        if _payment_credits(seed, day) - refunded < 2 * -amount:
            return ()  # never enough to turn the day's net negative
    created_at = unix_at(day, rng.randrange(10 * 3600, 18 * 3600))
    return (GatewayAdjustment(rzp_id("adj", seed, day.isoformat()), day, created_at, amount, description),)


SETTLEMENT_CREDIT_TEXT = "NEFT CR-YESB0CMSNOC-RAZORPAY SOFTWARE PVT LTD"
UtrOnLine = Literal["exact", "mangled", "missing"]


@dataclass(frozen=True)
class SettlementCredit:
    """How the merchant's bank books a settlement's payout. Mostly the UTR is the line's reference
    and ends its text, booked the day Razorpay settles; sometimes the bank's feed keeps only a
    lower-cased UTR in the text (``mangled``), or loses it (``missing``: the line carries the bank's
    own reference), and sometimes the credit is booked a day or two late."""

    description: str
    reference: str | None
    lag_days: int
    utr_on_line: UtrOnLine


def settlement_credit(seed: int, settlement: Settlement) -> SettlementCredit:
    rng = random.Random(f"{seed}:razorpay-settlement-credit:{settlement.day.isoformat()}")
    draw = rng.random()
    lag = rng.choice((1, 2)) if rng.random() < _LATE_SETTLEMENT_CREDITS else 0
    if draw < _UTR_MISSING:
        return SettlementCredit(SETTLEMENT_CREDIT_TEXT, None, lag, "missing")
    if draw < _UTR_MISSING + _UTR_MANGLED:
        return SettlementCredit(f"{SETTLEMENT_CREDIT_TEXT}-{settlement.utr.lower()}", None, lag, "mangled")
    return SettlementCredit(f"{SETTLEMENT_CREDIT_TEXT}-{settlement.utr}", settlement.utr, lag, "exact")


@cache
def settlement_on(seed: int, day: dt.date) -> Settlement | None:
    """The settlement paid out on ``day`` (at most one a day), or None on a day without one."""
    if not is_working_day(day):
        return None
    days = [
        day - dt.timedelta(days=back)
        for back in range(_MAX_CYCLE_DAYS, 0, -1)
        if settlement_day(day - dt.timedelta(days=back)) == day
    ]
    payments = tuple(p for d in days for p in payments_on(seed, d) if p.captured)
    refunds = tuple(r for d in days for r in refunds_on(seed, d))
    adjustments = tuple(a for d in days for a in adjustments_on(seed, d))
    if not payments:
        return None
    amount = (
        sum(p.credit for p in payments) - sum(r.amount for r in refunds) + sum(a.amount for a in adjustments)
    )
    assert amount > 0, f"settlement on {day} would not be a credit"
    rng = random.Random(f"{seed}:razorpay-settlement:{MERCHANT_KEY}:{day.isoformat()}")
    created_at = unix_at(day, 11 * 3600 + rng.randrange(0, 3600))
    julian = day.timetuple().tm_yday
    # A NEFT UTR: the sending bank's four letters, N, year, day of year, sequence (16 characters).
    utr = f"YESBN{day:%y}{julian:03d}{rng.randrange(10**6):06d}"
    return Settlement(
        settlement_id=rzp_id("setl", seed, day.isoformat()),
        day=day,
        created_at=created_at,
        utr=utr,
        amount=amount,
        fees=sum(p.fee for p in payments),
        tax=sum(p.tax for p in payments),
        payments=payments,
        refunds=refunds,
        adjustments=adjustments,
    )


def recon_notes(notes: dict[str, str] | list[Any]) -> str:
    """The recon report's notes: the payment's notes as JSON text ("{}" for none)."""
    return json.dumps(notes if notes else {}, separators=(",", ":"))


class RazorpayMerchant:
    """The merchant's Razorpay account as its API sees it on ``today``: what has happened by then,
    from ``first_day`` on (the world's history). Days are IST calendar days, ranges half-open."""

    def __init__(self, seed: int, first_day: dt.date, today: dt.date) -> None:
        self.seed, self.first_day, self.today = seed, first_day, today

    def _days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        first, last = max(start, self.first_day), min(end, self.today + dt.timedelta(days=1))
        return [first + dt.timedelta(days=n) for n in range((last - first).days)]

    def payments(self, start: dt.date, end: dt.date) -> list[GatewayPayment]:
        return [p for day in self._days(start, end) for p in payments_on(self.seed, day)]

    def refunds(self, start: dt.date, end: dt.date) -> list[GatewayRefund]:
        return [r for day in self._days(start, end) for r in refunds_on(self.seed, day)]

    def settlements(self, start: dt.date, end: dt.date) -> list[Settlement]:
        found = (settlement_on(self.seed, day) for day in self._days(start, end))
        return [settlement for settlement in found if settlement is not None]

    def refund(self, payment: GatewayPayment) -> GatewayRefund | None:
        """The payment's refund if it has been made by today."""
        refund = refund_of(self.seed, payment)
        return refund if refund is not None and refund.day <= self.today else None
