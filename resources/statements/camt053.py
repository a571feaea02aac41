"""ISO 20022 bank-to-customer cash statements: camt.053 (Stmt), camt.052 (Rpt), camt.054 (Ntfctn).

Versions .001.02 to .001.11 share one shape for what we read, so elements are matched on their local
names and any `urn:iso:std:iso:20022:tech:xsd:camt.05[234].001.NN` namespace is accepted.

The file is streamed with `lxml.etree.iterparse`: a statement's header is built when its first
`Ntry` starts (its `Acct` and `Bal` siblings are complete by then, the schema puts them first), each
`Ntry` is turned into one `StatementEntry` when it ends and is then cleared, so memory is bounded by
the largest entry, not the file. A batch booking stays one entry (the booked movement) with its
`TxDtls` in `details["transactions"]`.

Rules learnt from bank samples (bank-contracts.md §5.2): the sign comes from `CdtDbtInd` only
(`RvslInd` is informational), the opening balance may be `PRCD` instead of `OPBD`, and BMO reports
balances as BAI2 codes in `Prtry` (010/015/040/045).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lxml import etree
from schwifty import IBAN

from resources.statements.model import (
    BalanceKind,
    EntryStatus,
    StatementBalance,
    StatementEntry,
    StatementEvent,
    StatementHeader,
    StatementParseError,
)

_NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.05[234]\.001\.\d{2}")
_SNIFF = re.compile(
    rb"urn:iso:std:iso:20022:tech:xsd:camt\.05[234]\.|<(?:[\w.-]+:)?BkToCstmr(?:Stmt|AcctRpt|DbtCdtNtfctn)\b"
)
# message element -> the element holding one statement inside it
_STATEMENT_ELEMENT = {"BkToCstmrStmt": "Stmt", "BkToCstmrAcctRpt": "Rpt", "BkToCstmrDbtCdtNtfctn": "Ntfctn"}
_ISO_BALANCE_KINDS: dict[str, BalanceKind] = {
    "OPBD": "opening",
    "PRCD": "opening",
    "CLBD": "closing",
    "ITBD": "interim_closing",
    "OPAV": "opening_available",
    "CLAV": "closing_available",
    "FWAV": "forward_available",
}
_BAI_BALANCE_KINDS: dict[str, BalanceKind] = {
    "010": "opening",
    "015": "closing",
    "040": "opening_available",
    "045": "closing_available",
}
# FUTR (v08+) is a booking announced for a later date: not on the ledger yet, like PDNG.
_ENTRY_STATUSES: dict[str, EntryStatus] = {
    "BOOK": "booked",
    "PDNG": "pending",
    "FUTR": "pending",
    "INFO": "info",
}
# xs:decimal: digits with an optional fraction; Decimal() alone would also take NaN, 1e5 and 1_000.
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})?")
_DATE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_HEAD_BYTES = 4096
_PROLOG_BYTES = 65536
_NOT_PROVIDED = "NOTPROVIDED"

_Element = etree._Element
_local_names: dict[str, str] = {}
_wildcards: dict[str, str] = {}


def _local(tag: object) -> str | None:
    """The local name of an element tag (`{ns}Amt` -> `Amt`); None for comments, PIs and entities."""
    if not isinstance(tag, str):
        return None
    name = _local_names.get(tag)
    if name is None:
        name = _local_names[tag] = tag.rpartition("}")[2]
    return name


def _wildcard(name: str) -> str:
    """`{*}name`: lxml matches it in C against any namespace, i.e. on the local name."""
    tag = _wildcards.get(name)
    if tag is None:
        tag = _wildcards[name] = f"{{*}}{name}"
    return tag


def _child(element: _Element | None, *path: str) -> _Element | None:
    """The first element at `path` (local names, one per level) below `element`."""
    for name in path:
        if element is None:
            return None
        element = next(element.iterchildren(_wildcard(name)), None)
    return element


def _children(element: _Element | None, name: str) -> list[_Element]:
    """Every direct child of `element` with local name `name`."""
    if element is None:
        return []
    return list(element.iterchildren(_wildcard(name)))


def _fold(value: str | None) -> str | None:
    """Whitespace folded to single spaces; None when nothing is left."""
    if value is None:
        return None
    folded = " ".join(value.split())
    return folded or None


def _text(element: _Element | None, *path: str) -> str | None:
    found = _child(element, *path)
    return _fold(found.text) if found is not None else None


def _where(element: _Element) -> str:
    return f"line {element.sourceline}" if element.sourceline else "unknown line"


def _decimal(element: _Element) -> Decimal:
    raw = (element.text or "").strip()
    if not _DECIMAL.fullmatch(raw):
        raise StatementParseError(
            f"{_where(element)}: <{_local(element.tag)}> {raw!r} is not a decimal amount"
        )
    try:
        return Decimal(raw)
    except InvalidOperation as error:  # pragma: no cover - the pattern admits only valid literals
        raise StatementParseError(f"{_where(element)}: {raw!r} is not a decimal amount") from error


def _date(element: _Element) -> date:
    raw = (element.text or "").strip()
    match = _DATE.fullmatch(raw)
    try:
        if match is None:
            raise ValueError(raw)
        return date.fromisoformat(match.group(1))
    except ValueError as error:
        raise StatementParseError(f"{_where(element)}: {raw!r} is not a date") from error


def _date_time(element: _Element) -> datetime:
    """An ISODateTime as written: aware when it carries Z or an offset, naive (local) otherwise."""
    raw = (element.text or "").strip()
    match = _DATE_TIME.fullmatch(raw)
    try:
        if match is None:
            raise ValueError(raw)
        day, clock, fraction, zone = match.groups()
        # Python keeps microseconds; banks write up to 7 fraction digits (.NET ticks).
        micro = (fraction or ".")[1:7].ljust(6, "0") if fraction else "000000"
        return datetime.fromisoformat(f"{day}T{clock}.{micro}{zone or ''}")
    except ValueError as error:
        raise StatementParseError(f"{_where(element)}: {raw!r} is not a date-time") from error


def _date_or_time(element: _Element | None) -> tuple[date | None, datetime | None]:
    """A DateAndDateTimeChoice (`Dt` or `DtTm`): the date as written, and the time when there is one."""
    if element is None:
        return None, None
    day = _child(element, "Dt")
    if day is not None:
        return _date(day), None
    moment = _child(element, "DtTm")
    if moment is not None:
        parsed = _date_time(moment)
        return parsed.date(), parsed
    return None, None


def _credit_debit(element: _Element | None, required: bool) -> int | None:
    """+1 for CRDT, -1 for DBIT, None when absent and not required."""
    if element is None:
        if required:
            raise StatementParseError("an entry has no <CdtDbtInd>")
        return None
    value = (element.text or "").strip()
    if value == "CRDT":
        return 1
    if value == "DBIT":
        return -1
    raise StatementParseError(f"{_where(element)}: CdtDbtInd {value!r} is neither CRDT nor DBIT")


def _currency(amount: _Element, fallback: str | None) -> str:
    """The amount's Ccy attribute (ISO 4217: three capitals), else the account's currency."""
    currency = (amount.get("Ccy") or "").strip() or fallback
    if currency is None or not _CURRENCY.fullmatch(currency):
        raise StatementParseError(f"{_where(amount)}: {currency!r} is not a currency code")
    return currency


def _money(amount: _Element | None) -> dict[str, str] | None:
    """An `Amt Ccy=..` element as JSON-ready text."""
    if amount is None:
        return None
    return {"amount": str(_decimal(amount)), "currency": (amount.get("Ccy") or "").strip()}


def _validated_iban(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(IBAN(value).compact)
    except ValueError:
        return None


def _reject_doctype(head: bytes) -> None:
    """camt files never carry a DTD; refusing one up front rules out entity bombs and external entities."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="ignore")
    else:
        text = head.decode("utf-8", errors="ignore")
    text = text.lstrip("\ufeff")
    position = 0
    while True:
        position = len(text) - len(text[position:].lstrip())  # skip whitespace between prolog parts
        if text.startswith("<?", position):
            terminator = "?>"
        elif text.startswith("<!--", position):
            terminator = "-->"
        elif text.startswith("<!", position):
            raise StatementParseError("the file declares a DTD (<!DOCTYPE>), which camt files never do")
        else:
            return  # the root element, or something the XML parser will reject with a line number
        end = text.find(terminator, position)
        if end < 0:
            if len(head) >= _PROLOG_BYTES:
                raise StatementParseError(f"no root element within the first {_PROLOG_BYTES} bytes")
            return
        position = end + len(terminator)


class Camt053Parser:
    """Parser for camt.053 statements (and camt.052 reports / camt.054 notifications of the same shape)."""

    format = "camt053"

    def sniff(self, head: bytes, filename: str) -> bool:
        """True when the first 4 KiB carry a camt.05x namespace or a bank-to-customer message element."""
        head = head[:_HEAD_BYTES]
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            head = head.decode("utf-16", errors="ignore").encode()
        return _SNIFF.search(head) is not None

    def parse(self, path: Path) -> Iterator[StatementEvent]:
        """The file's statements and entries in file order; raises StatementParseError only."""
        try:
            with open(path, "rb") as stream:
                _reject_doctype(stream.read(_PROLOG_BYTES))
                stream.seek(0)
                yield from _CamtStream(stream).events()
        except etree.XMLSyntaxError as error:
            line = error.lineno or (error.position[0] if error.position else None)
            message = error.msg or str(error)
            raise StatementParseError(f"{path.name}: line {line}: malformed XML: {message}") from error
        except OSError as error:
            raise StatementParseError(
                f"{path.name}: cannot read the file: {error.strerror or error}"
            ) from error
        except StatementParseError as error:
            raise StatementParseError(f"{path.name}: {error}") from error


class _CamtStream:
    """One pass over one file: the iterparse loop and the state of the statement being read."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._message: _Element | None = None
        self._statement_name: str | None = None
        self._statement_index = -1
        self._message_details: dict[str, Any] = {}

    def events(self) -> Iterator[StatementEvent]:
        names = [*_STATEMENT_ELEMENT, *_STATEMENT_ELEMENT.values(), "Ntry"]
        # resolve_entities=False and no_network: no expansion, no fetch, even if a DTD slipped past the
        # prolog check. huge_tree stays off: libxml2's size and depth limits are the bomb defence, and a
        # 200 MB statement needs none of them lifted (each node is small).
        parser = etree.iterparse(
            self._stream,
            events=("start", "end"),
            tag=[f"{{*}}{name}" for name in names],
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            remove_comments=True,
            remove_pis=True,
        )
        root: _Element | None = None
        statement: _Element | None = None
        header: StatementHeader | None = None
        entry_index = 0
        for event, element in parser:
            if root is None:
                root = element.getroottree().getroot()
                self._check_root(root)
            name = _local(element.tag)
            if event == "start":
                if name in _STATEMENT_ELEMENT and element.getparent() is root:
                    self._message, self._statement_name = element, _STATEMENT_ELEMENT[name]
                    self._message_details["message_type"] = name
                elif self._is_statement(element, name):
                    statement, header, entry_index = element, None, 0
                    self._statement_index += 1
                    if self._statement_index == 0:
                        self._message_details.update(_group_header(_child(self._message, "GrpHdr")))
                elif name == "Ntry" and statement is not None and element.getparent() is statement:
                    if header is None:
                        header = self._header(statement)
                        yield header
            elif name == "Ntry" and statement is not None and element.getparent() is statement:
                yield self._entry(element, entry_index, header)
                entry_index += 1
                element.clear(keep_tail=True)
                while element.getprevious() is not None:  # the header's parts and the entries before
                    del statement[0]
            elif self._is_statement(element, name) and element is statement:
                if header is None:
                    yield self._header(statement)
                parent = element.getparent()
                element.clear(keep_tail=True)
                if parent is not None:
                    parent.remove(element)
                statement = None
        if root is None:
            self._check_root(parser.root)
        if self._message is None:
            raise StatementParseError("no BkToCstmrStmt / BkToCstmrAcctRpt / BkToCstmrDbtCdtNtfctn message")
        if self._statement_index < 0:
            raise StatementParseError(f"the message has no <{self._statement_name}>")

    def _is_statement(self, element: _Element, name: str | None) -> bool:
        return (
            self._message is not None
            and name == self._statement_name
            and element.getparent() is self._message
        )

    def _check_root(self, root: _Element | None) -> None:
        if root is None:
            raise StatementParseError("the file has no root element")
        namespace = etree.QName(root).namespace
        if _local(root.tag) != "Document":
            raise StatementParseError(
                f"line {root.sourceline}: root element is <{_local(root.tag)}>, not <Document>"
            )
        if namespace is not None and not _NAMESPACE.fullmatch(namespace):
            raise StatementParseError(f"namespace {namespace!r} is not a camt.052/053/054 message")
        self._message_details["namespace"] = namespace

    def _header(self, statement: _Element) -> StatementHeader:
        account = _child(statement, "Acct")
        if account is None:
            raise StatementParseError(f"{_where(statement)}: the statement has no <Acct>")
        iban_text = _text(account, "Id", "IBAN")
        other_id = _text(account, "Id", "Othr", "Id")
        account_id = iban_text or other_id
        if account_id is None:
            raise StatementParseError(f"{_where(account)}: the account has neither an IBAN nor an Othr/Id")
        currency = _text(account, "Ccy")
        details: dict[str, Any] = {
            **self._message_details,
            "electronic_sequence": _text(statement, "ElctrncSeqNb"),
            "legal_sequence": _text(statement, "LglSeqNb"),
            "account_type": _text(account, "Tp", "Cd") or _text(account, "Tp", "Prtry"),
            "account_other_scheme": _text(account, "Id", "Othr", "SchmeNm", "Cd")
            or _text(account, "Id", "Othr", "SchmeNm", "Prtry"),
            "bank_clearing_member_id": _text(account, "Svcr", "FinInstnId", "ClrSysMmbId", "MmbId"),
            "bank_name": _text(account, "Svcr", "FinInstnId", "Nm"),
            "period_from": _text(statement, "FrToDt", "FrDtTm"),
            "period_to": _text(statement, "FrToDt", "ToDtTm"),
            "summary": _summary(_child(statement, "TxsSummry")),
        }
        created = _child(statement, "CreDtTm")
        period_from = _child(statement, "FrToDt", "FrDtTm")
        period_to = _child(statement, "FrToDt", "ToDtTm")
        owner = _child(account, "Ownr")
        return StatementHeader(
            index=self._statement_index,
            account_id=account_id,
            account_iban=_validated_iban(iban_text),
            currency=currency,
            statement_id=_text(statement, "Id"),
            sequence=details["electronic_sequence"] or details["legal_sequence"],
            created_at=_date_time(created) if created is not None else None,
            period_start=_date_time(period_from).date() if period_from is not None else None,
            period_end=_date_time(period_to).date() if period_to is not None else None,
            account_name=_text(account, "Nm"),
            account_owner=_text(owner, "Nm") or _text(owner, "Pty", "Nm"),
            bank_bic=_text(account, "Svcr", "FinInstnId", "BIC")
            or _text(account, "Svcr", "FinInstnId", "BICFI"),
            balances=_balances(_children(statement, "Bal"), currency),
            details={key: value for key, value in details.items() if value is not None},
        )

    def _entry(self, entry: _Element, index: int, header: StatementHeader | None) -> StatementEntry:
        amount_element = _child(entry, "Amt")
        if amount_element is None:
            raise StatementParseError(f"{_where(entry)}: the entry has no <Amt>")
        amount = _decimal(amount_element)
        if amount < 0:
            raise StatementParseError(f"{_where(amount_element)}: entry amounts are unsigned, got {amount}")
        sign = _credit_debit(_child(entry, "CdtDbtInd"), required=True)
        currency = _currency(amount_element, header.currency if header else None)
        status = _entry_status(entry)
        booking_date, booked = _date_or_time(_child(entry, "BookgDt"))
        value_date, _ = _date_or_time(_child(entry, "ValDt"))
        additional_info = _text(entry, "AddtlNtryInf")
        bank_code = _child(entry, "BkTxCd")
        transactions: list[dict[str, Any]] = []
        batches: list[dict[str, Any]] = []
        for entry_details in _children(entry, "NtryDtls"):
            batch = _child(entry_details, "Btch")
            if batch is not None:
                batches.append(_batch(batch))
            transactions.extend(_transaction(item) for item in _children(entry_details, "TxDtls"))
        details: dict[str, Any] = {
            "credit_debit": "CRDT" if sign > 0 else "DBIT",
            "status_code": _text(entry, "Sts", "Cd") or _text(entry, "Sts"),
            "additional_info": additional_info,
            "bank_transaction_code_proprietary": _proprietary_code(bank_code),
            "booked_at_local": _text(entry, "BookgDt", "DtTm") if booked is not None else None,
            "value_date_time": _text(entry, "ValDt", "DtTm"),
            "batches": batches or None,
            "transactions": transactions,
        }
        fields: dict[str, Any] = {"description": additional_info}
        if len(transactions) == 1:
            fields = _single_transaction_fields(transactions[0], sign, additional_info)
        return StatementEntry(
            statement_index=self._statement_index,
            index=index,
            amount=amount * sign,
            currency=currency,
            status=status,
            booking_date=booking_date,
            value_date=value_date,
            booked_at=booked if booked is not None and booked.tzinfo is not None else None,
            is_reversal=(_text(entry, "RvslInd") or "").lower() in ("true", "1"),
            entry_reference=_text(entry, "NtryRef"),
            bank_reference=_text(entry, "AcctSvcrRef"),
            bank_transaction_code=_bank_transaction_code(bank_code),
            details={key: value for key, value in details.items() if value is not None},
            **fields,
        )


def _group_header(group: _Element | None) -> dict[str, Any]:
    return {
        "message_id": _text(group, "MsgId"),
        "message_created_at": _text(group, "CreDtTm"),
        "page_number": _text(group, "MsgPgntn", "PgNb"),
        "last_page": _text(group, "MsgPgntn", "LastPgInd"),
    }


def _summary(summary: _Element | None) -> dict[str, Any] | None:
    """TxsSummry counts and sums as written (a cross-check for the entries, JSON-ready)."""
    if summary is None:
        return None
    result: dict[str, Any] = {}
    for key, name in (("total", "TtlNtries"), ("credits", "TtlCdtNtries"), ("debits", "TtlDbtNtries")):
        part = _child(summary, name)
        if part is None:
            continue
        count, total = _child(part, "NbOfNtries"), _child(part, "Sum")
        result[key] = {
            "count": _text(count) if count is not None else None,
            "sum": str(_decimal(total)) if total is not None else None,
        }
    return result or None


def _balances(elements: list[_Element], account_currency: str | None) -> tuple[StatementBalance, ...]:
    codes = [_text(element, "Tp", "CdOrPrtry", "Cd") for element in elements]
    has_opbd = "OPBD" in codes
    balances = []
    for element, code in zip(elements, codes, strict=True):
        proprietary = _text(element, "Tp", "CdOrPrtry", "Prtry")
        kind: BalanceKind
        if code is not None:
            # PRCD (the previous closing) is the opening only when the bank sends no OPBD.
            kind = "other" if code == "PRCD" and has_opbd else _ISO_BALANCE_KINDS.get(code, "other")
        elif proprietary is not None:
            kind = _BAI_BALANCE_KINDS.get(proprietary, "other")
        else:
            raise StatementParseError(f"{_where(element)}: the balance has no type code")
        amount_element = _child(element, "Amt")
        if amount_element is None:
            raise StatementParseError(f"{_where(element)}: the balance has no <Amt>")
        amount = _decimal(amount_element)
        sign = _credit_debit(_child(element, "CdtDbtInd"), required=False)
        # An unsigned amount takes CdtDbtInd's sign; a signed one (or one without CdtDbtInd) is as written.
        signed_text = (amount_element.text or "").strip()[:1] in "+-"
        if sign is not None and not signed_text:
            amount *= sign
        currency = _currency(amount_element, account_currency)
        day, _ = _date_or_time(_child(element, "Dt"))
        balances.append(
            StatementBalance(
                kind=kind, code=code or proprietary or "", amount=amount, currency=currency, date=day
            )
        )
    return tuple(balances)


def _entry_status(entry: _Element) -> EntryStatus:
    status = _child(entry, "Sts")
    if status is None:
        raise StatementParseError(f"{_where(entry)}: the entry has no <Sts>")
    code = _text(status, "Cd") or _text(status, "Prtry") or _fold(status.text)
    if code not in _ENTRY_STATUSES:
        raise StatementParseError(f"{_where(status)}: unknown entry status {code!r}")
    return _ENTRY_STATUSES[code]


def _bank_transaction_code(code: _Element | None) -> str | None:
    """Domain-Family-SubFamily (PMNT-RCDT-ESCT) when given, else the bank's proprietary code."""
    domain = _child(code, "Domn")
    if domain is not None:
        parts = [_text(domain, "Cd"), _text(domain, "Fmly", "Cd"), _text(domain, "Fmly", "SubFmlyCd")]
        joined = "-".join(part for part in parts if part)
        if joined:
            return joined
    return _text(code, "Prtry", "Cd")


def _proprietary_code(code: _Element | None) -> dict[str, str] | None:
    proprietary = _child(code, "Prtry")
    if proprietary is None:
        return None
    found = {"code": _text(proprietary, "Cd"), "issuer": _text(proprietary, "Issr")}
    return {key: value for key, value in found.items() if value is not None} or None


def _batch(batch: _Element) -> dict[str, Any]:
    total = _child(batch, "TtlAmt")
    found = {
        "message_id": _text(batch, "MsgId"),
        "payment_information_id": _text(batch, "PmtInfId"),
        "number_of_transactions": _text(batch, "NbOfTxs"),
        "total_amount": _money(total),
        "credit_debit": _text(batch, "CdtDbtInd"),
    }
    return {key: value for key, value in found.items() if value is not None}


def _party(parties: _Element | None, role: str, agents: _Element | None) -> dict[str, Any] | None:
    """Dbtr/Cdtr (v02: Nm directly; v08+: under Pty) with its account and its agent's BIC."""
    party = _child(parties, role)
    account = _child(parties, f"{role}Acct")
    agent = _child(agents, f"{role}Agt", "FinInstnId")
    found = {
        "name": _text(party, "Nm") or _text(party, "Pty", "Nm"),
        "iban": _text(account, "Id", "IBAN"),
        "account_id": _text(account, "Id", "Othr", "Id"),
        "bic": _text(agent, "BIC") or _text(agent, "BICFI"),
        "ultimate_name": _text(parties, f"Ultmt{role}", "Nm") or _text(parties, f"Ultmt{role}", "Pty", "Nm"),
    }
    found = {key: value for key, value in found.items() if value is not None}
    return found or None


def _exchange(amounts: _Element | None) -> dict[str, str] | None:
    """The first CcyXchg of AmtDtls (TxAmt's, else InstdAmt's, else the counter-value's)."""
    for part in ("TxAmt", "InstdAmt", "CntrValAmt", "AnncdPstngAmt"):
        exchange = _child(amounts, part, "CcyXchg")
        if exchange is None:
            continue
        rate = _child(exchange, "XchgRate")
        found = {
            "source_currency": _text(exchange, "SrcCcy"),
            "target_currency": _text(exchange, "TrgtCcy"),
            "unit_currency": _text(exchange, "UnitCcy"),
            "rate": str(_decimal(rate)) if rate is not None else None,
        }
        return {key: value for key, value in found.items() if value is not None}
    return None


def _transaction(item: _Element) -> dict[str, Any]:
    """One TxDtls as JSON-ready data."""
    references = _child(item, "Refs")
    amounts = _child(item, "AmtDtls")
    parties = _child(item, "RltdPties")
    agents = _child(item, "RltdAgts")
    remittance = _child(item, "RmtInf")
    unstructured = [_text(line) for line in _children(remittance, "Ustrd")]
    structured = [
        _text(part, "CdtrRefInf", "Ref")
        for part in _children(remittance, "Strd")
        if _child(part, "CdtrRefInf") is not None
    ]
    # v08+ puts the booked amount straight in TxDtls/Amt; v02 only in AmtDtls/TxAmt/Amt.
    amount = _child(item, "Amt")
    if amount is None:
        amount = _child(amounts, "TxAmt", "Amt")
    found: dict[str, Any] = {
        "references": {
            _local(ref.tag): _fold(ref.text)
            for ref in (references if references is not None else ())
            if _fold(ref.text)
        }
        or None,
        "amount": _money(amount),
        "credit_debit": _text(item, "CdtDbtInd"),
        "instructed_amount": _money(_child(amounts, "InstdAmt", "Amt")),
        "exchange": _exchange(amounts),
        "bank_transaction_code": _bank_transaction_code(_child(item, "BkTxCd")),
        "debtor": _party(parties, "Dbtr", agents),
        "creditor": _party(parties, "Cdtr", agents),
        "purpose": _text(item, "Purp", "Cd") or _text(item, "Purp", "Prtry"),
        "remittance_unstructured": " ".join(line for line in unstructured if line) or None,
        # Banks cut Ustrd at fixed widths (Nordea: 35), sometimes mid-word: the lines are kept as sent.
        "remittance_lines": [line for line in unstructured if line] if len(unstructured) > 1 else None,
        "remittance_references": [ref for ref in structured if ref] or None,
        "return_reason": _text(item, "RtrInf", "Rsn", "Cd") or _text(item, "RtrInf", "Rsn", "Prtry"),
        "additional_info": _text(item, "AddtlTxInf"),
    }
    return {key: value for key, value in found.items() if value is not None}


def _single_transaction_fields(
    transaction: dict[str, Any], sign: int, additional_info: str | None
) -> dict[str, Any]:
    """Entry fields taken from its only TxDtls: the other side is the creditor of a debit, the debtor
    of a credit."""
    end_to_end = (transaction.get("references") or {}).get("EndToEndId")
    party = transaction.get("creditor" if sign < 0 else "debtor") or {}
    references = transaction.get("remittance_references") or []
    return {
        "end_to_end_id": end_to_end if end_to_end and end_to_end.upper() != _NOT_PROVIDED else None,
        "counterparty_name": party.get("name") or party.get("ultimate_name"),
        "counterparty_iban": party.get("iban"),
        "counterparty_bic": party.get("bic"),
        "description": transaction.get("remittance_unstructured")
        or (references[0] if references else None)
        or additional_info,
    }
