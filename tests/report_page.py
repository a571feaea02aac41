"""A bankflow report page read back the way the tests read it."""

from __future__ import annotations

from html.parser import HTMLParser


class ReportPage(HTMLParser):
    """The parts of the report page the tests read: each section's image, each chart's table (as
    printed), and every address the page refers to."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.addresses: list[str] = []
        self._section: str | None = None
        self._table: list[list[str]] | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.addresses += [found[name] or "" for name in ("src", "href") if name in found]
        if tag == "section":
            self._section = found["id"]
        elif tag == "img":
            assert self._section is not None
            self.images[self._section] = found["src"] or ""
        elif tag == "table":
            self._table = self.tables.setdefault(found["data-chart"] or "", [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
