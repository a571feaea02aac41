"""The `bankflow` command."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from dotenv import load_dotenv
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from bankflow_cli.runtime import PROJECT_ROOT, ensure_secret_key, prepare_runtime
from resources.settings import load_settings
from resources.vault import VaultError


class _ConfigurationErrorsInOneLine(TyperGroup):
    """Any command: a database that cannot be reached, or a secret key that is not one, ends it
    with one line that says so, not a traceback."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except psycopg.OperationalError as error:
            # libpq's first line names the server and why (never the password).
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            console.print(f"[red]Cannot reach the database[/]: {escape(reason)} (BANKFLOW_DATABASE_URL)")
            raise typer.Exit(1) from None
        except VaultError as error:
            console.print(f"[red]{escape(str(error))}[/]")
            raise typer.Exit(2) from None


# Tracebacks never show local variables: they may hold tokens or connection strings.
app = typer.Typer(
    cls=_ConfigurationErrorsInOneLine,
    help="bankflow: bank data into Postgres, modelled with dbt, orchestrated by Dagster.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
sandbox_app = typer.Typer(help="The bank-world simulator.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
sftp_app = typer.Typer(help="SFTP statement drops (connectors/sftp/*.yaml).", no_args_is_help=True)
app.add_typer(sftp_app, name="sftp")
rules_app = typer.Typer(
    help="Categorisation rules (dbt_project/seeds/category_rules.csv).", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")
recon_app = typer.Typer(
    help="Reconciliation: bank lines vs Razorpay settlements and the company ledger.", no_args_is_help=True
)
app.add_typer(recon_app, name="recon")
owners_app = typer.Typer(
    help="Owners of connections and accounts: each owner's BI role sees only its own rows.",
    no_args_is_help=True,
)
app.add_typer(owners_app, name="owners")
console = Console()


@app.callback()
def _load_env_file() -> None:
    # Provider settings live in .env next to the project; the real environment wins.
    load_dotenv(PROJECT_ROOT / ".env", override=False)


@app.command()
def demo(
    days: int = typer.Option(90, min=1, help="Daily partitions to backfill, ending today."),
    seed: int = typer.Option(42, help="Seed of the sandbox world."),
) -> None:
    """Embedded Postgres + sandbox banks: backfill, dbt, checks, and a summary."""
    from bankflow_cli.demo import run_demo

    ok = run_demo(console, days=days, seed=seed)
    raise typer.Exit(0 if ok else 1)


@app.command()
def ui(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(3000, min=1, max=65535),
    sandbox_seed: int = typer.Option(
        42, help="Seed of the sandbox world, used when no TrueLayer is configured."
    ),
) -> None:
    """Dagster webserver + daemon on this workspace (runs and schedules stored on Postgres)."""
    from contextlib import ExitStack

    settings = load_settings()
    runtime = prepare_runtime(settings)
    ensure_secret_key(settings)
    where = "embedded" if runtime.embedded else "configured server"
    console.print(f"Dagster instance on Postgres ({where}).")
    with ExitStack() as stack:
        if not os.environ.get("BANKFLOW_TRUELAYER_ENVIRONMENT"):
            from bankflow_cli.demo import connect_sandbox_banks, use_sandbox
            from sandbox.server import Sandbox

            sandbox = stack.enter_context(Sandbox(seed=sandbox_seed))
            use_sandbox(sandbox)
            connect_sandbox_banks(runtime.database_url, os.environ["BANKFLOW_SECRET_KEY"])
            console.print(f"No banks configured: sandbox banks connected ({', '.join(sandbox.urls)}).")
            # The sandbox's statement drop, kept under the home so the files sensor sees the same
            # files from one `make ui` to the next (the ledger lands each once).
            from datetime import timedelta

            from bankflow_cli.demo import use_sandbox_drop
            from sandbox.sftp_drop import SandboxDrop

            today = sandbox.world.today
            drop = stack.enter_context(
                SandboxDrop(
                    sandbox.world,
                    today - timedelta(days=89),
                    today - timedelta(days=1),
                    runtime.home / "sandbox-drop",
                )
            )
            use_sandbox_drop(drop, runtime.home)
            console.print(f"Sandbox SFTP drop on {drop.info.host}:{drop.info.port} (host key pinned).")
        console.print(f"Open http://{host}:{port}  (Ctrl-C stops it)")
        bin_dir = os.path.dirname(sys.executable)
        # dagster dev re-parses the dbt project with the `dbt` on PATH: make it this environment's.
        env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
        command = [os.path.join(bin_dir, "dagster"), "dev", "-h", host, "-p", str(port)]
        command += ["-w", str(PROJECT_ROOT / "workspace.yaml")]
        # A child of this process: the embedded Postgres and the sandbox live as long as the UI.
        code = subprocess.call(command, cwd=PROJECT_ROOT, env=env)
    raise typer.Exit(code)


PROVIDERS = ("truelayer", "berlin_group", "revolut", "gocardless")


@app.command()
def connect(
    provider: str = typer.Argument(..., help="truelayer, berlin_group, revolut or gocardless."),
    connection_name: str | None = typer.Option(None, help="Name of the connection (default: the provider)."),
    institution: str | None = typer.Option(None, help="GoCardless institution id (e.g. ING_INGBNL2A)."),
    open_browser: bool = typer.Option(
        True, "--browser/--no-browser", help="Open the consent page in a browser."
    ),
    owner: str | None = typer.Option(None, help="Owner of the connection's accounts (bankflow owners)."),
) -> None:
    """Give bankflow access to a bank: approve on the bank's page, bankflow receives the redirect."""
    import webbrowser

    from bankflow_cli import connect as flows
    from bankflow_cli import provider_config
    from resources.vault import TokenVault

    if provider not in PROVIDERS:
        console.print(f"[red]Unknown provider {provider!r}[/]: choose one of {', '.join(PROVIDERS)}.")
        raise typer.Exit(2)
    if provider == "gocardless" and not institution:
        console.print("[red]GoCardless needs --institution[/] (the bank's id, e.g. ING_INGBNL2A).")
        raise typer.Exit(2)
    if owner is not None:
        _valid_owner_or_exit(owner)
    settings = load_settings()
    runtime = prepare_runtime(settings)
    ensure_secret_key(settings)
    vault = TokenVault(runtime.database_url, os.environ["BANKFLOW_SECRET_KEY"])
    name = connection_name or provider

    def show(url: str) -> None:
        console.print("Approve access on your bank's page (waiting for the redirect):")
        console.print(url, soft_wrap=True)
        if open_browser:
            webbrowser.open(url)

    try:
        if provider == "truelayer":
            flows.connect_truelayer(provider_config.truelayer_config(), vault, name, show)
        elif provider == "berlin_group":
            flows.connect_berlin_group(provider_config.berlin_group_config(), vault, name, show)
        elif provider == "revolut":
            flows.connect_revolut(provider_config.revolut_config(), vault, name, show)
        else:
            redirect = os.environ.get(
                "BANKFLOW_GOCARDLESS_REDIRECT_URI", provider_config.DEFAULT_REDIRECT_URI
            )
            flows.connect_gocardless(
                provider_config.gocardless_resource(), vault, institution, show, redirect
            )
    except provider_config.MissingSetting as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    if owner is not None:
        from resources.owners import set_connection_owner

        set_connection_owner(runtime.database_url, name, owner)
    console.print(f"[green]Connected[/] {provider} as {name!r}; tokens stored encrypted in ops.connections.")


def _owner_or_remove(owner: str | None, remove: bool) -> None:
    if (owner is None) != remove:
        console.print("[red]Name an owner, or --remove without one.[/]")
        raise typer.Exit(2)
    if owner is not None:
        _valid_owner_or_exit(owner)


def _valid_owner_or_exit(owner: str) -> str:
    from resources.owners import OwnerError, valid_owner

    try:
        return valid_owner(owner)
    except OwnerError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None


@owners_app.command("connection")
def owners_connection(
    connection_name: str = typer.Argument(..., help="The connection (bankflow connections)."),
    owner: str | None = typer.Argument(None, help="Its owner; omit with --remove."),
    remove: bool = typer.Option(False, "--remove", help="Take the connection's owner away."),
) -> None:
    """Give a connection, and every account it reaches, to an owner."""
    from resources.owners import OwnerError, set_connection_owner

    _owner_or_remove(owner, remove)
    runtime = prepare_runtime(load_settings())
    try:
        set_connection_owner(runtime.database_url, connection_name, owner)
    except OwnerError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    console.print(
        f"Connection {connection_name!r}: owner {owner or 'none'} (the marts show it on the next run)."
    )


@owners_app.command("account")
def owners_account(
    source: str = typer.Argument(..., help="The source reporting the account (truelayer, files, ...)."),
    account_ref: str = typer.Argument(
        ..., help="The source's account id (dim_accounts.provider_account_id)."
    ),
    owner: str | None = typer.Argument(None, help="Its owner; omit with --remove."),
    remove: bool = typer.Option(False, "--remove", help="Remove the account's own owner."),
) -> None:
    """Give one account to an owner, over its connection's owner."""
    from resources.owners import assign_account

    _owner_or_remove(owner, remove)
    runtime = prepare_runtime(load_settings())
    assign_account(runtime.database_url, source, account_ref, owner)
    console.print(
        f"Account {source}:{account_ref}: owner {owner or 'from its connection'} (on the next run)."
    )


@owners_app.command("list")
def owners_list() -> None:
    """Every owner assignment, and the BI role each owner logs in as."""
    from rich.table import Table

    from resources.owners import assignments
    from resources.warehouse.owner_access import owner_login_role

    runtime = prepare_runtime(load_settings())
    table = Table(title="bankflow owners")
    for column in ("owner", "BI role", "kind", "connection or account"):
        table.add_column(column)
    for assignment in assignments(runtime.database_url):
        table.add_row(
            assignment.owner, owner_login_role(assignment.owner), assignment.kind, assignment.subject
        )
    console.print(table)


@app.command()
def connections() -> None:
    """Connections with consent expiry, last sync, accounts and today's call budget."""
    from rich.table import Table

    from resources.connections import list_connections

    runtime = prepare_runtime(load_settings())
    listed = list_connections(runtime.database_url)
    # The owner column only where owners are in use: an 80-column terminal has no room to spare.
    with_owner = any(c.owner for c in listed)
    table = Table(title="bankflow connections")
    table.add_column("connection", no_wrap=True)
    table.add_column("provider", no_wrap=True)
    if with_owner:
        table.add_column("owner", no_wrap=True)
    for column in ("consent", "last sync", "accounts", "calls today"):
        table.add_column(column)
    colour = {"ok": "green", "expiring": "yellow", "expired": "red", "unknown": "white"}
    for c in listed:
        if c.daily_limit_per_account is None:
            calls = "no daily limit"
        else:
            used = ", ".join(f"{scope} {n}" for scope, n in c.calls_today.items()) or "none"
            calls = f"{used} (limit {c.daily_limit_per_account}/account/scope)"
        table.add_row(
            c.name,
            c.provider,
            *([c.owner or "-"] if with_owner else []),
            f"[{colour[c.consent.state]}]{c.consent.message}[/]",
            f"{c.last_sync_at:%Y-%m-%d %H:%M} UTC" if c.last_sync_at else "never",
            str(c.accounts),
            calls,
        )
    console.print(table)


@app.command()
def export(
    file_format: Annotated[str, typer.Option("--format", help="csv, xlsx or parquet.")] = "csv",
    first: Annotated[datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="First day.")] = None,
    last: Annotated[
        datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day (included).")
    ] = None,
    mart: Annotated[str, typer.Option(help="Any mart in schema marts.")] = "fct_transactions",
    output: Annotated[
        Path | None, typer.Option(help="File to write; default exports/<mart>.<format>.")
    ] = None,
) -> None:
    """Write transactions (or any mart) between two days to a CSV, Excel or Parquet file."""
    import psycopg

    from resources.export_files import FORMATS, write_export
    from resources.marts_export import ExportError, read_page

    if file_format not in FORMATS:
        console.print(f"[red]--format is one of {', '.join(FORMATS)}, not {file_format!r}[/]")
        raise typer.Exit(2)
    runtime = prepare_runtime(load_settings())
    path = output or Path("exports") / f"{mart}.{file_format}"
    try:
        with psycopg.connect(runtime.database_url) as conn:
            page = read_page(
                conn,
                mart,
                date_from=first.date() if first else None,
                date_to=last.date() if last else None,
                limit=None,
            )
    except ExportError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None
    write_export(page, path, file_format)
    console.print(f"{len(page.rows)} rows of {mart} -> {path}")


@app.command()
def report(
    open_report: Annotated[bool, typer.Option("--open", help="Open the report in your browser.")] = False,
    output: Annotated[
        Path | None,
        typer.Option(help="HTML file to write; default <home>/reports/report-<day>.html and latest.html."),
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(
            help="Only this owner's rows, read through the owner's BI login (BANKFLOW_BI_PASSWORD_<OWNER>);"
            " default under <home>/reports/<owner>/."
        ),
    ] = None,
) -> None:
    """Charts of the marts (spend, budgets, cash flow, balances, reconciliation) in one HTML file."""
    import webbrowser

    import psycopg
    from rich.markup import escape

    from resources.owners import OwnerError, valid_owner
    from resources.reports.report import ReportError, render_report, reports_folder, save_report, write_report
    from resources.settings import environment
    from resources.warehouse.owner_access import connect_as_owner

    if output is not None and (output.suffix.lower() not in (".html", ".htm") or output.is_dir()):
        console.print(
            f"[red]--output is the HTML file to write (ending in .html), not {escape(str(output))}[/]",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    if owner is not None:
        try:
            valid_owner(owner)
        except OwnerError as error:
            console.print(f"[red]{escape(str(error))}[/]", soft_wrap=True)
            raise typer.Exit(2) from None
    runtime = prepare_runtime(load_settings())
    try:
        connection = (
            connect_as_owner(runtime.database_url, owner, environment())
            if owner is not None
            else psycopg.connect(runtime.database_url)
        )
        with connection as conn:
            made = render_report(conn, datetime.now(UTC), runtime.home, owner)
    except (ReportError, OwnerError) as error:
        console.print(f"[red]{escape(str(error))}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    path = write_report(made, output) if output else save_report(made, reports_folder(runtime.home, owner))[0]
    console.print(f"Report of {len(made.charts)} charts -> {escape(str(path))}", soft_wrap=True)
    if open_report and not webbrowser.open(path.resolve().as_uri()):
        console.print(f"[yellow]No browser could be opened[/]: open {escape(str(path))}", soft_wrap=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Keep it on 127.0.0.1 unless a TLS proxy is in front."),
    port: int = typer.Option(8780, min=1, max=65535),
) -> None:
    """Read-only JSON/CSV export of the marts for spreadsheet tools, behind BANKFLOW_EXPORT_TOKEN."""
    import uvicorn

    from resources.export_api import export_app

    settings = load_settings()
    if not settings.export_token:
        console.print("[red]BANKFLOW_EXPORT_TOKEN is not set[/]: put a long random token in .env.")
        raise typer.Exit(2)
    runtime = prepare_runtime(settings)
    console.print(f"Export on http://{host}:{port}/marts  (Authorization: Bearer <BANKFLOW_EXPORT_TOKEN>)")
    uvicorn.run(
        export_app(runtime.database_url, settings.export_token.get_secret_value()),
        host=host,
        port=port,
        log_level="warning",
    )


@app.command()
def doctor() -> None:
    """Check configuration, database, keys, connections, sources and SFTP host keys; say what to fix."""
    from rich.table import Table

    from bankflow_cli.doctor import default_home, diagnose
    from pipelines.transform.project import DBT_PROJECT_DIR

    settings = load_settings()
    findings = diagnose(
        settings,
        os.environ,
        default_home(settings, PROJECT_ROOT),
        DBT_PROJECT_DIR / "target" / "manifest.json",
    )
    table = Table(title="bankflow doctor")
    for column in ("check", "state", "detail", "fix"):
        table.add_column(column)
    colour = {"ok": "green", "warn": "yellow", "fail": "red", "off": "white"}
    for f in findings:
        table.add_row(f.check, f"[{colour[f.state]}]{f.state}[/]", f.detail, f.fix)
    console.print(table)
    failed = [f for f in findings if f.state == "fail"]
    if failed:
        console.print(f"[red]{len(failed)} to fix[/]: {', '.join(f.check for f in failed)}")
    raise typer.Exit(1 if failed else 0)


@app.command()
def sync(
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Only this source (repeatable); default all.")
    ] = None,
) -> None:
    """Fetch today now, then build the models and run the checks: one run, with progress."""
    from bankflow_cli.runs import run_from_cli

    today = datetime.now(UTC).date()
    raise typer.Exit(run_from_cli(console, today, today, source or [], trigger="sync"))


@app.command()
def backfill(
    first: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day.")],
    last: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day (included).")],
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Only this source (repeatable); default all.")
    ] = None,
) -> None:
    """Fetch a range of days and build the models once over it (a single-run backfill)."""
    from bankflow_cli.runs import run_from_cli

    raise typer.Exit(run_from_cli(console, first.date(), last.date(), source or [], trigger="backfill"))


@app.command()
def status() -> None:
    """Per source: the last good fetch, rows in the marts, freshness, consent expiry, failing checks."""
    import dagster as dg
    from rich.table import Table

    from bankflow_cli.status import source_status

    runtime = prepare_runtime(load_settings())
    from pipelines.definitions import configured_extracts, defs
    from pipelines.resources import resources_from_env

    with dg.DagsterInstance.get() as instance:
        statuses = source_status(
            instance,
            defs,
            configured_extracts(resources_from_env(), os.environ),
            runtime.database_url,
            os.environ,
            datetime.now(UTC),
        )
    table = Table(title="bankflow status")
    for column in ("source", "last good fetch", "fresh", "transactions", "consent", "failing checks"):
        table.add_column(column)
    for s in statuses:
        table.add_row(
            s.source,
            f"{s.last_fetch_at:%Y-%m-%d %H:%M} UTC" if s.last_fetch_at else "never",
            "[green]yes[/]" if s.fresh else f"[yellow]no[/] (every {s.cadence_hours} h)",
            "-" if s.transactions is None else str(s.transactions),
            s.consent or "-",
            "[red]" + ", ".join(s.failing_checks) + "[/]" if s.failing_checks else "none",
        )
    console.print(table)
    raise typer.Exit(1 if any(s.failing_checks for s in statuses) else 0)


@app.command("import")
def import_(
    files: Annotated[
        list[Path], typer.Argument(exists=True, dir_okay=False, help="Statement files to land.")
    ],
    bank: str | None = typer.Option(
        None, help="The bank's connector name (e.g. icici), for accounts without an IBAN."
    ),
) -> None:
    """Land statements downloaded from a bank's website (camt.053, MT940, CSV with a mapping, JSON,
    OFX) through the same ledger, parsers and quarantine as the SFTP drops."""
    from bankflow_cli.files import import_files, print_import

    runtime = prepare_runtime(load_settings())
    results = import_files(runtime.database_url, runtime.home, files, bank=bank)
    print_import(console, results)
    console.print("The marts pick the entries up on the next pipeline run (make demo / make ui).")
    raise typer.Exit(1 if any(r.outcome == "quarantined" for _, r in results) else 0)


@app.command()
def files(
    connection: str | None = typer.Option(None, help="Only this drop (or `local`)."),
    limit: int = typer.Option(50, min=1, help="Rows to show."),
) -> None:
    """The file ledger: every statement file seen, its version, status, entries and balance check."""
    from bankflow_cli.files import print_ledger

    runtime = prepare_runtime(load_settings())
    print_ledger(console, runtime.database_url, connection, limit)


@sftp_app.command("trust")
def sftp_trust(
    connection: str = typer.Argument(..., help="The drop's name (connectors/sftp/<name>.yaml)."),
    fingerprint: str | None = typer.Option(
        None, help="The SHA256 fingerprint your bank gave you; trusted only if the server presents it."
    ),
    yes: bool = typer.Option(False, "--yes", help="Trust without asking (after checking the fingerprint)."),
) -> None:
    """Record an SFTP host's key as trusted (unknown or changed keys are always refused)."""
    from bankflow_cli.files import trust
    from resources.files.connections import sftp_connections
    from resources.files.sftp import SftpConnectionError

    settings = load_settings()
    drop = next((c for c in sftp_connections() if c.name == connection), None)
    if drop is None:
        console.print(f"[red]No drop named {connection!r}[/] in connectors/sftp/.")
        raise typer.Exit(2)
    if not os.environ.get(drop.env_name("HOST")):
        console.print(f"[red]{drop.env_name('HOST')} is not set[/] (environment or .env): the drop's host.")
        raise typer.Exit(2)
    home = (PROJECT_ROOT / settings.home).resolve() if not settings.home.is_absolute() else settings.home
    try:
        trusted = trust(console, drop, home, fingerprint, yes)
    except SftpConnectionError as error:
        console.print(f"[red]{escape(str(error))}[/]")
        raise typer.Exit(1) from None
    raise typer.Exit(0 if trusted else 1)


@app.command("secret-key")
def secret_key() -> None:
    """Print a new BANKFLOW_SECRET_KEY line (append it to .env)."""
    from resources.vault import generate_secret_key

    typer.echo(f"BANKFLOW_SECRET_KEY={generate_secret_key()}")


@app.command()
def categorise(
    transaction_key: str = typer.Argument(..., help="fct_transactions.transaction_key of the row."),
    category: str | None = typer.Argument(None, help="Category from the taxonomy (seeds/categories.csv)."),
    note: str | None = typer.Option(None, help="Why, in your words."),
    clear: bool = typer.Option(False, "--clear", help="Remove your category; the layers decide again."),
) -> None:
    """Set your own category for one transaction (wins over rules, MCC and provider on the next run)."""
    from resources.categories import (
        UnknownCategory,
        clear_category_override,
        set_category_override,
        transaction_exists,
    )

    runtime = prepare_runtime(load_settings())
    if clear:
        removed = clear_category_override(runtime.database_url, transaction_key)
        console.print("Override removed." if removed else f"No override for {transaction_key}.")
        return
    if category is None:
        console.print("[red]Give a category[/] (or --clear to remove an override).")
        raise typer.Exit(2)
    if transaction_exists(runtime.database_url, transaction_key) is False:
        console.print(f"[red]No transaction {transaction_key}[/] in marts.fct_transactions.")
        raise typer.Exit(2)
    try:
        set_category_override(runtime.database_url, transaction_key, category, note)
    except UnknownCategory as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    console.print(f"{transaction_key} -> [bold]{category}[/]; the marts pick it up on the next pipeline run.")


DEFAULT_RULES_FILE = PROJECT_ROOT / "dbt_project" / "seeds" / "category_rules.csv"


@rules_app.command("backtest")
def rules_backtest(
    rules: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="The changed rules CSV (same columns as the seed)."),
    ] = DEFAULT_RULES_FILE,
) -> None:
    """Show what a rules file would change over history (rows, amounts, per category); applies nothing."""
    from bankflow_cli.categories import print_backtest
    from resources.category_backtest import InvalidRules, backtest_rules, read_rules

    runtime = prepare_runtime(load_settings())
    try:
        result = backtest_rules(runtime.database_url, read_rules(rules), PROJECT_ROOT / "dbt_project")
    except InvalidRules as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    print_backtest(console, result, str(rules))


DEFAULT_RECON_RULES_FILE = PROJECT_ROOT / "dbt_project" / "seeds" / "recon_rules.csv"


@recon_app.command("unmatch")
def recon_unmatch(
    match_key: str = typer.Argument(..., help="recon_matches.match_key of the match to undo."),
    note: str | None = typer.Option(None, help="Why, in your words."),
) -> None:
    """Undo a match for good: its pairs are never matched again (applied on the next run)."""
    from resources.recon import UnknownReconItem, unmatch

    runtime = prepare_runtime(load_settings())
    try:
        pairs = unmatch(runtime.database_url, match_key, note)
    except UnknownReconItem as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    console.print(f"Match {match_key} undone ({pairs} pair(s) rejected); the marts show it on the next run.")


@recon_app.command("resolve")
def recon_resolve(
    exception_key: str = typer.Argument(..., help="recon_exceptions.exception_key."),
    note: str = typer.Option(..., help="What was done, or why it is fine."),
    accept: bool = typer.Option(False, "--accept", help="Accept it as known and fine rather than resolved."),
) -> None:
    """Record your verdict on an exception; it stays attached across reruns."""
    from resources.recon import UnknownReconItem, resolve

    runtime = prepare_runtime(load_settings())
    try:
        resolve(runtime.database_url, exception_key, note, "accepted" if accept else "resolved")
    except (UnknownReconItem, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    console.print(f"Exception {exception_key} {'accepted' if accept else 'resolved'}.")


@recon_app.command("backtest")
def recon_backtest(
    rules: Annotated[
        Path,
        typer.Option(
            exists=True, dir_okay=False, help="The changed rules CSV (the recon_rules seed's columns)."
        ),
    ] = DEFAULT_RECON_RULES_FILE,
) -> None:
    """Show the matches a rules file would add and remove over history; applies nothing."""
    from bankflow_cli.recon import print_recon_backtest
    from resources.recon_backtest import InvalidReconRules, backtest_recon_rules, read_recon_rules

    runtime = prepare_runtime(load_settings())
    try:
        result = backtest_recon_rules(
            runtime.database_url, read_recon_rules(rules), PROJECT_ROOT / "dbt_project"
        )
    except InvalidReconRules as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    except RuntimeError as exc:  # dbt could not compile the models
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    print_recon_backtest(console, result, str(rules))


@recon_app.command("import-ledger")
def recon_import_ledger(
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True, dir_okay=False, help="The accounting system's ledger export(s), CSV or JSON."
        ),
    ],
) -> None:
    """Land ledger export files (the ledger contract's columns) for reconciliation; bad rows are
    quarantined with the reason, a re-sent file replaces its earlier landing."""
    from bankflow_cli.recon import import_ledger_exports, print_ledger_imports

    runtime = prepare_runtime(load_settings())
    landings = import_ledger_exports(runtime.database_url, files)
    print_ledger_imports(console, landings)
    raise typer.Exit(1 if any(landing.error for landing in landings) else 0)


@sandbox_app.command("serve")
def sandbox_serve(
    seed: int = typer.Option(42),
    port: int = typer.Option(8700, min=0, max=65535, help="The first bank's; the next ones follow."),
    host: str = typer.Option("127.0.0.1"),
) -> None:
    """Serve the simulated banks until Ctrl-C."""
    from sandbox.server import run_forever

    try:
        run_forever(seed=seed, port=port, host=host)
    except (OSError, OverflowError) as error:  # a port in use, or the last banks' past 65535
        console.print(f"[red]Cannot serve the sandbox on {escape(host)}:{port}[/]: {escape(str(error))}")
        raise typer.Exit(1) from None


if __name__ == "__main__":
    app()
