"""The report put together: read the marts, draw each chart, write the HTML file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from resources.reports.chart_data import ChartData, missing_marts, read_charts
from resources.reports.document import html_document, markdown_section
from resources.reports.plots import plot_png, use_font_cache

TITLE = "bankflow report"
LATEST = "latest.html"


class ReportError(RuntimeError):
    """The report cannot be made; the message says what to do."""


@dataclass(frozen=True)
class RenderedChart:
    data: ChartData
    png: bytes

    def markdown(self) -> str:
        return markdown_section(self.data, self.png)


@dataclass(frozen=True)
class Report:
    generated_at: datetime
    charts: tuple[RenderedChart, ...]
    # Whose rows it shows: None for every owner's (the warehouse's view).
    owner: str | None = None

    def html(self) -> str:
        whose = f" for {self.owner}" if self.owner else ""
        return html_document(
            f"{TITLE}{whose} {self.generated_at:%Y-%m-%d}",
            self.generated_at,
            [(chart.data, chart.png) for chart in self.charts],
        )


def reports_folder(home: Path, owner: str | None = None) -> Path:
    """Where reports are kept: `reports/` in the bankflow home (.bankflow), an owner's in
    `reports/<owner>/`."""
    return home / "reports" / owner if owner else home / "reports"


def render_report(
    conn: psycopg.Connection, generated_at: datetime, home: Path, owner: str | None = None
) -> Report:
    """Every chart of the marts `conn` reads, drawn (matplotlib keeps its font cache under `home`).
    An owner's report reads through that owner's BI login (owner_access.connect_as_owner), so
    row-level security decides its rows exactly as it does for the owner's dashboards."""
    missing = missing_marts(conn)
    if missing:
        raise ReportError(
            f"the marts are not built yet (no {', '.join(missing)}): run the pipeline first"
            " (bankflow demo, bankflow sync, or a run in the Dagster UI)"
        )
    use_font_cache(home / "matplotlib")
    try:
        charts = read_charts(conn)
    except psycopg.errors.InsufficientPrivilege as error:
        raise ReportError(f"{error}".strip() + ": the report reads marts this login may not read") from None
    return Report(generated_at, tuple(RenderedChart(chart, plot_png(chart)) for chart in charts), owner)


def write_report(report: Report, path: Path) -> Path:
    """The report as one self-contained HTML file at `path` (replaced whole, never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(report.html(), encoding="utf-8")
    partial.replace(path)
    return path


def save_report(report: Report, folder: Path) -> tuple[Path, Path]:
    """The report as `report-<day>.html` in `folder`, and as `latest.html` beside it."""
    dated = write_report(report, folder / f"report-{report.generated_at:%Y-%m-%d}.html")
    return dated, write_report(report, folder / LATEST)
