"""A failing Great Expectations expectation shows as a failed Dagster asset check."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest
from pipeline_runs import run_window

from resources.quality.gx_suites import load_suite


@pytest.fixture
def marts_with_bad_row(definitions: dg.Definitions, database_url: str) -> Iterator[None]:
    today = datetime.now(UTC).date()
    assert run_window(definitions, today, today).success
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "insert into marts.fct_transactions (transaction_key, source, account_key, source_transaction_id,"
            " status, booking_date, amount, currency, raw_record_key)"
            " select transaction_key, source, account_key, source_transaction_id, status, %s, amount, 'ZZZ',"
            " raw_record_key from marts.fct_transactions limit 1",
            (today + timedelta(days=30),),
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

    evaluation = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "gx_fct_transactions"
    )
    assert not evaluation.passed
    failed = evaluation.metadata["failed_expectations"].value
    assert set(failed) == {
        "expect_column_values_to_be_unique(transaction_key)",
        "expect_column_values_to_be_in_set(currency)",
        "expect_column_values_to_be_between(booking_date)",
    }
    assert failed["expect_column_values_to_be_in_set(currency)"]["unexpected_count"] == 1
    assert failed["expect_column_values_to_be_in_set(currency)"]["sample"] == ["ZZZ"]


def test_suite_is_a_reviewed_file_with_the_issue_expectations() -> None:
    suite = load_suite("marts__fct_transactions")
    kinds = {(e["type"], e["kwargs"]["column"]) for e in suite["expectations"]}
    assert kinds == {
        ("expect_column_values_to_be_unique", "transaction_key"),
        ("expect_column_values_to_not_be_null", "amount"),
        ("expect_column_values_to_not_be_null", "currency"),
        ("expect_column_values_to_not_be_null", "booking_date"),
        ("expect_column_values_to_be_in_set", "currency"),
        ("expect_column_values_to_be_between", "booking_date"),
    }
    currencies = next(e for e in suite["expectations"] if e["type"] == "expect_column_values_to_be_in_set")
    assert {"EUR", "GBP", "RON", "BGN", "INR", "USD"} <= set(currencies["kwargs"]["value_set"])
    assert not {"XXX", "XTS"} & set(currencies["kwargs"]["value_set"])
