"""CSV statements through YAML mappings: the ICICI layout, amounts, grouping, errors, mapping files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resources.statements.csv_mapping import (
    DEFAULT_CSV_CONNECTORS_DIR,
    CsvMapping,
    CsvMappingError,
    load_csv_mapping,
    load_csv_mappings,
)
from resources.statements.csv_statement import CsvStatementParser, parse_csv_amount
from resources.statements.model import StatementEntry, StatementHeader, StatementParseError, collect

ICICI_HEADER = (
    "Transaction Date,Value Date,Narration,Chq/Ref No,Withdrawal Amt,Deposit Amt,Closing Balance,Currency"
)
ICICI_ROWS = [
    '01/04/2025,01/04/2025,"NEFT-ACME LTD, SALARY APR",N091250001,,"1,23,456.78","2,23,456.78",INR',
    '02/04/2025,03/04/2025,UPI/coffee/ok,UPI512345,250.00,,"2,23,206.78",INR',
    '05/04/2025,05/04/2025,"RENT, flat 4B ""Sea View""",CHQ000123,"45,000.00",,"1,78,206.78",INR',
    '30/04/2025,30/04/2025,INT.PD:01-04-2025 to 30-04-2025,,,12.01,"1,78,218.79",INR',
]


def icici_file(tmp_path: Path, rows: list[str] = ICICI_ROWS, account: str = "000401234567") -> Path:
    """A file in exactly the layout the sandbox writes: BOM, two preamble lines, CRLF."""
    lines = [f"Statement of account,{account}", "Period,01/04/2025 to 30/04/2025", ICICI_HEADER, *rows]
    path = tmp_path / f"icici_{account}.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n")
    return path


@pytest.fixture(scope="module")
def icici() -> CsvMapping:
    return load_csv_mapping(DEFAULT_CSV_CONNECTORS_DIR / "icici_statement.yaml")


def generic_mapping(**overrides: object) -> CsvMapping:
    data: dict[str, object] = {
        "name": "generic",
        "delimiter": ";",
        "date_format": "%d.%m.%Y",
        "decimal_separator": ",",
        "thousands_separator": ".",
        "columns": {
            "booking_date": "Buchungstag",
            "value_date": "Valuta",
            "amount": "Betrag",
            "currency": "Waehrung",
            "description": ["Verwendungszweck 1", "Verwendungszweck 2"],
            "counterparty_name": "Name",
            "counterparty_iban": "IBAN",
            "end_to_end_id": "EREF",
            "account": "Konto",
        },
    }
    data.update(overrides)
    return CsvMapping.model_validate(data)


GENERIC_HEADER = (
    "Konto;Buchungstag;Valuta;Betrag;Waehrung;Name;IBAN;EREF;Verwendungszweck 1;Verwendungszweck 2"
)


def write(tmp_path: Path, text: str, name: str = "drop.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# -- the ICICI layout ------------------------------------------------------------------------------


def test_icici_layout_reads_amounts_dates_references_and_balances(icici: CsvMapping, tmp_path: Path) -> None:
    statements = collect(CsvStatementParser(icici).parse(icici_file(tmp_path)))

    assert len(statements) == 1
    header, entries = statements[0].header, statements[0].entries
    assert header.account_id == "000401234567"
    assert header.account_iban is None
    assert header.currency == "INR"
    assert [e.amount for e in entries] == [
        Decimal("123456.78"),
        Decimal("-250.00"),
        Decimal("-45000.00"),
        Decimal("12.01"),
    ]
    assert [e.booking_date.isoformat() for e in entries if e.booking_date] == [
        "2025-04-01",
        "2025-04-02",
        "2025-04-05",
        "2025-04-30",
    ]
    assert entries[1].value_date is not None and entries[1].value_date.isoformat() == "2025-04-03"
    assert entries[0].description == "NEFT-ACME LTD, SALARY APR"
    assert entries[2].description == 'RENT, flat 4B "Sea View"'
    assert [e.bank_reference for e in entries] == ["N091250001", "UPI512345", "CHQ000123", None]
    assert all(e.currency == "INR" and e.status == "booked" for e in entries)
    assert [(e.statement_index, e.index) for e in entries] == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert entries[0].details["line"] == 4
    assert entries[0].details["row"]["Deposit Amt"] == "1,23,456.78"

    opening, closing = header.balance("opening"), header.balance("closing")
    assert opening is not None and opening.amount == Decimal("100000.00")
    assert closing is not None and closing.amount == Decimal("178218.79")
    assert statements[0].check.status == "reconciled"


def test_icici_sniff_claims_the_layout_and_not_other_csv(icici: CsvMapping, tmp_path: Path) -> None:
    parser = CsvStatementParser(icici)
    head = icici_file(tmp_path).read_bytes()[:4096]
    assert parser.sniff(head, "icici.csv")
    other = write(tmp_path, GENERIC_HEADER + "\n").read_bytes()
    assert not parser.sniff(other, "other.csv")
    # The header must be where the layout says: after exactly two preamble lines.
    assert not parser.sniff(head.split(b"\r\n", 2)[2], "icici.csv")


def test_bad_amount_fails_the_file_naming_line_and_column(icici: CsvMapping, tmp_path: Path) -> None:
    rows = [*ICICI_ROWS[:2], '05/04/2025,05/04/2025,RENT,CHQ1,"45,00,0.00",,"1,78,206.78",INR']
    with pytest.raises(StatementParseError, match=r"line 6, column 'Withdrawal Amt'"):
        list(CsvStatementParser(icici).parse(icici_file(tmp_path, rows)))


def test_bad_date_fails_the_file_naming_line_and_column(icici: CsvMapping, tmp_path: Path) -> None:
    rows = [ICICI_ROWS[0], '31/02/2025,01/03/2025,X,R1,1.00,,"2,23,455.78",INR']
    with pytest.raises(StatementParseError, match=r"line 5, column 'Transaction Date'"):
        list(CsvStatementParser(icici).parse(icici_file(tmp_path, rows)))


def test_a_row_with_both_withdrawal_and_deposit_is_an_error(icici: CsvMapping, tmp_path: Path) -> None:
    rows = ['01/04/2025,01/04/2025,X,R1,1.00,2.00,"3.00",INR']
    with pytest.raises(StatementParseError, match="both"):
        list(CsvStatementParser(icici).parse(icici_file(tmp_path, rows)))


def test_missing_column_and_missing_account_are_file_errors(icici: CsvMapping, tmp_path: Path) -> None:
    path = icici_file(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"Closing Balance", b"Balance"))
    with pytest.raises(StatementParseError, match="no column 'Closing Balance'"):
        list(CsvStatementParser(icici).parse(path))
    with pytest.raises(StatementParseError, match="no account number in preamble"):
        list(CsvStatementParser(icici).parse(icici_file(tmp_path, account="")))


def test_wrong_encoding_is_a_parse_error(tmp_path: Path) -> None:
    mapping = generic_mapping()
    path = tmp_path / "latin.csv"
    path.write_bytes(GENERIC_HEADER.encode() + b"\nA;01.02.2025;;1,00;EUR;M\xfcller;;;x;\n")
    with pytest.raises(StatementParseError, match="not utf-8 text"):
        list(CsvStatementParser(mapping).parse(path))
    events = list(CsvStatementParser(generic_mapping(encoding="cp1252")).parse(path))
    entry = events[1]
    assert isinstance(entry, StatementEntry) and entry.counterparty_name == "Müller"


# -- amounts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "decimal", "thousands", "expected"),
    [
        ("1,23,456.78", ".", ",", "123456.78"),
        ("12,34,56,789.01", ".", ",", "123456789.01"),
        ("1,234,567.89", ".", ",", "1234567.89"),
        ("1.234.567,89", ",", ".", "1234567.89"),
        ("-1.234,5", ",", ".", "-1234.5"),
        ("+5", ".", None, "5"),
        ("(12.00)", ".", ",", "-12.00"),
        ("( 1,000.10 )", ".", ",", "-1000.10"),
        ("0,07", ",", None, "0.07"),
        (".50", ".", None, "0.50"),
        ("-0.00", ".", None, "0.00"),
        ("1 234,56", ",", " ", "1234.56"),
        ("123456789012345678901234567890.12", ".", None, "123456789012345678901234567890.12"),
        ("9,223,372,036,854,775,808.01", ".", ",", "9223372036854775808.01"),
    ],
)
def test_amounts_are_exact_decimals(text: str, decimal: str, thousands: str | None, expected: str) -> None:
    amount = parse_csv_amount(text, decimal, thousands)
    assert amount == Decimal(expected)
    assert str(amount) == expected


@pytest.mark.parametrize(
    ("text", "decimal", "thousands"),
    [
        ("", ".", None),
        ("abc", ".", None),
        ("1.2.3", ".", None),
        ("1,2", ".", ","),
        ("12,34", ".", ","),
        (",123", ".", ","),
        ("1,234.", ".", ","),
        ("1e5", ".", None),
        ("NaN", ".", None),
        ("--5", ".", None),
        ("(-5)", ".", None),
        ("١٢٣", ".", None),
        ("1_000", ".", None),
    ],
)
def test_unreadable_amounts_are_refused(text: str, decimal: str, thousands: str | None) -> None:
    with pytest.raises(ValueError):
        parse_csv_amount(text, decimal, thousands)


# -- other layouts ---------------------------------------------------------------------------------


def test_rows_are_grouped_by_account_in_order_of_first_appearance(tmp_path: Path) -> None:
    text = "\n".join(
        [
            GENERIC_HEADER,
            "DE89370400440532013000;01.02.2025;02.02.2025;-1.234,56;EUR;ACME;NL91 ABNA 0417 1643 00;E1;Miete;Feb",
            "ACC-2;01.02.2025;;10,00;USD;;;;;",
            "DE89370400440532013000;03.02.2025;;+0,44;EUR;;;;Zins;",
            "ACC-2;04.02.2025;;-9223372036854775808,99;USD;;;;;",
        ]
    )
    statements = collect(CsvStatementParser(generic_mapping()).parse(write(tmp_path, text)))

    assert [s.header.account_id for s in statements] == ["DE89370400440532013000", "ACC-2"]
    assert statements[0].header.account_iban == "DE89370400440532013000"
    assert statements[1].header.account_iban is None
    assert [e.amount for e in statements[0].entries] == [Decimal("-1234.56"), Decimal("0.44")]
    assert [e.amount for e in statements[1].entries] == [Decimal("10.00"), Decimal("-9223372036854775808.99")]
    assert [(e.statement_index, e.index) for s in statements for e in s.entries] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    first = statements[0].entries[0]
    assert first.description == "Miete Feb"
    assert first.counterparty_name == "ACME"
    assert first.counterparty_iban == "NL91ABNA0417164300"
    assert first.end_to_end_id == "E1"
    assert statements[0].header.balances == ()  # no balance column: no balances
    assert statements[0].check.status == "no_balances"


def test_direction_column_signs_unsigned_amounts(tmp_path: Path) -> None:
    mapping = CsvMapping.model_validate(
        {
            "name": "direction",
            "date_format": "%Y-%m-%d",
            "currency": "GBP",
            "account_from_filename": r"^stmt_(?P<account>\d+)_",
            "columns": {
                "booking_date": "Date",
                "amount": "Amount",
                "direction": {"column": "Type", "debit_values": ["DR", "Debit"], "credit_values": ["CR"]},
                "description": "Details",
            },
        }
    )
    text = "Date,Amount,Type,Details\n2025-03-01,10.50,dr,Coffee\n2025-03-02,-3.00,CR,Refund\n"
    path = write(tmp_path, text, name="stmt_12345678_2025-03.csv")
    events = list(CsvStatementParser(mapping).parse(path))
    header = events[0]
    assert isinstance(header, StatementHeader) and header.account_id == "12345678"
    assert header.currency == "GBP"
    assert [e.amount for e in events[1:] if isinstance(e, StatementEntry)] == [
        Decimal("-10.50"),
        Decimal("3.00"),
    ]

    bad = write(tmp_path, "Date,Amount,Type,Details\n2025-03-01,1.00,XX,x\n", name="stmt_1_x.csv")
    with pytest.raises(StatementParseError, match="line 2, column 'Type'"):
        list(CsvStatementParser(mapping).parse(bad))
    with pytest.raises(StatementParseError, match="file name does not match"):
        list(CsvStatementParser(mapping).parse(write(tmp_path, text, name="other.csv")))


def test_short_row_is_an_error_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    mapping = generic_mapping()
    good = f"{GENERIC_HEADER}\n\nA;01.02.2025;;1,00;EUR;;;;;\n;;;;;;;;;\n"
    assert len(list(CsvStatementParser(mapping).parse(write(tmp_path, good)))) == 2
    with pytest.raises(StatementParseError, match="line 2: 3 cells where the header has 10"):
        list(CsvStatementParser(mapping).parse(write(tmp_path, f"{GENERIC_HEADER}\nA;01.02.2025;1\n")))


def test_header_only_file_is_a_statement_without_entries_and_empty_file_is_an_error(
    icici: CsvMapping, tmp_path: Path
) -> None:
    statements = collect(CsvStatementParser(icici).parse(icici_file(tmp_path, rows=[])))
    assert [(s.header.account_id, s.entries) for s in statements] == [("000401234567", ())]
    assert statements[0].header.balances == ()
    with pytest.raises(StatementParseError, match="no header row"):
        list(CsvStatementParser(generic_mapping()).parse(write(tmp_path, "")))
    with pytest.raises(StatementParseError, match="no account number in preamble"):
        list(CsvStatementParser(icici).parse(write(tmp_path, "")))


# -- mapping files ---------------------------------------------------------------------------------


def test_shipped_mappings_load() -> None:
    names = [mapping.name for mapping in load_csv_mappings()]
    assert "icici_statement" in names


def test_mapping_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\ndelimitr: ';'\ncurrency: EUR\naccount_id: X\ncolumns:\n  booking_date: D\n  amount: A\n"
    )
    with pytest.raises(CsvMappingError, match=r"bad\.yaml:\n  delimitr: Extra inputs are not permitted"):
        load_csv_mapping(path)

    path.write_text("name: bad\ncurrency: EUR\naccount_id: X\ncolumns:\n  booking_date: D\n  debit: W\n")
    with pytest.raises(CsvMappingError, match="columns: .*both `debit` and `credit`"):
        load_csv_mapping(path)

    path.write_text("name: bad\naccount_id: X\ncolumns:\n  booking_date: D\n  amount: A\n")
    with pytest.raises(CsvMappingError, match="exactly one of `currency`"):
        load_csv_mapping(path)

    path.write_text(
        "name: bad\nskip_rows: 1\ncurrency: EUR\naccount_from_preamble: {line: 1, column: 0}\n"
        "columns:\n  booking_date: D\n  amount: A\n"
    )
    with pytest.raises(CsvMappingError, match="account_from_preamble.line 1"):
        load_csv_mapping(path)

    path.write_text(
        "name: bad\nencoding: klingon\ncurrency: EUR\naccount_id: X\n"
        "columns:\n  booking_date: D\n  amount: A\n"
    )
    with pytest.raises(CsvMappingError, match="encoding: unknown encoding"):
        load_csv_mapping(path)

    path.write_text("name: [unclosed\n")
    with pytest.raises(CsvMappingError, match="not valid YAML at line"):
        load_csv_mapping(path)


def test_extra_directories_add_mappings_and_names_are_unique(tmp_path: Path) -> None:
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "mine.yml").write_text(
        "name: mine\ncurrency: EUR\naccount_id: X\ncolumns:\n  booking_date: D\n  amount: A\n"
    )
    assert {"icici_statement", "mine"} <= {m.name for m in load_csv_mappings([extra])}
    (extra / "copy.yaml").write_text((DEFAULT_CSV_CONNECTORS_DIR / "icici_statement.yaml").read_text())
    with pytest.raises(CsvMappingError, match="'icici_statement' is already defined"):
        load_csv_mappings([extra])
    with pytest.raises(CsvMappingError, match="does not exist"):
        load_csv_mappings([tmp_path / "missing"])


# -- properties ------------------------------------------------------------------------------------


def _mutations() -> st.SearchStrategy[tuple[str, int, bytes]]:
    return st.tuples(
        st.sampled_from(["insert", "delete", "replace", "truncate"]),
        st.integers(min_value=0, max_value=10_000),
        st.binary(min_size=1, max_size=8)
        | st.sampled_from([b",", b'"', b"\r\n", b"\x00", b"\xff", b"(", b"-"]),
    )


def mutate(data: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    for kind, position, chunk in mutations:
        at = position % (len(data) + 1)
        if kind == "insert":
            data = data[:at] + chunk + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + len(chunk) :]
        elif kind == "replace":
            data = data[:at] + chunk + data[at + len(chunk) :]
        else:
            data = data[:at]
    return data


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(_mutations(), min_size=1, max_size=4))
def test_mutated_icici_files_give_events_or_parse_errors(
    icici: CsvMapping, tmp_path: Path, mutations: list[tuple[str, int, bytes]]
) -> None:
    path = icici_file(tmp_path)
    path.write_bytes(mutate(path.read_bytes(), mutations))
    parser = CsvStatementParser(icici)
    parser.sniff(path.read_bytes()[:4096], path.name)
    try:
        statements = collect(parser.parse(path))
    except StatementParseError:
        return
    for statement in statements:
        assert all(isinstance(entry.amount, Decimal) for entry in statement.entries)
        assert all(entry.statement_index == statement.header.index for entry in statement.entries)
