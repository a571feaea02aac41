"""The format registry: detection of each format, no two formats claiming one file, unknown files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from resources.statements.csv_mapping import DEFAULT_CSV_CONNECTORS_DIR, CsvMapping, load_csv_mapping
from resources.statements.csv_statement import CsvStatementParser
from resources.statements.formats import UnknownFormat, default_parsers, detect, load_csv_mappings
from resources.statements.json_statement import JsonStatementParser
from resources.statements.model import StatementParseError, StatementParser
from resources.statements.ofx_statement import OfxStatementParser

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT.parent / "shared" / "samples"

ICICI_CSV = (
    b"\xef\xbb\xbfStatement of account,000401234567\r\nPeriod,01/04/2025 to 01/04/2025\r\n"
    b"Transaction Date,Value Date,Narration,Chq/Ref No,Withdrawal Amt,Deposit Amt,Closing Balance,Currency\r\n"
    b'01/04/2025,01/04/2025,UPI/ACME,R1,"1,250.00",,"98,750.00",INR\r\n'
)
SEED_JSON = (
    b'[\n{"txn_id": "SBI1", "amount": -10.00, "currency": "INR", "status": "SUCCESS",'
    b' "timestamp": "2025-04-01T10:00:00+05:30", "account_id": "3001"}\n]\n'
)
OFX_SGML = b"""OFXHEADER:100
DATA:OFXSGML
VERSION:102
SECURITY:NONE
ENCODING:USASCII
CHARSET:1252
COMPRESSION:NONE
OLDFILEUID:NONE
NEWFILEUID:NONE

<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS><DTSERVER>20250401<LANGUAGE>ENG
</SONRS></SIGNONMSGSRSV1><BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>
<STMTRS><CURDEF>USD<BANKACCTFROM><BANKID>1<ACCTID>42<ACCTTYPE>CHECKING</BANKACCTFROM>
<LEDGERBAL><BALAMT>1.00<DTASOF>20250401</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>
"""
OFX_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" NEWFILEUID="NONE"?>
<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>
<DTSERVER>20250401</DTSERVER><LANGUAGE>ENG</LANGUAGE></SONRS></SIGNONMSGSRSV1>
<CREDITCARDMSGSRSV1><CCSTMTTRNRS><TRNUID>1</TRNUID><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>
<CCSTMTRS><CURDEF>EUR</CURDEF><CCACCTFROM><ACCTID>4111</ACCTID></CCACCTFROM>
<LEDGERBAL><BALAMT>-5.00</BALAMT><DTASOF>20250401</DTASOF></LEDGERBAL></CCSTMTRS></CCSTMTTRNRS>
</CREDITCARDMSGSRSV1></OFX>
"""

OUR_FILES = {
    "icici.csv": (ICICI_CSV, "csv"),
    "sbi.json": (SEED_JSON, "json"),
    "empty-day.json": (b"[]\n", "json"),
    "wrapped.json": (b'{"transactions": []}', "json"),
    "bank.ofx": (OFX_SGML, "ofx"),
    "card.qfx": (OFX_XML, "ofx"),
}


@pytest.fixture(scope="module")
def icici() -> CsvMapping:
    return load_csv_mapping(DEFAULT_CSV_CONNECTORS_DIR / "icici_statement.yaml")


@pytest.fixture
def our_parsers(icici: CsvMapping) -> list[StatementParser]:
    return [JsonStatementParser(), OfxStatementParser(), CsvStatementParser(icici)]


@pytest.fixture
def all_parsers(icici: CsvMapping) -> list[StatementParser]:
    try:
        return default_parsers([icici])
    except ImportError as exc:
        pytest.skip(f"the camt.053 / MT940 parsers are not in the tree yet ({exc})")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", sorted(OUR_FILES))
def test_each_format_is_detected_and_parses(
    tmp_path: Path, our_parsers: list[StatementParser], name: str
) -> None:
    data, expected = OUR_FILES[name]
    path = write(tmp_path, name, data)
    parser = detect(path, our_parsers)
    assert parser.format == expected
    list(parser.parse(path))  # and the parser it picked reads it


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("blank.txt", b" \r\n\t\n", "the file is empty"),
        ("junk.txt", b"hello world, this is not a statement\n", "not a statement format bankflow reads"),
        (
            "image.png",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 20,
            "not a statement format",
        ),
        ("zip.zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00\xff" * 3000, "not a statement format"),
        ("other.json", b'{"data": [{"id": 1}]}', "not a statement format"),
        ("other.csv", b"Date,Amount,Payee\n2025-01-01,1.00,X\n", "not a statement format"),
    ],
)
def test_unknown_files_are_refused_with_a_clear_message(
    tmp_path: Path, our_parsers: list[StatementParser], name: str, data: bytes, message: str
) -> None:
    with pytest.raises(UnknownFormat, match=message) as raised:
        detect(write(tmp_path, name, data), our_parsers)
    assert isinstance(
        raised.value, StatementParseError
    )  # the landing step quarantines it like any parse error
    assert name in str(raised.value)


def test_unknown_format_message_names_what_was_tried(
    tmp_path: Path, our_parsers: list[StatementParser]
) -> None:
    with pytest.raises(UnknownFormat, match=r"tried json, ofx, csv \(icici_statement\)"):
        detect(write(tmp_path, "junk.bin", b"junk"), our_parsers)
    with pytest.raises(UnknownFormat, match="cannot read"):
        detect(tmp_path / "missing.csv", our_parsers)


def test_two_layouts_claiming_one_file_are_refused(tmp_path: Path, icici: CsvMapping) -> None:
    twin = icici.model_copy(update={"name": "icici_twin"})
    parsers: list[StatementParser] = [CsvStatementParser(icici), CsvStatementParser(twin)]
    with pytest.raises(UnknownFormat, match=r"more than one format .*icici_statement.*icici_twin"):
        detect(write(tmp_path, "icici.csv", ICICI_CSV), parsers)


def test_only_the_first_4_kib_is_read(tmp_path: Path, our_parsers: list[StatementParser]) -> None:
    # A JSON drop whose first record is long: the standard-format key is still in the head.
    data = b'[{"txn_id": "A", "description": "' + b"x" * 100_000 + b'"}]'
    assert detect(write(tmp_path, "long.json", data), our_parsers).format == "json"
    late = b'[{"description": "' + b"x" * 5_000 + b'", "txn_id": "A"}]'
    with pytest.raises(UnknownFormat):
        detect(write(tmp_path, "late.json", late), our_parsers)


def test_load_csv_mappings_feeds_default_parsers(all_parsers: list[StatementParser]) -> None:
    mappings = load_csv_mappings()
    parsers = default_parsers(mappings)
    assert [p.format for p in parsers[:4]] == ["camt053", "mt940", "json", "ofx"]
    assert [p.mapping.name for p in parsers[4:]] == [m.name for m in mappings]  # type: ignore[attr-defined]
    assert [p.format for p in all_parsers] == ["camt053", "mt940", "json", "ofx", "csv"]


@pytest.mark.parametrize("name", sorted(OUR_FILES))
def test_camt_and_mt940_do_not_claim_our_formats(
    tmp_path: Path, all_parsers: list[StatementParser], name: str
) -> None:
    data, expected = OUR_FILES[name]
    assert detect(write(tmp_path, name, data), all_parsers).format == expected


@pytest.mark.parametrize(
    "sample",
    sorted(
        path
        for folder in ("camt053-iso20022js", "mt940-wolph")
        for path in (SAMPLES / folder).glob("*")
        if path.name != "README.md"
    ),
    ids=lambda path: path.name,
)
def test_our_sniffs_do_not_claim_camt_or_mt940_samples(
    sample: Path, our_parsers: list[StatementParser]
) -> None:
    head = sample.read_bytes()[:4096]
    assert [p.format for p in our_parsers if p.sniff(head, sample.name)] == []


def test_the_samples_are_there() -> None:
    # CI clones the repo with shared/ beside it; an empty parametrisation above would pass vacuously.
    assert len(list((SAMPLES / "camt053-iso20022js").glob("*.xml"))) >= 9
    assert len(list((SAMPLES / "mt940-wolph").glob("*.sta"))) >= 10
