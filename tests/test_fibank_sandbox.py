"""The Fibank e-banking sandbox speaks the contract (§6): the login's cookies, CSRF token and
implicit-grant fragment, the EBank-* headers, statements capped at 30 days with their summary
rows, Sofia offsets, and its switches (one account's HTTP 500, sessions expiring)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from sandbox.fibank import (
    AUTHORIZE,
    CERTIFICATES,
    CUSTOMER_QUERY,
    FILTERED_ACCOUNTS,
    LOGIN,
    STATEMENT,
    FibankOptions,
    build_fibank_app,
    customer_id,
)
from sandbox.model import Account
from sandbox.server import serve
from sandbox.state import SandboxState
from sandbox.world import World

SEED = 7
# Eleven days after Sofia left summer time (26 Oct 2025): a 90-day window has +0300 and +0200 rows.
TODAY = dt.date(2025, 11, 12)
SOFIA = ZoneInfo("Europe/Sofia")
AUTHORIZE_PARAMS = {
    "response_type": "token",
    "client_id": "E_BANK",
    "redirect_uri": "/EBank/",
    "scope": "E_BANK",
    "state": "st-1",
}


@dataclass
class RunningFibank:
    url: str
    world: World
    state: SandboxState
    options: FibankOptions

    @property
    def accounts(self) -> list[Account]:
        return self.world.accounts_for("fibank")

    def reset(self) -> None:
        """Every switch off and the request log empty (sessions stay valid)."""
        self.state.clear_fault()
        self.state.slow_seconds = 2.0
        self.options.reset()


def running_fibank(world: World | None = None) -> Iterator[RunningFibank]:
    state, options = SandboxState(), FibankOptions()
    world = world or World(SEED, TODAY)
    with serve(build_fibank_app(world, state, options)) as url:
        yield RunningFibank(url, world, state, options)


@pytest.fixture(scope="module")
def fb() -> Iterator[RunningFibank]:
    yield from running_fibank()


@pytest.fixture(autouse=True)
def _clean(fb: RunningFibank) -> Iterator[None]:
    yield
    fb.reset()


def browser_login(fb: RunningFibank, password: str | None = None) -> str:
    """Play the web app's login with a plain httpx client; return the access token."""
    with httpx.Client(base_url=fb.url) as web:
        web.get(LOGIN, params={"client_id": "E_BANK"})
        page = web.get(AUTHORIZE, params=AUTHORIZE_PARAMS, follow_redirects=True)
        csrf = page.text.split('name="_csrf" content="')[1].split('"')[0]
        response = web.post(
            LOGIN,
            data={
                "username": fb.state.client_id,
                "password": password or fb.state.client_secret,
                "client_id": "E_BANK",
                "time": now_in_sofia(),
                "_csrf": csrf,
            },
        )
        assert response.status_code == 302
        redirect = web.get(response.headers["location"])
    assert redirect.status_code == 302
    fragment = parse_qs(urlsplit(redirect.headers["location"]).fragment)
    assert fragment["state"] == ["st-1"]
    return fragment["access_token"][0]


def now_in_sofia() -> str:
    return dt.datetime.now(dt.UTC).astimezone(SOFIA).strftime("%Y-%m-%dT%H:%M:%S%z")


def api_headers(fb: RunningFibank, token: str, **extra: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "EBank-Client-Time": now_in_sofia(),
        "EBank-Cust-Id": customer_id(fb.world),
        **extra,
    }


def statement(fb: RunningFibank, token: str, iban: str, start: str, end: str) -> httpx.Response:
    params = {"FromDate": start, "ToDate": end, "Iban": iban, "StmtType": "T", "isAccountFromPSD2": "false"}
    return httpx.get(fb.url + STATEMENT, params=params, headers=api_headers(fb, token))


# -- login ---------------------------------------------------------------------------------------------


def test_the_login_gives_a_token_only_in_the_redirect_fragment(fb: RunningFibank) -> None:
    token = browser_login(fb)
    customer = httpx.get(fb.url + CUSTOMER_QUERY, headers=api_headers(fb, token, **{"EBank-Cust-Id": ""}))
    assert customer.json()["customer"][0]["ibCustomerId"] == customer_id(fb.world)
    accounts = httpx.get(fb.url + FILTERED_ACCOUNTS, headers=api_headers(fb, token)).json()
    assert [a["ibanAcNo"] for a in accounts] == [a.iban for a in fb.accounts]
    assert {a["ccy"] for a in accounts} == {"BGN", "EUR"}


def test_the_login_wants_the_session_cookie_and_its_csrf_token(fb: RunningFibank) -> None:
    form = {"username": fb.state.client_id, "password": fb.state.client_secret, "client_id": "E_BANK"}
    with httpx.Client(base_url=fb.url) as web:
        # No session at all, then a session but a CSRF token of another page.
        assert web.post(LOGIN, data={**form, "_csrf": "x", "time": now_in_sofia()}).status_code == 403
        web.get(AUTHORIZE, params=AUTHORIZE_PARAMS, follow_redirects=True)
        assert web.post(LOGIN, data={**form, "_csrf": "x", "time": now_in_sofia()}).status_code == 403
    # The anonymous authorize request goes to the login page, not to a token.
    with httpx.Client(base_url=fb.url) as web:
        response = web.get(AUTHORIZE, params=AUTHORIZE_PARAMS)
    assert response.status_code == 302 and response.headers["location"] == LOGIN


def test_a_wrong_password_goes_back_to_the_login_page_with_an_error(fb: RunningFibank) -> None:
    with httpx.Client(base_url=fb.url) as web:
        page = web.get(AUTHORIZE, params=AUTHORIZE_PARAMS, follow_redirects=True)
        csrf = page.text.split('name="_csrf" content="')[1].split('"')[0]
        response = web.post(
            LOGIN,
            data={"username": fb.state.client_id, "password": "nope", "client_id": "E_BANK"}
            | {"time": now_in_sofia(), "_csrf": csrf},
        )
    assert response.status_code == 302 and response.headers["location"] == f"{LOGIN}?error"
    assert fb.options.failed_logins == 1


def test_the_certificate_lookup_lists_none(fb: RunningFibank) -> None:
    response = httpx.get(fb.url + CERTIFICATES, params={"client_id": "E_BANK", "userName": "someone"})
    assert response.status_code == 200 and response.json() == []


def test_api_calls_want_sofia_time_with_its_real_offset_and_the_customer(fb: RunningFibank) -> None:
    token = browser_login(fb)
    # 1 July is summer time: +0200 (the reference connector's hard-coded offset) is an hour off.
    wrong = api_headers(fb, token, **{"EBank-Client-Time": "2025-07-01T12:00:00+0200"})
    assert httpx.get(fb.url + FILTERED_ACCOUNTS, headers=wrong).status_code == 400
    right = api_headers(fb, token, **{"EBank-Client-Time": "2025-07-01T12:00:00+0300"})
    assert httpx.get(fb.url + FILTERED_ACCOUNTS, headers=right).status_code == 200
    stranger = api_headers(fb, token, **{"EBank-Cust-Id": "42"})
    assert httpx.get(fb.url + FILTERED_ACCOUNTS, headers=stranger).status_code == 403


def test_expired_sessions_are_refused(fb: RunningFibank) -> None:
    token = browser_login(fb)
    fb.options.expire_sessions()
    response = httpx.get(fb.url + FILTERED_ACCOUNTS, headers=api_headers(fb, token))
    assert response.status_code == 401 and response.json()["errorCode"] == "INVALID_TOKEN"


# -- statements ----------------------------------------------------------------------------------------


def test_a_statement_is_at_most_30_days(fb: RunningFibank) -> None:
    token = browser_login(fb)
    iban = fb.accounts[0].iban
    ok = statement(fb, token, iban, "2025-09-01T00:00:00+0300", "2025-09-30T23:59:59+0300")
    too_long = statement(fb, token, iban, "2025-09-01T00:00:00+0300", "2025-10-01T00:00:00+0300")
    assert ok.status_code == 200
    assert too_long.status_code == 400 and too_long.json()["errorCode"] == "PERIOD_TOO_LONG"
    assert [r.status for r in fb.options.statement_requests] == [200, 400]


def test_a_statement_has_summary_rows_around_movements_that_add_up(fb: RunningFibank) -> None:
    token = browser_login(fb)
    account = fb.accounts[0]
    rows = statement(fb, token, account.iban, "2025-10-13T00:00:00+0300", "2025-11-11T23:59:59+0200")
    assert rows.status_code == 200
    body = rows.json(parse_float=Decimal)["acc"]
    assert len(body) == 1
    stmt = body[0]["stmt"]
    kinds = [row["trnType"] for row in stmt]
    assert kinds[0] == "OP" and kinds[-3:] == ["DT", "CT", "CL"]
    movements = stmt[1:-3]
    assert movements and {row["trnType"] for row in movements} == {"TR"}
    signed = [-row["amount"] if row["dtkt"] == "D" else row["amount"] for row in movements]
    assert stmt[0]["acBal"] + sum(signed) == stmt[-1]["acBal"]
    assert stmt[-3]["amount"] == -sum(a for a in signed if a < 0)
    assert stmt[-2]["amount"] == sum(a for a in signed if a > 0)
    assert all(row["amount"] > 0 for row in movements)
    assert len({row["acEntrySrNo"] for row in movements}) == len(movements)
    world = fb.world.booked(account.account_id, dt.date(2025, 10, 13), dt.date(2025, 11, 12))
    assert sorted(signed) == sorted(txn.amount for txn in world)
    assert stmt[-1]["acBal"] == fb.world.balance(account.account_id, dt.date(2025, 11, 11))


def test_times_are_sofia_wall_clock_with_the_offset_of_their_day(fb: RunningFibank) -> None:
    token = browser_login(fb)
    account = fb.accounts[0]
    rows = statement(fb, token, account.iban, "2025-10-13T00:00:00+0300", "2025-11-11T23:59:59+0200")
    offsets = {}
    for row in rows.json()["acc"][0]["stmt"][1:-3]:
        moment = dt.datetime.strptime(row["dateTime"], "%Y-%m-%dT%H:%M:%S%z")
        assert moment.utcoffset() == moment.astimezone(SOFIA).utcoffset()
        offsets[row["dateTime"][-5:]] = moment
    assert set(offsets) == {"+0300", "+0200"}
    # The overnight batch posts fees at 00:30 Sofia time: the UTC day is the day before.
    fee = next(row for row in rows.json()["acc"][0]["stmt"] if row.get("trnCode") == "FEE")
    assert fee["dateTime"] == "2025-10-28T00:30:00+0200"


def test_one_failing_account_answers_500_and_the_others_do_not(fb: RunningFibank) -> None:
    token = browser_login(fb)
    failing, healthy = fb.accounts
    fb.options.fail_account(failing.iban)
    period = ("2025-11-01T00:00:00+0200", "2025-11-10T23:59:59+0200")
    assert statement(fb, token, failing.iban, *period).status_code == 500
    assert statement(fb, token, healthy.iban, *period).status_code == 200
    fb.options.heal_accounts()
    assert statement(fb, token, failing.iban, *period).status_code == 200


def test_the_session_times_out_after_the_chosen_number_of_statements(fb: RunningFibank) -> None:
    token = browser_login(fb)
    fb.options.expire_sessions_after = 1
    period = ("2025-11-01T00:00:00+0200", "2025-11-10T23:59:59+0200")
    assert statement(fb, token, fb.accounts[0].iban, *period).status_code == 200
    assert statement(fb, token, fb.accounts[0].iban, *period).status_code == 401
    assert statement(fb, browser_login(fb), fb.accounts[0].iban, *period).status_code == 200
