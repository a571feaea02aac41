"""`bankflow import`, `bankflow files` and `bankflow sftp trust`: statement files from the command line."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from resources.files.connections import SftpConnection
from resources.files.landing import FileLandResult, fetch_and_land
from resources.files.ledger import ledger_rows
from resources.files.sources import LocalFolderSource
from resources.files.store import FileStore
from resources.statements.formats import default_parsers, load_csv_mappings

CSV_MAPPINGS_DIR = Path(__file__).resolve().parents[1] / "connectors" / "csv"


def import_files(
    database_url: str, home: Path, paths: Sequence[Path], bank: str | None = None, run_id: str = "cli-import"
) -> list[tuple[Path, FileLandResult]]:
    """Land statement files a person downloaded, through the same ledger, parsers and quarantine
    as the SFTP drops (connection `local`)."""
    store = FileStore(home / "files")
    parsers = default_parsers(load_csv_mappings([CSV_MAPPINGS_DIR]))
    source = LocalFolderSource()
    results = []
    fetched_at = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        for path in paths:
            result = fetch_and_land(
                conn,
                source,
                LocalFolderSource.describe(path),
                store=store,
                parsers=parsers,
                run_id=run_id,
                fetched_at=fetched_at,
                bank=bank,
            )
            results.append((path, result))
    return results


def print_import(console: Console, results: list[tuple[Path, FileLandResult]]) -> None:
    table = Table(title="bankflow import")
    for column in (
        "file",
        "format",
        "outcome",
        "statements",
        "entries",
        "accounts",
        "period",
        "balance check",
    ):
        table.add_column(column)
    for path, r in results:
        if r.outcome == "quarantined":
            check = f"[red]{r.reason}[/]"
        elif r.outcome == "parsed":
            check = _balances(r)
        else:
            check = f"already landed (ledger row {r.ledger.duplicate_of or r.ledger.ledger_id})"
        period = f"{r.period_start} .. {r.period_end}" if r.period_start else ""
        colour = {"parsed": "green", "quarantined": "red"}.get(r.outcome, "yellow")
        table.add_row(
            path.name,
            r.format or "",
            f"[{colour}]{r.outcome}[/]",
            str(r.statements),
            str(r.entries),
            ", ".join(r.accounts),
            period,
            check,
        )
    console.print(table)
    quarantined = sum(r.records_quarantined for _, r in results)
    if quarantined:
        console.print(
            f"[yellow]{quarantined} records quarantined[/] (ops.quarantine): the rest of their files landed."
        )


def _balances(result: FileLandResult) -> str:
    mismatches = result.balance_mismatches
    if mismatches:
        return (
            "[yellow]"
            + "; ".join(f"{m['account_id']} off by {m['difference']}" for m in mismatches[:3])
            + "[/]"
        )
    statuses = {check["status"] for check in result.balance_checks}
    return "reconciled" if statuses == {"reconciled"} else ", ".join(sorted(statuses)) or "no statements"


def print_ledger(console: Console, database_url: str, connection: str | None, limit: int) -> None:
    with psycopg.connect(database_url) as conn:
        rows = ledger_rows(conn, connection)[:limit]
    table = Table(title="ops.file_ledger (newest first)")
    for column in (
        "id",
        "connection",
        "path",
        "v",
        "status",
        "format",
        "entries",
        "period",
        "balances",
        "note",
    ):
        table.add_column(column)
    for row in rows:
        note = row["reason"] or (f"duplicate of {row['duplicate_of']}" if row["duplicate_of"] else "")
        if row["superseded_by"]:
            note = f"replaced by version in row {row['superseded_by']}"
        period = f"{row['period_start']} .. {row['period_end']}" if row["period_start"] else ""
        table.add_row(
            str(row["ledger_id"]),
            row["connection"],
            row["path"],
            str(row["version"]),
            row["status"],
            row["format"] or "",
            "" if row["entries"] is None else str(row["entries"]),
            period,
            row["balance_status"] or "",
            note,
        )
    console.print(table)


def trust(
    console: Console, connection: SftpConnection, home: Path, expected: str | None, assume_yes: bool
) -> bool:
    """Read the drop's host key and record it as trusted, after the user compares its fingerprint."""
    import os

    import typer

    from resources.files.sftp import scan_host_key, trust_host_key
    from resources.files.sources import sftp_endpoint

    endpoint = sftp_endpoint(connection, os.environ, home)
    presented = scan_host_key(endpoint.host, endpoint.port)
    console.print(
        f"{connection.name}: {endpoint.host}:{endpoint.port} presents {presented.key_type} {presented.fingerprint}"
    )
    if expected and expected.removeprefix("SHA256:") != presented.fingerprint.removeprefix("SHA256:"):
        console.print(f"[red]Not trusted: the bank said {expected}.[/] Ask the bank before going on.")
        return False
    if not (expected or assume_yes or typer.confirm("Is this the fingerprint your bank gave you?")):
        return False
    trust_host_key(endpoint.known_hosts, presented)
    console.print(f"[green]Trusted[/]: recorded in {endpoint.known_hosts}")
    return True
