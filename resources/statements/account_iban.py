"""Whether a statement's account id is an IBAN: the header carries the validated form, or None."""

from __future__ import annotations

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException


def account_iban(account_id: str) -> str | None:
    """The compact IBAN when `account_id` is a valid one (checksum, country length), else None.

    Bank account numbers that are not IBANs (Indian, US, card numbers) are common in CSV, JSON and
    OFX drops, so "not an IBAN" is an answer, not an error.
    """
    try:
        return IBAN(account_id).compact
    except (SchwiftyException, ValueError):
        return None
