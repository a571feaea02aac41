"""The sandbox's daily statement files (camt.053, MT940, CSV, JSON), read back by independent readers.

The readers here are deliberately minimal and written from the contract (xml.etree, regexes, the csv
and json modules), not the project's parsers: they check the files say what the world booked.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import mt940
import pytest
from babel.numbers import format_decimal
from hypothesis import given
from hypothesis import strategies as st
from sandbox_oauth_flow import SEED, TODAY

from sandbox.model import Account, WorldTransaction
from sandbox.statement_camt import render_camt053
from sandbox.statement_csv import HEADER, indian_grouping
from sandbox.statement_files import (
    STATEMENT_FORMATS,
    StatementAnswer,
    delivered_at,
    render_statement,
    statement_accounts,
    statement_answer_key,
    write_drop,
)
from sandbox.statement_mt940 import information_lines, swift_text
from sandbox.world import World

DAY = dt.timedelta(days=1)
# Six weeks up to today plus two days after it (nothing booked yet: empty statements).
FIRST = TODAY - dt.timedelta(days=41)
LAST = TODAY + 2 * DAY
NS = "{urn:iso:std:iso:20022:tech:xsd:camt.053.001.08}"


def days(first: dt.date = FIRST, last: dt.date = LAST) -> Iterator[dt.date]:
    day = first
    while day <= last:
        yield day
        day += DAY


@pytest.fixture(scope="module")
def answers(world: World) -> dict[tuple[str, dt.date], StatementAnswer]:
    return statement_answer_key(world, FIRST, LAST)


def account_of(world: World, key: str) -> Account:
    return next(account for account in world.accounts if account.key == key)


def booked_on(world: World, account: Account, day: dt.date) -> list[WorldTransaction]:
    return world.booked(account.account_id, day, day + DAY)


# -- independent readers: each returns (opening or None, signed entry amounts, closing or None) --------


def read_camt(content: bytes) -> tuple[Decimal, list[Decimal], Decimal]:
    root = ET.fromstring(content)
    assert root.tag == f"{NS}Document"
    statements = root.findall(f"{NS}BkToCstmrStmt/{NS}Stmt")
    assert len(statements) == 1

    def signed(element: ET.Element) -> Decimal:
        amount = Decimal(element.findtext(f"{NS}Amt") or "")
        indicator = element.findtext(f"{NS}CdtDbtInd")
        assert indicator in ("CRDT", "DBIT")
        return -amount if indicator == "DBIT" else amount

    balances = {
        bal.findtext(f"{NS}Tp/{NS}CdOrPrtry/{NS}Cd"): signed(bal) for bal in statements[0].findall(f"{NS}Bal")
    }
    assert set(balances) == {"OPBD", "CLBD"}
    entries = [signed(entry) for entry in statements[0].findall(f"{NS}Ntry")]
    return balances["OPBD"], entries, balances["CLBD"]


_MT940_BALANCE = re.compile(r"^:(60F|62F):([CD])(\d{6})([A-Z]{3})(\d+,\d{2})\r$", re.MULTILINE)
_MT940_LINE = re.compile(r"^:61:(\d{6})(\d{4})([CD])(\d+,\d{2})NTRF(\w{1,16})//(\w{1,16})\r$", re.MULTILINE)


def _comma_decimal(text: str) -> Decimal:
    return Decimal(text.replace(",", "."))


def read_mt940(content: bytes) -> tuple[Decimal, list[Decimal], Decimal]:
    text = content.decode("ascii")
    balances = {}
    for tag, mark, _, _, amount in _MT940_BALANCE.findall(text):
        balances[tag] = -_comma_decimal(amount) if mark == "D" else _comma_decimal(amount)
    entries = [
        -_comma_decimal(amount) if mark == "D" else _comma_decimal(amount)
        for _, _, mark, amount, _, _ in _MT940_LINE.findall(text)
    ]
    assert len(entries) == text.count(":61:")
    return balances["60F"], entries, balances["62F"]


def _indian(text: str) -> Decimal:
    assert re.fullmatch(r"-?\d{1,2}(,\d\d)*,?\d{0,3}\.\d\d|-?\d{1,3}\.\d\d", text), text
    return Decimal(text.replace(",", ""))


def read_csv(content: bytes) -> tuple[Decimal | None, list[Decimal], Decimal | None]:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert rows[2] == list(HEADER)
    entries: list[Decimal] = []
    opening = closing = None
    for row in rows[3:]:
        withdrawal, deposit, balance = row[4], row[5], _indian(row[6])
        assert (withdrawal == "") != (deposit == "")
        amount = -_indian(withdrawal) if withdrawal else _indian(deposit)
        if opening is None:
            opening = balance - amount
        else:
            assert closing is not None and closing + amount == balance  # the running balance runs
        entries.append(amount)
        closing = balance
    return opening, entries, closing


def read_json(content: bytes) -> tuple[None, list[Decimal], None]:
    records = json.loads(content, parse_float=Decimal, parse_int=Decimal)
    assert isinstance(records, list)
    return None, [record["amount"] for record in records], None


READERS = {"camt053": read_camt, "mt940": read_mt940, "csv": read_csv, "json": read_json}


# -- the world's answers ---------------------------------------------------------------------------


def test_answer_key_chains_the_days(
    world: World, answers: dict[tuple[str, dt.date], StatementAnswer]
) -> None:
    for key in STATEMENT_FORMATS:
        account = account_of(world, key)
        for day in days():
            answer = answers[(key, day)]
            assert answer.opening + answer.total == answer.closing
            assert answer.entries == len(booked_on(world, account, day))
            if day > FIRST:
                assert answer.opening == answers[(key, day - DAY)].closing
    # The window has both busy days and empty ones for every account, so both paths are exercised.
    for key in STATEMENT_FORMATS:
        counts = [answers[(key, day)].entries for day in days()]
        assert max(counts) > 0 and min(counts) == 0, key


@pytest.mark.parametrize("key", list(STATEMENT_FORMATS))
def test_every_file_reconciles_with_the_world(
    world: World, answers: dict[tuple[str, dt.date], StatementAnswer], key: str
) -> None:
    account = account_of(world, key)
    reader = READERS[STATEMENT_FORMATS[key]]
    for day in days():
        _, content = render_statement(world, account, day)
        opening, entries, closing = reader(content)
        answer = answers[(key, day)]
        assert len(entries) == answer.entries, day
        assert sum(entries, Decimal(0)) == answer.total, day
        expected = [txn.amount for txn in booked_on(world, account, day)]
        if STATEMENT_FORMATS[key] == "json":
            assert sorted(entries) == sorted(expected), day  # listed by time of day, not world order
        else:
            assert entries == expected, day
        if opening is not None:
            assert (opening, closing) == (answer.opening, answer.closing), day
            assert opening + sum(entries, Decimal(0)) == closing
        else:
            # JSON carries no balances; a CSV shows them only on its rows.
            assert STATEMENT_FORMATS[key] == "json" or answer.entries == 0, day


def test_file_names_follow_the_account_key(world: World) -> None:
    day = dt.date(2025, 6, 13)
    names = [render_statement(world, account, day)[0] for account in statement_accounts(world)]
    assert names == [
        "NORTHWIND_GBP_20250613.camt053.xml",
        "NORTHWIND_EUR_20250613.sta",
        "KAVERI_ICICI_20250613.csv",
        "KAVERI_SBI_20250613.json",
    ]


def test_same_world_and_day_give_the_same_bytes(world: World) -> None:
    other = World(SEED, TODAY)
    for account, again in zip(statement_accounts(world), statement_accounts(other), strict=True):
        for day in (TODAY - 10 * DAY, TODAY - DAY, TODAY):
            assert render_statement(world, account, day) == render_statement(other, again, day)
            assert render_statement(world, account, day) == render_statement(world, account, day)


# -- camt.053 --------------------------------------------------------------------------------------

# Child order of the schema's sequences (camt.053.001.08) for every element the files carry.
CAMT_SEQUENCES: dict[str, tuple[str, ...]] = {
    name: tuple(children.split())
    for name, children in {
        "Document": "BkToCstmrStmt",
        "BkToCstmrStmt": "GrpHdr Stmt SplmtryData",
        "GrpHdr": "MsgId CreDtTm MsgRcpt MsgPgntn OrgnlBizQry AddtlInf",
        "Stmt": "Id StmtPgntn ElctrncSeqNb RptgSeq LglSeqNb CreDtTm FrToDt CpyDplctInd RptgSrc Acct "
        "RltdAcct Intrst Bal TxsSummry Ntry AddtlStmtInf",
        "FrToDt": "FrDtTm ToDtTm",
        "Acct": "Id Tp Ccy Nm Prxy Ownr Svcr",
        "Ownr": "Nm PstlAdr Id CtryOfRes CtctDtls",
        "Svcr": "FinInstnId BrnchId",
        "FinInstnId": "BICFI ClrSysMmbId LEI Nm PstlAdr Othr",
        "Bal": "Tp CdtLine Amt CdtDbtInd Dt Avlbty",
        "Tp": "CdOrPrtry SubTp",
        "TxsSummry": "TtlNtries TtlCdtNtries TtlDbtNtries TtlNtriesPerBkTxCd",
        "TtlNtries": "NbOfNtries Sum TtlNetNtry",
        "TtlNetNtry": "Amt CdtDbtInd",
        "TtlCdtNtries": "NbOfNtries Sum",
        "TtlDbtNtries": "NbOfNtries Sum",
        "Ntry": "NtryRef Amt CdtDbtInd RvslInd Sts BookgDt ValDt AcctSvcrRef Avlbty BkTxCd ComssnWvrInd "
        "AddtlInfInd AmtDtls Chrgs TechInptChanl Intrst CardTx NtryDtls AddtlNtryInf",
        "BkTxCd": "Domn Prtry",
        "Domn": "Cd Fmly",
        "Fmly": "Cd SubFmlyCd",
        "NtryDtls": "Btch TxDtls",
        "TxDtls": "Refs Amt CdtDbtInd AmtDtls Avlbty BkTxCd Chrgs Intrst RltdPties RltdAgts LclInstrm Purp "
        "RltdRmtInf RmtInf RltdDts RltdPric RltdQties FinInstrmId Tax RtrInf CorpActn SfkpgAcct CshDpst "
        "CardTx AddtlTxInf SplmtryData",
        "Refs": "MsgId AcctSvcrRef PmtInfId InstrId EndToEndId UETR TxId MndtId ChqNb ClrSysRef",
        "RltdPties": "InitgPty Dbtr DbtrAcct UltmtDbtr Cdtr CdtrAcct UltmtCdtr TradgPty Prtry",
        "Dbtr": "Pty Agt",
        "Cdtr": "Pty Agt",
        "Pty": "Nm PstlAdr Id CtryOfRes CtctDtls",
        "DbtrAcct": "Id Tp Ccy Nm Prxy",
        "CdtrAcct": "Id Tp Ccy Nm Prxy",
        "RmtInf": "Ustrd Strd",
    }.items()
}
CAMT_REPEATABLE = {"Stmt", "Bal", "Ntry", "TxDtls", "Ustrd"}
# Choices: exactly one child.
CAMT_CHOICES = {"Sts", "BookgDt", "ValDt", "CdOrPrtry", "Dbtr", "Cdtr", "Dt", "Id"}


def camt_order_problems(element: ET.Element, parent: str = "") -> list[str]:
    """Children out of the schema's sequence order, repeated when not repeatable, or unknown."""
    name = element.tag.removeprefix(NS)
    children = [child.tag.removeprefix(NS) for child in element]
    problems = []
    sequence = CAMT_SEQUENCES.get(name)
    if name == "Id" and parent == "Stmt":
        sequence = None  # the statement's Id is text, not the account's choice
    if name in CAMT_CHOICES and children:
        if len(children) != 1:
            problems.append(f"{name}: choice with {children}")
    elif sequence is not None:
        positions = []
        for child in children:
            if child not in sequence:
                problems.append(f"{name}: unexpected {child}")
            else:
                positions.append(sequence.index(child))
        for before, after, child in zip(positions, positions[1:], children[1:], strict=False):
            if after < before or (after == before and child not in CAMT_REPEATABLE):
                problems.append(f"{name}: {child} out of order in {children}")
    elif children:
        problems.append(f"{name}: no sequence known for children {children}")
    for child in element:
        problems += camt_order_problems(child, name)
    return problems


def test_camt_is_namespaced_v08_in_schema_order_with_the_entry_details(world: World) -> None:
    account = account_of(world, "northwind-gbp")
    busy = max(days(), key=lambda day: len(booked_on(world, account, day)))
    for day in (busy, LAST):
        _, content = render_statement(world, account, day)
        assert content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
        root = ET.fromstring(content)
        assert root.tag == f"{NS}Document"
        assert camt_order_problems(root) == []
        statement = root.find(f"{NS}BkToCstmrStmt/{NS}Stmt")
        assert statement is not None
        assert statement.findtext(f"{NS}Acct/{NS}Id/{NS}IBAN") == account.iban
        assert statement.findtext(f"{NS}CreDtTm") == f"{day + DAY}T06:00:00Z"
        summary = statement.find(f"{NS}TxsSummry/{NS}TtlNtries")
        assert summary is not None and summary.findtext(f"{NS}NbOfNtries") == str(
            len(booked_on(world, account, day))
        )
    kinds = set()
    refs = []
    for day in days():
        entries = ET.fromstring(render_statement(world, account, day)[1]).findall(f".//{NS}Ntry")
        for entry, txn in zip(entries, booked_on(world, account, day), strict=True):
            details = entry.find(f"{NS}NtryDtls/{NS}TxDtls")
            assert details is not None
            assert details.findtext(f"{NS}RmtInf/{NS}Ustrd") == txn.description
            assert details.findtext(f"{NS}Refs/{NS}EndToEndId") == "NOTPROVIDED"
            role = "Cdtr" if txn.amount < 0 else "Dbtr"
            name = txn.counterparty_name or txn.merchant_name
            assert details.findtext(f"{NS}RltdPties/{NS}{role}/{NS}Pty/{NS}Nm") == name
            assert details.findtext(f"{NS}RltdPties/{NS}{role}Acct/{NS}Id/{NS}IBAN") == txn.counterparty_iban
            code = [element.text for element in entry.iter() if element.tag in (f"{NS}Cd", f"{NS}SubFmlyCd")][
                1:
            ]  # after the status code
            expected = (
                ["PMNT", "CCRD", "POSD"]
                if txn.transaction_category == "PURCHASE"
                else ["PMNT", "RCDT" if txn.amount > 0 else "ICDT", "ESCT"]
            )
            assert code == expected
            kinds.add(code[1])
            refs.append(entry.findtext(f"{NS}AcctSvcrRef"))
    assert kinds == {"CCRD", "RCDT", "ICDT"}
    # Every entry carries a distinct bank reference.
    assert len(set(refs)) == len(refs) and all(ref and re.fullmatch(r"LOYD[0-9A-F]{12}", ref) for ref in refs)


def test_camt_escapes_markup_in_text(world: World) -> None:
    account = account_of(world, "northwind-gbp")
    txn = booked_on(world, account, TODAY - 2 * DAY)[0]
    nasty = dataclasses.replace(txn, description='A & B <Ltd> "quoted"', counterparty_name="<x>")
    content = render_camt053(account, TODAY, Decimal("10.00"), [nasty], delivered_at(TODAY))
    root = ET.fromstring(content)
    assert root.findtext(f".//{NS}Ustrd") == 'A & B <Ltd> "quoted"'
    assert b"<Ltd>" not in content


# -- MT940 -----------------------------------------------------------------------------------------


def test_mt940_envelope_lines_and_information_fields(world: World) -> None:
    account = account_of(world, "northwind-eur")
    for day in days():
        _, content = render_statement(world, account, day)
        text = content.decode("ascii")
        assert text.startswith("{1:F01BARCGB22AXXX0000000000}{2:O940")
        assert text.endswith("\r\n-}\r\n")
        assert "\n" not in text.replace("\r\n", "")  # CRLF only
        lines = text.split("\r\n")[1:-2]
        assert lines[:3] == [
            f":20:BARC{day:%y%m%d}",
            f":25:{account.iban}",
            f":28C:{day.timetuple().tm_yday}/1",
        ]
        assert re.fullmatch(rf":60F:[CD]{day:%y%m%d}EUR\d+,\d\d", lines[3])
        assert re.fullmatch(rf":64:[CD]{day:%y%m%d}EUR\d+,\d\d", lines[-1])
        in_86 = 0
        for line in lines:
            if line.startswith(":86:"):
                in_86 = 1
            elif re.match(r":\d\d[A-Z]?:", line):
                in_86 = 0  # every other tag is a single line
            else:
                assert in_86, f"continuation line outside :86: {line!r}"
                in_86 += 1
            if in_86:
                assert len(line) <= 65 and in_86 <= 6, line
                assert re.fullmatch(r"[A-Za-z0-9/\-?().,'+ :]*", line), line


def test_mt940_reads_back_with_the_mt940_library(world: World) -> None:
    account = account_of(world, "northwind-eur")
    for day in days(TODAY - 14 * DAY, TODAY):
        _, content = render_statement(world, account, day)
        statement = mt940.models.Transactions()
        statement.parse(content.decode("ascii"))
        txns = booked_on(world, account, day)
        assert [t.data["amount"].amount for t in statement] == [txn.amount for txn in txns]
        assert statement.data["account_identification"] == account.iban
        assert statement.data["final_opening_balance"].amount.amount == world.balance(
            account.account_id, day - DAY
        )
        assert statement.data["final_closing_balance"].amount.amount == world.balance(account.account_id, day)
        for parsed, txn in zip(statement, txns, strict=True):
            details = parsed.data["transaction_details"].replace("\n", "")
            assert details.endswith(f"/REMI/{swift_text(txn.description)}")
            if txn.counterparty_iban:
                assert f"/IBAN/{txn.counterparty_iban}/" in details


def test_mt940_information_is_cut_at_six_lines_of_65_and_joins_back(world: World) -> None:
    account = account_of(world, "northwind-eur")
    txn = booked_on(world, account, TODAY - 2 * DAY)[0]
    long = dataclasses.replace(txn, description="Überweisung: {Rechnung} & Co " * 20)
    lines = information_lines(long)
    assert len(lines) == 6 and all(len(line) == 65 for line in lines)
    joined = "".join(lines)
    assert joined.startswith(":86:/EREF/NOTPROVIDED/")
    assert "/REMI/Uberweisung. .Rechnung. . Co Uberweisung" in joined


@given(st.text(max_size=80))
def test_swift_text_stays_in_the_x_character_set(text: str) -> None:
    assert re.fullmatch(r"[A-Za-z0-9/\-?().,'+ ]*", swift_text(text))


# -- CSV -------------------------------------------------------------------------------------------


def test_csv_layout_is_exact(world: World) -> None:
    account = account_of(world, "kaveri-icici")
    busy = max(days(), key=lambda day: len(booked_on(world, account, day)))
    _, content = render_statement(world, account, busy)
    assert content.startswith(b"\xef\xbb\xbf")
    lines = content.decode("utf-8-sig").split("\r\n")
    assert lines[0] == f"Statement of account,{account.number}"
    assert lines[1] == f"Period,{busy:%d/%m/%Y} to {busy:%d/%m/%Y}"
    assert lines[2] == (
        "Transaction Date,Value Date,Narration,Chq/Ref No,Withdrawal Amt,Deposit Amt,Closing Balance,Currency"
    )
    assert lines[-1] == ""
    rows = lines[3:-1]
    assert len(rows) == len(booked_on(world, account, busy)) > 1
    small = 0
    for day in days():
        for line in render_statement(world, account, day)[1].decode("utf-8-sig").split("\r\n")[3:-1]:
            # Money columns are always quoted (Indian grouping), small amounts too; the other side is empty.
            assert re.fullmatch(
                rf'{day:%d/%m/%Y},{day:%d/%m/%Y},("[^"]*"|[^",]*),\w+,("[\d,]+\.\d\d",|,"[\d,]+\.\d\d")'
                r',"-?[\d,]+\.\d\d",INR',
                line,
            ), line
            small += bool(re.search(r',"\d{1,3}\.\d\d",', line))
    assert small  # the window has amounts below 1,000, which need no quotes but get them
    for row, txn in zip(csv.reader(rows), booked_on(world, account, busy), strict=True):
        assert row[2] == txn.description and row[3]
    empty_day = next(day for day in days() if not booked_on(world, account, day))
    assert render_statement(world, account, empty_day)[1].decode("utf-8-sig").split("\r\n")[3:] == [""]


def test_indian_grouping_examples() -> None:
    assert indian_grouping(Decimal("123456.78")) == "1,23,456.78"
    assert indian_grouping(Decimal("1234567.8")) == "12,34,567.80"
    assert indian_grouping(Decimal("999.99")) == "999.99"
    assert indian_grouping(Decimal("1000")) == "1,000.00"
    assert indian_grouping(Decimal("-100000.05")) == "-1,00,000.05"
    assert indian_grouping(Decimal("0")) == "0.00"


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False, allow_infinity=False))
def test_indian_grouping_agrees_with_babel(value: Decimal) -> None:
    assert indian_grouping(value) == format_decimal(value, format="#,##,##0.00", locale="en_IN")


# -- JSON ------------------------------------------------------------------------------------------


def test_json_records_follow_the_seed_format(world: World) -> None:
    account = account_of(world, "kaveri-sbi")
    busy = [day for day in days() if booked_on(world, account, day)]
    assert busy
    for day in busy:
        text = render_statement(world, account, day)[1].decode("utf-8")
        records = json.loads(text, parse_float=Decimal)
        by_amount = sorted(txn.amount for txn in booked_on(world, account, day))
        assert sorted(record["amount"] for record in records) == by_amount
        # Amounts are JSON numbers with exactly two decimals, never strings.
        assert len(re.findall(r'"amount":-?\d+\.\d\d,', text)) == len(records)
        for record in records:
            assert (
                list(record)
                == (
                    "txn_id amount currency status timestamp account_id source bank_code channel "
                    "transaction_type reference_number merchant_id description"
                ).split()
            )
            moment = dt.datetime.fromisoformat(record["timestamp"])
            assert moment.utcoffset() == dt.timedelta(hours=5, minutes=30) and moment.date() == day
            assert record["status"] == "SUCCESS" and record["currency"] == "INR"
            assert record["account_id"] == account.number and record["source"] == "sbi_sftp"
            assert record["bank_code"] == "SBIN" and record["merchant_id"] is None
            assert record["channel"] and record["reference_number"]
        assert len({record["txn_id"] for record in records}) == len(records)
    empty = next(day for day in days() if not booked_on(world, account, day))
    assert render_statement(world, account, empty)[1].strip() == b"[]"


# -- the drop folder -------------------------------------------------------------------------------


def test_write_drop_writes_every_day_once_and_is_idempotent(world: World, tmp_path: Path) -> None:
    first, last = TODAY - 6 * DAY, TODAY
    folders = {"northwind-gbp": "northwind", "northwind-eur": "northwind", "kaveri-icici": "kaveri"}
    expected = {
        tmp_path / folders.get(account.key, "kaveri") / name: (day, content)
        for account in statement_accounts(world)
        for day in days(first, last)
        for name, content in [render_statement(world, account, day)]
    }
    written = write_drop(world, tmp_path, first, last)
    assert len(written) == len(expected) == 4 * 7
    assert set(written) == set(expected)
    assert set(tmp_path.rglob("*.*")) == set(expected)  # nothing else (no partial files) is left behind
    for path, (day, content) in expected.items():
        assert path.read_bytes() == content
        assert path.stat().st_mtime == delivered_at(day).timestamp()

    assert write_drop(world, tmp_path, first, last) == []

    changed = written[3]
    changed.write_bytes(b"tampered")
    assert write_drop(world, tmp_path, first, last) == [changed]
    assert changed.read_bytes() == expected[changed][1]
    # A wider range writes only the new day's files.
    wider = write_drop(world, tmp_path, first - DAY, last)
    assert sorted(path.name for path in wider) == sorted(
        render_statement(world, account, first - DAY)[0] for account in statement_accounts(world)
    )
