"""JSON drops in the seed's standard transaction format: exact amounts, statuses, grouping, rejected records."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resources.statements.json_statement import JsonStatementParser
from resources.statements.model import StatementEntry, StatementParseError, collect

IST = timezone(timedelta(hours=5, minutes=30))

RECORDS_TEXT = """[
  {"txn_id": "T1", "amount": -1500.50, "currency": "INR", "status": "SUCCESS",
   "timestamp": "2025-06-15T23:45:00+05:30", "account_id": "ACC-1", "source": "icici", "bank_code": "ICIC",
   "channel": "UPI", "transaction_type": "PAYMENT", "reference_number": "UTR123", "merchant_id": "M9",
   "description": "  Coffee   shop "},
  {"txn_id": "T2", "amount": 92233720368547758079.99, "currency": "INR", "status": "PENDING",
   "timestamp": "2025-06-16T00:10:00+05:30", "account_id": "ACC-2"},
  {"txn_id": "T3", "amount": 10, "currency": "INR", "status": "FAILED",
   "timestamp": "2025-06-16T01:00:00Z", "account_id": "ACC-1"},
  {"txn_id": "T4", "amount": "0.10", "currency": "INR", "status": "REVERSED",
   "timestamp": "2025-06-16T09:00:00-04:00", "account_id": "ACC-1", "extra": {"rate": 1.10}}
]"""


def write(tmp_path: Path, text: str, name: str = "drop.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_records_become_statements_per_account_with_exact_amounts(tmp_path: Path) -> None:
    parser = JsonStatementParser()
    statements = collect(parser.parse(write(tmp_path, RECORDS_TEXT)))

    assert parser.rejected == []
    assert [s.header.account_id for s in statements] == ["ACC-1", "ACC-2"]
    assert [s.header.currency for s in statements] == ["INR", "INR"]
    acc1, acc2 = statements[0].entries, statements[1].entries
    assert [e.amount for e in acc1] == [Decimal("-1500.50"), Decimal("10"), Decimal("0.10")]
    assert str(acc1[0].amount) == "-1500.50"  # the text's scale, never through float
    assert acc2[0].amount == Decimal("92233720368547758079.99")
    assert [(e.statement_index, e.index) for e in acc1 + acc2] == [(0, 0), (0, 1), (0, 2), (1, 0)]

    first = acc1[0]
    assert first.status == "booked"
    assert first.bank_reference == "T1"
    assert first.end_to_end_id == "UTR123"
    assert first.bank_transaction_code == "UPI"
    assert first.description == "Coffee shop"
    assert first.details["transaction_type"] == "PAYMENT"
    assert first.details["merchant_id"] == "M9"
    assert first.details["status"] == "SUCCESS"
    # Booking date is the bank-local date as written: 23:45 IST is already the 15th, not the 15th UTC's 18:15.
    assert first.booking_date == date(2025, 6, 15)
    assert first.booked_at == datetime(2025, 6, 15, 23, 45, tzinfo=IST)
    assert acc2[0].status == "pending"
    assert acc2[0].booking_date == date(2025, 6, 16)

    failed, reversed_ = acc1[1], acc1[2]
    assert (failed.status, failed.details["status"]) == ("info", "FAILED")
    assert (reversed_.status, reversed_.details["status"]) == ("info", "REVERSED")
    assert reversed_.booking_date == date(2025, 6, 16)
    assert reversed_.details["extra"] == {"rate": "1.10"}
    json.dumps([e.details for e in acc1 + acc2])  # JSON-ready
    # Info records are kept but are not movements.
    assert statements[0].check.entries_total == Decimal("-1500.50")


def test_transactions_object_form_is_read(tmp_path: Path) -> None:
    text = '{"generated": "2025-06-17", "transactions": ' + RECORDS_TEXT + ', "count": 4}'
    statements = collect(JsonStatementParser().parse(write(tmp_path, text)))
    assert sum(len(s.entries) for s in statements) == 4


BAD_RECORDS = [
    (
        '{"amount": 1, "currency": "INR", "status": "SUCCESS", "timestamp": "2025-01-01T00:00:00Z",'
        ' "account_id": "A"}',
        "txn_id",
    ),
    (
        '{"txn_id": "X", "amount": 1, "currency": "INR", "status": "SUCCESS", "timestamp": "2025-01-01T00:00:00Z"}',
        "account_id",
    ),
    (
        '{"txn_id": "X", "amount": "1,5", "currency": "INR", "status": "SUCCESS",'
        ' "timestamp": "2025-01-01T00:00:00Z", "account_id": "A"}',
        "amount",
    ),
    (
        '{"txn_id": "X", "amount": NaN, "currency": "INR", "status": "SUCCESS",'
        ' "timestamp": "2025-01-01T00:00:00Z", "account_id": "A"}',
        "amount",
    ),
    (
        '{"txn_id": "X", "amount": true, "currency": "INR", "status": "SUCCESS",'
        ' "timestamp": "2025-01-01T00:00:00Z", "account_id": "A"}',
        "amount",
    ),
    (
        '{"txn_id": "X", "amount": 1, "currency": "inr", "status": "SUCCESS",'
        ' "timestamp": "2025-01-01T00:00:00Z", "account_id": "A"}',
        "currency",
    ),
    (
        '{"txn_id": "X", "amount": 1, "currency": "INR", "status": "DONE",'
        ' "timestamp": "2025-01-01T00:00:00Z", "account_id": "A"}',
        "status",
    ),
    (
        '{"txn_id": "X", "amount": 1, "currency": "INR", "status": "SUCCESS",'
        ' "timestamp": "2025-01-01 10:00:00", "account_id": "A"}',
        "timestamp: no UTC offset",
    ),
    (
        '{"txn_id": "X", "amount": 1, "currency": "INR", "status": "SUCCESS",'
        ' "timestamp": "yesterday", "account_id": "A"}',
        "timestamp",
    ),
    (
        '{"txn_id": ["X"], "amount": 1, "currency": "INR", "status": "SUCCESS",'
        ' "timestamp": "2025-01-01T00:00:00Z", "account_id": "A"}',
        "txn_id",
    ),
    (
        '{"txn_id": "X", "amount": 1, "currency": "INR", "status": "SUCCESS",'
        ' "timestamp": "2025-01-01T00:00:00Z", "account_id": "A", "description": {"a": 1}}',
        "description",
    ),
    ('"just a string"', "not a JSON object"),
]


@pytest.mark.parametrize(("record", "field"), BAD_RECORDS)
def test_bad_record_is_rejected_with_its_field_and_text_and_the_rest_lands(
    tmp_path: Path, record: str, field: str
) -> None:
    good = (
        '{"txn_id": "G1", "amount": 2.5, "currency": "EUR", "status": "SUCCESS",'
        ' "timestamp": "2025-01-01T00:00:00+01:00", "account_id": "A"}'
    )
    parser = JsonStatementParser()
    events = list(parser.parse(write(tmp_path, f"[{good},\n  {record}  ,{good}]")))

    assert [e.bank_reference for e in events if isinstance(e, StatementEntry)] == ["G1", "G1"]
    assert len(parser.rejected) == 1
    index, reason, text = parser.rejected[0]
    assert index == 1
    assert field in reason
    assert text == record  # the original JSON text, for the quarantine


def test_rejected_is_reset_on_each_parse(tmp_path: Path) -> None:
    parser = JsonStatementParser()
    list(parser.parse(write(tmp_path, '[{"txn_id": "X"}]')))
    assert len(parser.rejected) == 1
    list(parser.parse(write(tmp_path, RECORDS_TEXT, name="good.json")))
    assert parser.rejected == []


def test_numeric_ids_keep_their_digits(tmp_path: Path) -> None:
    text = (
        '[{"txn_id": 123456789012345678901234, "amount": 1, "currency": "USD", "status": "SUCCESS",'
        ' "timestamp": "2025-01-01T00:00:00Z", "account_id": 42}]'
    )
    events = list(JsonStatementParser().parse(write(tmp_path, text)))
    assert events[0].account_id == "42"  # type: ignore[union-attr]
    assert events[1].bank_reference == "123456789012345678901234"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a JSON array or object"),
        ("   \n", "not a JSON array or object"),
        ('"text"', "not a JSON array or object"),
        ("[1, 2", "not valid JSON"),
        ("[1,]", "not valid JSON"),
        ("[{}] trailing", "text after the JSON array"),
        ('{"records": []}', "no `transactions` array"),
        ('{"transactions": {}}', "no `transactions` array"),
        ('{"transactions": []} x', "text after the JSON object"),
        ('{"transactions": [}', "not valid JSON"),
        ("[" * 100_000, "nested too deeply|not valid JSON"),
    ],
)
def test_whole_file_problems_are_parse_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(StatementParseError, match=message):
        list(JsonStatementParser().parse(write(tmp_path, text)))


def test_binary_file_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b"[\xff\xfe\x00]")
    with pytest.raises(StatementParseError, match="not UTF-8"):
        list(JsonStatementParser().parse(path))


def test_empty_array_has_no_statements(tmp_path: Path) -> None:
    assert list(JsonStatementParser().parse(write(tmp_path, "[]"))) == []
    assert list(JsonStatementParser().parse(write(tmp_path, '\ufeff{"transactions": [ ]}'))) == []


def test_sniff() -> None:
    parser = JsonStatementParser()
    assert parser.sniff(b'  \n[{"txn_id": "1"', "a.json")
    assert parser.sniff(b'\xef\xbb\xbf{"transactions": [', "a.json")
    assert not parser.sniff(b'{"data": [1, 2]}', "a.json")
    assert not parser.sniff(b'Date,txn_id\n"txn_id"', "a.csv")
    assert not parser.sniff(b"", "a.json")
    assert parser.sniff(b"[]\n", "day-without-movements.json")
    assert parser.sniff(b"\xef\xbb\xbf [ \r\n ]", "a.json")
    assert not parser.sniff(b"[] x", "a.json")


# -- properties ------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2_000),
            st.integers(min_value=0, max_value=6),
            st.sampled_from(["", "x", "{", "}", "[", "]", ",", '"', ":", "-", "1e999", "null", "NaN", "\\"]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_json_files_give_events_or_parse_errors(
    tmp_path: Path, edits: list[tuple[int, int, str]]
) -> None:
    text = RECORDS_TEXT
    for position, length, chunk in edits:
        at = position % (len(text) + 1)
        text = text[:at] + chunk + text[at + length :]
    parser = JsonStatementParser()
    try:
        statements = collect(parser.parse(write(tmp_path, text)))
    except StatementParseError:
        return
    landed = sum(len(s.entries) for s in statements)
    assert all(entry.amount.is_finite() for s in statements for entry in s.entries)
    assert all(
        entry.booked_at is not None and entry.booked_at.utcoffset() is not None
        for s in statements
        for entry in s.entries
    )
    # Every record of the array either lands or is rejected, once.
    document = json.loads(
        text.lstrip("\ufeff"), parse_float=Decimal, parse_int=Decimal, parse_constant=Decimal
    )
    items = document if isinstance(document, list) else document["transactions"]
    assert landed + len(parser.rejected) == len(items)
    assert len({index for index, _, _ in parser.rejected}) == len(parser.rejected)
