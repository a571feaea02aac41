"""The company ledger from export files: rows checked and landed untouched, bad rows quarantined with
the reason, a re-sent file replacing its earlier landing (real Postgres, the `bankflow recon
import-ledger` command). That reconciliation reads the landed books like the table is tested in
test_recon."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from cli_runs import bankflow_command
from pipeline_runs import rows
from typer.testing import Result

from pipelines.ledger.assets import raw_ledger_export_entries
from resources.ledger_drop import LedgerDropResource
from resources.ledger_export import SOURCE, export_files, land_ledger_export
from resources.warehouse.resource import WarehouseResource

HEADER = "entry_id,bank_account,entry_type,document_number,payment_reference,counterparty_name,amount,currency,expected_date"
GOOD = [
    "le-1,GB33 BUKB 2020 1555 5555 55,receivable,INV-1001,INV-1001,Harbour Foods Ltd,1250.50,GBP,2026-11-02",
    "le-2,GB33BUKB20201555555555,payable,PO-2001,,Kestrel Logistics plc,-310.00,gbp,2026-11-03",
    "le-3,GB33BUKB20201555555555,,RENT-11,,Landlord,-2000,GBP,2026-11-01",
]
BAD = {
    "le-4,GB33BUKB20201555555555,receivable,INV-1004,,A Ltd,,GBP,2026-11-02": "amount is missing",
    "le-5,GB33BUKB20201555555555,receivable,INV-1005,,A Ltd,12.345,GBP,2026-11-02": "at most 2 decimals",
    "le-6,GB33BUKB20201555555555,receivable,INV-1006,,A Ltd,10.00,GBP,2026-02-30": "'2026-02-30' is not a date",
    # Python reads ISO week dates, Postgres's cast does not: refused before staging could fail.
    "le-11,GB33BUKB20201555555555,receivable,INV-1011,,A Ltd,10.00,GBP,2026W451": "'2026W451' is not a date",
    "le-7,GB33BUKB20201555555555,receivable,INV-1007,,A Ltd,10.00,POUNDS,2026-11-02": "not an ISO 4217",
    "le-1,GB33BUKB20201555555555,receivable,INV-1001,,A Ltd,10.00,GBP,2026-11-02": "repeats an earlier row",
    "le-8,GB33BUKB20201555555555,refund,INV-1008,,A Ltd,10.00,GBP,2026-11-02": "not receivable or payable",
    "le-9,GB33BUKB20201555555555,receivable,INV-1009,,A Ltd,0.00,GBP,2026-11-02": "amount is zero",
    "le-10,GB33BUKB20201555555555,receivable,INV-1010,,A Ltd,10.00,GBP,2026-11-02,extra": "more cells",
}


@pytest.fixture
def cli(database_url: str) -> Iterator[Callable[..., Result]]:
    with pytest.MonkeyPatch.context() as patch:
        yield bankflow_command(database_url, patch)


@pytest.fixture(autouse=True)
def _forget_exports(database_url: str) -> Iterator[None]:
    """The session's database is shared with the reconciliation tests: leave no books behind."""
    yield
    with psycopg.connect(database_url) as conn:
        conn.execute("delete from raw.ledger_export_entries where source = %s", (SOURCE,))
        conn.execute("delete from ops.quarantine where source = %s", (SOURCE,))


def landed(database_url: str) -> list[tuple]:
    return rows(
        database_url,
        "select file_id, record_key, account_ref, partition_key, payload ->> 'amount', payload ->> 'currency'"
        " from raw.ledger_export_entries where source = 'ledger_export' order by record_key",
    )


def quarantined(database_url: str) -> list[tuple]:
    return rows(
        database_url,
        "select file_id, entity, reason from ops.quarantine where source = 'ledger_export' order by reason",
    )


def test_good_rows_land_untouched_and_bad_rows_are_quarantined_with_the_reason(
    database_url: str, tmp_path: Path, cli
) -> None:
    export = tmp_path / "books-2026-11.csv"
    export.write_text("\n".join([HEADER, *GOOD, *BAD]) + "\n")

    result = cli("recon", "import-ledger", str(export))

    assert result.exit_code == 0, result.output
    assert [row[1:] for row in landed(database_url)] == [
        ("le-1", "GB33 BUKB 2020 1555 5555 55", "2026-11-02", "1250.50", "GBP"),
        ("le-2", "GB33BUKB20201555555555", "2026-11-03", "-310.00", "gbp"),
        ("le-3", "GB33BUKB20201555555555", "2026-11-01", "-2000", "GBP"),
    ]
    reasons = [reason for _, _, reason in quarantined(database_url)]
    assert len(reasons) == len(BAD)
    for expected in BAD.values():
        assert sum(expected in reason for reason in reasons) == 1, (expected, reasons)
    assert all(reason.startswith("line ") for reason in reasons)
    assert {file_id for file_id, *_ in landed(database_url) + quarantined(database_url)} == {
        "ledger_export:books-2026-11.csv"
    }
    printed = " ".join(result.output.split())
    assert "ops.quarantine" in printed and "landed" in printed


def test_landing_a_file_again_gives_the_same_tables_and_a_new_version_replaces_it(
    database_url: str, tmp_path: Path
) -> None:
    export = tmp_path / "books.csv"
    export.write_text("\n".join([HEADER, *GOOD, *list(BAD)[:2]]) + "\n")
    now = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        first = land_ledger_export(conn, export, run_id="t1", fetched_at=now)
        before = (landed(database_url), quarantined(database_url))
        again = land_ledger_export(conn, export, run_id="t2", fetched_at=now)
        assert (landed(database_url), quarantined(database_url)) == before
        assert (first.rows_landed, first.rows_quarantined, first.rows_replaced) == (3, 2, 0)
        assert (again.rows_landed, again.rows_quarantined, again.rows_replaced) == (3, 2, 3)
        # The accounting system sends the file again, corrected: le-3 deleted, the bad rows fixed.
        export.write_text("\n".join([HEADER, *GOOD[:2]]) + "\n")
        land_ledger_export(conn, export, run_id="t3", fetched_at=now)
    assert [row[1] for row in landed(database_url)] == ["le-1", "le-2"]
    assert quarantined(database_url) == []


def test_json_exports_keep_amounts_exact(database_url: str, tmp_path: Path) -> None:
    export = tmp_path / "books.json"
    export.write_text(
        '{"entries": [{"entry_id": "j-1", "bank_account": "GB33BUKB20201555555555", "document_number": "INV-1",'
        ' "amount": 1234567890123.45, "currency": "GBP", "expected_date": "2026-11-02"},'
        ' {"entry_id": "j-2", "bank_account": "GB33BUKB20201555555555", "document_number": "INV-2",'
        ' "amount": 0.1, "currency": "GBP", "expected_date": "2026-11-02"}, "not an entry"]}'
    )
    with psycopg.connect(database_url) as conn:
        landing = land_ledger_export(conn, export, run_id="t", fetched_at=datetime.now(UTC))
    assert (landing.format, landing.rows_landed, landing.rows_quarantined) == ("json", 2, 1)
    amounts = rows(
        database_url,
        "select record_key, (payload ->> 'amount')::numeric from raw.ledger_export_entries"
        " where source = 'ledger_export' order by record_key",
    )
    # A float would have rounded the first (15 significant digits).
    assert amounts == [("j-1", Decimal("1234567890123.45")), ("j-2", Decimal("0.1"))]
    [(original,)] = rows(database_url, "select original from ops.quarantine where source = 'ledger_export'")
    assert json.loads(original) == "not an entry"


def test_a_file_that_is_not_a_ledger_export_is_quarantined_whole_and_keeps_the_earlier_landing(
    database_url: str, tmp_path: Path, cli
) -> None:
    export = tmp_path / "books.csv"
    export.write_text("\n".join([HEADER, *GOOD]) + "\n")
    assert cli("recon", "import-ledger", str(export)).exit_code == 0
    export.write_text("date,description,value\n2026-11-02,something,1.00\n")

    result = cli("recon", "import-ledger", str(export))

    assert result.exit_code == 1
    assert "the header lacks entry_id" in " ".join(result.output.split())
    assert [row[1] for row in landed(database_url)] == ["le-1", "le-2", "le-3"]
    assert [entity for _, entity, _ in quarantined(database_url)] == ["file"]
    missing = cli("recon", "import-ledger", str(tmp_path / "missing.csv"))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_a_file_sent_again_with_no_readable_row_keeps_the_earlier_landing(
    database_url: str, tmp_path: Path, cli
) -> None:
    export = tmp_path / "books.csv"
    export.write_text("\n".join([HEADER, *GOOD, *list(BAD)[:1]]) + "\n")
    assert cli("recon", "import-ledger", str(export)).exit_code == 0
    before = (landed(database_url), quarantined(database_url))
    # The accounting system switched to day/month/year: every row is refused.
    export.write_text("\n".join([HEADER, *(row.replace("2026-11-0", "0") for row in GOOD)]) + "\n")

    result = cli("recon", "import-ledger", str(export))

    assert result.exit_code == 1 and "no row can be read" in " ".join(result.output.split())
    assert landed(database_url) == before[0]
    # The earlier landing's row reasons stay beside one whole-file reason, however often it is sent.
    assert cli("recon", "import-ledger", str(export)).exit_code == 1
    after = quarantined(database_url)
    assert [row for row in after if row[1] == "ledger_entry"] == before[1] and len(before[1]) == 1
    assert [row[1] for row in after].count("file") == 1


def test_the_drop_folder_asset_lands_every_export_and_quarantines_what_is_not_one(
    database_url: str, warehouse: WarehouseResource, tmp_path: Path
) -> None:
    (tmp_path / "books-2026-11.csv").write_text("\n".join([HEADER, *GOOD, *list(BAD)[:1]]) + "\n")
    (tmp_path / "statement.csv").write_text("date,description,value\n2026-11-02,something,1.00\n")
    (tmp_path / "notes.txt").write_text("not books")
    resources = {"warehouse": warehouse, "ledger_drop": LedgerDropResource(folder=str(tmp_path))}

    first = dg.materialize([raw_ledger_export_entries], resources=resources)
    tables = (landed(database_url), quarantined(database_url))
    again = dg.materialize([raw_ledger_export_entries], resources=resources)

    assert first.success and again.success
    assert (landed(database_url), quarantined(database_url)) == tables
    assert [row[1] for row in tables[0]] == ["le-1", "le-2", "le-3"]
    [materialisation] = again.asset_materializations_for_node("raw_ledger_export_entries")
    metadata = {key: value.value for key, value in materialisation.metadata.items()}
    assert (metadata["files"], metadata["entries_landed"], metadata["rows_quarantined"]) == (2, 3, 1)
    [whole_file] = metadata["files_quarantined"]
    assert "statement.csv" in whole_file and "the header lacks entry_id" in whole_file
    missing = dg.materialize(
        [raw_ledger_export_entries],
        resources={**resources, "ledger_drop": LedgerDropResource(folder=str(tmp_path / "nowhere"))},
        raise_on_error=False,
    )
    assert not missing.success


def test_the_asset_is_in_the_code_location_only_when_a_drop_folder_is_set(tmp_path: Path) -> None:
    from test_definitions import PLACEHOLDER_ENV

    from pipelines.definitions import build_definitions
    from pipelines.resources import resources_from_env

    for environ, expected in (
        (dict(PLACEHOLDER_ENV), False),
        ({**PLACEHOLDER_ENV, "BANKFLOW_LEDGER_DROP_DIR": str(tmp_path)}, True),
    ):
        graph = build_definitions(resources_from_env(environ), environ).get_repository_def().asset_graph
        key = dg.AssetKey("raw_ledger_export_entries")
        assert (graph.has(key) and graph.get(key).is_materializable) is expected
        # Either way the books' staging model reads it: lineage from the file to the marts.
        parents = graph.get(dg.AssetKey("stg_ledger__export_entries")).parent_keys
        assert key in parents


def test_the_drop_folder_lands_the_newest_export_last(tmp_path: Path) -> None:
    """An entry id in two files is the latest landing's (stg_ledger__export_entries): the newest
    file must land last, whatever the names ('-' sorts before '.')."""
    year, month = tmp_path / "books-year.csv", tmp_path / "books-2026-12.csv"
    for path in (year, month):
        path.write_text(HEADER + "\n")
    os.utime(year, (1_700_000_000, 1_700_000_000))
    os.utime(month, (1_800_000_000, 1_800_000_000))
    (tmp_path / "readme.txt").write_text("not books")
    assert export_files(tmp_path) == [year, month]
