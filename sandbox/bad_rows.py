"""Bad rows for the data-quality checks: what a careless bank sends, added to a real answer.

Each is made from the answer's first transaction (TrueLayer's shape), so that everything but the
fault is valid:

- null_amount: a transaction of its own with no amount;
- future_date: a transaction of its own posted three days after the world's today;
- duplicate_id: the first transaction's ids again, on a different amount and description;
- unknown_currency: a transaction of its own in "ZZZ".
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

ID_FIELDS = ("transaction_id", "provider_transaction_id", "normalised_provider_transaction_id")
UNKNOWN_CURRENCY = "ZZZ"


def with_bad_rows(items: list[dict[str, Any]], kinds: Iterable[str], today: dt.date) -> list[dict[str, Any]]:
    """`items` and, if it has any, one bad row of each kind after them."""
    kinds = sorted(kinds)
    if not items or not kinds:
        return items
    template = items[0]
    bad = []
    for kind in kinds:
        row = copy.deepcopy(template)
        if kind != "duplicate_id":
            for name in ID_FIELDS:
                if name in row:
                    row[name] = f"bad-{kind}-{row[name]}"
        if kind == "null_amount":
            row["amount"] = None
        elif kind == "future_date":
            row["timestamp"] = f"{today + dt.timedelta(days=3)}T00:00:00+00:00"
        elif kind == "duplicate_id":
            row["amount"] = Decimal(str(row["amount"])) + Decimal("1.00")
            row["description"] = f"{row['description']} (sent again)"
        elif kind == "unknown_currency":
            row["currency"] = UNKNOWN_CURRENCY
        row.pop("running_balance", None)
        bad.append(row)
    return [*items, *bad]
