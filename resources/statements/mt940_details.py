"""The `:86:` information of an MT940 statement line, read in the dialect the bank wrote it in.

Banks fill the 6 x 65 characters of `:86:` in their own ways. The dialects recognised here:

- German DK/DFUE ("GVC"): `NNN?00Buchungstext?10Primanota?20..?29 purpose?30 BLZ/BIC?31 account/IBAN
  ?32?33 name?34 Textschluessel?60..?63 more purpose`; inside the purpose the SEPA keywords
  `EREF+ KREF+ MREF+ CRED+ SVWZ+ ABWA+ ...`. Triodos writes the same subfields with `>` for `?`.
- Dutch (Rabobank, ING, ABN AMRO SEPA): `/EREF/../BENM//NAME/../IBAN/../REMI/../ISDT/..`, `/TRTP/..`.
- mBank (PL): `;`-separated `LABEL: value` fields after a 3-digit code.
- Anything else is free text and becomes the description.

Every dialect keeps what it read in `details` (the subfields by number, the keywords by name), so
nothing the bank wrote is lost even when only part of it maps to a canonical field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from schwifty import BIC
from schwifty.exceptions import SchwiftyException

from resources.statements.account_iban import account_iban

# SWIFT lines are 65 characters: a line that long was cut by the bank's line length, often
# mid-word, so the next line continues it without a space; a shorter line ended where the
# writer ended it.
SWIFT_LINE_LENGTH = 65

_GVC_START = re.compile(r"^(?P<code>\d{3})(?P<separator>[?>])\d{2}")
_SEPA_KEYWORD = re.compile(r"(EREF|KREF|MREF|CRED|DEBT|SVWZ|ABWA|ABWE|PURP|MDAT|SQTP|COAM|OAMT|IBAN|BIC )\+")
_DUTCH_KEYS = (
    "EREF|PREF|MARF|CSID|TRTP|BENM|ORDP|NAME|IBAN|BIC|REMI|ISDT|RTRN|ADDR|CNTP|ID|PURP|ULTC|ULTD|ULTB|"
    "SVCL|EXCH|CHGS|OCMT|CREF"
)
_DUTCH_KEY = re.compile(rf"/({_DUTCH_KEYS})/")
_MBANK_START = re.compile(r"^(?P<code>\d{3}) ")
_KNAB_ACCOUNT = re.compile(r"REK: (?P<iban>[A-Z]{2}\d{2}[A-Z0-9]+)/NAAM: (?P<name>.+)$")
_NO_VALUE = {"", "NONREF", "NOTPROVIDED"}


@dataclass(frozen=True)
class InformationFields:
    """What one `:86:` says: the canonical fields it fills and everything it held, by dialect."""

    dialect: str  # gvc | dutch | mbank | free
    description: str | None = None
    end_to_end_id: str | None = None
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    counterparty_bic: str | None = None
    transaction_code: str | None = None  # the GVC / mBank 3-digit code
    details: dict[str, Any] = field(default_factory=dict)


def fold_whitespace(text: str | None) -> str | None:
    """The text with runs of whitespace as single spaces, or None when nothing is left."""
    if text is None:
        return None
    folded = " ".join(text.split())
    return folded or None


def read_information(lines: list[str]) -> InformationFields:
    """The fields of one `:86:` value given as its lines (blank lines already dropped)."""
    compact = "".join(line.strip("\r\n") for line in lines).lstrip()
    if gvc := _GVC_START.match(compact):
        return _read_gvc(compact, gvc["code"], gvc["separator"])
    if compact.startswith("/") and _DUTCH_KEY.match(compact):
        return _read_dutch(compact)
    text = _join_free_text(lines)
    if _MBANK_START.match(text) and ";" in text:
        return _read_mbank(text)
    return _read_free_text(text)


def _join_free_text(lines: list[str]) -> str:
    """Lines joined by the SWIFT wrap rule (see SWIFT_LINE_LENGTH)."""
    parts: list[str] = []
    for line in lines:
        if parts and len(parts[-1]) < SWIFT_LINE_LENGTH:
            parts.append(" ")
        parts.append(line)
    return "".join(parts)


def _subfields(text: str, separator: str) -> list[tuple[str, str]]:
    """`?NN` (or `>NN`) subfields in order, each with its text; the leading code is dropped."""
    pattern = re.compile(re.escape(separator) + r"(\d{2})")
    found: list[tuple[str, str]] = []
    matches = list(pattern.finditer(text))
    for number, match in enumerate(matches):
        end = matches[number + 1].start() if number + 1 < len(matches) else len(text)
        found.append((match.group(1), text[match.end() : end]))
    return found


def split_sepa_keywords(purpose: str) -> dict[str, str]:
    """`EREF+..SVWZ+..` purpose text as {keyword: value}; text before the first keyword under ""."""
    values: dict[str, str] = {}
    matches = list(_SEPA_KEYWORD.finditer(purpose))
    if not matches:
        return values
    if prefix := purpose[: matches[0].start()].strip():
        values[""] = prefix
    for number, match in enumerate(matches):
        end = matches[number + 1].start() if number + 1 < len(matches) else len(purpose)
        keyword = match.group(1).strip()
        value = purpose[match.end() : end].strip()
        # A keyword repeated (rare) keeps both values rather than the last one only.
        values[keyword] = f"{values[keyword]} {value}" if keyword in values else value
    return values


def _read_gvc(text: str, code: str, separator: str) -> InformationFields:
    subfields = _subfields(text, separator)
    by_number: dict[str, str] = {}
    for number, value in subfields:
        # Subfields are concatenated as written: the bank cut them at a fixed width, mid-word.
        by_number[number] = by_number.get(number, "") + value
    purpose = "".join(value for number, value in subfields if number[0] == "2" or "60" <= number <= "63")
    sepa = split_sepa_keywords(purpose)
    if sepa:
        description = sepa.get("SVWZ") or sepa.get("")
    else:
        description = purpose
    description = fold_whitespace(description) or fold_whitespace(by_number.get("00"))
    name = fold_whitespace(by_number.get("32", "") + by_number.get("33", ""))
    iban = _valid_iban(by_number.get("31")) or _valid_iban(by_number.get("38"))
    details: dict[str, Any] = {"gvc": code, "subfields": by_number}
    if sepa:
        details["sepa"] = sepa
    return InformationFields(
        dialect="gvc",
        description=description,
        end_to_end_id=_reference(sepa.get("EREF")),
        counterparty_name=name,
        counterparty_iban=iban,
        counterparty_bic=_valid_bic(by_number.get("30")),
        transaction_code=code,
        details=details,
    )


def _read_dutch(text: str) -> InformationFields:
    fields: dict[str, str] = {}
    matches = list(_DUTCH_KEY.finditer(text))
    for number, match in enumerate(matches):
        end = matches[number + 1].start() if number + 1 < len(matches) else len(text)
        value = text[match.end() : end]
        key = match.group(1)
        fields[key] = f"{fields[key]}/{value}" if key in fields else value
    remittance = fields.get("REMI", "")
    # Rabobank/ING put the remittance kind first: /REMI/USTD//free text/ or /REMI/STRD/CUR/ref/.
    for kind in ("USTD//", "STRD/CUR/", "STRD//"):
        remittance = remittance.removeprefix(kind)
    return InformationFields(
        dialect="dutch",
        description=fold_whitespace(remittance.rstrip("/")),
        end_to_end_id=_reference(fields.get("EREF")),
        counterparty_name=fold_whitespace(fields.get("NAME")),
        counterparty_iban=_valid_iban(fields.get("IBAN")),
        counterparty_bic=_valid_bic(fields.get("BIC")),
        details={"fields": fields},
    )


def _read_mbank(text: str) -> InformationFields:
    head, _, rest = text.partition(";")
    code = head[:3]
    fields: dict[str, str] = {"": head[4:].strip()}
    for part in rest.split(";"):
        label, colon, value = part.partition(":")
        if colon:
            fields[label.strip()] = " ".join(value.split())
        elif part.strip():
            fields[""] = f"{fields['']} {part.strip()}"
    account = fields.get("Z RACH.") or fields.get("NA RACH.")
    iban = None
    if account:
        compact = account.replace(" ", "")
        # mBank writes the Polish 26-digit account (NRB), which is the IBAN without "PL".
        iban = _valid_iban(compact) or (_valid_iban("PL" + compact) if compact.isdigit() else None)
    return InformationFields(
        dialect="mbank",
        description=fold_whitespace(fields.get("TYT.") or fields.get("")),
        counterparty_name=fold_whitespace(fields.get("OD") or fields.get("DO")),
        counterparty_iban=iban,
        transaction_code=code,
        details={"code": code, "fields": fields},
    )


def _read_free_text(text: str) -> InformationFields:
    name = iban = None
    # Knab's pseudo-structure "REK: <IBAN>/NAAM: <name>" on a line of its own.
    if match := _KNAB_ACCOUNT.search(text):
        iban = _valid_iban(match["iban"])
        name = fold_whitespace(match["name"])
    return InformationFields(
        dialect="free",
        description=fold_whitespace(text),
        counterparty_name=name,
        counterparty_iban=iban,
    )


def _reference(value: str | None) -> str | None:
    value = fold_whitespace(value)
    return None if value is None or value.upper() in _NO_VALUE else value


def _valid_iban(value: str | None) -> str | None:
    return account_iban(value.strip()) if value and value.strip() else None


def _valid_bic(value: str | None) -> str | None:
    if not value or not value.strip():
        return None
    try:
        return str(BIC(value.strip()))
    except (SchwiftyException, ValueError):
        return None
