"""IBAN construction and validation (ISO 13616 mod-97 check digits)."""

from __future__ import annotations

import string

_LETTER_VALUES = {letter: str(index) for index, letter in enumerate(string.ascii_uppercase, start=10)}


def _numeric(text: str) -> int:
    """Map an alphanumeric string to the integer used by the mod-97 check (A=10 ... Z=35)."""
    return int("".join(_LETTER_VALUES.get(char, char) for char in text))


def make_iban(country: str, bban: str) -> str:
    """Build an IBAN from a two-letter country code and the national BBAN, computing the check digits."""
    country, bban = country.upper(), bban.upper()
    check = 98 - _numeric(bban + country + "00") % 97
    return f"{country}{check:02d}{bban}"


def gb_iban(bank_code: str, sort_code: str, account_number: str) -> str:
    """A UK IBAN: GBkk + 4-letter bank code + 6-digit sort code + 8-digit account number."""
    digits = sort_code.replace("-", "")
    if len(bank_code) != 4 or len(digits) != 6 or len(account_number) != 8:
        raise ValueError("GB IBAN needs a 4-letter bank code, a 6-digit sort code and an 8-digit number")
    return make_iban("GB", f"{bank_code}{digits}{account_number}")


def is_valid_iban(iban: str) -> bool:
    """True when the IBAN is well formed and its check digits pass mod-97."""
    compact = iban.replace(" ", "").upper()
    if len(compact) < 15 or not compact[:2].isalpha() or not compact[2:4].isdigit() or not compact.isalnum():
        return False
    return _numeric(compact[4:] + compact[:4]) % 97 == 1
