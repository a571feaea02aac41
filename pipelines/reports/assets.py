"""The report people look at, as a Dagster asset: charts of the marts in the asset's metadata and in
a self-contained HTML file under the bankflow home (`bankflow report` makes the same file)."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import psycopg

from resources.owners import OwnerError
from resources.reports.chart_data import REPORT_MARTS
from resources.reports.report import ReportError, render_report, reports_folder, save_report
from resources.settings import environment
from resources.warehouse.owner_access import connect_as_owner, ensure_owner_reader, owner_passwords
from resources.warehouse.resource import WarehouseResource

# Once a day, when every mart it reads has been rebuilt since 02:00 UTC: the nightly
# finalise_yesterday run (02:30 UTC by default) rebuilds them all. Not on every mart update: the
# sources' refresh schedules rebuild the marts every few minutes, and each report keeps its images
# in the event log.
REPORTS_CRON = "0 2 * * *"


@dg.asset(
    key="reports",
    deps=[dg.AssetKey(mart) for mart in REPORT_MARTS],
    group_name="reports",
    kinds={"python", "matplotlib", "html"},
    automation_condition=dg.AutomationCondition.on_cron(REPORTS_CRON),
)
def reports(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Charts of the marts: monthly spend by category, budget vs cap, cash flow, balances over
    time per account, reconciliation match rate and open exceptions by age, each with the numbers
    it draws beside it (exact, from the marts). Shown here as markdown and written as one
    self-contained HTML file, reports/report-<day>.html and reports/latest.html in the bankflow
    home (BANKFLOW_HOME, .bankflow); `bankflow report --open` makes and opens the same file.
    Each owner with a BI login (BANKFLOW_BI_PASSWORD_<OWNER>) also gets their own, read through
    that login so row-level security shows only their rows: reports/<owner>/latest.html."""
    home = Path(warehouse.home)
    generated_at = datetime.now(UTC)
    with warehouse.connect() as conn:
        try:
            report = render_report(conn, generated_at, home)
        except ReportError as error:
            raise dg.Failure(description=str(error)) from None
    dated, latest = save_report(report, reports_folder(home))
    context.log.info(f"Report of {len(report.charts)} charts written to {dated}")
    owner_reports, owner_failures = {}, {}
    env = environment()
    for owner, password in sorted(owner_passwords(env).items()):
        # One owner's report failing must not cost the others theirs: it is named in the metadata
        # and the log instead. The login is made (or its password updated) first, as every
        # bankflow command does, since a code location may run where no command ever has.
        try:
            ensure_owner_reader(warehouse.url, owner, password)
            with connect_as_owner(warehouse.url, owner, env) as conn:
                theirs = render_report(conn, generated_at, home, owner)
        except (OwnerError, ReportError, psycopg.Error) as error:
            owner_failures[owner] = str(error)
            context.log.warning(f"No report for owner {owner}: {error}")
            continue
        owner_reports[owner] = str(save_report(theirs, reports_folder(home, owner))[1].resolve())
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(dated.resolve())),
            "latest": dg.MetadataValue.path(str(latest.resolve())),
            "owner_reports": dg.MetadataValue.json(owner_reports),
            "owner_report_failures": dg.MetadataValue.json(owner_failures),
            "charts": len(report.charts),
            "rows_per_chart": dg.MetadataValue.json(
                {chart.data.key: len(chart.data.numbers.rows) for chart in report.charts}
            ),
            **{chart.data.key: dg.MetadataValue.md(chart.markdown()) for chart in report.charts},
        }
    )
