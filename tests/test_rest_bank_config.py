"""Declarative REST banks without a network: the YAML schema, its error messages, and the mapping of
bank records to the seed's standard format (exact amounts, signs, statuses, bank-local dates)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import yaml

from resources.errors import ProviderResponseError
from resources.providers.rest_bank import (
    RestBankClient,
    RestCredentials,
    day_chunks,
    lookup,
    map_account,
    map_transaction,
)
from resources.providers.rest_bank_config import (
    DEFAULT_CONNECTORS_DIR,
    RestBank,
    RestConnectorConfigError,
    configured_rest_banks,
    load_rest_bank,
    load_rest_banks,
    rest_connector_dirs,
)

HDFC = DEFAULT_CONNECTORS_DIR / "hdfc.yaml"


def shipped() -> dict[str, RestBank]:
    return {bank.name: bank for bank in load_rest_banks([DEFAULT_CONNECTORS_DIR])}


def write(tmp_path: Path, data: dict, name: str = "bank.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def hdfc_data(**changes: object) -> dict:
    data = yaml.safe_load(HDFC.read_text())
    data.update(changes)
    return data


def test_the_three_seed_banks_ship_as_files() -> None:
    banks = shipped()
    assert {"hdfc", "icici", "sbi"} <= set(banks)
    assert banks["hdfc"].auth.kind == "bearer" and banks["hdfc"].transactions.records == "data"
    assert (
        banks["icici"].auth.kind == "api_key_bearer" and banks["icici"].transactions.records == "transactions"
    )
    assert (
        banks["sbi"].auth.kind == "oauth2_client_credentials" and banks["sbi"].transactions.records == "data"
    )
    assert {bank.transactions.pagination.kind for bank in banks.values()} >= {"page", "offset", "next_link"}


def test_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    data = hdfc_data()
    data["transactions"]["pagination"]["page_size"] = 0
    del data["accounts"]["fields"]["currency"]
    path = write(tmp_path, data)
    with pytest.raises(RestConnectorConfigError) as error:
        load_rest_bank(path)
    message = str(error.value)
    assert str(path) in message
    assert "transactions.pagination.page.page_size" in message
    assert "accounts: required standard field(s) not mapped: currency" in message


def test_a_secret_in_the_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    data = hdfc_data()
    data["auth"]["token"] = "live-token-do-not-print"
    with pytest.raises(RestConnectorConfigError) as error:
        load_rest_bank(write(tmp_path, data))
    assert "auth.bearer.token: Extra inputs are not permitted" in str(error.value)
    assert "live-token-do-not-print" not in str(error.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": "revolut"}, "name: 'revolut' is the name of another bankflow source"),
        ({"name": "HDFC Bank"}, "name: String should match pattern"),
        ({"timezone": "India/Chennai"}, "timezone: unknown time zone"),
        ({"base_url": "ftp://bank.example"}, "base_url: String should match pattern"),
        (
            {"auth": {"kind": "bearer", "token_env": "lower_case"}},
            "auth.bearer.token_env: String should match",
        ),
        ({"auth": {"kind": "magic"}}, "auth: Input tag 'magic' found using 'kind' does not match"),
    ],
)
def test_invalid_settings(tmp_path: Path, change: dict, expected: str) -> None:
    with pytest.raises(RestConnectorConfigError, match=expected.replace("(", r"\(")):
        load_rest_bank(write(tmp_path, hdfc_data(**change)))


def test_templates_and_field_specs_are_checked(tmp_path: Path) -> None:
    def error_of(edit: Callable[[dict], None]) -> str:
        data = hdfc_data()
        edit(data["transactions"])
        with pytest.raises(RestConnectorConfigError) as error:
            load_rest_bank(write(tmp_path, data))
        return str(error.value)

    assert "unknown placeholder(s) start_day" in error_of(
        lambda t: t["params"].update(fromDate="{start_day:%Y-%m-%d}")
    )
    assert "`source` is not mapped" in error_of(lambda t: t["fields"].update(source="bank"))
    assert "exactly one of `path`" in error_of(
        lambda t: t["fields"].update(description={"path": "narration", "value": "x"})
    )
    assert "'DONE' is not one of SUCCESS" in error_of(
        lambda t: t["fields"].update(status={"path": "status", "values": {"OK": "DONE"}})
    )
    assert "`sign` applies to amount only" in error_of(
        lambda t: t["fields"].update(
            currency={"path": "c", "sign": {"path": "f", "debit": ["D"], "credit": ["C"]}}
        )
    )


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nauth: [unclosed\n")
    with pytest.raises(RestConnectorConfigError, match=r"broken.yaml: not valid YAML at line \d"):
        load_rest_bank(path)


def test_directories_from_the_environment_and_unique_names(tmp_path: Path) -> None:
    extra = tmp_path / "more"
    extra.mkdir()
    write(extra, hdfc_data(name="axis", display_name="Axis Bank"), "axis.yml")
    env = {"BANKFLOW_REST_CONNECTORS_DIR": str(extra)}
    assert rest_connector_dirs(env) == [DEFAULT_CONNECTORS_DIR, extra]
    assert "axis" in {bank.name for bank in configured_rest_banks(env)}
    write(extra, hdfc_data(), "again.yaml")
    with pytest.raises(RestConnectorConfigError, match="bank name 'hdfc' is already defined in"):
        configured_rest_banks(env)
    with pytest.raises(RestConnectorConfigError, match="does not exist"):
        configured_rest_banks({"BANKFLOW_REST_CONNECTORS_DIR": str(tmp_path / "missing")})


def test_base_url_env_overrides_the_file() -> None:
    bank = shipped()["hdfc"]
    assert bank.resolved_base_url({}) == "https://openapi.hdfcbank.example"
    assert bank.resolved_base_url({"BANKFLOW_HDFC_BASE_URL": "http://127.0.0.1:9/"}) == "http://127.0.0.1:9"


# -- mapping ---------------------------------------------------------------------------------------


def hdfc_record(**changes: object) -> dict:
    record = {
        "transactionId": "HDFC0001",
        "accountNumber": "50100012345678",
        "amount": "1238.60",
        "creditDebitFlag": "D",
        "currency": "inr",
        "status": "SUCCESS",
        "transactionDateTime": "2025-06-15T00:30:00+05:30",
        "channel": "UPI",
        "transactionType": "PAYMENT",
        "utrNumber": "512345678901",
        "merchantId": None,
        "narration": "UPI/DR/512345678901/SWIGGY",
    }
    record.update(changes)
    return record


def test_an_hdfc_record_in_the_standard_format() -> None:
    mapped = map_transaction(shipped()["hdfc"], hdfc_record())
    assert mapped.reason is None and mapped.record is not None
    standard = {key: value for key, value in mapped.record.items() if key != "bank_record"}
    assert standard == {
        "txn_id": "HDFC0001",
        "amount": Decimal("-1238.60"),
        "currency": "INR",
        "status": "SUCCESS",
        "timestamp": "2025-06-15T00:30:00+05:30",
        "account_id": "50100012345678",
        "source": "hdfc",
        "bank_code": "HDFC",
        "channel": "UPI",
        "transaction_type": "PAYMENT",
        "reference_number": "512345678901",
        "merchant_id": None,
        "description": "UPI/DR/512345678901/SWIGGY",
    }
    assert mapped.record["bank_record"] == hdfc_record()
    assert (
        str(map_transaction(shipped()["hdfc"], hdfc_record(creditDebitFlag="C")).record["amount"])
        == "1238.60"
    )


def test_icici_codes_local_times_and_sbi_utc_instants_become_bank_local() -> None:
    banks = shipped()
    icici = map_transaction(
        banks["icici"],
        {
            "txnId": 9,
            "accountNo": "1",
            "txnAmount": Decimal("-0.10"),
            "currency": "INR",
            "txnStatus": "P",
            "txnDate": "15-06-2025 23:59:59",
        },
    )
    assert icici.record is not None
    assert (icici.record["txn_id"], icici.record["status"], icici.record["timestamp"]) == (
        "9",
        "PENDING",
        "2025-06-15T23:59:59+05:30",
    )
    assert icici.record["amount"] == Decimal("-0.10")
    sbi = map_transaction(
        banks["sbi"],
        {
            "transaction_id": "t",
            "account_id": "1",
            "amount": "12345678901234.99",
            "currency": "INR",
            "status": "FAILED",
            "booked_at": "2025-06-14T20:00:00Z",
            "reference": {"utr": "U1"},
        },
    )
    assert sbi.record is not None
    # 20:00 UTC on the 14th is 01:30 IST on the 15th: the booking date is the bank's.
    assert sbi.record["timestamp"] == "2025-06-15T01:30:00+05:30"
    assert sbi.record["amount"] == Decimal("12345678901234.99")
    assert sbi.record["reference_number"] == "U1" and sbi.record["merchant_id"] is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"amount": None}, "missing required field: amount (bank field 'amount')"),
        (
            {"transactionId": "", "status": None},
            "missing required fields: txn_id (bank field 'transactionId'), status",
        ),
        ({"amount": "1,238.60"}, "amount: not a decimal number"),
        ({"amount": 12.5}, "amount: not a decimal number"),
        ({"amount": "-5.00"}, "amount: signed although 'creditDebitFlag' gives the direction"),
        ({"creditDebitFlag": "X"}, "amount: unknown debit/credit flag"),
        ({"currency": "RUPEES"}, "currency: not an ISO 4217 code"),
        ({"status": "DONE"}, "status: unknown value 'DONE'"),
        ({"transactionDateTime": "15/06/2025"}, "timestamp: not a date-time in ISO 8601"),
        ({"narration": {"text": "x"}}, "description: expected text, got dict"),
    ],
)
def test_unusable_records_say_why(changes: dict, reason: str) -> None:
    mapped = map_transaction(shipped()["hdfc"], hdfc_record(**changes))
    assert mapped.record is None
    assert mapped.reason is not None and mapped.reason.startswith(reason)


def test_accounts_and_lookup_paths() -> None:
    sbi = shipped()["sbi"]
    mapped = map_account(
        sbi,
        {
            "account_id": "11",
            "currency": "INR",
            "type": "CURRENT",
            "name": "Current",
            "branch": {"ifsc": "SBIN0001"},
            "balances": {"current": "10.50"},
        },
    )
    assert mapped.record is not None
    assert mapped.record["account_type"] == "TRANSACTION" and mapped.record["branch_code"] == "SBIN0001"
    assert mapped.record["balance"] == Decimal("10.50") and mapped.record["available_balance"] is None
    assert (
        map_account(sbi, {"currency": "INR"}).reason
        == "missing required field: account_id (bank field 'account_id')"
    )
    assert lookup({"a": [{"b": 1}]}, "a.0.b") == 1
    assert lookup({"a": None}, "a.b") is not None  # the missing marker, not None


def test_windows_are_cut_into_chunks_without_gap_or_overlap() -> None:
    chunks = day_chunks(date(2025, 1, 1), date(2025, 3, 31), 31)
    assert chunks[0] == (date(2025, 1, 1), date(2025, 1, 31))
    assert chunks[-1] == (date(2025, 3, 4), date(2025, 3, 31))
    assert all((b[0] - a[1]).days == 1 for a, b in zip(chunks, chunks[1:], strict=False))
    assert day_chunks(date(2025, 1, 1), date(2025, 1, 1), None) == [(date(2025, 1, 1), date(2025, 1, 1))]


def _sbi_client(next_links: dict[str, str | None]) -> tuple[RestBankClient, list[str]]:
    """The SBI file's client on a fake bank whose pages link as `next_links` says (path+query -> next)."""
    seen: list[str] = []

    def bank(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/oauth2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 600})
        here = request.url.raw_path.decode()
        seen.append(here)
        return httpx.Response(200, json={"data": [], "links": {"next": next_links.get(here)}})

    credentials = RestCredentials({"BANKFLOW_SBI_CLIENT_ID": "id", "BANKFLOW_SBI_CLIENT_SECRET": "secret"})
    client = RestBankClient(
        shipped()["sbi"], credentials, base_url="https://sbi.test/api", transport=httpx.MockTransport(bank)
    )
    return client, seen


def test_next_links_resolve_against_their_page_and_stay_on_the_banks_host() -> None:
    first = "/api/sbi/v1/accounts/1/transactions?from_date=2025-01-01&to_date=2025-01-02&limit=50"
    client, seen = _sbi_client({first: "?from_date=2025-01-01&to_date=2025-01-02&limit=50&cursor=b"})
    assert list(client.transactions("1", date(2025, 1, 1), date(2025, 1, 2))) == []
    assert seen == [first, first + "&cursor=b"]
    client, seen = _sbi_client({first: "https://elsewhere.test/api/sbi/v1/accounts/1/transactions?cursor=b"})
    with pytest.raises(ProviderResponseError, match="the next link points to another host; not followed"):
        list(client.transactions("1", date(2025, 1, 1), date(2025, 1, 2)))
    assert seen == [first]
