"""The camt.053 parser against every bank sample in shared/samples/camt053-iso20022js (counts and balance
outcomes from its README), hand-written edge cases, and mutated sample bytes (hypothesis)."""

from __future__ import annotations

import json
import random
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from resources.statements.camt053 import Camt053Parser
from resources.statements.model import (
    Statement,
    StatementEntry,
    StatementHeader,
    StatementParseError,
    collect,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT.parent / "shared" / "samples" / "camt053-iso20022js"
MT940_SAMPLES = REPO_ROOT.parent / "shared" / "samples" / "mt940-wolph"
MALFORMED = "bank_of_montreal_camt053_v2_2.xml"

# README.md of the samples: statements, entries, balance check per statement.
EXPECTED = {
    "abn_amro_example_camt.xml": (1, 13, ["reconciled"]),
    "ing_example_camt.xml": (1, 9, ["reconciled"]),
    "nordea_example_camt.xml": (1, 6, ["reconciled"]),
    "goldman_sachs_camt_053_us_v2_sample.xml": (1, 15, ["mismatch"]),
    "goldman_sachs_camt_053_uk_v2_1.xml": (2, 6, ["reconciled", "mismatch"]),
    # BAI 010/015 are the opening/closing ledger: 26164474.57 + 69.69 != 25118657.50
    "bank_of_montreal_camt053_v2_1.xml": (1, 1, ["mismatch"]),
    # 13 accounts without entries (010 = 015) and one with 155126.75 - 17628.00 = 137498.75
    "bank_of_montreal_camt053_v2_5.xml": (14, 1, ["reconciled"] * 14),
    "mercury_camt053_v2_1.xml": (38, 50, ["reconciled"] * 38),
}
PARSER = Camt053Parser()


def parse(name: str) -> list[Statement]:
    return collect(PARSER.parse(SAMPLES / name))


def parse_bytes(data: bytes) -> list[StatementHeader | StatementEntry]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "statement.xml"
        path.write_bytes(data)
        return list(PARSER.parse(path))


def test_every_sample_file_is_covered() -> None:
    assert {path.name for path in SAMPLES.glob("*.xml")} == {*EXPECTED, MALFORMED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_counts_and_balance_checks(name: str) -> None:
    statements = parse(name)
    count, entries, checks = EXPECTED[name]
    assert len(statements) == count
    assert sum(len(statement.entries) for statement in statements) == entries
    assert [statement.check.status for statement in statements] == checks
    assert [statement.header.index for statement in statements] == list(range(count))
    for statement in statements:
        assert [entry.index for entry in statement.entries] == list(range(len(statement.entries)))
        json.dumps(statement.header.details)
        for entry in statement.entries:
            json.dumps(entry.details)  # JSON-ready: no Decimal, date or element left inside
            assert isinstance(entry.amount, Decimal)


def test_malformed_bmo_file_raises_with_line_number() -> None:
    with pytest.raises(StatementParseError, match="line 993"):
        parse(MALFORMED)


def test_abn_amro_prcd_opening_and_batches() -> None:
    (statement,) = parse("abn_amro_example_camt.xml")
    opening = statement.header.balance("opening")
    assert opening is not None and (opening.code, opening.amount) == ("PRCD", Decimal("1000.01"))
    assert statement.header.account_iban == "NL77ABNA0574908765"
    assert statement.header.bank_bic == "ABNANL2A"
    assert statement.header.sequence == "0070"
    assert len([b for b in statement.header.balances if b.kind == "forward_available"]) == 5

    with_details = statement.entries[3]  # Acceptgiro batch of 10 with every TxDtls
    assert with_details.amount == Decimal("10.00")
    assert with_details.details["batches"][0]["number_of_transactions"] == "10"
    assert len(with_details.details["transactions"]) == 10
    assert with_details.details["transactions"][0]["remittance_references"] == ["1234567812345678"]
    assert with_details.counterparty_name is None and with_details.end_to_end_id is None
    assert with_details.description == "/TRTP/SEPA ACCEPTGIRO BATCH/PREF/3095D4322561460S0PS/NRTX/10"

    salary = next(entry for entry in statement.entries if entry.bank_transaction_code == "PMNT-ICDT-SALA")
    assert salary.amount == Decimal("-2.00")
    assert salary.details["batches"][0]["number_of_transactions"] == "2"
    assert salary.details["transactions"] == []  # batch without details: still one booked movement

    single = statement.entries[1]
    assert single.details["transactions"][0]["references"]["EndToEndId"] == "NOTPROVIDED"
    assert single.end_to_end_id is None
    assert (single.counterparty_name, single.description) == ("NAAM", "OMSCHRIJVING")

    wrapped = next(e for e in statement.entries if e.description and e.description.startswith("2305271368"))
    assert wrapped.description == "2305271368 0050001248302363 pid2305271368t Mud Masters Mud Masters"

    reversals = [entry for entry in statement.entries if entry.is_reversal]
    assert len(reversals) == 2 and all(entry.amount < 0 for entry in reversals)  # DBIT, RvslInd ignored


def test_ing_reversal_shares_references_with_its_original() -> None:
    (statement,) = parse("ing_example_camt.xml")
    original, reversal = statement.entries[7], statement.entries[8]
    assert reversal.is_reversal and not original.is_reversal
    assert reversal.amount == original.amount == Decimal("-30.00")
    assert reversal.entry_reference == original.entry_reference == "021514017743280167000000001"
    assert reversal.bank_reference == original.bank_reference == "3101963431841"
    assert (reversal.booking_date, reversal.value_date) == (date(2014, 1, 3), date(2013, 12, 20))
    assert reversal.end_to_end_id == "5000300060007000"
    assert reversal.details["transactions"][0]["references"]["MndtId"] == "DDMdtINGBC"
    assert reversal.details["transactions"][0]["return_reason"] == "MD06"
    # a debit: the other side is the creditor
    assert (reversal.counterparty_name, reversal.counterparty_iban, reversal.counterparty_bic) == (
        "INGTestrekening",
        "NL20INGB0001234567",
        "INGBNL2A",
    )
    assert reversal.bank_transaction_code == "PMNT-IDDT-UPDD"
    assert reversal.details["bank_transaction_code_proprietary"] == {"code": "01304", "issuer": "INGGroup"}
    opening = statement.header.balance("opening")
    assert opening is not None and opening.code == "OPBD"  # PRCD is not the opening when OPBD is there


def test_goldman_negative_balances_and_times() -> None:
    (statement,) = parse("goldman_sachs_camt_053_us_v2_sample.xml")
    header = statement.header
    assert header.account_id == "DD01100056869" and header.account_iban is None
    balances = {balance.code: balance.amount for balance in header.balances}
    assert balances["OPBD"] == Decimal("-843686.20")
    assert balances["CLBD"] == Decimal("-846665.15")
    assert balances["OPAV"] == Decimal("334432492.92")
    naive, aware = statement.entries[0], statement.entries[3]
    assert naive.is_reversal and naive.amount == Decimal("10.00")  # CRDT reversal stays a credit
    assert naive.booking_date == date(2023, 10, 1) and naive.booked_at is None
    assert naive.details["booked_at_local"] == "2023-10-01T13:37:14.000"
    assert naive.bank_transaction_code == "ACH Credit Reject"
    assert aware.booked_at == datetime(2023, 10, 1, 21, 5, 2, tzinfo=UTC)
    assert {entry.currency for entry in statement.entries} == {"USD", "EUR"}


def test_mercury_v11_one_iban_split_by_currency() -> None:
    statements = parse("mercury_camt053_v2_1.xml")
    first_id = statements[0].header.statement_id
    same = [s.header for s in statements if s.header.statement_id == first_id]
    assert len(same) == 11
    assert {header.account_id for header in same} == {"GB30CLRB04274800099563"}
    assert len({header.currency for header in same}) == 11
    header = same[0]
    assert header.details["namespace"] == "urn:iso:std:iso:20022:tech:xsd:camt.053.001.11"
    assert header.bank_bic == "CLRBGB22309"
    assert header.account_owner == "Mercury Segregated Client Account"
    assert (header.period_start, header.period_end) == (date(2025, 8, 17), date(2025, 8, 18))
    credit = next(s for s in statements if s.entries).entries[0]
    assert credit.status == "booked"  # Sts/Cd (v08+)
    assert credit.booking_date is None and credit.value_date == date(2025, 8, 18)
    assert credit.bank_transaction_code == "FasterPayments"
    assert credit.end_to_end_id == "fd759366b8ca4bf69b775b5a1af0c44a"
    assert credit.counterparty_iban == "GB25NWBK60053782218919"
    assert credit.counterparty_name == "KOPPES B V04"  # only the ultimate debtor is named
    debit = next(e for s in statements for e in s.entries if e.amount == Decimal("-46464.07"))
    assert debit.counterparty_name == "Larkshead Licensing"  # Cdtr/Pty/Nm (v08+)


def test_nordea_structured_reference() -> None:
    (statement,) = parse("nordea_example_camt.xml")
    rf = next(entry for entry in statement.entries if entry.amount == Decimal("-700.50"))
    assert rf.description == "RF332348236"
    assert rf.details["transactions"][0]["remittance_references"] == ["RF332348236"]
    lines = statement.entries[1].details["transactions"][0]["remittance_lines"]
    assert lines == ["Free text max 140 characters and ma", "x 35 characters in one line"]
    assert statement.entries[5].bank_transaction_code == "CAMT-ACCB-SWEP"


def test_goldman_uk_exchange_rate_and_empty_statement() -> None:
    empty, statement = parse("goldman_sachs_camt_053_uk_v2_1.xml")
    assert empty.entries == () and empty.check.status == "reconciled"
    exchanges = [
        t["exchange"] for e in statement.entries for t in e.details["transactions"] if "exchange" in t
    ]
    assert exchanges == [{"source_currency": "GBP", "target_currency": "EUR", "rate": "0.8664"}]


def test_bmo_bai_codes_are_balance_kinds() -> None:
    (statement,) = parse("bank_of_montreal_camt053_v2_1.xml")
    kinds = {balance.code: balance.kind for balance in statement.header.balances}
    assert kinds["010"] == "opening" and kinds["015"] == "closing"
    assert kinds["040"] == "opening_available" and kinds["045"] == "closing_available"
    assert kinds["072"] == "other" and kinds["910"] == "other"
    assert statement.check.difference == Decimal("26164474.57") + Decimal("69.69") - Decimal("25118657.50")
    negative = parse("bank_of_montreal_camt053_v2_5.xml")[4].header.balance("closing")
    assert negative is not None and negative.amount == Decimal("-15.71")


def test_stream_yields_before_a_later_error() -> None:
    data = (SAMPLES / "abn_amro_example_camt.xml").read_bytes()
    cut = data.index(b"</Ntry>", data.index(b"</Ntry>") + 1) + len(b"</Ntry>") + 5
    events: list[object] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cut.xml"
        path.write_bytes(data[:cut])
        with pytest.raises(StatementParseError, match="line"):
            for event in PARSER.parse(path):
                events.append(event)
    assert [type(event) for event in events] == [StatementHeader, StatementEntry, StatementEntry]


# --- hand-written documents -------------------------------------------------------------------


def document(body: str, message: str = "BkToCstmrStmt", version: str = "camt.053.001.08") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{version}"><{message}>'
        f"<GrpHdr><MsgId>M1</MsgId><CreDtTm>2024-01-02T03:04:05</CreDtTm></GrpHdr>{body}</{message}></Document>"
    ).encode()


ACCOUNT = "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>"


def entry(amount: str = "1.00", status: str = "<Sts><Cd>BOOK</Cd></Sts>", sign: str = "CRDT") -> str:
    return (
        f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{sign}</CdtDbtInd>{status}'
        "<BookgDt><Dt>2024-01-02</Dt></BookgDt></Ntry>"
    )


def test_camt052_pending_entries_and_lithuanian_unsigned_balance() -> None:
    balance = '<Bal><Tp><CdOrPrtry><Cd>ITBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">-5.00</Amt><Dt><Dt>2024-01-02</Dt></Dt></Bal>'
    body = f"<Rpt><Id>R1</Id>{ACCOUNT}{balance}{entry(status='<Sts><Cd>PDNG</Cd></Sts>')}</Rpt>"
    header, pending = parse_bytes(document(body, "BkToCstmrAcctRpt", "camt.052.001.08"))
    assert isinstance(header, StatementHeader) and isinstance(pending, StatementEntry)
    assert header.account_iban == "DE89370400440532013000"
    assert header.balances[0].kind == "interim_closing" and header.balances[0].amount == Decimal("-5.00")
    assert pending.status == "pending" and pending.amount == Decimal("1.00")


def test_camt054_notification_v02_status_text() -> None:
    body = f"<Ntfctn><Id>N1</Id>{ACCOUNT}{entry(status='<Sts>INFO</Sts>', sign='DBIT')}</Ntfctn>"
    _, info = parse_bytes(document(body, "BkToCstmrDbtCdtNtfctn", "camt.054.001.02"))
    assert isinstance(info, StatementEntry) and (info.status, info.amount) == ("info", Decimal("-1.00"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            document(f"<Stmt><Id>S</Id>{ACCOUNT}{entry(amount='1,00')}</Stmt>"),
            "line 2: <Amt> '1,00' is not a decimal",
        ),
        (document(f"<Stmt><Id>S</Id>{ACCOUNT}{entry(amount='NaN')}</Stmt>"), "not a decimal"),
        (document(f"<Stmt><Id>S</Id>{ACCOUNT}{entry(sign='CR')}</Stmt>"), "neither CRDT nor DBIT"),
        (
            document(f"<Stmt><Id>S</Id>{ACCOUNT}{entry(status='<Sts>DONE</Sts>')}</Stmt>"),
            "unknown entry status",
        ),
        (document("<Stmt><Id>S</Id></Stmt>"), "has no <Acct>"),
        (
            document(f"<Stmt><Id>S</Id>{ACCOUNT}{entry()}</Stmt>").replace(b'Ccy="EUR"', b'Ccy="E1"'),
            "'E1' is not a currency code",
        ),
        (document(""), "has no <Stmt>"),
        (b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"/>', "pain"),
        (b"<Statement><Stmt/></Statement>", "root element is <Statement>"),
        (b"", "malformed XML"),
        (b"not xml at all", "malformed XML"),
    ],
)
def test_unreadable_documents_raise_parse_errors(data: bytes, message: str) -> None:
    with pytest.raises(StatementParseError, match=message):
        parse_bytes(data)


def test_entity_bomb_and_external_entity_are_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE Document [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(f'<!ENTITY a{i + 1} "{("&a" + str(i) + ";") * 10}">'.encode() for i in range(9)).replace(
            b"&a0;", b"&a;"
        )
        + b"]><Document><BkToCstmrStmt>&a9;</BkToCstmrStmt></Document>"
    )
    with pytest.raises(StatementParseError, match="DTD"):
        parse_bytes(bomb)
    external = (
        b'<?xml version="1.0"?>\n<!-- a comment first -->\n<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<Document><BkToCstmrStmt><Stmt><Id>&x;</Id></Stmt></BkToCstmrStmt></Document>"
    )
    with pytest.raises(StatementParseError, match="DTD") as raised:
        parse_bytes(external)
    assert "root:" not in str(raised.value)


def test_missing_file_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(StatementParseError, match="cannot read"):
        list(PARSER.parse(tmp_path / "absent.xml"))


def test_sniff() -> None:
    for path in sorted(SAMPLES.glob("*.xml")):
        assert PARSER.sniff(path.read_bytes()[:4096], path.name), path.name
    for path in sorted(MT940_SAMPLES.iterdir()):
        assert not PARSER.sniff(path.read_bytes()[:4096], path.name), path.name
    assert PARSER.sniff(b"<ns:BkToCstmrAcctRpt>", "report.xml")
    assert not PARSER.sniff(b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03">', "x.xml")
    assert not PARSER.sniff(b"date,amount\n2024-01-02,1.00\n", "export.csv")


# --- mutated sample bytes: events or StatementParseError, never anything else -------------------

# Small, varied samples keep each example fast: v02 with batches, v11 with Pty, BAI codes, Dt/DtTm.
FUZZ_SAMPLES = [
    "nordea_example_camt.xml",
    "bank_of_montreal_camt053_v2_1.xml",
    "ing_example_camt.xml",
    "goldman_sachs_camt_053_uk_v2_1.xml",
]
FUZZ_BYTES = {name: (SAMPLES / name).read_bytes() for name in FUZZ_SAMPLES} if SAMPLES.is_dir() else {}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
junk_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=12)


def events_or_parse_error(data: bytes) -> None:
    try:
        events = parse_bytes(data)
    except StatementParseError:
        return
    statements = collect(events)  # well-formed stream: every entry after its header
    for statement in statements:
        json.dumps(statement.header.details)
        for item in statement.entries:
            json.dumps(item.details)
            assert isinstance(item.amount, Decimal)


@FUZZ
@given(name=st.sampled_from(FUZZ_SAMPLES), data=st.data())
def test_truncated_anywhere(name: str, data: st.DataObject) -> None:
    raw = FUZZ_BYTES[name]
    events_or_parse_error(raw[: data.draw(st.integers(0, len(raw) - 1))])


@FUZZ
@given(
    name=st.sampled_from(FUZZ_SAMPLES),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["flip", "delete", "insert"]), st.floats(0, 1), st.binary(min_size=1, max_size=8)
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_bytes_flipped_deleted_inserted(name: str, edits: list[tuple[str, float, bytes]]) -> None:
    raw = bytearray(FUZZ_BYTES[name])
    for kind, where, payload in edits:
        at = int(where * (len(raw) - 1))
        if kind == "flip":
            raw[at] ^= payload[0] or 0x20
        elif kind == "delete":
            del raw[at : at + len(payload)]
        else:
            raw[at:at] = payload
    events_or_parse_error(bytes(raw))


@FUZZ
@given(name=st.sampled_from(FUZZ_SAMPLES), seed=st.integers(0, 2**32), drops=st.integers(1, 4))
def test_elements_dropped(name: str, seed: int, drops: int) -> None:
    root = etree.fromstring(FUZZ_BYTES[name])
    chooser = random.Random(seed)
    for _ in range(drops):
        candidates = [element for element in root.iter() if element.getparent() is not None]
        if not candidates:
            break
        victim = chooser.choice(candidates)
        victim.getparent().remove(victim)
    events_or_parse_error(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


LEAF_TAGS = ("Amt", "TtlAmt", "XchgRate", "Sum", "CdtDbtInd", "Dt", "DtTm", "Cd", "RvslInd", "NbOfTxs", "Ccy")


@FUZZ
@given(
    name=st.sampled_from(FUZZ_SAMPLES), seed=st.integers(0, 2**32), junk=junk_text, as_attribute=st.booleans()
)
def test_values_replaced_with_junk(name: str, seed: int, junk: str, as_attribute: bool) -> None:
    root = etree.fromstring(FUZZ_BYTES[name])
    leaves = [e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname in LEAF_TAGS]
    victim = random.Random(seed).choice(leaves)
    if as_attribute and victim.get("Ccy") is not None:
        victim.set("Ccy", junk)
    else:
        victim.text = junk
    events_or_parse_error(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
