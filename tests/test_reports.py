"""The reports over the marts the session's categorisation run built: the asset materialises with
each chart in its metadata, the HTML file is self-contained and every image in it decodes, the
numbers printed beside each chart equal fresh SQL over the marts (as Decimals), and `bankflow
report` writes the same file and hands it to the browser."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from PIL import Image
from pipeline_runs import rows
from psycopg import sql
from report_page import ReportPage
from typer.testing import CliRunner

from bankflow_cli.main import app
from pipelines.reports.assets import reports
from resources.reports.chart_data import AGE_BUCKETS, REPORT_MARTS, ChartData, Table
from resources.reports.document import markdown_section
from resources.reports.plots import plot_png
from resources.reports.report import ReportError, render_report
from resources.warehouse.database import with_database
from resources.warehouse.resource import WarehouseResource

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHARTS = (
    "spend_by_category",
    "budget_vs_cap",
    "cash_flow",
    "balances",
    "recon_match_rate",
    "exceptions_by_age",
)


@dataclass(frozen=True)
class Materialised:
    result: dg.ExecuteInProcessResult
    home: Path

    @property
    def metadata(self) -> dict[str, Any]:
        (materialisation,) = self.result.asset_materializations_for_node("reports")
        return materialisation.metadata


@pytest.fixture(scope="module")
def materialised(
    categorisation_run: dg.ExecuteInProcessResult, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Materialised:
    assert categorisation_run.success
    home = tmp_path_factory.mktemp("reports-home")
    warehouse = WarehouseResource(database_url=database_url, home=str(home))
    with pytest.MonkeyPatch.context() as patch:
        # The asset would point matplotlib at <home>/matplotlib for the rest of this process.
        patch.setenv("MPLCONFIGDIR", str(PROJECT_ROOT / ".bankflow" / "matplotlib"))
        result = dg.materialize([reports], resources={"warehouse": warehouse})
    assert result.success
    return Materialised(result, home)


def printed_value(text: str) -> object:
    """A printed cell read back: n/a is None, an ISO day a date, a number a Decimal (every digit)."""
    if text == "n/a":
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date.fromisoformat(text)
    if re.fullmatch(r"-?\d{1,3}(,\d{3})*(\.\d+)?", text):
        return Decimal(text.replace(",", ""))
    return text


def exact(row: tuple) -> tuple:
    """A row of SQL values as the report should print them: whole numbers as Decimals too."""
    return tuple(Decimal(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in row)


def same_rows(printed: list[list[str]], expected: list[tuple]) -> None:
    # repr keeps a Decimal's scale: 1.50 printed as 1.5 would differ.
    got = sorted(repr(tuple(printed_value(cell) for cell in row)) for row in printed)
    want = sorted(repr(exact(row)) for row in expected)
    assert got == want


def png_decodes(png: bytes) -> None:
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    assert image.width >= 600 and image.height >= 100


def account_label(name: str | None, provider_id: str, bank: str | None, currency: str) -> str:
    return " · ".join(part for part in (name or provider_id, bank) if part) + f" ({currency})"


def test_the_code_location_has_the_reports_after_the_marts_it_reads(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    marts = {dg.AssetKey(name) for name in REPORT_MARTS}
    assert graph.get(dg.AssetKey("reports")).parent_keys == marts
    assert all(graph.get(key).is_materializable for key in marts), "each is a dbt model of the location"
    # Not part of every pipeline run: it follows the marts once a day (on_cron).
    daily = definitions.resolve_job_def("daily_pipeline").asset_layer.executable_asset_keys
    assert dg.AssetKey("reports") not in daily and marts <= daily


def test_the_asset_shows_each_chart_with_its_image_and_numbers(materialised: Materialised) -> None:
    metadata = materialised.metadata
    assert metadata["charts"].value == len(CHARTS)
    for key in CHARTS:
        markdown = metadata[key].value
        # Markdown image syntax, the PNG inline.
        (image,) = re.findall(r"!\[[^\]]+\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
        png_decodes(base64.b64decode(image))
        printed_rows = metadata["rows_per_chart"].value[key]
        if printed_rows:
            # The numbers' table: a header line, the alignment line, one line per row.
            assert markdown.count("\n| ") == printed_rows + 1
        else:
            assert markdown.endswith("No rows.")
    assert metadata["rows_per_chart"].value["spend_by_category"] > 0


def test_the_html_file_is_self_contained_and_every_image_decodes(materialised: Materialised) -> None:
    folder = materialised.home / "reports"
    dated = Path(materialised.metadata["path"].value)
    assert dated.parent == folder.resolve() and re.fullmatch(r"report-\d{4}-\d{2}-\d{2}\.html", dated.name)
    latest = folder / "latest.html"
    assert dated.read_bytes() == latest.read_bytes()
    page = ReportPage(dated.read_text(encoding="utf-8"))
    assert list(page.images) == list(CHARTS)
    # Nothing outside the file: images are data URIs, links point within the page.
    assert all(a.startswith(("data:image/png;base64,", "#")) for a in page.addresses), page.addresses
    for key, src in page.images.items():
        png_decodes(base64.b64decode(src.split(",", 1)[1]))
        # The same image as the asset's metadata shows.
        assert src in materialised.metadata[key].value


def test_the_numbers_beside_each_chart_equal_the_marts(materialised: Materialised, database_url: str) -> None:
    page = ReportPage(Path(materialised.metadata["path"].value).read_text(encoding="utf-8"))
    tables = {key: (table[0], table[1:]) for key, table in page.tables.items()}

    spend = rows(
        database_url,
        "select concat_ws(' · ', owner_name, owner), month_start_date, category, reporting_currency, gross_spend,"
        " refunded_amount, net_spend from marts.mart_spend_monthly",
    )
    header, printed = tables["spend_by_category"]
    assert header == ["owner", "month", "category", "currency", "gross spend", "refunded", "net spend"]
    same_rows(printed, [(o, f"{m:%Y-%m}", *rest) for o, m, *rest in spend])

    budgets = rows(
        database_url,
        "select concat_ws(' · ', owner_name, owner), category, month_start_date, reporting_currency, cap_reporting, spent,"
        " remaining, projected_spend from marts.mart_budget_status",
    )
    latest_month = max(b[2] for b in budgets)
    header, printed = tables["budget_vs_cap"]
    assert header == ["owner", "category", "month", "currency", "cap", "spent", "remaining", "projected"]
    same_rows(printed, [(o, c, f"{m:%Y-%m}", *rest) for o, c, m, *rest in budgets if m == latest_month])

    flows = rows(
        database_url,
        "select concat_ws(' · ', owner_name, owner), month_start_date, reporting_currency, income, spend, transfers_in,"
        " transfers_out, other_transfers_in, other_transfers_out, net_cashflow from marts.mart_cashflow_monthly",
    )
    header, printed = tables["cash_flow"]
    assert header[:5] == ["owner", "month", "currency", "income", "spend"] and header[-1] == "net"
    same_rows(printed, [(o, f"{m:%Y-%m}", *rest) for o, m, *rest in flows])

    days = rows(
        database_url,
        "select a.display_name, a.provider_account_id, a.bank_name, a.currency, b.account_key,"
        " b.balance_date, b.derived_balance"
        " from marts.fct_account_balances_daily b join marts.dim_accounts a using (account_key)",
    )
    per_account: dict[str, list[tuple]] = {}
    for row in days:
        per_account.setdefault(row[4], []).append(row)
    closing = []
    for account_days in per_account.values():
        name, provider_id, bank, currency = account_days[0][:4]
        last = max(account_days, key=lambda d: d[5])
        first_day = min(d[5] for d in account_days)
        closing.append(
            (account_label(name, provider_id, bank, currency), currency, first_day, last[5], last[6])
        )
    header, printed = tables["balances"]
    assert header == ["account", "currency", "first day", "last day", "closing balance"]
    assert len(printed) == len(per_account) > 0
    same_rows(printed, closing)

    summary = rows(
        database_url,
        "select a.display_name, a.provider_account_id, a.bank_name, a.currency, s.account_key,"
        " s.summary_date, s.bank_lines, s.matched_lines, s.open_exceptions"
        " from marts.recon_summary s join marts.dim_accounts a using (account_key)",
    )
    recon: dict[str, list[tuple]] = {}
    for row in summary:
        recon.setdefault(row[4], []).append(row)
    rates = []
    for account_days in recon.values():
        name, provider_id, bank, currency = account_days[0][:4]
        lines = sum(d[6] for d in account_days)
        matched = sum(d[7] for d in account_days)
        rate = (Decimal(matched) * 100 / lines).quantize(Decimal("0.01"), ROUND_HALF_UP) if lines else None
        rates.append(
            (
                account_label(name, provider_id, bank, currency),
                min(d[5] for d in account_days),
                max(d[5] for d in account_days),
                lines,
                matched,
                rate,
                sum(d[8] for d in account_days),
            )
        )
    header, printed = tables.get("recon_match_rate", (None, []))
    assert len(printed) == len(recon)
    same_rows(printed, rates)

    exceptions = Counter(
        rows(database_url, "select age_bucket, reason from marts.recon_exceptions where is_open")
    )
    header, printed = tables.get("exceptions_by_age", (None, []))
    same_rows(printed, [(age, reason, count) for (age, reason), count in exceptions.items()])
    # Youngest first, as the chart's bars.
    order = [AGE_BUCKETS.index(row[0]) for row in printed]
    assert order == sorted(order)


def test_a_chart_without_rows_still_draws_and_says_so() -> None:
    nothing = ChartData(
        "exceptions_by_age", "Exceptions", ("recon_exceptions",), "None yet.", Table(("age",), [])
    )
    png = plot_png(nothing)
    png_decodes(png)
    assert markdown_section(nothing, png).endswith("No rows.")


def test_without_the_marts_the_report_says_to_run_the_pipeline(server_url: str, tmp_path: Path) -> None:
    name = f"bankflow_reports_empty_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        with (
            psycopg.connect(with_database(server_url, name)) as conn,
            pytest.raises(
                ReportError, match=r"not built yet \(no mart_spend_monthly, .*run the pipeline first"
            ),
        ):
            render_report(conn, datetime.now(UTC), tmp_path)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def _bankflow(args: list[str], database_url: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed `bankflow` command, in its own process (prepare_runtime sets the process's
    environment), with no screen: DISPLAY and WAYLAND_DISPLAY are left out."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLCONFIGDIR", "BROWSER") and not k.startswith("DAGSTER_")
    }
    environ |= {"BANKFLOW_DATABASE_URL": database_url, "BANKFLOW_HOME": str(home), **env}
    command = [str(Path(sys.executable).parent / "bankflow"), *args]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=300, check=False)


def test_bankflow_report_open_writes_the_dated_file_and_hands_it_to_the_browser(
    materialised: Materialised, database_url: str, tmp_path: Path
) -> None:
    # A browser that only notes the address it is asked to open (webbrowser reads $BROWSER).
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{opened}"\n')
    browser.chmod(0o755)
    home = tmp_path / "home"

    done = _bankflow(["report", "--open"], database_url, home, BROWSER=str(browser))

    assert done.returncode == 0, done.stdout + done.stderr
    (dated,) = (home / "reports").glob("report-*.html")
    assert (home / "reports" / "latest.html").read_bytes() == dated.read_bytes()
    assert opened.read_text() == dated.resolve().as_uri()
    assert f"Report of {len(CHARTS)} charts -> {dated}" in done.stdout
    # matplotlib's font cache is kept in the home, not wherever the process's HOME happens to be.
    assert (home / "matplotlib").is_dir()
    # The same charts and numbers as the asset's file (generated a moment apart).
    page, asset_page = (
        ReportPage(p.read_text(encoding="utf-8")) for p in (dated, Path(materialised.metadata["path"].value))
    )
    assert page.tables == asset_page.tables and list(page.images) == list(CHARTS)


def test_bankflow_report_output_writes_that_file_only(database_url: str, tmp_path: Path) -> None:
    output = tmp_path / "out" / "monthly.html"
    done = _bankflow(["report", "--output", str(output)], database_url, tmp_path / "home")
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(ReportPage(output.read_text(encoding="utf-8")).images) == list(CHARTS)
    assert not (tmp_path / "home" / "reports").exists()


@pytest.mark.parametrize("output", ["notes.txt", "."])
def test_bankflow_report_refuses_an_output_that_is_not_an_html_file(output: str) -> None:
    result = CliRunner().invoke(app, ["report", "--output", output])
    assert result.exit_code == 2
    assert result.output.strip() == f"--output is the HTML file to write (ending in .html), not {output}"
