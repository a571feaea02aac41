"""The HDFC-, ICICI- and SBI-style sandbox banks speak their styles over real HTTP: auth, window
parameters, paging that walks every record once, and the fault switches."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bankflow_cli.demo import rest_bank_sandbox_env
from resources.providers.rest_bank_config import DEFAULT_CONNECTORS_DIR, RestBank, load_rest_banks
from sandbox.rest_banks import HDFC, ICICI, SBI, STYLES, BankStyle, RestBankOptions, build_rest_bank_app
from sandbox.rest_banks_json import served_transactions
from sandbox.server import serve
from sandbox.state import SandboxState
from sandbox.world import Account, World

SEED = 7
BANKS = ("hdfc", "icici", "sbi")


@dataclass
class RunningBank:
    """One bank app on a free port, with its own credentials (unique per module, for the log tests)."""

    config: RestBank
    style: BankStyle
    url: str
    world: World
    state: SandboxState
    options: RestBankOptions
    env: dict[str, str]

    @property
    def name(self) -> str:
        return self.config.name

    def reset(self) -> None:
        self.state.clear_fault()
        self.options.reset()

    def secrets(self) -> list[str]:
        return [self.state.client_secret, self.state.client_id]


def shipped_banks() -> dict[str, RestBank]:
    return {bank.name: bank for bank in load_rest_banks([DEFAULT_CONNECTORS_DIR])}


@contextlib.contextmanager
def running_banks(
    world: World, styles: dict[str, tuple[RestBank, BankStyle]]
) -> Iterator[dict[str, RunningBank]]:
    """Serve each bank's app with fresh random credentials; yields them by name."""
    with contextlib.ExitStack() as stack:
        running = {}
        for name, (config, style) in styles.items():
            state = SandboxState(
                client_id=f"cid-{secrets.token_hex(6)}", client_secret=f"sec-{secrets.token_urlsafe(18)}"
            )
            options = RestBankOptions(retry_after_seconds=0)
            url = stack.enter_context(serve(build_rest_bank_app(world, state, style, options)))
            env = rest_bank_sandbox_env(config, url, state.client_id, state.client_secret)
            running[name] = RunningBank(config, style, url, world, state, options, env)
        yield running


@pytest.fixture(scope="module")
def banks() -> Iterator[dict[str, RunningBank]]:
    configs = shipped_banks()
    with running_banks(World(SEED), {name: (configs[name], STYLES[name]) for name in BANKS}) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean(banks: dict[str, RunningBank]) -> Iterator[None]:
    yield
    for bank in banks.values():
        bank.reset()


def auth_headers(bank: RunningBank) -> dict[str, str]:
    """What the bank's style wants, as a client would send it."""
    state = bank.state
    if bank.style.auth == "bearer":
        return {"Authorization": f"Bearer {state.client_secret}"}
    if bank.style.auth == "api_key_bearer":
        return {"apikey": state.client_id, "Authorization": f"Bearer {state.client_secret}"}
    token = httpx.post(
        f"{bank.url}{bank.style.token_path}",
        data={"grant_type": "client_credentials"},
        auth=(state.client_id, state.client_secret),
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def window_params(bank: RunningBank, first: dt.date, last: dt.date) -> dict[str, str]:
    style = bank.style
    return {
        style.from_param: first.strftime(style.date_format),
        style.to_param: last.strftime(style.date_format),
    }


def walk(
    bank: RunningBank, number: str, first: dt.date, last: dt.date, size: int = 7
) -> list[dict[str, Any]]:
    """Every record of a window, following the style's paging by hand."""
    style, headers = bank.style, auth_headers(bank)
    url = bank.url + style.transactions_path.replace("{account}", number)
    params: dict[str, Any] | None = {**window_params(bank, first, last), style.size_param: size}
    if style.account_param:
        params[style.account_param] = number
    records: list[dict[str, Any]] = []
    for index in range(1000):
        if style.paging == "page":
            params[style.page_param] = style.first_page + index
        elif style.paging == "offset":
            params[style.offset_param] = len(records)
        body = httpx.get(url, params=params, headers=headers).json()
        items = body[style.records_key]
        records += items
        if style.paging == "page" and index + 1 >= body["pagination"]["totalPages"]:
            return records
        if style.paging == "offset" and len(records) >= body["total"]:
            return records
        if style.paging == "next_link":
            if not body["links"]["next"]:
                return records
            url, params = bank.url + body["links"]["next"], None  # the link carries the query
    raise AssertionError("paging did not end")


def window_start_with_a_failed_attempt(world: World, account: Account, last: dt.date) -> dt.date:
    """25 days back, or further to the latest failed attempt: which debits have one is decided by
    their ids, so a window that moves with today may hold none (it held none on 2026-12-07)."""
    history = served_transactions(world, account, world.history_start, last)
    latest_failed = max(row.moment.date() for row in history if row.status == "FAILED")
    return min(last - dt.timedelta(days=25), latest_failed)


@pytest.mark.parametrize("name", BANKS)
def test_every_record_once_whatever_the_paging(name: str, banks: dict[str, RunningBank]) -> None:
    bank = banks[name]
    account = bank.world.accounts_for(name)[0]
    last = bank.world.today
    first = window_start_with_a_failed_attempt(bank.world, account, last)
    records = walk(bank, account.number, first, last)
    expected = served_transactions(bank.world, account, first, last)
    assert len(records) == len(expected) > 7
    key = bank.style.required_keys[0]
    assert len({record[key] for record in records}) == len(records)
    statuses = {record[bank.style.required_keys[3]] for record in records}
    assert len(statuses) >= 2  # successes and failed attempts at least


@pytest.mark.parametrize("name", BANKS)
def test_credentials_are_checked(name: str, banks: dict[str, RunningBank]) -> None:
    bank = banks[name]
    accounts_url = bank.url + bank.style.accounts_path
    assert httpx.get(accounts_url).status_code == 401
    assert (
        httpx.get(accounts_url, headers={"Authorization": "Bearer wrong", "apikey": "wrong"}).status_code
        == 401
    )
    answer = httpx.get(accounts_url, headers=auth_headers(bank))
    assert answer.status_code == 200
    listed = answer.json()[bank.style.accounts_key]
    assert len(listed) == len(bank.world.accounts_for(name))


def test_oauth2_tokens_expire_and_bad_clients_are_refused(banks: dict[str, RunningBank]) -> None:
    bank = banks["sbi"]
    token_url = bank.url + SBI.token_path
    refused = httpx.post(
        token_url, data={"grant_type": "client_credentials"}, auth=(bank.state.client_id, "nope")
    )
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    in_body = httpx.post(
        token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": bank.state.client_id,
            "client_secret": bank.state.client_secret,
        },
    )
    assert in_body.status_code == 200 and in_body.json()["token_type"] == "Bearer"
    headers = auth_headers(bank)
    assert httpx.get(bank.url + SBI.accounts_path, headers=headers).status_code == 200
    bank.options.expire_tokens()
    assert httpx.get(bank.url + SBI.accounts_path, headers=headers).status_code == 401


def test_icici_refuses_more_than_31_days_and_bad_dates(banks: dict[str, RunningBank]) -> None:
    bank = banks["icici"]
    number = bank.world.accounts_for("icici")[0].number
    url = bank.url + ICICI.transactions_path
    today = bank.world.today
    too_long = {**window_params(bank, today - dt.timedelta(days=31), today), "accountNo": number}
    answer = httpx.get(url, params=too_long, headers=auth_headers(bank))
    assert answer.status_code == 400 and "at most 31 days" in answer.json()["message"]
    iso = {"fromDate": today.isoformat(), "toDate": today.isoformat(), "accountNo": number}
    assert httpx.get(url, params=iso, headers=auth_headers(bank)).status_code == 400


def test_drop_required_fields_and_repeated_page_borders(banks: dict[str, RunningBank]) -> None:
    bank = banks["hdfc"]
    account = bank.world.accounts_for("hdfc")[0]
    last = bank.world.today
    first = last - dt.timedelta(days=25)
    bank.options.drop_required_every = 4
    records = walk(bank, account.number, first, last)
    incomplete = [r for r in records if any(key not in r for key in HDFC.required_keys)]
    assert incomplete and len(incomplete) == len(bank.options.dropped)
    bank.reset()
    bank.options.repeat_page_border = True
    repeated = walk(bank, account.number, first, last, size=5)
    plain = served_transactions(bank.world, account, first, last)
    assert len(repeated) == len(plain) + (-(-len(plain) // 5) - 1)
    assert len({r["transactionId"] for r in repeated}) == len(plain)


def test_faults_use_the_shared_switches(banks: dict[str, RunningBank]) -> None:
    bank = banks["hdfc"]
    bank.state.set_fault("rate_limit", 1, HDFC.prefix)
    limited = httpx.get(bank.url + HDFC.accounts_path, headers=auth_headers(bank))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "0"
    assert httpx.get(bank.url + HDFC.accounts_path, headers=auth_headers(bank)).status_code == 200
