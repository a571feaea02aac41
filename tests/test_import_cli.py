"""`bankflow import`: statements a person downloaded land through the same ledger, parsers and
quarantine as the drops, and the command says what landed or why not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pipeline_runs import clear_statement_files
from rich.console import Console

from bankflow_cli.files import import_files, print_import

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"
ING = SAMPLES / "camt053-iso20022js" / "ing_example_camt.xml"
MALFORMED = SAMPLES / "camt053-iso20022js" / "bank_of_montreal_camt053_v2_2.xml"
BETTERPLACE = SAMPLES / "mt940-wolph" / "betterplace_sepa_mt9401.sta"


@pytest.fixture
def clean(database_url: str) -> Iterator[None]:
    clear_statement_files(database_url)
    yield
    clear_statement_files(database_url)


def test_import_lands_good_files_once_and_quarantines_the_malformed_one(
    clean: None, database_url: str, tmp_path: Path
) -> None:
    results = import_files(database_url, tmp_path, [ING, BETTERPLACE, MALFORMED])
    outcomes = {path.name: result for path, result in results}
    assert outcomes[ING.name].outcome == "parsed" and outcomes[ING.name].entries == 9
    assert outcomes[BETTERPLACE.name].outcome == "parsed" and outcomes[BETTERPLACE.name].entries == 97
    assert outcomes[BETTERPLACE.name].statements == 26
    malformed = outcomes[MALFORMED.name]
    assert malformed.outcome == "quarantined" and "993" in (malformed.reason or "")

    console = Console(record=True, width=200)
    print_import(console, results)
    text = console.export_text()
    assert "quarantined" in text and "reconciled" in text and "camt053" in text and "mt940" in text

    with psycopg.connect(database_url) as conn:
        entries = conn.execute("select count(*) from raw.file_entries").fetchone()[0]
        kept = conn.execute(
            "select original from ops.quarantine where entity = 'file' and reason like %s", ("%993%",)
        ).fetchone()[0]
    assert entries == 9 + 97
    assert Path(kept).read_bytes() == MALFORMED.read_bytes()

    # The same files again (a person imports twice): nothing new lands.
    again = import_files(database_url, tmp_path, [ING, BETTERPLACE])
    assert {result.outcome for _, result in again} == {"seen"}
    with psycopg.connect(database_url) as conn:
        assert conn.execute("select count(*) from raw.file_entries").fetchone()[0] == entries


def test_a_copy_under_another_name_is_a_duplicate(clean: None, database_url: str, tmp_path: Path) -> None:
    copy = tmp_path / "renamed.xml"
    copy.write_bytes(ING.read_bytes())
    first = import_files(database_url, tmp_path / "home", [ING])
    second = import_files(database_url, tmp_path / "home", [copy])
    assert first[0][1].outcome == "parsed"
    assert second[0][1].outcome == "duplicate"
    assert second[0][1].ledger.duplicate_of == first[0][1].ledger.ledger_id
