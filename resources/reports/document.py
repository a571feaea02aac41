"""The report as text: a self-contained HTML page (images embedded as data URIs, no external
file, font or script) and markdown for Dagster's asset metadata. Each chart has its numbers
beside it, formatted from the marts' values exactly (Decimals keep every digit)."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from resources.reports.chart_data import ChartData, Table

MISSING = "n/a"
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #212121; }
h1 { margin-bottom: 0.2rem; } .meta, .note { color: #616161; }
nav a { margin-right: 1rem; }
section { margin: 2.5rem 0; }
img { max-width: 100%; height: auto; border: 1px solid #e0e0e0; }
table { border-collapse: collapse; margin-top: 0.8rem; font-size: 0.85rem; }
th, td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #e0e0e0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


def format_value(value: Any) -> str:
    """A mart's value as printed: Decimals with all their digits (thousands separated), dates in
    ISO form, a missing value as 'n/a'."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{value:,f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def html_document(title: str, generated_at: datetime, charts: Sequence[tuple[ChartData, bytes]]) -> str:
    """The whole report as one HTML page."""
    nav = "".join(f'<a href="#{c.key}">{html.escape(c.title)}</a>' for c, _ in charts)
    sections = "".join(_html_section(chart, png) for chart, png in charts)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f'<p class="meta">Generated {generated_at:%Y-%m-%d %H:%M} UTC from the bankflow marts.</p>\n'
        f"<nav>{nav}</nav>\n{sections}</body>\n</html>\n"
    )


def _html_section(chart: ChartData, png: bytes) -> str:
    marts = ", ".join(f"marts.{name}" for name in chart.marts)
    return (
        f'<section id="{chart.key}">\n<h2>{html.escape(chart.title)}</h2>\n'
        f'<p class="note">{html.escape(chart.note)} From {html.escape(marts)}.</p>\n'
        f'<img alt="{html.escape(chart.title)}" src="{png_data_uri(png)}">\n'
        f"{_html_table(chart.key, chart.numbers)}</section>\n"
    )


def _html_table(key: str, table: Table) -> str:
    if not table.rows:
        return '<p class="note">No rows.</p>\n'
    head = "".join(f"<th>{html.escape(column)}</th>" for column in table.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(format_value(v))}</td>'
            if _is_number(v)
            else f"<td>{html.escape(format_value(v))}</td>"
            for v in row
        )
        + "</tr>\n"
        for row in table.rows
    )
    return f'<table class="numbers" data-chart="{key}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n'


def markdown_section(chart: ChartData, png: bytes) -> str:
    """One chart for Dagster's asset metadata: the image, then its numbers as a markdown table."""
    lines = [
        f"**{chart.title}**: {chart.note} From {', '.join(f'marts.{name}' for name in chart.marts)}.",
        "",
        f"![{chart.title}]({png_data_uri(png)})",
        "",
    ]
    table = chart.numbers
    if not table.rows:
        return "\n".join([*lines, "No rows."])
    lines.append("| " + " | ".join(_markdown_cell(c) for c in table.columns) + " |")
    lines.append(
        "|"
        + "|".join("---:" if _numeric_column(table, i) else "---" for i in range(len(table.columns)))
        + "|"
    )
    lines.extend("| " + " | ".join(_markdown_cell(format_value(v)) for v in row) + " |" for row in table.rows)
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, Decimal | int) and not isinstance(value, bool)


def _numeric_column(table: Table, index: int) -> bool:
    return any(_is_number(row[index]) for row in table.rows)


def _markdown_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
