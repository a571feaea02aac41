"""Pure helpers: IBAN check digits, exact-decimal JSON, the TrueLayer from/to window, schedules."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from sandbox.daybook import scheduled
from sandbox.iban import gb_iban, is_valid_iban, make_iban
from sandbox.jsonbody import dumps_exact
from sandbox.truelayer import InvalidDateRange, transaction_window
from sandbox.world import World


def test_iban_check_digits() -> None:
    assert gb_iban("WEST", "12-34-56", "98765432") == "GB82WEST12345698765432"  # the ISO 13616 example
    assert make_iban("DE", "370400440532013000") == "DE89370400440532013000"
    assert is_valid_iban("GB82 WEST 1234 5698 7654 32")
    assert not is_valid_iban("GB83WEST12345698765432")
    assert not is_valid_iban("GB82WEST12345698765433")
    assert not is_valid_iban("nonsense")
    with pytest.raises(ValueError):
        gb_iban("WEST", "12-34", "98765432")


def test_exact_decimal_json() -> None:
    body = {
        "amount": Decimal("-12.30"),
        "list": [Decimal("0.10"), Decimal("1E+3"), 3, True, None],
        "t": "Lefèvre",
    }
    text = dumps_exact(body)
    assert text == '{"amount":-12.30,"list":[0.10,1000,3,true,null],"t":"Lefèvre"}'
    assert json.loads(text, parse_float=Decimal)["amount"] == Decimal("-12.30")
    with pytest.raises(TypeError):
        dumps_exact({"amount": 1.5})
    with pytest.raises(ValueError):
        dumps_exact(Decimal("NaN"))


def test_transaction_window() -> None:
    world = World(1, dt.date(2025, 6, 15))
    d = dt.date
    assert transaction_window("2025-06-01", "2025-06-03", world) == (d(2025, 6, 1), d(2025, 6, 4))
    assert transaction_window("2025-06-01T00:00:00Z", "2025-06-03T00:00:00", world) == (
        d(2025, 6, 1),
        d(2025, 6, 4),
    )
    assert transaction_window("2025-06-01T09:30:00+00:00", "2025-06-03T23:59:59Z", world) == (
        d(2025, 6, 2),
        d(2025, 6, 4),
    )
    # Offsets are converted to UTC first: 01:00+02:00 is 23:00 UTC the day before.
    assert transaction_window("2025-06-02T01:00:00+02:00", "2025-06-02", world)[0] == d(2025, 6, 2)
    assert transaction_window(None, None, world) == (world.history_start, d(2025, 6, 16))
    assert transaction_window("2025-06-03", "2025-06-03", world) == (d(2025, 6, 3), d(2025, 6, 4))
    with pytest.raises(InvalidDateRange):
        transaction_window("2025-06-04", "2025-06-03", world)
    with pytest.raises(ValueError):
        transaction_window("yesterday", None, world)


def test_monthly_schedule_rolls_over_weekends() -> None:
    # 25 May 2025 is a Sunday: salaries move back to Friday 23, direct debits forward to Monday 26.
    assert scheduled(dt.date(2025, 5, 23), 25, roll="prev")
    assert not scheduled(dt.date(2025, 5, 25), 25, roll="prev")
    assert scheduled(dt.date(2025, 5, 26), 25, roll="next")
    # 1 March 2025 is a Saturday: due on the 1st -> Monday 3 March (seen from the new month).
    assert scheduled(dt.date(2025, 3, 3), 1)
    # 28 June 2025 is a Saturday: rolled into Monday 30 June, still the same month.
    assert scheduled(dt.date(2025, 6, 30), 28)
