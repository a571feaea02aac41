"""The MT940/MT942 parser against every sample in shared/samples/mt940-wolph (statement and entry counts,
balance outcomes from its README), spot checks of each bank's quirk, hand-written edge cases, and
mutated sample bytes (hypothesis): events or StatementParseError, never another exception."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import mt940
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resources.statements.account_iban import account_iban
from resources.statements.model import (
    Statement,
    StatementEntry,
    StatementHeader,
    StatementParseError,
    collect,
)
from resources.statements.mt940 import Mt940Parser, decode_statement_bytes

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT.parent / "shared" / "samples" / "mt940-wolph"
PARSER = Mt940Parser()

# Per file: statements, :61: entries, balance check per statement (README "Balance reconciliation").
EXPECTED: dict[str, tuple[int, int, list[str]]] = {
    "ASNB_mt940.txt": (31, 8, ["reconciled"] * 31),
    "betterplace_sepa_mt9401.sta": (26, 97, ["reconciled"] * 26),
    "citi_mt940.txt": (1, 5, ["reconciled"]),
    "cmxl_mt940.sta": (3, 16, ["reconciled"] * 3),
    "jejik_abnamro.sta": (2, 10, ["mismatch", "mismatch"]),
    "jejik_ing.sta": (1, 7, ["mismatch"]),
    # 0 + 500 = 500; 3058.98 - 7260 + 500 != 798.98
    "jejik_knab.sta": (2, 3, ["reconciled", "mismatch"]),
    # 0 + 79.7 + 149.5 = 229.2 (62M); 229.2 - 79.9 + 10.1 != 159.6
    "jejik_postfinance.sta": (2, 4, ["reconciled", "mismatch"]),
    "jejik_rabobank-iban.sta": (2, 4, ["reconciled", "reconciled"]),
    "jejik_triodos.sta": (1, 2, ["mismatch"]),
    "mBank_mt940.sta": (1, 3, ["reconciled"]),
    "mBank_mt942.sta": (1, 3, ["no_balances"]),
    "sberbank_171011_01234945.sta": (1, 3, ["reconciled"]),
    "self-provided_gv_codes.sta": (1, 2, ["no_balances"]),
    "self-provided_raiffeisen-cmi.sta": (1, 7, ["mismatch"]),
}


def parse(name: str) -> list[Statement]:
    return collect(PARSER.parse(SAMPLES / name))


def parse_bytes(data: bytes) -> list[StatementHeader | StatementEntry]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "statement.sta"
        path.write_bytes(data)
        return list(PARSER.parse(path))


def parse_text(text: str) -> list[Statement]:
    return collect(parse_bytes(text.encode()))


def entries(statements: list[Statement]) -> list[StatementEntry]:
    return [entry for statement in statements for entry in statement.entries]


# --- every sample ---------------------------------------------------------------------------------


def test_every_sample_file_is_covered() -> None:
    assert {path.name for path in SAMPLES.iterdir() if path.name != "README.md"} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_counts_and_balance_checks(name: str) -> None:
    statements = parse(name)
    count, entry_count, checks = EXPECTED[name]
    raw = (SAMPLES / name).read_bytes()
    # Cross-check of the hard-coded numbers against the file text itself.
    assert len(re.findall(rb"^:61:", raw, re.MULTILINE)) == entry_count
    assert len(re.findall(rb"^:20:", raw, re.MULTILINE)) == count
    assert len(statements) == count
    assert sum(len(statement.entries) for statement in statements) == entry_count
    assert [statement.check.status for statement in statements] == checks
    assert [statement.header.index for statement in statements] == list(range(count))
    for statement in statements:
        assert [entry.index for entry in statement.entries] == list(range(len(statement.entries)))
        json.dumps(statement.header.details)
        for entry in statement.entries:
            json.dumps(entry.details)  # JSON-ready: no Decimal or date inside
            assert isinstance(entry.amount, Decimal)
            assert entry.currency == statement.header.currency


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sniff_recognises_every_sample(name: str) -> None:
    assert PARSER.sniff((SAMPLES / name).read_bytes()[:4096], name)


def test_sniff_rejects_other_formats() -> None:
    camt = b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
    assert not PARSER.sniff(camt, "statement.xml")
    assert not PARSER.sniff(b"date,amount,description\n2024-01-02,-3.50,Coffee :20: off\n", "a.csv")
    assert not PARSER.sniff(b'[{"description": "ref :20:1 acct :25:123", "amount": "1.00"}]', "a.json")
    assert PARSER.sniff(b"{1:F01BANKBEBBAXXX0000000000}{2:O9421200BANKBEBBAXXX}{4:\n", "x.fin")
    assert PARSER.sniff(b"\x01:20:REF\r\n:25:123\r\n", "x.sta")


# --- spot checks per bank -------------------------------------------------------------------------


def test_betterplace_german_gvc_fields() -> None:
    statements = parse("betterplace_sepa_mt9401.sta")
    first = statements[0]
    assert first.header.account_id == "50880050/0194774600888"
    opening = first.header.balance("opening")
    assert opening is not None and opening.amount == Decimal("-1234718.36")  # :60F:D
    reversal = first.entries[5]
    assert (reversal.amount, reversal.is_reversal, reversal.details["mark"]) == (
        Decimal("-204.88"),
        True,
        "RC",
    )
    assert reversal.details["funds_code"] == "R"
    credit = next(e for e in entries(statements) if e.bank_reference == "0724710290621954")
    assert credit.amount == Decimal("15000.05")
    assert credit.end_to_end_id == "EndToEndIdTFNR2000400001"
    assert credit.counterparty_iban == "DE42100100100043921105"  # ?31 wrapped across two lines
    assert credit.counterparty_bic == "PBNKDEFF100"
    assert credit.counterparty_name == "Richter Renate 70 Zeichen Beginn Fuellzeichen xxxxxxxx"
    assert credit.bank_transaction_code == "NTRF/166"
    assert credit.description is not None
    assert credit.description.startswith("TO 13 TFNr 20004 Eingangskanal Mint")  # SVWZ+ across ?22/?23
    assert credit.details["subfields"]["00"] == "GUTSCHRIFT"
    kref = statements[1].entries[1]
    assert kref.details["customer_reference"] == "KREF+"  # "see :86:" ...
    assert (
        kref.entry_reference
        == "TFNr 01005 PayId CTSc-01 EBBMTLG:SEPA-Ueberweisungsauftrag Datei mit 0000005 Zahlungen"
    )


def test_betterplace_gvc_agrees_with_the_mt940_library() -> None:
    """The library's own :86: processor, run on the same text, as an independent oracle."""
    options = mt940.Options(applicant_iban=True, gvc_leading_text=True)
    library = mt940.models.Transactions(options=options)
    tag = mt940.tags.TransactionDetails()
    compared = 0
    for entry in entries(parse("betterplace_sepa_mt9401.sta")):
        information = entry.details.get("information")
        if entry.details.get("information_dialect") != "gvc":
            continue
        theirs = mt940.processors.transaction_details_post_processor(
            library, tag, {"transaction_details": information}, {"transaction_details": information}
        )
        their_reference = (theirs.get("end_to_end_reference") or "").strip()
        # We read "NONREF"/"NOTPROVIDED" as no reference; the library keeps the word.
        assert entry.end_to_end_id == (
            None if their_reference in ("", "NONREF", "NOTPROVIDED") else their_reference
        )
        their_account = theirs.get("applicant_iban")
        assert entry.counterparty_iban == (account_iban(their_account) if their_account else None)
        assert entry.bank_transaction_code.endswith("/" + theirs["transaction_code"])  # type: ignore[union-attr]
        compared += 1
    assert compared == 97


def test_gv_codes_sepa_direct_debit_keywords() -> None:
    debit = parse("self-provided_gv_codes.sta")[0].entries[0]
    assert debit.end_to_end_id == "1234567890123 PAYPAL"
    assert debit.details["sepa"]["MREF"] == "12AB234CD6E7F"
    assert debit.details["sepa"]["CRED"] == "AB12CDE0000000000000000034"  # CRED+ A?24B12...
    assert debit.description == ". SPOTIFY, Ihr Einkaufbei SPOTIFY"  # S?25VWZ+ is SVWZ+
    assert debit.counterparty_name == "PayPal (Europe) S.a.r.l. et"
    assert debit.bank_transaction_code == "NMSC/835"


def test_rabobank_dutch_structure_wrapped_mid_word_and_no_separator() -> None:
    statements = parse("jejik_rabobank-iban.sta")
    first = statements[0].entries[0]
    assert first.amount == Decimal("-25.00")  # 000000000025,00
    assert first.end_to_end_id == "01-01-2013 12:00 0030000987654321"
    assert first.counterparty_name == "CONTRA ACCOUNT HOLDER"  # ACCOUN / T HOLDER
    assert first.entry_reference is None and first.details["customer_reference"] == "EREF"
    assert first.details["supplementary_details"] == "NL70ABNA0987654321"
    second = statements[0].entries[1]
    assert (second.counterparty_name, second.description) == ("JOHN DOE", "Reference 201301234")
    assert statements[1].header.balance("opening").amount == Decimal("965.00")  # type: ignore[union-attr]


def test_triodos_angle_bracket_subfields() -> None:
    statement = parse("jejik_triodos.sta")[0]
    assert statement.header.account_id == "TRIODOSBANK/0390123456"
    assert statement.header.bank_bic is None  # BIC-shaped, but no bank
    first, second = statement.entries
    assert first.description == "ALGEMENE TUSSENREKENING KOSTEN VAN 01-10-2010 TOT EN MET 31-12-2010"
    assert first.details["subfields"]["31"] == "0390123456"
    assert second.description == "HUUR KANTOOR - FEB 2010"


def test_mbank_semicolon_fields() -> None:
    statement = parse("mBank_mt940.sta")[0]  # starts with an SOH byte
    assert statement.header.account_iban == "PL29114010810000267002001002"
    first = statement.entries[0]
    assert first.amount == Decimal("0.01")
    assert first.bank_reference == "MB170119012058"
    assert first.description == "PRZELEW SRODKOW"
    assert first.counterparty_name == "JAN NOWAK UL. NIJAKA 1 M 2 31-234 KRAKOW"
    assert first.counterparty_iban == "PL56114010810000267002001001"
    assert first.details["fields"]["TNR"] == "179171073864111.010001"
    assert first.details["supplementary_details"] == "911-TRANSAKCJA IPH"
    assert first.bank_transaction_code == "NTRF/911"


def test_mbank_mt942_interim_report() -> None:
    statement = parse("mBank_mt942.sta")[0]
    header = statement.header
    assert header.balances == ()
    assert header.created_at == datetime(2017, 1, 19, 18, 15, tzinfo=timezone(timedelta(hours=1)))
    assert header.details["message_type"] == "942"
    assert header.details["credit_entries"] == {"count": 3, "currency": "PLN", "amount": "0.03"}
    assert header.details["debit_entries"]["count"] == 0
    assert header.details["floor_limits"] == [{"mark": None, "currency": "PLN", "amount": "0"}]
    assert {entry.status for entry in statement.entries} == {"booked"}
    assert sum(entry.amount for entry in statement.entries) == Decimal("0.03")


def test_ing_soft_hyphens_and_statement_level_information() -> None:
    statement = parse("jejik_ing.sta")[0]
    assert statement.header.details["information"] == "D000004C000002D25,24C28,71"
    ideal = statement.entries[2]
    assert ideal.entry_reference == "TMG TANGO"
    assert ideal.description is not None and "10062010 15:32" in ideal.description
    dumped = json.dumps([statement.header.details] + [entry.details for entry in statement.entries])
    assert "\\u00ad" not in dumped and "\u00ad" not in (ideal.description or "")
    assert statement.entries[-1].description == (
        "0111111111 Hr S Marechal ROSMALEN Hr S Marechal ROSMALEN Betaling transactiedatum: 22-07-2010"
    )


def test_raiffeisen_single_byte_hungarian_text() -> None:
    statement = parse("self-provided_raiffeisen-cmi.sta")[0]
    header = statement.header
    assert (header.account_id, header.bank_bic, header.currency) == (
        "UBRTHUHB/123456789150ABCDEF002/HUF",
        "UBRTHUHB",
        "HUF",
    )
    forward = [balance for balance in header.balances if balance.kind == "forward_available"]
    assert [balance.date for balance in forward] == [date(2018, 4, 18), date(2018, 4, 19), date(2018, 4, 20)]
    assert header.balance("closing_available").amount == Decimal("25281687.60")  # type: ignore[union-attr]
    first = statement.entries[0]
    assert first.details["supplementary_details"] == "Csoportos átutalás jóváírása"
    assert first.description is not None and "összevont utánvét" in first.description
    assert statement.entries[1].details["supplementary_details"] == "Bankon belüli átutalás"
    assert first.bank_transaction_code == "N527" and first.entry_reference is None


def test_citi_zero_amount_info_lines() -> None:
    statement = parse("citi_mt940.txt")[0]
    statuses = [entry.status for entry in statement.entries]
    assert statuses == ["booked", "booked", "info", "info", "booked"]
    info = statement.entries[2]
    assert info.amount == Decimal("0.00")
    assert info.details["supplementary_details"] == "/ABC/DEF/C 37897,00 BAI CD 025"
    assert statement.check.entries_total == Decimal("-1142.75")
    assert statement.check.entry_count == 5
    assert statement.entries[0].details["funds_code"] == "D"
    assert statement.entries[0].booking_date == date(2024, 3, 12)  # entry date written as 4 spaces


def test_postfinance_amounts_and_continuation_pages() -> None:
    first, second = parse("jejik_postfinance.sta")
    assert [entry.amount for entry in first.entries] == [Decimal("79.7"), Decimal("149.5")]
    assert first.entries[0].entry_reference == "01916" and first.entries[0].bank_reference is None
    assert first.header.balance("interim_closing").amount == Decimal("229.2")  # type: ignore[union-attr]
    assert second.header.balance("interim_opening").amount == Decimal("229.2")  # type: ignore[union-attr]
    assert second.header.sequence == "999/2"
    assert second.entries[0].description is not None
    assert "XXXXXXXXSTRASSE 111" in second.entries[0].description  # STR / ASSE at column 65


def test_knab_amount_without_comma() -> None:
    first, second = parse("jejik_knab.sta")
    assert first.entries[0].amount == Decimal("500")
    credit = second.entries[1]
    assert credit.amount == Decimal("500")  # C500NTRF
    assert credit.entry_reference == "29-07-2014 10:05"
    assert credit.bank_reference == "B4G29PGDCK1QFV3E"
    assert second.entries[0].counterparty_name == "PICQER"


def test_abnamro_header_lines_short_amounts_and_interim_balances() -> None:
    first, second = parse("jejik_abnamro.sta")
    assert first.entries[0].amount == Decimal("-9")  # 9,
    assert first.entries[3].amount == Decimal("-11.8")  # 11,8
    assert (first.entries[1].value_date, first.entries[1].booking_date) == (
        date(2011, 5, 21),
        date(2011, 5, 23),
    )
    assert second.header.sequence == "19322/1"
    assert [balance.kind for balance in second.header.balances] == ["interim_opening", "interim_closing"]


def test_asnb_envelopes_and_sberbank_crlf_non_swift() -> None:
    asnb = parse("ASNB_mt940.txt")
    assert asnb[0].header.details["message_type"] == "940"
    assert asnb[0].entries[0].entry_reference == "NL47INGB9999999999"  # 18 characters before //
    sberbank = parse("sberbank_171011_01234945.sta")[0]
    assert sberbank.header.details["non_swift"]["22"] == "JOHN DOE"
    assert sberbank.entries[0].amount == Decimal("-2402.00")
    assert sberbank.entries[0].details["non_swift"]["15"] == "ERGO Versicherung AG Fiokte"


def test_cmxl_polish_gvc_with_iban_in_38() -> None:
    third = parse("cmxl_mt940.sta")[2]
    assert third.header.account_id == "BPHKPLPK/320000546101"
    first = third.entries[0]
    assert first.counterparty_iban == "PL08106000760000777777777777"
    assert first.counterparty_name == "HUTA SZKLA TOPIC ULPRZEMYSLOWA 67 32-669 WROCLAW"
    assert first.details["supplementary_details"] == "Card transaction"


# --- hand-written edge cases ----------------------------------------------------------------------

MT942_PENDING = """:20:REP1
:25:DE89370400440532013000
:28C:1/1
:34F:EURD0,
:34F:EURC0,
:13D:2401151200-0130
:61:240115EC100,NTRFNONREF//B1
:61:240115ED40,50NTRFNONREF//B2
:61:240115D1,NTRFNONREF//B3
-
"""


def test_mt942_expected_items_are_pending_and_signed() -> None:
    statement = parse_text(MT942_PENDING)[0]
    assert statement.header.account_iban == "DE89370400440532013000"
    assert statement.header.created_at == datetime(
        2024, 1, 15, 12, 0, tzinfo=timezone(-timedelta(minutes=90))
    )
    assert [(e.status, e.amount) for e in statement.entries] == [
        ("pending", Decimal("100")),
        ("pending", Decimal("-40.50")),
        ("booked", Decimal("-1")),
    ]
    assert [limit["mark"] for limit in statement.header.details["floor_limits"]] == ["D", "C"]


def test_year_pivot_and_entry_date_across_new_year() -> None:
    statement = parse_text(
        ":20:X\n:25:123\n:60F:C991230EUR10,\n:61:9912310101C5,NTRFNONREF\n:61:0001020102D1,NTRFNONREF\n"
        ":62F:C000102EUR14,\n"
    )[0]
    first, second = statement.entries
    assert (first.value_date, first.booking_date) == (date(1999, 12, 31), date(2000, 1, 1))
    assert second.value_date == date(2000, 1, 2)
    assert statement.header.period_end == date(2000, 1, 2)
    assert statement.check.status == "reconciled"


def test_february_30_interest_date_is_the_last_day_of_february() -> None:
    statement = parse_text(":20:X\n:25:123\n:60F:C240229EUR1,\n:61:240230C1,NMSCNONREF\n:62F:C240229EUR2,\n")[
        0
    ]
    assert statement.entries[0].value_date == date(2024, 2, 29)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no MT940 statement"),
        ("just some text\nwithout tags\n", "no MT940 statement"),
        (":25:123\n:20:X\n", "before any :20:"),
        (":20:X\n:60F:C240101EUR1,\n", "without :25:"),
        (":20:X\n:25:123\n:60F:C241301EUR1,\n", "line 3: :60F: ValueError: month must be"),
        (":20:X\n:25:123\n:60F:C240101EUR1,2,3\n", "line 3: :60F: amount '1,2,3'"),
        (":20:X\n:25:123\n:60F:C240101EUR1,\n:64:C240101EUR\n", "line 4: :64: .* does not match"),
        (":20:X\n:25:123\n:60F:C240101EUR1,\n:61:240101X1,NTRF\n", "line 4: :61:"),
        (":20:X\n:25:123\n:60F:C240101EUR1,\n:62F:C240101EUR1,\n:61:240101C1,NTRF\n", "after the closing"),
        (":20:X\n:25:123\n:61:240101C1,NTRF\n", "without a currency"),
    ],
)
def test_malformed_input_raises_statement_parse_error(text: str, message: str) -> None:
    with pytest.raises(StatementParseError, match=message):
        parse_bytes(text.encode())


def test_missing_file_raises_statement_parse_error(tmp_path: Path) -> None:
    with pytest.raises(StatementParseError, match="cannot read"):
        list(PARSER.parse(tmp_path / "absent.sta"))


def test_envelope_with_nested_blocks_and_trailer() -> None:
    text = (
        "{1:F01BANKDEFFAXXX0000000000}{2:O9401200BANKDEFFAXXX}{3:{108:MUR1}}{4:\r\n"
        ":20:E1\r\n:25:123/EUR\r\n:28C:1\r\n:60F:C240101EUR1,\r\n:62F:C240101EUR1,\r\n"
        "-}{5:{CHK:ABCDEF123456}}{1:F01BANKDEFFAXXX0000000000}{2:O9401200BANKDEFFAXXX}{4:\r\n"
        ":20:E2\r\n:25:123/EUR\r\n:60F:C240102EUR1,\r\n:62F:C240102EUR1,\r\n-}{5:}"
    )
    statements = parse_text(text)
    assert [s.header.statement_id for s in statements] == ["E1", "E2"]
    assert statements[0].header.currency == "EUR"


def test_single_byte_decoding_prefers_the_code_page_that_reads_as_letters() -> None:
    polish = "Zażółć gęślą jaźń"
    assert decode_statement_bytes(polish.encode("cp1250")) == polish
    hungarian = "Bankon belüli átutalás, összevont"
    assert decode_statement_bytes(hungarian.encode("cp852")) == hungarian
    assert decode_statement_bytes("Grüße".encode()) == "Grüße"


# --- mutated sample bytes -------------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_SAMPLES = sorted(name for name in EXPECTED if (SAMPLES / name).stat().st_size < 8000)
JUNK_AMOUNTS = ["", ",", "1,2,3", "9" * 30, "abc", "0", "-5,00", "1.000,00", ",5"]
JUNK_DATES = ["991340", "240230", "240231", "000000", "241301", "12345", "ABCDEF", "240229"]


def _check(data: bytes) -> None:
    try:
        events = parse_bytes(data)
    except StatementParseError:
        return
    for event in events:
        assert isinstance(event, (StatementHeader, StatementEntry))
        if isinstance(event, StatementEntry):
            assert isinstance(event.amount, Decimal)
    collect(events)


@FUZZ
@given(name=st.sampled_from(FUZZ_SAMPLES), data=st.data())
def test_truncated_and_byte_edited_samples(name: str, data: st.DataObject) -> None:
    raw = (SAMPLES / name).read_bytes()
    position = data.draw(st.integers(0, len(raw)))
    operation = data.draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
    if operation == "truncate":
        mutated = raw[:position]
    elif operation == "flip":
        index = min(position, len(raw) - 1)
        mutated = raw[:index] + bytes([raw[index] ^ data.draw(st.integers(1, 255))]) + raw[index + 1 :]
    elif operation == "insert":
        mutated = raw[:position] + data.draw(st.binary(min_size=1, max_size=8)) + raw[position:]
    else:
        mutated = raw[:position] + raw[position + data.draw(st.integers(1, 40)) :]
    _check(mutated)


@FUZZ
@given(name=st.sampled_from(FUZZ_SAMPLES), data=st.data())
def test_duplicated_and_dropped_lines(name: str, data: st.DataObject) -> None:
    lines = (SAMPLES / name).read_bytes().split(b"\n")
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        if data.draw(st.booleans()):
            lines.insert(index, lines[index])
        elif len(lines) > 1:
            del lines[index]
    _check(b"\n".join(lines))


_AMOUNT_IN_TAG = re.compile(
    rb"^(:6[0245][FM]?:[CD]\d{6}[A-Z]{3}|:61:\d{6}(?:\d{4})?R?[CD][A-Z]?)([\d,]+)", re.M
)
_DATE_IN_TAG = re.compile(rb"^(:6[0-5][FM]?:[CD]?)(\d{6})", re.M)


@FUZZ
@given(name=st.sampled_from(FUZZ_SAMPLES), data=st.data())
def test_junk_amounts_and_dates(name: str, data: st.DataObject) -> None:
    raw = (SAMPLES / name).read_bytes()
    pattern = data.draw(st.sampled_from([_AMOUNT_IN_TAG, _DATE_IN_TAG]))
    junk = JUNK_AMOUNTS if pattern is _AMOUNT_IN_TAG else JUNK_DATES
    matches = list(pattern.finditer(raw))
    if not matches:
        return
    match = data.draw(st.sampled_from(matches))
    replacement = data.draw(st.sampled_from(junk)).encode()
    mutated = raw[: match.start(2)] + replacement + raw[match.end(2) :]
    _check(mutated)
    if replacement in (b"241301", b"991340", b"000000"):
        with pytest.raises(StatementParseError):
            parse_bytes(mutated)
