"""Bad input from the bank fails the run with a clear message and leaves the previous rows.

The runs here are TrueLayer's extract alone: what is asserted is what reached raw."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from pipeline_runs import raw_snapshot, run_window

from bankflow_cli.connect import connect_truelayer
from bankflow_cli.demo import scripted_user
from bankflow_cli.provider_config import truelayer_config
from resources.vault import TokenVault
from sandbox.server import Sandbox

TRUELAYER = "raw_truelayer"


@pytest.fixture(scope="module")
def landed_day(definitions: dg.Definitions) -> datetime:
    day = datetime.now(UTC).date() - timedelta(days=30)
    assert run_window(definitions, day, day, only=TRUELAYER).success
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

    result = run_window(definitions, landed_day, landed_day, only=TRUELAYER)

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "raw_truelayer"
    assert message in str(failure.event_specific_data.error)
    assert {table: raw_snapshot(database_url, table) for table in before} == before


def test_transient_errors_are_retried(landed_day, definitions: dg.Definitions, sandbox: Sandbox) -> None:
    # One 429 with Retry-After: 1 then normal answers: the run succeeds on the retry.
    sandbox.state.set_fault("rate_limit", count=1)
    assert run_window(definitions, landed_day, landed_day, only=TRUELAYER).success
    assert sandbox.state.fault is None


def test_token_rejected_mid_run_is_refreshed(
    landed_day, definitions: dg.Definitions, sandbox: Sandbox, database_url: str
) -> None:
    before = raw_snapshot(database_url)
    sandbox.state.set_fault("unauthorized", count=1)
    assert run_window(definitions, landed_day, landed_day, only=TRUELAYER).success
    assert raw_snapshot(database_url) == before


def test_revoked_consent_stops_the_source_with_the_fix(
    landed_day, definitions: dg.Definitions, sandbox: Sandbox, database_url: str, secret_key: str
) -> None:
    before = raw_snapshot(database_url)
    sandbox.state.oauth.revoke_refresh_tokens()
    try:
        result = run_window(definitions, landed_day, landed_day, only=TRUELAYER)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert failure.step_key == "raw_truelayer"
        assert "Reconnect with: bankflow connect truelayer" in str(failure.event_specific_data.error)
        assert raw_snapshot(database_url) == before
    finally:
        # Later tests need the connection back: the user reconnects.
        config = replace(truelayer_config(), redirect_uri="http://127.0.0.1:0/callback")
        connect_truelayer(
            config, TokenVault(database_url, secret_key), "truelayer", scripted_user, timeout=30
        )


def test_slow_answer_times_out_and_is_retried(
    landed_day, definitions: dg.Definitions, sandbox: Sandbox, database_url: str
) -> None:
    before = raw_snapshot(database_url)
    sandbox.state.slow_seconds = 8.0  # past the test client's 5 s timeout
    sandbox.state.set_fault("slow", count=1)
    assert run_window(definitions, landed_day, landed_day, only=TRUELAYER).success
    assert sandbox.state.fault is None
    assert raw_snapshot(database_url) == before
