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

    def html(self) -> str:
        return html_document(
            f"{TITLE} {self.generated_at:%Y-%m-%d}",
            self.generated_at,
            [(chart.data, chart.png) for chart in self.charts],
        )


def reports_folder(home: Path) -> Path:
    """Where reports are kept: `reports/` in the bankflow home (.bankflow)."""
    return home / "reports"


def render_report(conn: psycopg.Connection, generated_at: datetime, home: Path) -> Report:
    """Every chart of the marts, drawn (matplotlib keeps its font cache under `home`)."""
    missing = missing_marts(conn)
    if missing:
        raise ReportError(
            f"the marts are not built yet (no {', '.join(missing)}): run the pipeline first"
            " (bankflow demo, bankflow sync, or a run in the Dagster UI)"
        )
    use_font_cache(home / "matplotlib")
    return Report(generated_at, tuple(RenderedChart(chart, plot_png(chart)) for chart in read_charts(conn)))


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
