"""TrueLayer Data API v1 over real HTTP: envelopes, record shapes, exact amounts, windows, ids."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import httpx
import pytest
from sandbox_oauth_flow import TODAY, connect

from sandbox.model import Account
from sandbox.server import Sandbox
from sandbox.world import World

DAY = dt.timedelta(days=1)
AMOUNT_TEXT = re.compile(rb'"amount":(-?\d+(?:\.\d+)?)[,}]')
TRANSACTION_KEYS = {
    "transaction_id",
    "timestamp",
    "description",
    "amount",
    "currency",
    "transaction_type",
    "transaction_category",
    "transaction_classification",
    "meta",
    "provider_transaction_id",
    "normalised_provider_transaction_id",
}


def get(client: httpx.Client, path: str, auth: dict[str, str], **params: str) -> httpx.Response:
    response = client.get(f"/data/v1{path}", headers=auth, params=params)
    assert response.headers["x-tl-correlation-id"] and response.headers["x-request-id"]
    return response


def results(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    body = json.loads(response.content, parse_float=Decimal)
    assert set(body) == {"results", "status"} and body["status"] == "Succeeded"
    return body["results"]


def by_provider(sandbox: Sandbox, provider_id: str) -> Account:
    return next(
        a for a in sandbox.world.accounts_for("truelayer", cards=False) if a.provider_id == provider_id
    )


def test_me(client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]) -> None:
    [me] = results(get(client, "/me", auth))
    assert me["client_id"] == sandbox.client_id and me["credentials_id"]
    assert set(me["provider"]) == {"provider_id", "display_name", "logo_uri"}


def test_accounts(client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]) -> None:
    accounts = results(get(client, "/accounts", auth))
    assert [a["account_id"] for a in accounts] == [
        a.account_id for a in sandbox.world.accounts_for("truelayer", cards=False)
    ]
    for body, account in zip(accounts, sandbox.world.accounts_for("truelayer", cards=False), strict=True):
        assert set(body) == {
            "update_timestamp",
            "account_id",
            "account_type",
            "display_name",
            "currency",
            "account_number",
            "provider",
        }
        assert body["account_type"] == account.account_type and body["currency"] == account.currency
        assert body["account_number"]["iban"] == account.iban
        assert body["account_number"]["swift_bic"] == account.swift_bic
        assert body["account_number"].get("sort_code") == account.sort_code
        assert body["provider"]["provider_id"] == account.provider_id
        assert body["update_timestamp"].startswith(TODAY.isoformat())
    [single] = results(get(client, f"/accounts/{accounts[0]['account_id']}", auth))
    assert single["account_id"] == accounts[0]["account_id"]


@pytest.mark.parametrize("suffix", ["", "/balance", "/transactions", "/transactions/pending"])
def test_unknown_account_is_404(client: httpx.Client, auth: dict[str, str], suffix: str) -> None:
    response = get(client, f"/accounts/acc-00000000{suffix}", auth)
    assert response.status_code == 404
    assert response.json() == {
        "error": "account_not_found",
        "error_description": "The account could not be found.",
        "error_details": {},
    }


def test_unknown_endpoint_is_a_json_404(client: httpx.Client, auth: dict[str, str]) -> None:
    response = get(client, "/standing_orders", auth)
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_cards_report_purchases_as_positive_amounts(
    client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]
) -> None:
    world = sandbox.world
    [card] = world.accounts_for("truelayer", cards=True)
    [listed] = results(get(client, "/cards", auth))
    assert listed["account_id"] == card.account_id and listed["partial_card_number"] == card.number
    assert card.account_id not in {a["account_id"] for a in results(get(client, "/accounts", auth))}
    assert get(client, f"/accounts/{card.account_id}/transactions", auth).status_code == 404
    rows = results(
        get(
            client,
            f"/cards/{card.account_id}/transactions",
            auth,
            **{"from": (TODAY - dt.timedelta(days=60)).isoformat()},
        )
    )
    booked = world.booked(card.account_id, TODAY - dt.timedelta(days=60), TODAY + dt.timedelta(days=1))
    assert len(rows) == len(booked) > 0
    for row, txn in zip(rows, booked, strict=True):
        assert Decimal(str(row["amount"])) == -txn.amount
        assert row["transaction_type"] == ("DEBIT" if txn.amount < 0 else "CREDIT")
    [balance] = results(get(client, f"/cards/{card.account_id}/balance", auth))
    assert Decimal(str(balance["current"])) == -world.balance(card.account_id, TODAY)


def test_balance(client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]) -> None:
    world = sandbox.world
    for account in world.accounts_for("truelayer", cards=False):
        response = get(client, f"/accounts/{account.account_id}/balance", auth)
        [balance] = results(response)
        assert set(balance) == {"currency", "available", "current", "overdraft", "update_timestamp"}
        current = world.balance(account.account_id, TODAY)
        pending = sum((t.amount for t in world.pending(account.account_id)), Decimal(0))
        assert balance["current"] == current and balance["available"] == current + pending
        assert balance["overdraft"] == account.overdraft and balance["currency"] == account.currency
        assert f'"current":{current}'.encode() in response.content


def test_transactions_match_the_world_with_exact_amount_text(
    client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]
) -> None:
    world: World = sandbox.world
    start, end = TODAY - dt.timedelta(days=20), TODAY
    for account in world.accounts_for("truelayer", cards=False):
        response = get(
            client,
            f"/accounts/{account.account_id}/transactions",
            auth,
            **{"from": str(start), "to": str(end)},
        )
        rows = results(response)
        expected = world.booked(account.account_id, start, end + DAY)
        assert len(rows) == len(expected) > 0
        texts = AMOUNT_TEXT.findall(response.content)
        assert texts == [
            part
            for txn in expected
            for part in (str(txn.amount).encode(), str(world.running_balance(txn)).encode())
        ]
        assert all(re.fullmatch(rb"-?\d+\.\d\d", text) for text in texts)
        for row, txn in zip(rows, expected, strict=True):
            assert (
                TRANSACTION_KEYS | {"running_balance"}
                <= set(row)
                <= TRANSACTION_KEYS
                | {
                    "running_balance",
                    "merchant_name",
                }
            )
            assert row["timestamp"] == f"{txn.booking_date}T00:00:00+00:00"
            assert row["amount"] == txn.amount and row["currency"] == account.currency
            assert row["description"] == txn.description and row["transaction_type"] == txn.transaction_type
            assert row["transaction_category"] == txn.transaction_category
            assert row.get("merchant_name") == txn.merchant_name
            assert row["running_balance"] == {
                "amount": world.running_balance(txn),
                "currency": account.currency,
            }
            assert set(row["meta"]) == {"bank_transaction_id", "provider_transaction_category"}
            assert row["transaction_classification"] == [] or len(row["transaction_classification"]) == 2


def test_from_and_to_are_whole_days_for_dates(
    client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]
) -> None:
    world = sandbox.world
    account = world.accounts_for("truelayer", cards=False)[0]
    day = next(
        d
        for d in (TODAY - dt.timedelta(days=n) for n in range(5, 40))
        if world.booked(account.account_id, d, d + DAY)
        and world.booked(account.account_id, d + DAY, d + 2 * DAY)
    )
    path = f"/accounts/{account.account_id}/transactions"
    rows = results(get(client, path, auth, **{"from": str(day), "to": str(day)}))
    assert len(rows) == len(sandbox.world.booked(account.account_id, day, day + DAY)) > 0
    assert {row["timestamp"][:10] for row in rows} == {str(day)}
    # A date-time after midnight excludes that day's rows, which are stamped 00:00.
    later = results(get(client, path, auth, **{"from": f"{day}T09:00:00Z", "to": f"{day + DAY}T00:00:00Z"}))
    assert {row["timestamp"][:10] for row in later} == {str(day + DAY)}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"from": "2025-06-10", "to": "2025-06-01"}, "invalid_date_range"),
        ({"from": "last week"}, "validation_error"),
    ],
)
def test_bad_windows_are_400(
    client: httpx.Client, sandbox: Sandbox, auth: dict[str, str], params: dict, error: str
) -> None:
    response = get(
        client,
        f"/accounts/{sandbox.world.accounts_for('truelayer', cards=False)[0].account_id}/transactions",
        auth,
        **params,
    )
    assert response.status_code == 400 and response.json()["error"] == error


def ids(client: httpx.Client, account: Account, auth: dict[str, str], key: str) -> list[str]:
    window = {"from": str(TODAY - dt.timedelta(days=10)), "to": str(TODAY)}
    return [
        row[key]
        for row in results(get(client, f"/accounts/{account.account_id}/transactions", auth, **window))
    ]


def test_transaction_ids_unstable_at_barclays_only(
    client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]
) -> None:
    barclays, monzo = by_provider(sandbox, "ob-barclays"), by_provider(sandbox, "ob-monzo")
    first, second = (
        ids(client, barclays, auth, "transaction_id"),
        ids(client, barclays, auth, "transaction_id"),
    )
    assert first and set(first).isdisjoint(second)
    for key in ("normalised_provider_transaction_id", "provider_transaction_id"):
        assert ids(client, barclays, auth, key) == ids(client, barclays, auth, key)
    assert ids(client, monzo, auth, "transaction_id") == ids(client, monzo, auth, "transaction_id")


def test_pending(client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]) -> None:
    seen = 0
    for account in sandbox.world.accounts_for("truelayer", cards=False):
        rows = results(get(client, f"/accounts/{account.account_id}/transactions/pending", auth))
        expected = sandbox.world.pending(account.account_id)
        assert [(r["amount"], r["description"]) for r in rows] == [
            (t.amount, t.description) for t in expected
        ]
        for row, txn in zip(rows, expected, strict=True):
            assert TRANSACTION_KEYS <= set(row) and "running_balance" not in row
            assert row["timestamp"] == f"{txn.transaction_date}T00:00:00+00:00"
        seen += len(rows)
    assert seen > 0


def test_pending_rows_get_new_ids_once_booked(
    client: httpx.Client, sandbox: Sandbox, auth: dict[str, str]
) -> None:
    account = next(
        a for a in sandbox.world.accounts_for("truelayer", cards=False) if sandbox.world.pending(a.account_id)
    )
    pending = results(get(client, f"/accounts/{account.account_id}/transactions/pending", auth))
    with Sandbox(seed=sandbox.world.seed, today=TODAY + dt.timedelta(days=4)) as later:
        with httpx.Client(base_url=later.truelayer_url) as http:
            headers = {"Authorization": f"Bearer {connect(http, later)['access_token']}"}
            window = {"from": str(TODAY - 3 * DAY), "to": str(later.world.today)}
            booked = results(
                http.get(
                    f"/data/v1/accounts/{account.account_id}/transactions", headers=headers, params=window
                )
            )
    by_description = {row["description"]: row for row in booked}
    for row in pending:
        twin = by_description[row["description"]]
        assert twin["amount"] == row["amount"]
        for key in ("transaction_id", "provider_transaction_id", "normalised_provider_transaction_id"):
            assert twin[key] != row[key]
