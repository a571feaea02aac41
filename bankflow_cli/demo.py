"""`make demo`: the whole product on one machine, against the sandbox banks."""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from bankflow_cli.connect import connect_truelayer
from bankflow_cli.runtime import Runtime, ensure_secret_key, prepare_runtime
from resources.providers.truelayer import TrueLayerConfig, environment_urls
from resources.settings import load_settings
from resources.vault import TokenVault
from sandbox.server import Sandbox

LAYER_TABLES = (
    ("raw", "truelayer_transactions"),
    ("raw", "truelayer_pending_transactions"),
    ("raw", "truelayer_accounts"),
    ("raw", "truelayer_balances"),
    ("staging", "stg_truelayer__transactions"),
    ("staging", "stg_truelayer__pending_transactions"),
    ("intermediate", "int_transactions_unioned"),
    ("marts", "fct_transactions"),
    ("marts", "dim_accounts"),
)


@dataclass(frozen=True)
class CheckSummary:
    passed: int
    failed: list[str]
    run_id: str


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
        connect_sandbox_truelayer(runtime)
        console.print("Connected TrueLayer (sandbox consent); tokens encrypted in ops.connections.")

        today = datetime.now(UTC).date()
        first = today - timedelta(days=days - 1)
        log_path = runtime.home / "logs" / "demo.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with console.status(
            f"Backfilling {days} daily partitions {first} .. {today} in one run (extract, dbt, checks)"
        ):
            # dagster-dbt echoes dbt's output on stdout; it goes to the log, the terminal keeps the summary.
            with log_path.open("w") as log, contextlib.redirect_stdout(log):
                success, checks = backfill(first.isoformat(), today.isoformat())
        console.print(f"dbt output of the run: {log_path}")
        counts = layer_counts(runtime.database_url)

    print_summary(console, counts, checks, success)
    return success and not checks.failed


def use_sandbox(sandbox: Sandbox) -> None:
    """Point the TrueLayer configuration at the sandbox, as a user would at a live bank."""
    os.environ.update(
        {
            "BANKFLOW_TRUELAYER_ENVIRONMENT": sandbox.truelayer_url,
            "BANKFLOW_TRUELAYER_CLIENT_ID": sandbox.client_id,
            "BANKFLOW_TRUELAYER_CLIENT_SECRET": sandbox.client_secret,
        }
    )


def connect_sandbox_truelayer(runtime: Runtime) -> None:
    """Connect through the real consent flow; a scripted user approves on the sandbox's page."""
    auth_url, api_url = environment_urls(os.environ["BANKFLOW_TRUELAYER_ENVIRONMENT"])
    config = TrueLayerConfig(
        auth_url=auth_url,
        api_url=api_url,
        client_id=os.environ["BANKFLOW_TRUELAYER_CLIENT_ID"],
        client_secret=os.environ["BANKFLOW_TRUELAYER_CLIENT_SECRET"],
        redirect_uri="http://127.0.0.1:0/callback",
    )
    vault = TokenVault(runtime.database_url, os.environ["BANKFLOW_SECRET_KEY"])
    connect_truelayer(config, vault, "truelayer", scripted_user)


def scripted_user(url: str) -> None:
    """A user who approves at once: follow the consent page's redirect to the callback server."""
    threading.Thread(target=httpx.get, args=(url,), kwargs={"follow_redirects": True}, daemon=True).start()


def backfill(first_partition: str, last_partition: str) -> tuple[bool, CheckSummary]:
    """Run the daily pipeline over a partition range as one run, on the persistent instance."""
    import dagster as dg

    from pipelines.definitions import defs

    job = defs.resolve_job_def("daily_pipeline")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            # The run's full log is in the instance (make ui -> Runs); the terminal gets the summary.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={
                "dagster/asset_partition_range_start": first_partition,
                "dagster/asset_partition_range_end": last_partition,
                "bankflow/trigger": "demo",
            },
            raise_on_error=False,
        )
    evaluations = result.get_asset_check_evaluations()
    failed = [f"{e.asset_key.to_user_string()}:{e.check_name}" for e in evaluations if not e.passed]
    return result.success, CheckSummary(
        passed=len(evaluations) - len(failed), failed=failed, run_id=result.run_id
    )


def layer_counts(database_url: str) -> list[tuple[str, int | None]]:
    counts = []
    with psycopg.connect(database_url) as conn:
        for schema, table in LAYER_TABLES:
            exists = conn.execute("select to_regclass(%s)", (f"{schema}.{table}",)).fetchone()[0]
            count = (
                conn.execute(
                    sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
                ).fetchone()[0]
                if exists
                else None
            )
            counts.append((f"{schema}.{table}", count))
    return counts


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
    console.print(f"Checks (dbt tests + Great Expectations): [green]{checks.passed} passed[/], {failed}")
    for name in checks.failed:
        console.print(f"  [red]failed[/] {name}")
    outcome = "[green]succeeded[/]" if success else "[red]failed[/] (details: make ui -> Runs)"
    console.print(f"Run {checks.run_id}: {outcome}")
    console.print(
        "Open the UI: [bold]make ui[/] then http://127.0.0.1:3000 (assets, lineage, partitions, checks)."
    )
