"""One day of one account as an ISO 20022 camt.053.001.08 BankToCustomerStatement (Lloyds-style SFTP drop).

Written from shared/reference/bank-contracts.md §5.2. Elements are emitted in the order of the
schema's sequences (GroupHeader81, AccountStatement9, ReportEntry10, EntryTransaction10,
TransactionParties6); only the parts a day statement needs. Sign is carried by CdtDbtInd alone,
amounts are unsigned with a dot decimal, text is escaped by lxml.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from lxml import etree

from sandbox.layout import stable_hex
from sandbox.model import Account, WorldTransaction

CAMT053_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
_MAX_TEXT = 140  # Max140Text: names and unstructured remittance


def acct_svcr_ref(account: Account, txn: WorldTransaction) -> str:
    """The bank's own stable reference for an entry: bank code + 12 hex digits from the world id."""
    return f"{account.bank.bank_code}{stable_hex('camt-ref', txn.world_id, length=12).upper()}"


def bank_transaction_code(txn: WorldTransaction) -> tuple[str, str, str]:
    """(Domain, Family, SubFamily) of the ISO bank transaction code for an entry."""
    if txn.transaction_category == "PURCHASE":
        return "PMNT", "CCRD", "POSD"
    if txn.amount > 0:
        return "PMNT", "RCDT", "ESCT"
    return "PMNT", "ICDT", "ESCT"


def render_camt053(
    account: Account,
    day: dt.date,
    opening: Decimal,
    entries: Sequence[WorldTransaction],
    created: dt.datetime,
) -> bytes:
    """The camt.053.001.08 document (UTF-8 XML) for one account's booked ``entries`` on ``day``;
    ``opening`` is the previous day's closing balance, ``created`` the file's creation moment (UTC)."""
    if account.iban is None:
        raise ValueError(f"{account.key} has no IBAN; camt.053 here identifies accounts by IBAN")
    closing = opening + sum((txn.amount for txn in entries), Decimal(0))
    created_text = _datetime(created)
    root = etree.Element(f"{{{CAMT053_NAMESPACE}}}Document", nsmap={None: CAMT053_NAMESPACE})
    message = _sub(root, "BkToCstmrStmt")

    header = _sub(message, "GrpHdr")
    _sub(header, "MsgId", f"{account.bank.bank_code}{day:%Y%m%d}{stable_hex('camt-msg', account.key, day)}")
    _sub(header, "CreDtTm", created_text)

    statement = _sub(message, "Stmt")
    _sub(statement, "Id", f"{account.iban}-{day:%Y%m%d}")
    _sub(statement, "ElctrncSeqNb", str(day.timetuple().tm_yday))
    _sub(statement, "CreDtTm", created_text)
    period = _sub(statement, "FrToDt")
    _sub(period, "FrDtTm", f"{day.isoformat()}T00:00:00")
    _sub(period, "ToDtTm", f"{day.isoformat()}T23:59:59")
    _account(_sub(statement, "Acct"), account)
    _balance(statement, "OPBD", opening, account.currency, day)
    _balance(statement, "CLBD", closing, account.currency, day)
    _summary(_sub(statement, "TxsSummry"), entries)
    for txn in entries:
        _entry(_sub(statement, "Ntry"), account, txn, day)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _sub(parent: etree._Element, name: str, text: str | None = None, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{CAMT053_NAMESPACE}}}{name}", attributes)
    if text is not None:
        element.text = text
    return element


def _datetime(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _amount(value: Decimal) -> str:
    return format(abs(value), ".2f")


def _indicator(value: Decimal) -> str:
    return "DBIT" if value < 0 else "CRDT"


def _account(acct: etree._Element, account: Account) -> None:
    _sub(_sub(acct, "Id"), "IBAN", account.iban)
    _sub(acct, "Ccy", account.currency)
    _sub(_sub(acct, "Ownr"), "Nm", account.owner_name[:_MAX_TEXT])
    _sub(_sub(_sub(acct, "Svcr"), "FinInstnId"), "BICFI", account.swift_bic)


def _balance(statement: etree._Element, code: str, value: Decimal, currency: str, day: dt.date) -> None:
    balance = _sub(statement, "Bal")
    _sub(_sub(_sub(balance, "Tp"), "CdOrPrtry"), "Cd", code)
    _sub(balance, "Amt", _amount(value), Ccy=currency)
    _sub(balance, "CdtDbtInd", _indicator(value))
    _sub(_sub(balance, "Dt"), "Dt", day.isoformat())


def _summary(summary: etree._Element, entries: Sequence[WorldTransaction]) -> None:
    credits = [txn.amount for txn in entries if txn.amount >= 0]
    debits = [-txn.amount for txn in entries if txn.amount < 0]
    net = sum(credits, Decimal(0)) - sum(debits, Decimal(0))
    totals = _sub(summary, "TtlNtries")
    _sub(totals, "NbOfNtries", str(len(entries)))
    _sub(totals, "Sum", _amount(sum(credits, Decimal(0)) + sum(debits, Decimal(0))))
    net_entry = _sub(totals, "TtlNetNtry")
    _sub(net_entry, "Amt", _amount(net))
    _sub(net_entry, "CdtDbtInd", _indicator(net))
    for name, amounts in (("TtlCdtNtries", credits), ("TtlDbtNtries", debits)):
        part = _sub(summary, name)
        _sub(part, "NbOfNtries", str(len(amounts)))
        _sub(part, "Sum", _amount(sum(amounts, Decimal(0))))


def _entry(entry: etree._Element, account: Account, txn: WorldTransaction, day: dt.date) -> None:
    indicator = _indicator(txn.amount)
    _sub(entry, "Amt", _amount(txn.amount), Ccy=txn.currency)
    _sub(entry, "CdtDbtInd", indicator)
    _sub(_sub(entry, "Sts"), "Cd", "BOOK")
    _sub(_sub(entry, "BookgDt"), "Dt", day.isoformat())
    _sub(_sub(entry, "ValDt"), "Dt", day.isoformat())
    _sub(entry, "AcctSvcrRef", acct_svcr_ref(account, txn))
    domain, family, sub_family = bank_transaction_code(txn)
    domain_element = _sub(_sub(entry, "BkTxCd"), "Domn")
    _sub(domain_element, "Cd", domain)
    family_element = _sub(domain_element, "Fmly")
    _sub(family_element, "Cd", family)
    _sub(family_element, "SubFmlyCd", sub_family)

    details = _sub(_sub(entry, "NtryDtls"), "TxDtls")
    _sub(_sub(details, "Refs"), "EndToEndId", txn.reference or "NOTPROVIDED")
    _sub(details, "Amt", _amount(txn.amount), Ccy=txn.currency)
    _sub(details, "CdtDbtInd", indicator)
    name = txn.counterparty_name or txn.merchant_name
    if name or txn.counterparty_iban:
        # The counterparty is the creditor of our debit and the debtor of our credit.
        role = "Cdtr" if txn.amount < 0 else "Dbtr"
        parties = _sub(details, "RltdPties")
        if name:
            _sub(_sub(_sub(parties, role), "Pty"), "Nm", name[:_MAX_TEXT])
        if txn.counterparty_iban:
            _sub(_sub(_sub(parties, f"{role}Acct"), "Id"), "IBAN", txn.counterparty_iban)
    _sub(_sub(details, "RmtInf"), "Ustrd", txn.description[:_MAX_TEXT])
