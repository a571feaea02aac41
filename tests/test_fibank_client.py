"""The Fibank client: period arithmetic and Sofia days as pure functions, then against the sandbox
over real HTTP: a long window read in <= 30-day statements with no gap or overlap, summary rows
counted and not landed, one failing account reported while the others land, one re-login when
the session times out, and a refused login that names the settings and never the password."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest
from test_fibank_sandbox import SOFIA, TODAY, RunningFibank, running_fibank

from resources.errors import AuthorizationRequired, ProviderError
from resources.http import RetryPolicy, loads_exact
from resources.providers.fibank import (
    MAX_QUERY_DAYS,
    CredentialsRejected,
    FibankClient,
    FibankConfig,
    _identity,
    extract_window,
    meta_content,
    period_bounds,
    query_windows,
    signed_amount,
    sofia_day,
    sofia_time,
)
from sandbox.fibank import STATEMENT

FAST = RetryPolicy(max_attempts=2, backoff_initial=0.01)
NOW = dt.datetime.combine(TODAY, dt.time(10), tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


# -- pure functions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 29, 30, 31, 59, 60, 61, 90, 93, 400])
def test_query_windows_tile_the_period_in_at_most_30_days(length: int) -> None:
    first = dt.date(2025, 3, 15)
    last = first + dt.timedelta(days=length - 1)
    windows = query_windows(first, last)
    assert windows[0][0] == first and windows[-1][1] == last
    assert all(0 <= (end - start).days < MAX_QUERY_DAYS for start, end in windows)
    assert all(later[0] == earlier[1] + DAY for earlier, later in zip(windows, windows[1:], strict=False))
    assert len(windows) == -(-length // MAX_QUERY_DAYS)


def test_period_bounds_carry_the_offset_of_each_end() -> None:
    # Sofia leaves summer time on 26 October 2025.
    assert period_bounds(dt.date(2025, 10, 13), dt.date(2025, 11, 11)) == (
        "2025-10-13T00:00:00+0300",
        "2025-11-11T23:59:59+0200",
    )


def test_sofia_time_uses_the_real_offset() -> None:
    assert sofia_time(dt.datetime(2025, 7, 1, 9, 0, tzinfo=dt.UTC)) == "2025-07-01T12:00:00+0300"
    assert sofia_time(dt.datetime(2025, 1, 15, 9, 0, tzinfo=dt.UTC)) == "2025-01-15T11:00:00+0200"


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2025-07-01T00:30:00+0300", dt.date(2025, 7, 1)),  # 21:30 UTC on 30 June
        ("2025-06-30T21:30:00+0000", dt.date(2025, 7, 1)),  # the same instant, told in UTC
        ("2025-01-15T23:30:00+0200", dt.date(2025, 1, 15)),
        ("2025-10-26T03:30:00+0200", dt.date(2025, 10, 26)),  # the hour that happens twice
        ("2025-07-01T00:30:00", None),  # no offset: no instant
        ("2025-02-30T10:00:00+0200", None),
        (None, None),
    ],
)
def test_sofia_day_is_the_calendar_day_in_sofia(text: str | None, day: dt.date | None) -> None:
    assert sofia_day(text) == day


def test_meta_content_reads_the_csrf_tag() -> None:
    html = '<html><head><meta charset="utf-8"><meta name="_csrf" content="abc-123"></head></html>'
    assert meta_content(html, "_csrf") == "abc-123"
    assert meta_content("<html></html>", "_csrf") is None


def _row(**changes: object) -> dict:
    row = {
        "acEntrySrNo": 7,
        "dateTime": "2025-07-01T00:30:00+0300",
        "valueDt": "2025-07-01T00:00:00+0300",
        "amount": Decimal("4.50"),
        "dtkt": "D",
        "acBal": Decimal("95.50"),
    }
    return row | changes


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"acEntrySrNo": None}, "no acEntrySrNo"),
        ({"acEntrySrNo": True}, "no acEntrySrNo"),
        ({"dtkt": "X"}, "dtkt 'X' is neither debit nor credit"),
        ({"amount": "four"}, "amount 'four' is not a number"),
        ({"amount": None}, "amount None is not a number"),
        ({"acBal": "n/a"}, "acBal 'n/a' is not a number"),
        ({"dateTime": "2025-07-01 00:30"}, "dateTime '2025-07-01 00:30' is not a date-time with an offset"),
        ({"dateTime": "2025-07-03T10:00:00+0300"}, "Sofia day 2025-07-03 is outside the requested period"),
        (
            {"valueDt": "2025-02-30T00:00:00+0200"},
            "valueDt '2025-02-30T00:00:00+0200' is not a calendar date",
        ),
    ],
)
def test_rows_that_cannot_be_staged_are_rejected_with_a_reason(changes: dict, reason: str) -> None:
    key, day, why = _identity(_row(**changes), dt.date(2025, 6, 30), dt.date(2025, 7, 1))
    assert why is not None and why.startswith(reason)


def test_a_good_row_is_keyed_by_acentrysrno_on_its_sofia_day() -> None:
    assert _identity(_row(), dt.date(2025, 6, 30), dt.date(2025, 7, 1)) == ("7", dt.date(2025, 7, 1), None)
    assert _identity(_row(acBal=None, dtkt="К"), dt.date(2025, 7, 1), dt.date(2025, 7, 1))[2] is None


def test_the_sign_comes_from_the_flag() -> None:
    assert signed_amount({"amount": Decimal("4.50"), "dtkt": "D"}) == Decimal("-4.50")
    assert signed_amount({"amount": "1200.10", "dtkt": "C"}) == Decimal("1200.10")
    assert signed_amount({"amount": Decimal("3"), "dtkt": "К"}) == Decimal("3")


# -- against the sandbox -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fb() -> Iterator[RunningFibank]:
    yield from running_fibank()


@pytest.fixture(autouse=True)
def _clean(fb: RunningFibank) -> Iterator[None]:
    yield
    fb.reset()


def client(fb: RunningFibank, password: str | None = None, **options: object) -> FibankClient:
    config = FibankConfig(fb.url, fb.state.client_id, password or fb.state.client_secret)
    return FibankClient(config, retry=FAST, concurrency=2, **options)  # type: ignore[arg-type]


def test_a_90_day_window_is_read_in_30_day_statements_with_no_gap_or_overlap(fb: RunningFibank) -> None:
    first, last = TODAY - dt.timedelta(days=89), TODAY
    with client(fb).open() as fibank:
        extract = extract_window(fibank, first, last, NOW)
    assert extract.failed_accounts == {} and extract.quarantined == []
    assert extract.query_windows == [
        (first, first + 29 * DAY),
        (first + 30 * DAY, first + 59 * DAY),
        (first + 60 * DAY, last),
    ]
    requests = fb.options.statement_requests
    assert len(requests) == extract.statement_calls == 3 * len(fb.accounts)
    for account in fb.accounts:
        periods = sorted((r.start, r.end) for r in requests if r.iban == account.iban)
        assert periods[0][0] == dt.datetime.combine(first, dt.time(0), tzinfo=SOFIA)
        assert periods[-1][1] == dt.datetime.combine(last, dt.time(23, 59, 59), tzinfo=SOFIA)
        for (_, end), (start, _) in zip(periods, periods[1:], strict=False):
            assert start - end == dt.timedelta(seconds=1)  # 23:59:59 -> 00:00:00 of the next day
        for start, end in periods:
            assert (end.astimezone(SOFIA).date() - start.astimezone(SOFIA).date()).days < MAX_QUERY_DAYS
    # Every movement once, on its Sofia day, equal to the world's.
    records = extract.load("fibank_transactions").records
    assert len({(r.account_ref, r.record_key) for r in records}) == len(records)
    for account in fb.accounts:
        world = fb.world.booked(account.account_id, first, last + DAY)
        landed = [loads_exact(r.payload) for r in records if r.account_ref == account.iban]
        assert Counter(r.partition_key for r in records if r.account_ref == account.iban) == Counter(
            txn.booking_date.isoformat() for txn in world
        )
        assert sum((signed_amount(row) for row in landed), Decimal(0)) == sum(
            (txn.amount for txn in world), Decimal(0)
        )


def test_summary_rows_are_counted_not_landed_and_the_closing_row_is_the_balance(fb: RunningFibank) -> None:
    first = TODAY - dt.timedelta(days=40)
    with client(fb).open() as fibank:
        extract = extract_window(fibank, first, TODAY, NOW)
    calls = 2 * len(fb.accounts)
    assert extract.summary_rows == Counter({"OP": calls, "DT": calls, "CT": calls, "CL": calls})
    landed = [loads_exact(r.payload) for r in extract.load("fibank_transactions").records]
    assert {row["trnType"] for row in landed} == {"TR"}
    balances = {r.account_ref: loads_exact(r.payload) for r in extract.load("fibank_balances").records}
    for account in fb.accounts:
        assert balances[account.iban]["trnType"] == "CL"
        assert balances[account.iban]["acBal"] == fb.world.balance(account.account_id, TODAY)


def test_a_past_window_reads_todays_balance_with_one_more_statement(fb: RunningFibank) -> None:
    day = TODAY - dt.timedelta(days=10)
    with client(fb).open() as fibank:
        extract = extract_window(fibank, day, day, NOW)
    requests = fb.options.statement_requests
    assert extract.statement_calls == len(requests) == 2 * len(fb.accounts)
    assert {r.start.date() for r in requests} == {day, TODAY}
    partitions = {r.partition_key for r in extract.load("fibank_transactions").records}
    assert partitions <= {day.isoformat()}


def test_one_account_failing_does_not_stop_the_others(fb: RunningFibank) -> None:
    failing, healthy = fb.accounts
    fb.options.fail_account(failing.iban)
    first = TODAY - dt.timedelta(days=5)
    with client(fb).open() as fibank:
        extract = extract_window(fibank, first, TODAY, NOW)
    assert list(extract.failed_accounts) == [failing.iban]
    assert "HTTP 500" in extract.failed_accounts[failing.iban]
    transactions = extract.load("fibank_transactions")
    assert {r.account_ref for r in transactions.records} == {healthy.iban}
    # Left out of every replace scope but the account listing: its previous rows stay.
    assert transactions.scope.account_refs == [healthy.iban]
    assert extract.load("fibank_balances").scope.account_refs == [healthy.iban]
    assert extract.load("fibank_accounts").scope.account_refs == [failing.iban, healthy.iban]
    # Retried like any 5xx before giving up.
    assert sum(1 for r in fb.options.statement_requests if r.iban == failing.iban) == FAST.max_attempts


def test_every_account_failing_fails_the_run(fb: RunningFibank) -> None:
    for account in fb.accounts:
        fb.options.fail_account(account.iban)
    with client(fb).open() as fibank, pytest.raises(ProviderError, match="HTTP 500"):
        extract_window(fibank, TODAY, TODAY, NOW)


def test_a_session_timing_out_mid_run_is_renewed_by_one_login(fb: RunningFibank) -> None:
    first = TODAY - dt.timedelta(days=89)
    fb.options.expire_sessions_after = 2
    sent_before = fb.state.request_count(STATEMENT)
    with client(fb).open() as fibank:
        extract = extract_window(fibank, first, TODAY, NOW)
        logins = fibank.logins
    assert logins == 2 and fb.options.logins == 2
    assert extract.failed_accounts == {}
    # Calls refused with the timed-out session never reached the statement, and were sent again.
    refused = fb.state.request_count(STATEMENT) - sent_before - len(fb.options.statement_requests)
    assert refused >= 1
    expected = sum(len(fb.world.booked(a.account_id, first, TODAY + DAY)) for a in fb.accounts)
    assert len(extract.load("fibank_transactions").records) == expected


def test_a_wrong_password_is_a_clear_error_without_the_password(
    fb: RunningFibank, caplog: pytest.LogCaptureFixture
) -> None:
    password = "Wr0ng-Passw0rd-!"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CredentialsRejected) as raised:
        client(fb, password=password).open()
    message = str(raised.value)
    assert isinstance(raised.value, AuthorizationRequired)
    assert "refused the username or password" in message and "BANKFLOW_FIBANK_PASSWORD" in message
    assert "bankflow connect" not in message  # nothing to reconnect: the settings are wrong
    assert password not in message and password not in repr(raised.value)
    assert password not in caplog.text and fb.state.client_id not in caplog.text
    assert "userName=%2A%2A%2A" in caplog.text  # httpx's request log, with the login name masked
    assert fb.options.failed_logins == 1  # refused once, not retried into a lockout
