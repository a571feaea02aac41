"""JSON bodies whose numbers are the exact text of Decimals (never a float round-trip)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse


def decimal_text(value: Decimal) -> str:
    """The plain (non-exponent) text of a finite Decimal, e.g. Decimal("-12.30") -> "-12.30"."""
    if not value.is_finite():
        raise ValueError(f"{value} has no JSON representation")
    return format(value, "f")


def dumps_exact(value: Any) -> str:
    """Serialise like json.dumps(separators=(",", ":"), ensure_ascii=False) but write each Decimal as
    its exact text. Floats are refused: money in this project is Decimal."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _encode(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool | str | int):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Decimal):
        out.append(decimal_text(value))
    elif isinstance(value, float):
        raise TypeError("floats are not allowed in sandbox JSON; use Decimal")
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, not {type(key).__name__}")
            out.append(("," if index else "") + json.dumps(key, ensure_ascii=False) + ":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class ExactJSONResponse(JSONResponse):
    """A JSONResponse that renders Decimals as exact JSON numbers."""

    def render(self, content: Any) -> bytes:
        return dumps_exact(content).encode("utf-8")
