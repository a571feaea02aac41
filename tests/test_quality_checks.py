"""Great Expectations suites at every layer as Dagster asset checks: reviewed files, partition-aware
validation, Data Docs, blocking checks that stop the models after bad raw rows, and the audit job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from pipeline_runs import fct_snapshot, rows, run_window

from pipelines.partitions import LOOKBACK_DAYS
from resources.quality.gx_suites import LAYERS, load_parameters, load_suites
from sandbox.server import Sandbox
from sandbox.state import BAD_ROW_KINDS

TODAY = datetime.now(UTC).date()
FIRST_FETCHED = TODAY - timedelta(days=LOOKBACK_DAYS)


def gx_evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
        if e.check_name.startswith("gx_")
    }


def defined_suites(definitions: dg.Definitions) -> set[tuple[str, str]]:
    assets = {key.to_user_string() for key in definitions.resolve_asset_graph().get_all_asset_keys()}
    return {(s.asset, s.check_name) for s in load_suites() if s.asset in assets}


@pytest.fixture(scope="module")
def clean_run(definitions: dg.Definitions) -> dg.ExecuteInProcessResult:
    return run_window(definitions, TODAY, TODAY)


def test_suites_are_reviewed_files_one_per_family() -> None:
    suites = load_suites()
    assert {s.layer for s in suites} == set(LAYERS)
    assert {s.asset for s in load_suites("raw")} >= {
        f"raw_{source}_transactions"
        for source in ("truelayer", "berlin_group", "gocardless", "revolut", "fibank")
    }
    assert {s.asset for s in load_suites("staging")} >= {
        "stg_truelayer__transactions",
        "stg_files__transactions",
    }
    assert {s.check_name for s in load_suites("marts")} >= {
        "gx_fct_transactions",
        "gx_fct_transactions_accounts",
        "gx_booked_spend_categorised",
        "gx_balance_continuity",
        "gx_recon_matches",
        "gx_settlement_sums",
    }
    # One check per asset and name; every expectation says why it is there.
    assert len({(s.asset, s.check_name) for s in suites}) == len(suites)
    assert all(e.get("meta", {}).get("why") for s in suites for e in s.expectations)
    currencies = load_parameters()["iso_currencies"]
    assert {"EUR", "GBP", "RON", "BGN", "INR", "USD"} <= set(currencies)
    assert not {"XXX", "XTS", "ZZZ"} & set(currencies)


def test_every_suite_passes_on_the_sandbox_for_the_days_the_run_loaded(
    clean_run: dg.ExecuteInProcessResult, definitions: dg.Definitions
) -> None:
    assert clean_run.success
    evaluations = gx_evaluations(clean_run)
    assert set(evaluations) == defined_suites(definitions)
    assert [key for key, e in evaluations.items() if not e.passed] == []
    raw = evaluations[("raw_truelayer_transactions", "gx_raw")].metadata
    assert raw["rows_validated"].value == f"partition_key {FIRST_FETCHED} .. {TODAY}"
    assert evaluations[("dim_accounts", "gx_dim_accounts")].metadata["rows_validated"].value == "all rows"
    # Data Docs: a page per suite result and the index, on disk, named in the metadata.
    page = Path(raw["data_docs"].value)
    assert page.suffix == ".html" and page.is_file()
    assert "raw.truelayer_transactions" in page.read_text()
    assert Path(raw["data_docs_index"].value).is_file()
    quarantine = [e for e in clean_run.get_asset_check_evaluations() if e.check_name == "nothing_quarantined"]
    assert {e.asset_key.to_user_string() for e in quarantine} >= {"raw_truelayer_transactions"}
    assert all(e.passed for e in quarantine)


@pytest.fixture
def bad_truelayer_rows(sandbox: Sandbox, definitions: dg.Definitions) -> Iterator[None]:
    sandbox.states["truelayer"].set_bad_rows(BAD_ROW_KINDS)
    yield
    sandbox.states["truelayer"].clear_fault()
    # The next extract lands what the bank sends now in place of the bad rows; nothing after raw
    # saw them, so the rest is as it was.
    assert run_window(definitions, TODAY, TODAY, only="raw_truelayer").success


def test_bad_rows_fail_the_right_checks_stop_the_models_and_leave_the_marts(
    clean_run: dg.ExecuteInProcessResult,
    definitions: dg.Definitions,
    database_url: str,
    bad_truelayer_rows: None,
) -> None:
    assert clean_run.success
    marts_before = fct_snapshot(database_url)

    result = run_window(definitions, TODAY, TODAY)

    assert not result.success
    evaluations = gx_evaluations(result)
    raw = evaluations[("raw_truelayer_transactions", "gx_raw")]
    assert not raw.passed and raw.severity == dg.AssetCheckSeverity.ERROR
    failed = raw.metadata["failed_expectations"].value
    assert set(failed) == {
        "expect_column_values_to_not_be_null(amount)",
        "expect_column_values_to_be_in_set(currency)",
        "expect_compound_columns_to_be_unique(account_ref,record_key,run_id)",
    }
    # One bad row of each kind per account answer that had rows; each is counted, none is lost.
    landed = rows(
        database_url,
        "select count(*) filter (where payload ->> 'amount' is null),"
        " count(*) filter (where payload ->> 'currency' = 'ZZZ'),"
        " count(*) filter (where payload ->> 'description' like '%% (sent again)')"
        " from raw.truelayer_transactions where partition_key >= %s",
        (FIRST_FETCHED.isoformat(),),
    )[0]
    null_amounts, unknown_currencies, resent = landed
    assert null_amounts > 0 and null_amounts == unknown_currencies == resent
    assert failed["expect_column_values_to_not_be_null(amount)"]["unexpected_count"] == null_amounts
    assert failed["expect_column_values_to_be_in_set(currency)"]["unexpected_count"] == unknown_currencies
    assert failed["expect_column_values_to_be_in_set(currency)"]["sample"][0] == "ZZZ"
    # The duplicate and the row it repeats are both unexpected.
    assert failed["expect_compound_columns_to_be_unique(account_ref,record_key,run_id)"][
        "unexpected_count"
    ] == (2 * resent)
    # The future-dated row never reached raw: the extract quarantined it, and its check warns.
    quarantine = next(
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "nothing_quarantined"
        and e.asset_key.to_user_string() == "raw_truelayer_transactions"
    )
    assert not quarantine.passed and quarantine.severity == dg.AssetCheckSeverity.WARN
    assert quarantine.metadata["records_quarantined"].value == null_amounts
    assert all("outside the requested window" in reason for reason in quarantine.metadata["reasons"].value)
    # The other sources' raw rows are fine.
    assert [key for key, e in evaluations.items() if key[1] == "gx_raw" and not e.passed] == [raw_key(raw)]
    # Blocking: nothing after raw was built in this run, and the marts are as they were.
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "raw_truelayer_transactions" in materialized
    assert not materialized & {"stg_truelayer__transactions", "int_transactions_unioned", "fct_transactions"}
    assert fct_snapshot(database_url) == marts_before


def raw_key(evaluation: dg.AssetCheckEvaluation) -> tuple[str, str]:
    return evaluation.asset_key.to_user_string(), evaluation.check_name


def test_the_audit_job_validates_whole_tables(
    clean_run: dg.ExecuteInProcessResult, definitions: dg.Definitions
) -> None:
    result = definitions.resolve_job_def("quality_audit").execute_in_process(raise_on_error=False)

    evaluations = gx_evaluations(result)
    assert set(evaluations) == defined_suites(definitions)
    assert {e.metadata["rows_validated"].value for e in evaluations.values()} == {"all rows"}
    assert [key for key, e in evaluations.items() if not e.passed] == []
    assert result.get_asset_materialization_events() == []


@pytest.fixture
def marts_with_bad_row(clean_run: dg.ExecuteInProcessResult, database_url: str) -> Iterator[None]:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "insert into marts.fct_transactions (transaction_key, source, account_key, source_transaction_id,"
            " status, booking_date, amount, currency, raw_record_key)"
            " select transaction_key, source, account_key, source_transaction_id, status, %s, amount, 'ZZZ',"
            " raw_record_key from marts.fct_transactions limit 1",
            (TODAY + timedelta(days=30),),
        )
    yield
    with psycopg.connect(database_url) as conn:
        conn.execute("delete from marts.fct_transactions where currency = 'ZZZ'")


def test_failing_expectations_show_in_the_check(
    marts_with_bad_row: None, definitions: dg.Definitions
) -> None:
    job = dg.define_asset_job("gx_only", selection=dg.AssetSelection.checks_for_assets("fct_transactions"))
    check_job = dg.Definitions.merge(definitions, dg.Definitions(jobs=[job])).resolve_job_def("gx_only")

    result = check_job.execute_in_process(raise_on_error=False)

    evaluation = gx_evaluations(result)[("fct_transactions", "gx_fct_transactions")]
    assert not evaluation.passed
    failed = evaluation.metadata["failed_expectations"].value
    assert set(failed) == {
        "expect_column_values_to_be_unique(transaction_key)",
        "expect_column_values_to_be_in_set(currency)",
        "expect_column_values_to_be_between(booking_date)",
    }
    assert failed["expect_column_values_to_be_in_set(currency)"]["unexpected_count"] == 1
    assert failed["expect_column_values_to_be_in_set(currency)"]["sample"] == ["ZZZ"]
