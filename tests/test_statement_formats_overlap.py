"""One account's day in two statement formats (a bank sending MT940 and camt.053 side by side while
it migrates) is each movement once in the marts: the camt.053 row, the richer format."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from pipeline_runs import clear_statement_files, rows

from bankflow_cli.files import import_files
from pipelines.definitions import build_definitions
from resources.files.files_resource import StatementFilesResource
from sandbox.server import Sandbox
from sandbox.statement_camt import render_camt053
from sandbox.statement_files import delivered_at
from sandbox.statement_mt940 import render_mt940

# Far enough back that no other test's API backfill reported the day: only the files have it.
DAYS_BACK = 300


@pytest.fixture
def clean(database_url: str) -> Iterator[None]:
    yield
    clear_statement_files(database_url)


def test_the_richer_format_wins_and_nothing_is_doubled(
    clean: None, sandbox: Sandbox, definitions: dg.Definitions, database_url: str, tmp_path: Path
) -> None:
    world = sandbox.world
    account = next(a for a in world.accounts if a.key == "northwind-gbp")
    day = world.today - timedelta(days=DAYS_BACK)
    while not world.booked(account.account_id, day, day + timedelta(days=1)):
        day -= timedelta(days=1)
    entries = world.booked(account.account_id, day, day + timedelta(days=1))
    opening = world.balance(account.account_id, day - timedelta(days=1))
    camt = tmp_path / "day.camt053.xml"
    camt.write_bytes(render_camt053(account, day, opening, entries, delivered_at(day)))
    mt940 = tmp_path / "day.sta"
    mt940.write_bytes(render_mt940(account, day, opening, entries, delivered_at(day)))
    landed = import_files(database_url, tmp_path / "home", [mt940, camt])
    assert [result.outcome for _, result in landed] == ["parsed", "parsed"]

    defs = build_definitions({**definitions.resources, "statement_files": StatementFilesResource()})
    refresh = defs.resolve_job_def("marts_refresh_job").execute_in_process(
        tags={
            "dagster/asset_partition_range_start": day.isoformat(),
            "dagster/asset_partition_range_end": day.isoformat(),
        },
        raise_on_error=False,
    )
    assert refresh.success
    got = rows(
        database_url,
        "select source, amount from marts.fct_transactions where booking_date = %s and account_key in"
        " (select account_key from marts.dim_accounts where iban = %s)",
        (day, account.iban),
    )
    assert sorted(amount for _, amount in got) == sorted(t.amount for t in entries)
    assert {source for source, _ in got} == {"camt053"}
