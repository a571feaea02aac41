"""Reconciliation against the sandbox's answer key: bank lines vs Razorpay settlements and the
companies' ledgers (sandbox/company_ledger.py), over the shared 35-day pipeline run.

The ledger table appears after the run, as a company's accounting export would: the recon models
are then rebuilt on their own, as the next pipeline run would rebuild them."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import simplejson
from cli_runs import bankflow_command
from pipeline_runs import fetched_days, forget_staged, rows
from typer.testing import Result

from resources.recon import UnknownReconItem, resolve, unmatch
from resources.recon_backtest import InvalidReconRules, backtest_recon_rules, read_recon_rules
from resources.warehouse.loader import RawRecord, ReplaceScope, land
from resources.warehouse.resource import WarehouseResource
from sandbox.answer_key import RECON_PRECISION_TARGET, RECON_RECALL_TARGET, score_recon
from sandbox.company_ledger import (
    AMOUNT_MISMATCH,
    DUPLICATE,
    MISSING_IN_BANK,
    MISSING_IN_LEDGER,
    CompanyBooks,
    company_books,
    write_books,
    write_books_export,
)
from sandbox.server import Sandbox

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
SEED_RULES = PROJECT_DIR / "seeds" / "recon_rules.csv"
# Everything reconciliation builds, with the seed and the tests: what a pipeline run rebuilds of it.
RECON_MODELS = (
    "recon_rules+",
    "stg_ledger__entries+",
    "stg_ledger__export_entries+",
    "stg_ops__recon_verdicts+",
    "stg_ops__recon_resolutions+",
)
RECON_FROM_CANDIDATES = ("int_recon_reference_candidates+",)
# The rule each kind of the books' noise must be matched by.
RULE_FOR_NOISE = {
    "clean": {"ledger_reference_exact"},
    "mangled_reference": {"ledger_reference_normalised"},
    "no_reference": {"ledger_amount_date_name", "ledger_amount_date_unique"},
    "batched": {"ledger_batch"},
    "paid_in_parts": {"ledger_parts"},
}


@dataclass(frozen=True)
class Reconciled:
    books: CompanyBooks
    start: date
    end: date


def dbt(warehouse: WarehouseResource, *args: str, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), *args, "--profiles-dir", str(PROJECT_DIR)]
        + ["--target-path", "target/recon_test"],
        cwd=PROJECT_DIR,
        env={**os.environ, **warehouse.dbt_env(), **(env or {})},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stdout[-4000:]
    return completed.stdout


@pytest.fixture(scope="module")
def reconciled(
    categorisation_run: dg.ExecuteInProcessResult,
    categorisation_window: tuple[date, date],
    sandbox: Sandbox,
    database_url: str,
    warehouse: WarehouseResource,
) -> Reconciled:
    assert categorisation_run.success
    start, end = fetched_days(*categorisation_window)
    books = company_books(sandbox.world, start, end)
    write_books(database_url, books.entries)
    dbt(warehouse, "build", "--select", *RECON_MODELS)
    return Reconciled(books, start, end)


@pytest.fixture(scope="module")
def cli(database_url: str) -> Iterator[Callable[..., Result]]:
    with pytest.MonkeyPatch.context() as patch:
        yield bankflow_command(database_url, patch)


def matched_pairs(database_url: str) -> dict[tuple[str, str], str]:
    """(transaction_key, counterpart_key) -> rule_id of every row of recon_matches."""
    return {
        (t, c): rule
        for t, c, rule in rows(
            database_url, "select transaction_key, counterpart_key, rule_id from marts.recon_matches"
        )
    }


def snapshot(database_url: str) -> tuple[list[tuple], list[tuple]]:
    return (
        rows(
            database_url,
            "select match_line_key, match_key, rule_id, transaction_key, counterpart_key, score, explanation"
            " from marts.recon_matches order by match_line_key",
        ),
        rows(
            database_url,
            "select exception_key, reason, item_key, related_key, details from marts.recon_exceptions"
            " order by exception_key",
        ),
    )


def test_matches_and_exceptions_meet_the_answer_key(
    reconciled: Reconciled, sandbox: Sandbox, database_url: str
) -> None:
    score = score_recon(database_url, sandbox.world, reconciled.books, reconciled.start, reconciled.end)
    assert score.expected > 100, score
    assert score.precision >= RECON_PRECISION_TARGET, score.wrong
    assert score.recall >= RECON_RECALL_TARGET, score.wrong
    # Every genuinely missing item (unpaid invoices, bank lines nobody booked, short payments,
    # double keying) is an exception with the right reason, and nothing that should match is one.
    reasons = set(reconciled.books.exceptions.values())
    assert reasons == {MISSING_IN_BANK, MISSING_IN_LEDGER, AMOUNT_MISMATCH, DUPLICATE}
    assert score.exceptions_expected > 20
    assert score.exceptions_missed == {}
    assert score.exceptions_unexpected == {}


def test_each_kind_of_entry_is_matched_by_its_rule(
    reconciled: Reconciled, sandbox: Sandbox, database_url: str
) -> None:
    by_entry = {
        counterpart_id: rule
        for counterpart_id, rule in rows(
            database_url,
            "select counterpart_id, rule_id from marts.recon_matches where match_kind = 'ledger'",
        )
    }
    for noise, expected_rules in RULE_FOR_NOISE.items():
        # An invoice whose balance is not booked yet is an amount mismatch, not a match.
        entries = [
            entry
            for entry in reconciled.books.entries
            if entry.noise == noise and entry.entry_id in reconciled.books.settles
        ]
        assert entries, noise
        assert {by_entry.get(entry.entry_id) for entry in entries} <= expected_rules, noise
    # A payout credit carrying the UTR as typed matches exactly, one with it mangled by the
    # normalised rule, one that lost it not at all (the answer-key test finds its exceptions).
    settlement_rule = dict(
        rows(
            database_url,
            "select counterpart_id, rule_id from marts.recon_matches where match_kind = 'settlement'",
        )
    )
    rules_by_kind: dict[str, set[str | None]] = {}
    for entry in sandbox.world.settlement_answer_key(reconciled.start, reconciled.end).values():
        if entry.settled_on >= reconciled.start:
            rules_by_kind.setdefault(entry.utr_on_line, set()).add(settlement_rule.get(entry.settlement_id))
    # The window ends today, so which noisy kinds fall in it varies (the sandbox tests see all
    # three over the world's history); the clean ones always do.
    assert "exact" in rules_by_kind
    assert (
        rules_by_kind.items()
        <= {
            "exact": {"settlement_utr_exact"},
            "mangled": {"settlement_utr_normalised"},
            "missing": {None},
        }.items()
    )
    # A batch is one match of one bank line with each of its entries.
    batches = rows(
        database_url,
        "select match_key, count(*), count(distinct transaction_key), sum(counterpart_amount) = min(bank_amount)"
        " from marts.recon_matches where rule_id = 'ledger_batch' group by match_key",
    )
    assert batches and all(entries >= 2 and lines == 1 and adds_up for _, entries, lines, adds_up in batches)
    # An invoice paid in parts is one match of each part with the entry: the parts add up to it.
    parts = rows(
        database_url,
        "select match_key, count(distinct counterpart_key), count(*), sum(bank_amount),"
        " min(match_bank_amount), max(match_bank_amount), min(counterpart_amount)"
        " from marts.recon_matches where rule_id = 'ledger_parts' group by match_key",
    )
    assert parts
    for _, entries, lines, paid, low, high, expected in parts:
        assert entries == 1 and lines >= 2 and paid == low == high and abs(paid - expected) <= Decimal("0.01")


def test_matches_explain_themselves(reconciled: Reconciled, database_url: str) -> None:
    [(explanation,)] = rows(
        database_url,
        "select explanation from marts.recon_matches where rule_id = 'ledger_reference_exact'"
        " order by match_line_key limit 1",
    )
    assert explanation.startswith("reference ") and "amounts equal" in explanation
    assert explanation.endswith("rule ledger_reference_exact")


def test_rerunning_gives_identical_matches_and_exceptions(
    reconciled: Reconciled, database_url: str, warehouse: WarehouseResource
) -> None:
    before = snapshot(database_url)
    assert before[0] and before[1]
    dbt(warehouse, "build", "--full-refresh", "--select", *RECON_MODELS)
    assert snapshot(database_url) == before


def test_a_rule_change_in_the_config_changes_matches_and_the_backtest_foresees_it(
    reconciled: Reconciled, database_url: str, warehouse: WarehouseResource, tmp_path: Path, cli
) -> None:
    switched_off = {"ledger_reference_normalised", "settlement_utr_exact"}
    changed = tmp_path / "recon_rules.csv"
    with SEED_RULES.open(newline="") as source, changed.open("w", newline="") as target:
        reader = csv.DictReader(source)
        writer = csv.DictWriter(target, fieldnames=reader.fieldnames or [])
        writer.writeheader()
        for rule in reader:
            writer.writerow(
                {**rule, "enabled": "false" if rule["rule_id"] in switched_off else rule["enabled"]}
            )
    before = matched_pairs(database_url)
    foreseen = backtest_recon_rules(database_url, read_recon_rules(changed), PROJECT_DIR)
    shown = cli("recon", "backtest", "--rules", str(changed))
    assert shown.exit_code == 0, shown.output
    assert "Nothing was applied" in " ".join(shown.output.split())
    assert matched_pairs(database_url) == before

    try:
        # The change made where the rules live (the seed's table), no code touched.
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "update marts.recon_rules set enabled = false where rule_id = any(%s)",
                (sorted(switched_off),),
            )
        dbt(warehouse, "run", "--select", *RECON_FROM_CANDIDATES)
        after = matched_pairs(database_url)
    finally:
        dbt(warehouse, "build", "--select", *RECON_MODELS)
    assert not switched_off & set(after.values())
    # Settlements now match on the normalised UTR: the same pairs, another rule.
    settlements = {pair for pair, rule in before.items() if rule == "settlement_utr_exact"}
    assert settlements and all(after[pair] == "settlement_utr_normalised" for pair in settlements)
    moved = {pair for pair in before.keys() & after.keys() if before[pair] != after[pair]}
    assert any(before[pair] == "ledger_reference_normalised" for pair in moved)
    # The backtest, over the same data, said exactly this.
    assert {(c.transaction_key, c.counterpart_key) for c in foreseen.added} == after.keys() - before.keys()
    assert {(c.transaction_key, c.counterpart_key) for c in foreseen.removed} == before.keys() - after.keys()
    assert {(c.transaction_key, c.counterpart_key) for c in foreseen.rule_changed} == moved
    assert matched_pairs(database_url) == before


def test_an_undone_match_stays_undone(
    reconciled: Reconciled, database_url: str, warehouse: WarehouseResource, cli
) -> None:
    [(match_key, transaction_key, counterpart_key)] = rows(
        database_url,
        "select match_key, transaction_key, counterpart_key from marts.recon_matches"
        " where rule_id = 'ledger_reference_exact' order by match_key limit 1",
    )
    entry_id = counterpart_key.removeprefix("ledger:")
    try:
        result = cli("recon", "unmatch", match_key, "--note", "paid another invoice")
        assert result.exit_code == 0, result.output
        for _ in range(2):  # the next run, and the one after
            dbt(warehouse, "build", "--select", *RECON_MODELS)
            assert (transaction_key, counterpart_key) not in matched_pairs(database_url)
            reasons = dict(
                rows(
                    database_url,
                    "select item_key, reason from marts.recon_exceptions where item_key = any(%s)",
                    ([transaction_key, entry_id],),
                )
            )
            assert reasons == {transaction_key: MISSING_IN_LEDGER, entry_id: MISSING_IN_BANK}
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("delete from ops.recon_verdicts")
        dbt(warehouse, "build", "--select", *RECON_MODELS)
    assert (transaction_key, counterpart_key) in matched_pairs(database_url)


def test_a_resolved_exception_keeps_its_verdict_across_runs(
    reconciled: Reconciled, database_url: str, warehouse: WarehouseResource, cli
) -> None:
    [(exception_key, account_key, item_date)] = rows(
        database_url,
        "select exception_key, account_key, item_date from marts.recon_exceptions"
        " where reason = 'missing_in_ledger' order by exception_key limit 1",
    )
    try:
        result = cli("recon", "resolve", exception_key, "--note", "bank charge, booked by hand")
        assert result.exit_code == 0, result.output
        dbt(warehouse, "build", "--full-refresh", "--select", *RECON_MODELS)
        assert rows(
            database_url,
            "select is_open, resolution_status, resolution_note from marts.recon_exceptions where exception_key = %s",
            (exception_key,),
        ) == [(False, "resolved", "bank charge, booked by hand")]
        assert rows(
            database_url,
            "select closed_exceptions from marts.recon_summary where account_key = %s and summary_date = %s",
            (account_key, item_date),
        ) == [(1,)]
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("delete from ops.recon_resolutions")
        dbt(warehouse, "build", "--select", *RECON_MODELS)


def test_the_summary_adds_up_to_the_matches_and_exceptions(reconciled: Reconciled, database_url: str) -> None:
    [(lines, matched, open_exceptions)] = rows(
        database_url,
        "select sum(bank_lines), sum(matched_lines), sum(open_exceptions) from marts.recon_summary",
    )
    assert (
        matched == rows(database_url, "select count(distinct transaction_key) from marts.recon_matches")[0][0]
    )
    assert (
        open_exceptions
        == rows(
            database_url,
            "select count(*) from marts.recon_exceptions where account_key is not null and is_open",
        )[0][0]
    )
    assert 0 < matched < lines
    # Per account, every line the summary counts either tied out or is an exception: nobody booked
    # it, or it carries an entry's reference with another amount.
    unexplained = rows(
        database_url,
        "select account_key, sum(bank_lines - matched_lines) from marts.recon_summary group by 1 order by 1",
    )
    reported = dict(
        rows(
            database_url,
            "select account_key, count(*) from marts.recon_exceptions"
            " where reason = 'missing_in_ledger' or (reason = 'amount_mismatch' and item_kind = 'ledger_entry')"
            " group by 1",
        )
    )
    assert unexplained and all(count == reported.get(account, 0) for account, count in unexplained)


def models_only(definitions: dg.Definitions, first: date, last: date) -> None:
    """The daily pipeline's dbt models over first..last, without fetching anything."""
    job = definitions.resolve_job_def("daily_pipeline")
    result = job.execute_in_process(
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        },
        asset_selection=[
            k for k in job.asset_layer.executable_asset_keys if not k.path[-1].startswith("raw_")
        ],
    )
    assert result.success


def evaluate_balance_gap_sensor(definitions: dg.Definitions, warehouse: WarehouseResource) -> dg.SensorResult:
    sensor = definitions.resolve_sensor_def("balance_gap_sensor")
    with dg.instance_for_test() as instance:
        result = sensor(dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}))
    return result if isinstance(result, dg.SensorResult) else dg.SensorResult(run_requests=[])


def test_a_missed_movement_is_located_fetched_again_and_heals(
    reconciled: Reconciled,
    sandbox: Sandbox,
    definitions: dg.Definitions,
    categorisation_window: tuple[date, date],
    database_url: str,
    warehouse: WarehouseResource,
) -> None:
    last = categorisation_window[1]
    first = last - timedelta(days=8)
    # An account only TrueLayer reports, with the balance the daily runs of the last week would
    # have landed each night (the one backfill run fetched today's only): a report every day.
    [(account_ref,)] = rows(
        database_url,
        "select min(t.account_ref) from raw.truelayer_transactions as t inner join marts.dim_accounts as a"
        " on a.provider_account_id = t.account_ref and a.sources = 'truelayer'",
    )
    currency = sandbox.world.account(account_ref).currency
    nights = [first + timedelta(days=n) for n in range((last - first).days)]
    snapshots = [
        RawRecord(
            payload=simplejson.dumps(
                {
                    "current": sandbox.world.balance(account_ref, night),
                    "available": sandbox.world.balance(account_ref, night),
                    "overdraft": Decimal("0.00"),
                    "currency": currency,
                    "update_timestamp": f"{night.isoformat()}T23:59:59.000Z",
                },
                use_decimal=True,
            ),
            partition_key=night.isoformat(),
            record_key=account_ref,
            account_ref=account_ref,
        )
        for night in nights
    ]
    with psycopg.connect(database_url) as conn:
        land(
            conn,
            table="truelayer_balances",
            source="truelayer",
            records=snapshots,
            scope=ReplaceScope(partition_keys=[n.isoformat() for n in nights], account_refs=[account_ref]),
            run_id="earlier-nightly-runs",
            fetched_at=datetime.now(UTC),
        )
    known_gaps = {
        key for (key,) in rows(database_url, "select balance_gap_key from marts.recon_balance_gaps")
    }
    evaluate_balance_gap_sensor(definitions, warehouse)  # records the gaps there are already
    # A booked movement of that account between two of those reports.
    [(transaction_key, account_key, day, amount, record_key)] = rows(
        database_url,
        "select f.transaction_key, f.account_key, f.booking_date, f.amount, f.raw_record_key"
        " from marts.fct_transactions as f inner join marts.dim_accounts as a using (account_key)"
        " where a.provider_account_id = %s and f.status = 'booked' and f.booking_date between %s and %s"
        " order by f.booking_date, f.transaction_key limit 1",
        (account_ref, first + timedelta(days=2), last - timedelta(days=2)),
    )
    # The page that held it was missed: it is in no table, and the next run does not know.
    with psycopg.connect(database_url) as conn:
        conn.execute("delete from raw.truelayer_transactions where record_key = %s", (record_key,))
        forget_staged(conn, "stg_truelayer__transactions", "transaction_key = %s", (transaction_key,))
    models_only(definitions, first, last)

    # Located: the days between the reports around it, the amount it leaves unexplained.
    gaps = rows(
        database_url,
        "select balance_gap_key, account_key, gap_first_day, gap_last_day, unexplained_amount"
        " from marts.recon_balance_gaps order by 1",
    )
    [(gap_key, gap_account, gap_first, gap_last, unexplained)] = [g for g in gaps if g[0] not in known_gaps]
    assert gap_account == account_key and gap_first <= day <= gap_last and unexplained == amount
    assert (
        rows(
            database_url,
            "select count(*) from marts.recon_exceptions where reason = 'balance_break' and account_key = %s",
            (account_key,),
        )[0][0]
        > 0
    )

    # Re-requested: one run over exactly the gap's days, of TrueLayer's extract and the models,
    # recorded in ops; the same run key on the next tick, so Dagster launches it once.
    [request] = evaluate_balance_gap_sensor(definitions, warehouse).run_requests or []
    assert request.tags["bankflow/refetch"] == gap_key
    assert (
        request.tags["dagster/asset_partition_range_start"],
        request.tags["dagster/asset_partition_range_end"],
    ) == (
        gap_first.isoformat(),
        gap_last.isoformat(),
    )
    selection = set(request.asset_selection or [])
    truelayer_extract = set(definitions.resolve_assets_def(dg.AssetKey("raw_truelayer_transactions")).keys)
    assert truelayer_extract <= selection and dg.AssetKey("fct_transactions") in selection
    assert not {key for key in selection - truelayer_extract if key.path[-1].startswith("raw_")}
    assert rows(
        database_url,
        "select status, refetch_sources, unexplained_amount from ops.recon_refetch_requests where balance_gap_key = %s",
        (gap_key,),
    ) == [("requested", "truelayer", amount)]
    again = evaluate_balance_gap_sensor(definitions, warehouse).run_requests or []
    assert [r.run_key for r in again] == [request.run_key]

    # The requested run, as the daemon would launch it, and nothing else: the movement is back,
    # the gap is gone, and the next tick marks it healed and requests nothing.
    job = definitions.resolve_job_def("daily_pipeline")
    assert job.execute_in_process(asset_selection=request.asset_selection, tags=request.tags).success
    assert rows(
        database_url,
        "select count(*) from marts.fct_transactions where transaction_key = %s",
        (transaction_key,),
    ) == [(1,)]
    assert gap_key not in {
        key for (key,) in rows(database_url, "select balance_gap_key from marts.recon_balance_gaps")
    }
    assert not evaluate_balance_gap_sensor(definitions, warehouse).run_requests
    assert rows(
        database_url,
        "select status, healed_at is not null from ops.recon_refetch_requests where balance_gap_key = %s",
        (gap_key,),
    ) == [("healed", True)]


def test_without_a_ledger_table_only_the_gateway_is_reconciled(
    reconciled: Reconciled, database_url: str, warehouse: WarehouseResource
) -> None:
    try:
        dbt(warehouse, "build", "--select", *RECON_MODELS, env={"BANKFLOW_LEDGER_TABLE": "no_such_table"})
        assert rows(database_url, "select count(*) from staging.stg_ledger__entries") == [(0,)]
        kinds = rows(database_url, "select distinct match_kind from marts.recon_matches")
        assert kinds == [("settlement",)]
        assert rows(
            database_url, "select count(*) from marts.recon_exceptions where item_kind = 'ledger_entry'"
        ) == [(0,)]
    finally:
        dbt(warehouse, "build", "--select", *RECON_MODELS)


def test_books_from_an_export_file_reconcile_like_the_table(
    reconciled: Reconciled,
    sandbox: Sandbox,
    database_url: str,
    warehouse: WarehouseResource,
    tmp_path: Path,
    cli,
) -> None:
    before = snapshot(database_url)
    export = tmp_path / "northwind-kaveri-books.json"
    assert write_books_export(export, reconciled.books.entries) == len(reconciled.books.entries)
    landed = cli("recon", "import-ledger", str(export))
    assert landed.exit_code == 0, landed.output
    try:
        dbt(warehouse, "build", "--select", *RECON_MODELS, env={"BANKFLOW_LEDGER_TABLE": "no_such_table"})
        assert rows(database_url, "select count(*) from staging.stg_ledger__entries") == [(0,)]
        assert rows(
            database_url,
            "select count(*), count(distinct ledger_source) from intermediate.int_recon_ledger_entries",
        ) == [(len(reconciled.books.entries), 1)]
        # The same entries, read from the file instead of the table: the same matches and exceptions.
        assert snapshot(database_url) == before
        score = score_recon(database_url, sandbox.world, reconciled.books, reconciled.start, reconciled.end)
        assert score.precision >= RECON_PRECISION_TARGET and score.recall >= RECON_RECALL_TARGET
    finally:
        with psycopg.connect(database_url) as conn:
            conn.execute("delete from raw.ledger_export_entries")
        dbt(warehouse, "build", "--select", *RECON_MODELS)


def test_recon_commands_name_what_is_wrong(
    reconciled: Reconciled, database_url: str, tmp_path: Path, cli
) -> None:
    unknown = cli("recon", "unmatch", "no-such-match")
    assert unknown.exit_code == 2 and "no match 'no-such-match'" in " ".join(unknown.output.split())
    no_note = cli("recon", "resolve", "no-such-exception", "--note", " ")
    assert no_note.exit_code == 2 and "needs a note" in no_note.output
    with pytest.raises(UnknownReconItem):
        resolve(database_url, "no-such-exception", "a note")
    with pytest.raises(UnknownReconItem):
        unmatch(database_url, "no-such-match")
    broken = tmp_path / "broken.csv"
    broken.write_text(
        SEED_RULES.read_text().replace("amount_date_name,0.00,7,0.6", "amount_date_name,0.00,7,", 1)
    )
    refused = cli("recon", "backtest", "--rules", str(broken))
    assert refused.exit_code == 2 and "needs min_name_similarity" in " ".join(refused.output.split())
    with pytest.raises(InvalidReconRules, match="method 'fuzzy'"):
        bad = tmp_path / "bad.csv"
        bad.write_text(SEED_RULES.read_text().replace(",reference_exact,", ",fuzzy,", 1))
        read_recon_rules(bad)
