"""OFX 1.02 SGML and 2.x XML statements through ofxtools: accounts, balances, dates as written, errors."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resources.statements.model import StatementParseError, collect
from resources.statements.ofx_statement import OfxStatementParser

SGML_HEADER = """OFXHEADER:100
DATA:OFXSGML
VERSION:102
SECURITY:NONE
ENCODING:USASCII
CHARSET:1252
COMPRESSION:NONE
OLDFILEUID:NONE
NEWFILEUID:NONE

"""

SIGNON = """<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS>
<DTSERVER>20250131120000.000[-5:EST]<LANGUAGE>ENG</SONRS></SIGNONMSGSRSV1>"""

BANK_STATEMENT_SGML = (
    SGML_HEADER
    + "<OFX>\n"
    + SIGNON
    + """
<BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>
<STMTRS><CURDEF>USD
<BANKACCTFROM><BANKID>121000248<ACCTID>000123456789<ACCTTYPE>CHECKING</BANKACCTFROM>
<BANKTRANLIST><DTSTART>20250101<DTEND>20250131235959[-5:EST]
<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20250105233000.000[-5:EST]<DTUSER>20250104<TRNAMT>-42.10
<FITID>2025010501<NAME>CORNER CAFE<MEMO>Card   purchase 1234</STMTTRN>
<STMTTRN><TRNTYPE>CHECK<DTPOSTED>20250110<TRNAMT>-1500.00<FITID>2025011001<CHECKNUM>1042
<REFNUM>R77<PAYEE><NAME>LANDLORD LLC<ADDR1>1 Main St<CITY>Springfield<STATE>IL<POSTALCODE>62701
<PHONE>555-0100</PAYEE></STMTTRN>
<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20250131090000[+5.30:IST]<TRNAMT>92233720368547758079.01
<FITID>2025013101<NAME>BIG DEPOSIT</STMTTRN>
</BANKTRANLIST>
<LEDGERBAL><BALAMT>92233720368547756536.91<DTASOF>20250131235959[-5:EST]</LEDGERBAL>
<AVAILBAL><BALAMT>1000.00<DTASOF>20250131</AVAILBAL>
</STMTRS></STMTTRNRS></BANKMSGSRSV1>
</OFX>
"""
)

CARD_STATEMENT_XML = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" NEWFILEUID="NONE"?>
<OFX>
<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>
<DTSERVER>20250301080000.000[+1:CET]</DTSERVER><LANGUAGE>ENG</LANGUAGE></SONRS></SIGNONMSGSRSV1>
<CREDITCARDMSGSRSV1><CCSTMTTRNRS><TRNUID>7</TRNUID><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>
<CCSTMTRS><CURDEF>EUR</CURDEF>
<CCACCTFROM><ACCTID>DE89370400440532013000</ACCTID></CCACCTFROM>
<BANKTRANLIST><DTSTART>20250201000000[+1:CET]</DTSTART><DTEND>20250228235959[+1:CET]</DTEND>
<STMTTRN><TRNTYPE>POS</TRNTYPE><DTPOSTED>20250201003000[+1:CET]</DTPOSTED><TRNAMT>-19,99</TRNAMT>
<FITID>CC-1</FITID><NAME>BOOKSHOP</NAME><MEMO>Books</MEMO>
<CURRENCY><CURRATE>1.0</CURRATE><CURSYM>GBP</CURSYM></CURRENCY></STMTTRN>
<STMTTRN><TRNTYPE>PAYMENT</TRNTYPE><DTPOSTED>20250215</DTPOSTED><TRNAMT>500.00</TRNAMT>
<FITID>CC-2</FITID><MEMO>Thank you</MEMO></STMTTRN>
</BANKTRANLIST>
<LEDGERBAL><BALAMT>-120.55</BALAMT><DTASOF>20250228</DTASOF></LEDGERBAL>
</CCSTMTRS></CCSTMTTRNRS></CREDITCARDMSGSRSV1>
</OFX>
"""

EST = timezone(timedelta(hours=-5))


def write(tmp_path: Path, text: str, name: str = "drop.ofx") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_sgml_bank_statement(tmp_path: Path) -> None:
    statements = collect(OfxStatementParser().parse(write(tmp_path, BANK_STATEMENT_SGML)))

    assert len(statements) == 1
    header, entries = statements[0].header, statements[0].entries
    assert header.account_id == "000123456789"
    assert header.account_iban is None
    assert header.currency == "USD"
    assert header.details == {"ofx_statement": "STMTRS", "bank_id": "121000248", "account_type": "CHECKING"}
    assert (header.period_start, header.period_end) == (date(2025, 1, 1), date(2025, 1, 31))
    assert header.created_at == datetime(2025, 1, 31, 12, 0, tzinfo=EST)
    closing, available = header.balance("closing"), header.balance("closing_available")
    assert closing is not None and closing.amount == Decimal("92233720368547756536.91")
    assert closing.code == "LEDGERBAL" and closing.date == date(2025, 1, 31)
    assert available is not None and available.amount == Decimal("1000.00")
    assert header.balance("opening") is None  # OFX has none, and none is invented
    assert statements[0].check.status == "no_balances"

    assert [e.amount for e in entries] == [
        Decimal("-42.10"),
        Decimal("-1500.00"),
        Decimal("92233720368547758079.01"),
    ]
    cafe, cheque, deposit = entries
    # 23:30 EST on the 5th is the 6th in UTC: the booking date is the one written.
    assert cafe.booking_date == date(2025, 1, 5)
    assert cafe.booked_at == datetime(2025, 1, 5, 23, 30, tzinfo=EST)
    assert cafe.value_date == date(2025, 1, 4)
    assert cafe.bank_reference == "2025010501"
    assert cafe.counterparty_name == "CORNER CAFE"
    assert cafe.description == "Card purchase 1234"
    assert cafe.bank_transaction_code == "DEBIT"
    assert cafe.currency == "USD" and cafe.status == "booked"
    assert cheque.booked_at is None  # a date without a time
    assert cheque.counterparty_name == "LANDLORD LLC"
    assert cheque.details == {"checknum": "1042", "refnum": "R77"}
    assert deposit.booking_date == date(2025, 1, 31)
    assert deposit.booked_at == datetime(2025, 1, 31, 9, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert [(e.statement_index, e.index) for e in entries] == [(0, 0), (0, 1), (0, 2)]


def test_xml_credit_card_statement(tmp_path: Path) -> None:
    statements = collect(OfxStatementParser().parse(write(tmp_path, CARD_STATEMENT_XML)))

    header, entries = statements[0].header, statements[0].entries
    assert header.account_id == "DE89370400440532013000"
    assert header.account_iban == "DE89370400440532013000"
    assert header.currency == "EUR"
    assert header.details == {"ofx_statement": "CCSTMTRS"}
    closing = header.balance("closing")
    assert closing is not None and closing.amount == Decimal("-120.55")
    assert header.balance("closing_available") is None
    book, payment = entries
    assert book.amount == Decimal("-19.99")  # decimal comma read exactly
    assert book.currency == "GBP"  # the transaction's own currency
    assert book.details["currency_rate"] == "1.0"
    assert book.booking_date == date(2025, 2, 1)  # 00:30 CET, still 31 January in UTC
    assert payment.amount == Decimal("500.00")
    assert payment.currency == "EUR"
    assert payment.counterparty_name is None
    assert payment.description == "Thank you"


def test_sgml_end_tags_of_aggregates_may_be_left_out_where_unambiguous(tmp_path: Path) -> None:
    statements = collect(
        OfxStatementParser().parse(write(tmp_path, BANK_STATEMENT_SGML.replace("</STMTRS>", "")))
    )
    assert len(statements[0].entries) == 3
    assert statements[0].header.balance("closing") is not None


def test_statement_without_transactions(tmp_path: Path) -> None:
    text = BANK_STATEMENT_SGML.split("<BANKTRANLIST>")[0] + BANK_STATEMENT_SGML.split("</BANKTRANLIST>")[1]
    statements = collect(OfxStatementParser().parse(write(tmp_path, text)))
    assert len(statements) == 1 and statements[0].entries == ()
    assert statements[0].header.period_start is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a valid OFX file"),
        ("OFXHEADER:100\nDATA:OFXSGML\n", "not a valid OFX file"),
        ("hello, world", "not a valid OFX file"),
        (BANK_STATEMENT_SGML.replace("<TRNAMT>-42.10", "<TRNAMT>lots"), "not a valid OFX file"),
        (BANK_STATEMENT_SGML.replace("<FITID>2025010501", ""), "not a valid OFX file"),
        (BANK_STATEMENT_SGML.replace("20250105233000.000", "20251305233000.000"), "not a valid OFX file"),
        (BANK_STATEMENT_SGML.replace("<CURDEF>USD", "<CURDEF>XYZ"), "not a valid OFX file"),
        (BANK_STATEMENT_SGML.replace("Card   purchase 1234</STMTTRN>", "x"), "not a valid OFX file"),
        (
            # ofxtools alone would warn and skip a transaction outside BANKTRANLIST: it is not lost silently.
            BANK_STATEMENT_SGML.replace(
                "</BANKTRANLIST>",
                "</BANKTRANLIST><STMTTRN><TRNTYPE>FEE<DTPOSTED>20250102<TRNAMT>-1<FITID>F1</STMTTRN>",
            ),
            "unknown tag STMTTRN",
        ),
        (
            BANK_STATEMENT_SGML.split("<BANKMSGSRSV1>")[0] + "</OFX>\n",
            "no bank \\(STMTRS\\) or credit-card \\(CCSTMTRS\\) statement",
        ),
    ],
)
def test_unreadable_files_are_parse_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(StatementParseError, match=message):
        list(OfxStatementParser().parse(write(tmp_path, text)))


def test_binary_file_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "x.ofx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(StatementParseError):
        list(OfxStatementParser().parse(path))


def test_sniff() -> None:
    parser = OfxStatementParser()
    assert parser.sniff(BANK_STATEMENT_SGML.encode()[:4096], "a.ofx")
    assert parser.sniff(CARD_STATEMENT_XML.encode()[:4096], "a.qfx")
    assert parser.sniff(b"\xef\xbb\xbf\r\n<OFX>\n<SIGNONMSGSRSV1>", "a.ofx")
    assert not parser.sniff(
        b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053', "c.xml"
    )
    assert not parser.sniff(b":20:STARTUMS\n:25:DE89\n", "a.sta")
    assert not parser.sniff(b'[{"txn_id": "OFXHEADER"}]', "a.json")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    source=st.sampled_from([BANK_STATEMENT_SGML, CARD_STATEMENT_XML]),
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3_000),
            st.integers(min_value=0, max_value=8),
            st.sampled_from(["", "<", ">", "</", "9", "-", ",", "[", "]", "x", "\x00", "<STMTTRN>", "&"]),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_ofx_files_give_events_or_parse_errors(
    tmp_path: Path, source: str, edits: list[tuple[int, int, str]]
) -> None:
    text = source
    for position, length, chunk in edits:
        at = position % (len(text) + 1)
        text = text[:at] + chunk + text[at + length :]
    try:
        statements = collect(OfxStatementParser().parse(write(tmp_path, text)))
    except StatementParseError:
        return
    assert statements
    for statement in statements:
        assert all(entry.amount.is_finite() for entry in statement.entries)
        assert all(entry.statement_index == statement.header.index for entry in statement.entries)
