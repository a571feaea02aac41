"""The TrueLayer client against real HTTP servers: identity order, retries, quarantine, and
reading each `results` record with the bank's exact text (what lands in raw)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx
import pytest
import simplejson
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bankflow_cli.connect import code_from_redirect, start_truelayer_consent
from resources.errors import AuthorizationRequired, ProviderResponseError, TransientProviderError
from resources.http import RetryPolicy, iter_array_elements, loads_exact
from resources.providers.truelayer import (
    TrueLayerClient,
    environment_urls,
    extract_window,
    posting_date,
    record_key,
)
from sandbox.server import Sandbox, serve

FAST = RetryPolicy(max_attempts=3, backoff_initial=0.01)


def test_identity_follows_the_contract_order() -> None:
    assert (
        record_key(
            {"transaction_id": "t", "provider_transaction_id": "p", "normalised_provider_transaction_id": "n"}
        )
        == "n"
    )
    assert record_key({"transaction_id": "t", "provider_transaction_id": "p"}) == "p"
    assert record_key({"transaction_id": "t", "normalised_provider_transaction_id": ""}) == "t"
    assert record_key({}) is None


@pytest.mark.parametrize(
    ("timestamp", "day"),
    [
        ("2018-03-06T00:00:00", "2018-03-06"),
        ("2026-01-31T23:30:00+02:00", "2026-01-31"),
        ("2026-01-31T00:00:00Z", "2026-01-31"),
        ("nope", None),
    ],
)
def test_posting_date_is_the_banks_calendar_day(timestamp: str, day: str | None) -> None:
    assert posting_date({"timestamp": timestamp}) == day


def _odd_bank() -> Starlette:
    """A bank that sends one good row, one without any id and one outside the window."""

    async def accounts(request: Request) -> Response:
        return JSONResponse({"results": [{"account_id": "acc-x", "currency": "GBP"}], "status": "Succeeded"})

    async def balance(request: Request) -> Response:
        return JSONResponse({"results": [{"currency": "GBP", "current": 1}], "status": "Succeeded"})

    async def transactions(request: Request) -> Response:
        body = (
            '{"results":['
            '{"transaction_id":"ok-1","timestamp":"2026-03-02T00:00:00","amount":-2.99,"currency":"GBP"},'
            '{"timestamp":"2026-03-02T00:00:00","amount":-1.00,"currency":"GBP"},'
            '{"transaction_id":"late-1","timestamp":"2026-04-01T00:00:00","amount":5.00,"currency":"GBP"}'
            '],"status":"Succeeded"}'
        )
        return Response(body, media_type="application/json")

    async def pending(request: Request) -> Response:
        return JSONResponse({"results": [], "status": "Succeeded"})

    async def no_cards(request: Request) -> Response:
        return JSONResponse({"results": [], "status": "Succeeded"})

    return Starlette(
        routes=[
            Route("/cards", no_cards),
            Route("/accounts", accounts),
            Route("/accounts/{id}/balance", balance),
            Route("/accounts/{id}/transactions", transactions),
            Route("/accounts/{id}/transactions/pending", pending),
        ]
    )


def test_unusable_records_are_quarantined_not_dropped() -> None:
    with serve(_odd_bank()) as url, TrueLayerClient(url, "token", retry=FAST) as client:
        extract = extract_window(client, date(2026, 3, 1), date(2026, 3, 3), date(2026, 3, 3))
    booked = next(load for load in extract.loads if load.table == "truelayer_transactions")
    assert [r.record_key for r in booked.records] == ["ok-1"]
    assert '"amount":-2.99' in booked.records[0].payload
    assert sorted(q.reason for q in extract.quarantined) == [
        "no transaction id in any of normalised_provider_transaction_id, provider_transaction_id, transaction_id",
        "posting date 2026-04-01 is outside the requested window",
    ]


def test_rate_limit_is_retried_after_retry_after(sandbox: Sandbox, connected_truelayer) -> None:
    with _client(sandbox, connected_truelayer) as client:
        sandbox.state.set_fault("rate_limit", count=2)
        assert client.accounts()
    assert sandbox.state.fault is None


def test_persistent_5xx_gives_up_with_a_transient_error(sandbox: Sandbox, connected_truelayer) -> None:
    with _client(sandbox, connected_truelayer) as client:
        sandbox.state.set_fault("server_error")
        with pytest.raises(TransientProviderError, match="HTTP 500"):
            client.accounts()


def test_revoked_token_asks_for_reconnect(sandbox: Sandbox, connected_truelayer) -> None:
    with TrueLayerClient(sandbox.truelayer_api_url, "not-a-token", retry=FAST) as client:
        with pytest.raises(AuthorizationRequired, match="bankflow connect truelayer") as error:
            client.accounts()
    assert "not-a-token" not in str(error.value)


def _client(sandbox: Sandbox, truelayer) -> TrueLayerClient:
    """A data client with a fresh consent (the sandbox approves at once)."""
    auth = truelayer.auth()
    pending = start_truelayer_consent(auth)
    code = code_from_redirect(httpx.get(pending.url).headers["location"], pending.state)
    tokens = auth.exchange_code(code, pending.code_verifier)
    return TrueLayerClient(sandbox.truelayer_api_url, tokens["access_token"], retry=FAST)


def test_environments_name_truelayers_hosts() -> None:
    assert environment_urls("live") == ("https://auth.truelayer.com", "https://api.truelayer.com/data/v1")
    assert environment_urls("sandbox")[1] == "https://api.truelayer-sandbox.com/data/v1"
    assert environment_urls("http://127.0.0.1:8700/") == (
        "http://127.0.0.1:8700",
        "http://127.0.0.1:8700/data/v1",
    )
    with pytest.raises(ValueError, match="live, sandbox or a base URL"):
        environment_urls("staging")


def _header_echo() -> Starlette:
    async def accounts(request: Request) -> Response:
        return JSONResponse({"results": [{"psu_ip": request.headers.get("x-psu-ip")}], "status": "Succeeded"})

    return Starlette(routes=[Route("/accounts", accounts)])


def test_psu_ip_is_sent_only_when_the_user_is_present() -> None:
    with serve(_header_echo()) as url:
        with TrueLayerClient(url, "token", retry=FAST) as unattended:
            assert [account.value for account in unattended.accounts()] == [{"psu_ip": None}]
        with TrueLayerClient(url, "token", psu_ip="203.0.113.7", retry=FAST) as present:
            assert [account.value for account in present.accounts()] == [{"psu_ip": "203.0.113.7"}]


# -- reading `results` element by element, each with the bank's exact text ---------------------------

# Records as a bank may write them: odd whitespace between and inside them, non-ASCII text both
# literal and escaped, escaped quotes and backslashes, a surrogate pair, numbers whose trailing
# zeros and exponent matter, and delimiters with whitespace around them.
ODD_RECORDS = [
    '{ "transaction_id" : "odd-1",\n\t"timestamp":"2026-03-02T09:15:00Z",'
    ' "amount" : -2.990 , "currency":"GBP", "description":"Caf\\u00e9 \\"Le Nord\\" \\\\ \\/ £5" }',
    '{"transaction_id":"odd-2","timestamp":"2026-03-02T00:00:00+01:00","amount":1E+2,'
    '"currency":"EUR","description":"Zürich \\ud83d\\ude00 😀 Ωμέγα 東京","meta":{"x":[1,2.50,null,true]}}',
    '{"transaction_id":"odd-3","timestamp":"2026-03-03T23:59:59","amount":0.10,"currency":"GBP",'
    '"description":"tab\\tnew\\nline \\u0041"}',
]
ODD_BODY = (
    '\r\n{ "status" : "Succeeded" ,\n  "results" : [\n    '
    + " ,\r\n    ".join(ODD_RECORDS)
    + '\n  ] , "meta": {"results": "not this one"} }\n'
)


def _bank_with_transactions(body: bytes) -> Starlette:
    """One account whose booked transactions are `body`, byte for byte."""

    async def accounts(request: Request) -> Response:
        return JSONResponse({"results": [{"account_id": "acc-x", "currency": "GBP"}], "status": "Succeeded"})

    async def empty(request: Request) -> Response:
        return JSONResponse({"results": [], "status": "Succeeded"})

    async def transactions(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return Starlette(
        routes=[
            Route("/cards", empty),
            Route("/accounts", accounts),
            Route("/accounts/{id}/balance", empty),
            Route("/accounts/{id}/transactions", transactions),
            Route("/accounts/{id}/transactions/pending", empty),
        ]
    )


def test_raw_payload_is_the_banks_exact_record_text() -> None:
    with (
        serve(_bank_with_transactions(ODD_BODY.encode())) as url,
        TrueLayerClient(url, "t", retry=FAST) as client,
    ):
        extract = extract_window(client, date(2026, 3, 1), date(2026, 3, 3), date(2026, 3, 4))
    booked = extract.load("truelayer_transactions").records
    assert [record.payload for record in booked] == ODD_RECORDS
    assert [(r.record_key, r.partition_key) for r in booked] == [
        ("odd-1", "2026-03-02"),
        ("odd-2", "2026-03-02"),
        ("odd-3", "2026-03-03"),
    ]
    assert extract.quarantined == []


def test_values_are_exact_decimals_and_decoded_text() -> None:
    with (
        serve(_bank_with_transactions(ODD_BODY.encode())) as url,
        TrueLayerClient(url, "t", retry=FAST) as client,
    ):
        values = [txn.value for txn in client.transactions("acc-x", date(2026, 3, 1), date(2026, 3, 3))]
    amounts = [txn["amount"] for txn in values]
    assert all(isinstance(amount, Decimal) for amount in amounts)
    assert [str(amount) for amount in amounts] == ["-2.990", "1E+2", "0.10"]
    assert values[0]["description"] == 'Café "Le Nord" \\ / £5'
    assert values[1]["description"] == "Zürich 😀 😀 Ωμέγα 東京"
    assert values[1]["meta"] == {"x": [1, Decimal("2.50"), None, True]}
    assert values[2]["description"] == "tab\tnew\nline A"


def test_a_byte_order_mark_is_not_part_of_any_record() -> None:
    body = "\ufeff" + '{"results":[{"transaction_id":"a","timestamp":"2026-03-02T00:00:00"}]}'
    with (
        serve(_bank_with_transactions(body.encode())) as url,
        TrueLayerClient(url, "t", retry=FAST) as client,
    ):
        texts = [txn.text for txn in client.transactions("acc-x", date(2026, 3, 1), date(2026, 3, 3))]
    assert texts == ['{"transaction_id":"a","timestamp":"2026-03-02T00:00:00"}']


GOOD = '{"transaction_id":"a","timestamp":"2026-03-02T00:00:00","amount":1.5}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"results":[' + GOOD + ',{"transaction_id":"b","amount":2.5', "not valid JSON"),  # truncated
        ('{"results":[' + GOOD + " " + GOOD + "]}", "not valid JSON (Expecting ',' delimiter"),
        ('{"results":[' + GOOD + ",]}", "not valid JSON (Expecting value"),
        ('{"results":[' + GOOD + "]} trailing", "not valid JSON (Extra data"),
        ('{"results":[' + GOOD + '],"status":"Succeeded",}', "not valid JSON (Expecting property name"),
        ('{"results":[{"amount":NaN}]}', "NaN is not a JSON number"),
        ('{"results":[{"description":"a\nb"}]}', "not valid JSON (Invalid control character"),
        ('{"results":[{"description":"\\x41"}]}', "not valid JSON (Invalid \\escape"),
        ('{"status":"Succeeded"}', "no 'results' list in the response"),
        ('{"results":{"transaction_id":"a"}}', "'results' in the response is not a list"),
        ('{"results":[],"results":[' + GOOD + "]}", "'results' appears twice in the response"),
        ("[" + GOOD + "]", "not a JSON object with a 'results' list"),
        ("<html>busy</html>", "not valid JSON (Expecting value at char 0)"),
        ("", "not valid JSON (Expecting value at char 0)"),
    ],
)
def test_malformed_json_is_a_clear_provider_error(body: str, message: str) -> None:
    with (
        serve(_bank_with_transactions(body.encode())) as url,
        TrueLayerClient(url, "t", retry=FAST) as client,
    ):
        with pytest.raises(
            ProviderResponseError, match="^truelayer: GET /accounts/acc-x/transactions: "
        ) as error:
            extract_window(client, date(2026, 3, 1), date(2026, 3, 3), date(2026, 3, 4))
    assert message in str(error.value)
    assert "transaction_id" not in str(error.value)  # where it broke, never the body


def test_a_body_that_is_not_utf8_is_a_clear_provider_error() -> None:
    body = b'{"results":[{"transaction_id":"a","description":"caf\xe9"}]}'  # Latin-1
    with serve(_bank_with_transactions(body)) as url, TrueLayerClient(url, "t", retry=FAST) as client:
        with pytest.raises(
            ProviderResponseError, match="response is not valid JSON \\(not UTF-8 at byte 52\\)"
        ):
            list(client.transactions("acc-x", date(2026, 3, 1), date(2026, 3, 3)))


def test_records_that_are_not_objects_are_quarantined_with_their_text() -> None:
    body = '{"results":[' + GOOD + ', 42 ,"x" , [1, 2.0]]}'
    with (
        serve(_bank_with_transactions(body.encode())) as url,
        TrueLayerClient(url, "t", retry=FAST) as client,
    ):
        extract = extract_window(client, date(2026, 3, 1), date(2026, 3, 3), date(2026, 3, 4))
    assert [r.payload for r in extract.load("truelayer_transactions").records] == [GOOD]
    assert [(q.reason, q.original) for q in extract.quarantined] == [
        ("transaction is not a JSON object", "42"),
        ("transaction is not a JSON object", '"x"'),
        ("transaction is not a JSON object", "[1, 2.0]"),
    ]


# Any JSON a bank may send: the element-by-element reader must agree with parsing the whole
# document (simplejson, use_decimal) on every value, and give back each element's text as sent.
_scalars = (
    st.none() | st.booleans() | st.integers() | st.decimals(allow_nan=False, allow_infinity=False) | st.text()
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_whitespace = st.text(alphabet=" \t\r\n", max_size=3)


@st.composite
def _documents(draw: st.DrawFn) -> tuple[str, list[str]]:
    elements = [
        simplejson.dumps(
            value,
            use_decimal=True,
            ensure_ascii=draw(st.booleans()),
            indent=draw(st.sampled_from([None, 0, 2, "\t"])),
            separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (" , ", " : ")])),
        )
        for value in draw(st.lists(_values, max_size=6))
    ]
    ws = lambda: draw(_whitespace)  # noqa: E731 - a fresh run of whitespace at each delimiter
    items = ws() + (ws() + "," + ws()).join(elements) + ws()
    before = draw(st.dictionaries(st.text(max_size=6).filter(lambda k: k != "results"), _values, max_size=2))
    head = "".join(
        f"{ws()}{simplejson.dumps(k)}{ws()}:{ws()}{simplejson.dumps(v, use_decimal=True)}{ws()},"
        for k, v in before.items()
    )
    document = f'{ws()}{{{head}{ws()}"results"{ws()}:{ws()}[{items}]{ws()},{ws()}"status"{ws()}:{ws()}"ok"{ws()}}}{ws()}'
    return document, elements


def _exact(value: object) -> str:
    """A value's canonical text, Decimals as written (1.50 is not 1.5), so equal means exactly equal."""
    return simplejson.dumps(value, use_decimal=True, sort_keys=True)


def _has_float(value: object) -> bool:
    if isinstance(value, dict):
        return any(_has_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_float(item) for item in value)
    return isinstance(value, float)


@settings(max_examples=300, deadline=None)
@given(_documents())
def test_elements_agree_with_parsing_the_whole_document(document: tuple[str, list[str]]) -> None:
    text, elements = document
    read = list(iter_array_elements(text.encode(), "results"))
    assert [element.text for element in read] == elements
    assert [_exact(element.value) for element in read] == [_exact(v) for v in loads_exact(text)["results"]]
    assert not any(_has_float(element.value) for element in read)
