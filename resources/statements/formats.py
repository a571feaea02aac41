"""Which parser reads a dropped file: the registry of statement formats and the sniffing that picks one.

`detect()` reads the first 4 KiB of a file and asks every parser whether it is in its format. The
sniff rules are written not to overlap (JSON: first non-space byte `[` or `{` plus a standard-format
key; OFX: an OFX header or `<OFX>`; camt.053: its XML namespace; MT940: its tags; CSV: a layout's
header columns), and `detect()` checks that: a file two parsers claim is refused with both names
rather than read by whichever came first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from resources.statements.csv_mapping import CsvMapping, load_csv_mappings
from resources.statements.csv_statement import CsvStatementParser
from resources.statements.json_statement import JsonStatementParser
from resources.statements.model import StatementParseError, StatementParser
from resources.statements.ofx_statement import OfxStatementParser

__all__ = ["SNIFF_BYTES", "UnknownFormat", "default_parsers", "describe", "detect", "load_csv_mappings"]

SNIFF_BYTES = 4096


class UnknownFormat(StatementParseError):
    """No parser claims the file (or more than one does): it is quarantined with this message."""


def default_parsers(csv_mappings: Iterable[CsvMapping] = ()) -> list[StatementParser]:
    """camt.053, MT940, JSON (seed standard format), OFX, then one CSV parser per mapping."""
    # Imported here so that this module loads while those parsers are being written.
    from resources.statements.camt053 import Camt053Parser
    from resources.statements.mt940 import Mt940Parser

    return [
        Camt053Parser(),
        Mt940Parser(),
        JsonStatementParser(),
        OfxStatementParser(),
        *(CsvStatementParser(mapping) for mapping in csv_mappings),
    ]


def describe(parser: StatementParser) -> str:
    """A parser's name for messages: its format, and the layout for CSV."""
    mapping = getattr(parser, "mapping", None)
    return f"{parser.format} ({mapping.name})" if isinstance(mapping, CsvMapping) else parser.format


def detect(path: Path, parsers: Sequence[StatementParser]) -> StatementParser:
    """The one parser whose sniff claims the file; UnknownFormat when none does, or several do."""
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise UnknownFormat(f"{path.name}: cannot read ({exc.strerror})") from None
    if not head.strip():
        raise UnknownFormat(f"{path.name}: the file is empty")
    claims = [parser for parser in parsers if parser.sniff(head, path.name)]
    if len(claims) == 1:
        return claims[0]
    if claims:
        raise UnknownFormat(
            f"{path.name}: more than one format claims the file ({', '.join(map(describe, claims))}); "
            "make the CSV layouts' header_match tell them apart"
        )
    tried = ", ".join(describe(parser) for parser in parsers) or "no parsers configured"
    raise UnknownFormat(f"{path.name}: not a statement format bankflow reads (tried {tried})")
