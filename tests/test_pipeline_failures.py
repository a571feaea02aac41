"""Bad input from the bank fails the run with a clear message and leaves the previous rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from pipeline_runs import raw_snapshot, run_window

from sandbox.server import Sandbox


@pytest.fixture(scope="module")
def landed_day(definitions: dg.Definitions) -> datetime:
    day = datetime.now(UTC).date() - timedelta(days=30)
    assert run_window(definitions, day, day).success
    return day


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("malformed_json", "response is not valid JSON"),
        ("server_error", "HTTP 500"),
        ("unauthorized", "Reconnect with: bankflow connect truelayer"),
    ],
)
def test_bad_response_fails_run_and_keeps_previous_rows(
    mode: str, message: str, landed_day, definitions: dg.Definitions, sandbox: Sandbox, database_url: str
) -> None:
    before = {
        table: raw_snapshot(database_url, table) for table in ("truelayer_transactions", "truelayer_accounts")
    }
    assert before["truelayer_transactions"]
    sandbox.state.set_fault(mode)

    result = run_window(definitions, landed_day, landed_day)

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "raw_truelayer"
    assert message in str(failure.event_specific_data.error)
    assert {table: raw_snapshot(database_url, table) for table in before} == before


def test_transient_errors_are_retried(landed_day, definitions: dg.Definitions, sandbox: Sandbox) -> None:
    # One 429 with Retry-After: 1 then normal answers: the run succeeds on the retry.
    sandbox.state.set_fault("rate_limit", count=1)
    assert run_window(definitions, landed_day, landed_day).success
    assert sandbox.state.fault is None
