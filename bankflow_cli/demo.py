"""`make demo`: the whole product on one machine, against the sandbox banks."""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from psycopg import sql
from rich.console import Console
from rich.table import Table

from bankflow_cli.connect import connect_berlin_group, connect_gocardless, connect_revolut, connect_truelayer
from bankflow_cli.provider_config import (
    berlin_group_config,
    gocardless_resource,
    revolut_config,
    truelayer_config,
)
from bankflow_cli.runtime import ensure_secret_key, prepare_runtime
from pipelines.partitions import LOOKBACK_DAYS
from resources.call_budget import CallBudget
from resources.providers.rest_bank_config import RestBank, configured_rest_banks
from resources.settings import load_settings
from resources.vault import TokenVault
from resources.warehouse.raw_tables import all_raw_tables
from sandbox.company_ledger import company_books, write_books
from sandbox.server import Sandbox
from sandbox.sftp_drop import DROP_USER, SandboxDrop

# Where the sandbox world has accounts that GoCardless reaches (Revolut LT, Banca Transilvania, ING).
SANDBOX_GOCARDLESS_COUNTRIES = ("LT", "RO", "NL")
MODEL_TABLES = (
    ("intermediate", "int_transactions_unioned"),
    ("marts", "fct_transactions"),
    ("marts", "fct_balances"),
    ("marts", "dim_accounts"),
    ("ops", "file_ledger"),
    ("ledger", "entries"),
    ("marts", "recon_matches"),
    ("marts", "recon_exceptions"),
)


@dataclass(frozen=True)
class CheckSummary:
    passed: int
    failed: list[str]  # error-severity checks that failed: the demo fails
    run_id: str
    warnings: list[str] = field(default_factory=list)  # warn-severity ones: reported, not fatal


def run_demo(console: Console, *, days: int, seed: int) -> bool:
    # Pinned to the terminal: the run's stdout (dbt's output) is redirected to a log below.
    console = Console(file=console.file)
    settings = load_settings()
    with console.status("Starting Postgres"):
        runtime = prepare_runtime(settings)
    if ensure_secret_key(settings):
        console.print("Created BANKFLOW_SECRET_KEY in .env (encrypts provider tokens at rest).")
    console.print(
        f"Postgres: {'embedded, data in ' + str(runtime.home / 'pgdata') if runtime.embedded else 'BANKFLOW_DATABASE_URL'}"
    )

    with Sandbox(seed=seed) as sandbox:
        console.print(
            f"Sandbox banks on {sandbox.truelayer_url} (seed {seed}, {len(sandbox.world.accounts)} accounts)"
        )
        use_sandbox(sandbox)
        connect_sandbox_banks(runtime.database_url, os.environ["BANKFLOW_SECRET_KEY"])
        console.print(
            "Connected TrueLayer, Berlin Group, Revolut and GoCardless (sandbox consents); tokens encrypted in ops.connections."
        )

        today = datetime.now(UTC).date()
        first = today - timedelta(days=days - 1)
        # The companies' accounting export, for the days the run fetches: what reconciliation
        # matches the bank lines and Razorpay settlements against.
        books = company_books(sandbox.world, first - timedelta(days=LOOKBACK_DAYS), today + timedelta(days=1))
        entries = write_books(runtime.database_url, books.entries)
        console.print(f"Company ledger (Northwind, Kaveri): {entries} entries in ledger.entries")
        log_path = runtime.home / "logs" / "demo.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        # Statement files of yesterday and before: a bank drops a day's file the next morning.
        with SandboxDrop(sandbox.world, first, today - timedelta(days=1)) as drop:
            use_sandbox_drop(drop, runtime.home)
            with console.status("Landing the SFTP drop's statement files (camt.053, MT940, CSV, JSON)"):
                files_ok, files = land_statement_files()
            console.print(f"Statement files over SFTP (pinned host key): {files}")
            with console.status(
                f"Backfilling {days} daily partitions {first} .. {today} in one run (extract, dbt, checks)"
            ):
                # dagster-dbt echoes dbt's output on stdout; it goes to the log, the terminal keeps the summary.
                with log_path.open("w") as log, contextlib.redirect_stdout(log):
                    success, checks = backfill(first.isoformat(), today.isoformat())
        success = success and files_ok
        console.print(f"dbt output of the run: {log_path}")
        counts = layer_counts(runtime.database_url)

    print_summary(console, counts, checks, success)
    print_recon_summary(console, runtime.database_url)
    return success and not checks.failed


def use_sandbox(sandbox: Sandbox) -> None:
    """Point every provider's settings at the sandbox, as a user would at live banks.

    Revolut authenticates with the user's own RSA key: make a throwaway one and upload its
    public half, as a user uploads a certificate in the Business app.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    revolut_url = sandbox.urls["revolut"]
    httpx.post(f"{revolut_url}/_sandbox/revolut/certificate", content=public_pem).raise_for_status()
    berlin_group_url = sandbox.urls["berlin_group"]
    os.environ.update(
        {
            "BANKFLOW_TRUELAYER_ENVIRONMENT": sandbox.truelayer_url,
            "BANKFLOW_TRUELAYER_CLIENT_ID": sandbox.client_id,
            "BANKFLOW_TRUELAYER_CLIENT_SECRET": sandbox.client_secret,
            "BANKFLOW_BERLIN_GROUP_BASE_URL": berlin_group_url,
            "BANKFLOW_BERLIN_GROUP_TOKEN_URL": f"{berlin_group_url}/oauth/token",
            "BANKFLOW_BERLIN_GROUP_CLIENT_ID": sandbox.client_id,
            "BANKFLOW_BERLIN_GROUP_CLIENT_SECRET": sandbox.client_secret,
            "BANKFLOW_REVOLUT_API_URL": f"{revolut_url}/api/1.0",
            "BANKFLOW_REVOLUT_CONSENT_URL": f"{revolut_url}/app-confirm",
            "BANKFLOW_REVOLUT_CLIENT_ID": sandbox.client_id,
            "BANKFLOW_REVOLUT_PRIVATE_KEY_PEM": private_pem,
            "BANKFLOW_GOCARDLESS_BASE_URL": f"{sandbox.urls['gocardless']}/api/v2",
            "BANKFLOW_GOCARDLESS_SECRET_ID": sandbox.client_id,
            "BANKFLOW_GOCARDLESS_SECRET_KEY": sandbox.client_secret,
            "BANKFLOW_RAZORPAY_BASE_URL": f"{sandbox.urls['razorpay']}/v1",
            "BANKFLOW_RAZORPAY_KEY_ID": sandbox.client_id,
            "BANKFLOW_RAZORPAY_KEY_SECRET": sandbox.client_secret,
            "BANKFLOW_FIBANK_BASE_URL": sandbox.urls["fibank"],
            "BANKFLOW_FIBANK_USERNAME": sandbox.client_id,
            "BANKFLOW_FIBANK_PASSWORD": sandbox.client_secret,
        }
    )
    for bank in configured_rest_banks():
        if bank.name in sandbox.urls:
            os.environ.update(
                rest_bank_sandbox_env(bank, sandbox.urls[bank.name], sandbox.client_id, sandbox.client_secret)
            )


SANDBOX_DROPS = ("northwind", "kaveri_icici", "kaveri_sbi")


def use_sandbox_drop(drop: SandboxDrop, home: Path) -> None:
    """Point the sandbox's SFTP drops at the sandbox server and trust its host key, as a user runs
    `bankflow sftp trust <drop> --fingerprint ...` with the fingerprint the bank sent them."""
    from resources.files.sftp import scan_host_key, trust_host_key

    assert drop.info is not None
    known_hosts = home / "sandbox_known_hosts"
    presented = scan_host_key(drop.info.host, drop.info.port)
    if presented.fingerprint.removeprefix("SHA256:") != drop.info.host_key_fingerprint.removeprefix(
        "SHA256:"
    ):
        raise RuntimeError("the sandbox SFTP server presents another host key than it started with")
    trust_host_key(known_hosts, presented)
    for name in SANDBOX_DROPS:
        prefix = f"BANKFLOW_SFTP_{name.upper()}_"
        os.environ.update(
            {
                f"{prefix}HOST": drop.info.host,
                f"{prefix}PORT": str(drop.info.port),
                f"{prefix}USERNAME": DROP_USER,
                f"{prefix}PRIVATE_KEY": drop.user_key.private_key,
                f"{prefix}KNOWN_HOSTS": str(known_hosts),
            }
        )


def land_statement_files() -> tuple[bool, str]:
    """Land every file the drops hold that the ledger has not seen, in one run of the files job
    (what the sensor requests file by file, as one backfill of the directory)."""
    import dagster as dg

    from pipelines.definitions import defs
    from pipelines.files.partitions import statement_file_partitions
    from pipelines.files.sensors import unseen_files
    from resources.files.files_resource import StatementFilesResource
    from resources.warehouse.resource import WarehouseResource

    # The code location's resources read EnvVars at run time; here, before a run, read them as it will.
    warehouse = WarehouseResource(
        database_url=os.environ["BANKFLOW_DATABASE_URL"], home=os.environ["BANKFLOW_HOME"]
    )
    with warehouse.connect() as conn:
        listing = unseen_files(StatementFilesResource(home=os.environ["BANKFLOW_HOME"]), conn)
    keys = [key for keys in listing.new.values() for key in keys]
    if listing.errors:
        return False, f"drops not listed: {listing.errors}"
    if not keys:
        return True, "no new files"
    job = defs.resolve_job_def("statement_files_job")
    with dg.DagsterInstance.get() as instance:
        known = set(instance.get_dynamic_partitions(statement_file_partitions.name))
        instance.add_dynamic_partitions(statement_file_partitions.name, [k for k in keys if k not in known])
        ordered = [
            k for k in instance.get_dynamic_partitions(statement_file_partitions.name) if k in set(keys)
        ]
        result = job.execute_in_process(
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={
                "dagster/asset_partition_range_start": ordered[0],
                "dagster/asset_partition_range_end": ordered[-1],
                "bankflow/trigger": "demo",
            },
            raise_on_error=False,
        )
        metadata = {}
        for event in result.get_asset_materialization_events():
            if event.asset_key == dg.AssetKey("raw_file_entries"):
                metadata = event.materialization.metadata
    summary = ", ".join(
        f"{metadata[name].value} {name.removeprefix('files_').replace('_', ' ')}"
        for name in ("files", "files_parsed", "files_quarantined", "files_duplicate", "entries_landed")
        if name in metadata
    )
    return result.success, summary or "no files run"


def rest_bank_sandbox_env(bank: RestBank, url: str, client_id: str, client_secret: str) -> dict[str, str]:
    """A declarative bank's base URL and secret variables for its sandbox app: API keys and client
    ids are the sandbox's client id, tokens and client secrets its client secret."""
    auth = bank.auth
    env = {bank.base_url_env: url} if bank.base_url_env else {}
    for attr, value in (
        ("api_key_env", client_id),
        ("client_id_env", client_id),
        ("token_env", client_secret),
        ("client_secret_env", client_secret),
    ):
        if name := getattr(auth, attr, None):
            env[name] = value
    return env


def connect_sandbox_banks(database_url: str, secret_key: str) -> None:
    """Connect every provider through its real consent flow; a scripted user approves each."""
    vault = TokenVault(database_url, secret_key)
    # A sandbox bank counts its daily calls from zero when it starts; our ledger of today's calls
    # to the previous sandbox would otherwise use up the budget after a few demos in one day.
    for ledger in ("berlin_group", "gocardless"):
        CallBudget(database_url, ledger, calls_per_day=0).forget()
    any_port = "http://127.0.0.1:0/callback"
    connect_truelayer(replace(truelayer_config(), redirect_uri=any_port), vault, "truelayer", scripted_user)
    connect_berlin_group(
        replace(berlin_group_config(), redirect_uri=any_port), vault, "berlin_group", scripted_user
    )
    connect_revolut(replace(revolut_config(), redirect_uri=any_port), vault, "revolut", scripted_user)
    gocardless = gocardless_resource()
    with gocardless.open_client(vault) as client:
        banks = [i["id"] for country in SANDBOX_GOCARDLESS_COUNTRIES for i in client.institutions(country)]
    for institution_id in banks:
        connect_gocardless(gocardless, vault, institution_id, scripted_user, any_port)


def scripted_user(url: str) -> None:
    """A user who approves at once: follow the consent page's redirect to the callback server."""
    threading.Thread(target=httpx.get, args=(url,), kwargs={"follow_redirects": True}, daemon=True).start()


# The run's full log is in the instance (make ui -> Runs); the terminal gets the summary.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def backfill(first_partition: str, last_partition: str) -> tuple[bool, CheckSummary]:
    """Run the daily pipeline over a partition range as one run, on the persistent instance."""
    import dagster as dg

    from bankflow_cli.runs import run_days
    from pipelines.definitions import defs

    with dg.DagsterInstance.get() as instance:
        result = run_days(
            defs,
            instance,
            date.fromisoformat(first_partition),
            date.fromisoformat(last_partition),
            trigger="demo",
            run_config=QUIET_CONSOLE,
        )
    evaluations = result.get_asset_check_evaluations()
    failing = [e for e in evaluations if not e.passed]
    failed = [_check_label(e) for e in failing if e.severity != dg.AssetCheckSeverity.WARN]
    warnings = [_check_label(e) for e in failing if e.severity == dg.AssetCheckSeverity.WARN]
    return result.success, CheckSummary(
        passed=len(evaluations) - len(failing), failed=failed, run_id=result.run_id, warnings=warnings
    )


def _check_label(evaluation) -> str:
    label = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
    return f"{label} ({evaluation.description})" if evaluation.description else label


def layer_counts(database_url: str) -> list[tuple[str, int | None]]:
    """Rows per raw table (every source), the main models, and the canonical mart per source."""
    tables = [("raw", table) for table in all_raw_tables()] + list(MODEL_TABLES)
    counts: list[tuple[str, int | None]] = []
    with psycopg.connect(database_url) as conn:
        for schema, table in tables:
            exists = conn.execute("select to_regclass(%s)", (f"{schema}.{table}",)).fetchone()[0]
            query = sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
            counts.append((f"{schema}.{table}", conn.execute(query).fetchone()[0] if exists else None))
        if conn.execute("select to_regclass('marts.fct_transactions')").fetchone()[0]:
            by_source = conn.execute(
                "select source, count(*) from marts.fct_transactions group by source order by source"
            ).fetchall()
            counts += [(f"  fct_transactions from {source}", count) for source, count in by_source]
    return counts


def print_recon_summary(console: Console, database_url: str) -> None:
    """What reconciliation tied out and what is left open, by rule and by reason."""
    with psycopg.connect(database_url) as conn:
        if conn.execute("select to_regclass('marts.recon_summary')").fetchone()[0] is None:
            return
        matches = conn.execute(
            "select rule_id, count(distinct match_key), count(*) from marts.recon_matches group by 1 order by 1"
        ).fetchall()
        exceptions = conn.execute(
            "select reason, count(*) from marts.recon_exceptions where is_open group by 1 order by 1"
        ).fetchall()
        lines, matched = conn.execute(
            "select coalesce(sum(bank_lines), 0), coalesce(sum(matched_lines), 0) from marts.recon_summary"
        ).fetchone()
    table = Table(title="Reconciliation")
    table.add_column("matched by rule / open exception")
    table.add_column("count", justify="right")
    for rule, match_count, pairs in matches:
        table.add_row(rule, f"{match_count:,} matches ({pairs:,} pairs)")
    for reason, count in exceptions:
        table.add_row(f"[yellow]{reason}[/]", f"{count:,}")
    console.print(table)
    rate = f"{matched / lines:.1%}" if lines else "n/a"
    console.print(
        f"Bank lines on reconciled accounts: {lines:,}, matched {matched:,} ({rate}); "
        "see marts.recon_exceptions, `bankflow recon resolve|unmatch|backtest`."
    )


def print_summary(
    console: Console, counts: list[tuple[str, int | None]], checks: CheckSummary, success: bool
) -> None:
    table = Table(title="bankflow demo: rows per layer")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in counts:
        table.add_row(name, "missing" if count is None else f"{count:,}")
    console.print(table)
    accounts = dict(counts).get("marts.dim_accounts")
    console.print(f"Accounts: {accounts}")
    failed = f"[red]{len(checks.failed)} failed[/]" if checks.failed else "0 failed"
    warned = f"[yellow]{len(checks.warnings)} warnings[/]" if checks.warnings else "0 warnings"
    console.print(
        f"Checks (dbt tests, Great Expectations, sources): [green]{checks.passed} passed[/], {failed}, {warned}"
    )
    for name in checks.failed:
        console.print(f"  [red]failed[/] {name}")
    for name in checks.warnings:
        console.print(f"  [yellow]warning[/] {name}")
    outcome = "[green]succeeded[/]" if success else "[red]failed[/] (details: make ui -> Runs)"
    console.print(f"Run {checks.run_id}: {outcome}")
    console.print(
        "Open the UI: [bold]make ui[/] then http://127.0.0.1:3000 (assets, lineage, partitions, checks)."
    )
