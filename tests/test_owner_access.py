"""Owners and row-level security: two owners' BI roles, logged in as themselves, each see only
their own accounts' rows in the marts, through policies that outlive dbt re-creating the tables."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from pipeline_runs import rows, run_dbt
from report_page import ReportPage
from typer.testing import CliRunner

from bankflow_cli.main import app
from pipelines.reports.assets import reports
from resources.connections import list_connections
from resources.owners import OwnerError, assign_account, set_connection_owner
from resources.warehouse.bi_access import ensure_bi_reader
from resources.warehouse.owner_access import ensure_owner_reader, owner_passwords
from resources.warehouse.resource import WarehouseResource

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
PASSWORDS = {"alice": "alice-bi-password", "bob": "bob-bi-password"}  # test roles'
OWNER_MODELS = ("stg_ops__connection_owners", "stg_ops__account_owners", "int_account_owners", "dim_accounts")
# The aggregates that split or name rows by owner, rebuilt after an owner change.
FINANCE_MARTS = ("mart_spend_monthly", "mart_cashflow_monthly", "mart_budget_status")
UNNAMED = "(unnamed)"  # var unnamed_owner: the holder of accounts no source names
# Marts keyed by account that dbt re-creates as tables on every build.
TABLE_MARTS = ("dim_accounts", "fct_balances", "fct_account_balances_daily", "recon_balance_checks")


def dbt(warehouse: WarehouseResource, *args: str) -> None:
    run_dbt(warehouse, "owner_access_test", *args)


@dataclass(frozen=True)
class Owned:
    # account_key -> owner, as the assignments below mean it (computed here, not by dbt).
    owners: dict[str, str]
    moved: tuple[str, str]  # (source, account_ref) given to bob by account, over its connection
    budget_holder: str  # the holder (owner_name) whose every account bob owns: their budgets are bob's


def expected_owners(database_url: str, account_assignments: dict[tuple[str, str], str]) -> dict[str, str]:
    """alice owns the TrueLayer connection; an account's own assignment wins."""
    owners: dict[str, str] = {}
    reports = rows(
        database_url, "select account_key, source, account_ref from intermediate.int_accounts_unified"
    )
    for key, source, ref in reports:
        if (source, ref) in account_assignments:
            owners[key] = account_assignments[source, ref]
    for key, source, _ref in reports:
        if source == "truelayer":
            owners.setdefault(key, "alice")
    return owners


@pytest.fixture(scope="module")
def owned(
    categorisation_run: dg.ExecuteInProcessResult, database_url: str, warehouse: WarehouseResource
) -> Iterator[Owned]:
    assert categorisation_run.success
    accounts = rows(
        database_url,
        "select source, account_ref from intermediate.int_accounts_unified"
        " where source in ('truelayer', 'revolut') order by source, account_ref",
    )
    revolut = next(a for a in accounts if a[0] == "revolut")
    truelayer = next(a for a in accounts if a[0] == "truelayer")
    # A holder with budgets whose accounts no TrueLayer report names (alice owns those): every
    # report of theirs goes to bob, so their budgets are bob's alone.
    budget_holders = {name for (name,) in rows(database_url, "select owner_name from marts.budgets")}
    holder_reports = rows(
        database_url,
        "select coalesce(nullif(trim(d.owner_name), ''), %s), u.source, u.account_ref from marts.dim_accounts d"
        " join intermediate.int_accounts_unified u using (account_key)",
        (UNNAMED,),
    )
    with_truelayer = {name for name, source, _ in holder_reports if source == "truelayer"}
    holder = min(name for name, _, _ in holder_reports if name in budget_holders - with_truelayer)
    assignments = {revolut: "bob", truelayer: "bob"}
    assignments |= {(source, ref): "bob" for name, source, ref in holder_reports if name == holder}
    set_connection_owner(database_url, "truelayer", "alice")
    for (source, ref), owner in assignments.items():
        assign_account(database_url, source, ref, owner)
    for owner, password in PASSWORDS.items():
        ensure_owner_reader(database_url, owner, password)
    dbt(warehouse, "build", "--select", *OWNER_MODELS, *FINANCE_MARTS)
    try:
        yield Owned(expected_owners(database_url, assignments), truelayer, holder)
    finally:
        set_connection_owner(database_url, "truelayer", None)
        for source, ref in assignments:
            assign_account(database_url, source, ref, None)
        dbt(warehouse, "run", "--select", *OWNER_MODELS, *FINANCE_MARTS)


@pytest.fixture(scope="module")
def logins(owned: Owned, database_url: str) -> Iterator[dict[str, psycopg.Connection]]:
    connections = {
        owner: psycopg.connect(database_url, user=f"bankflow_bi_{owner}", password=password, autocommit=True)
        for owner, password in PASSWORDS.items()
    }
    yield connections
    for conn in connections.values():
        conn.close()


def keys_seen(conn: psycopg.Connection, query: str) -> set:
    return {row[0] for row in conn.execute(query).fetchall()}


def test_each_owner_sees_only_its_accounts_and_their_transactions(
    owned: Owned, logins: dict[str, psycopg.Connection], database_url: str
) -> None:
    all_transactions = dict(
        rows(database_url, "select transaction_key, account_key from marts.fct_transactions")
    )
    seen = {}
    for owner, conn in logins.items():
        mine = {key for key, who in owned.owners.items() if who == owner}
        assert mine, owner
        assert keys_seen(conn, "select account_key from marts.dim_accounts") == mine
        expected = {t for t, account in all_transactions.items() if account in mine}
        assert expected, owner
        seen[owner] = keys_seen(conn, "select transaction_key from marts.fct_transactions")
        assert seen[owner] == expected
        # Every mart keyed by account is filtered the same way.
        assert keys_seen(conn, "select account_key from marts.fct_account_balances_daily") <= mine
        assert keys_seen(conn, "select account_key from marts.fct_transactions_monthly") <= mine
    assert not seen["alice"] & seen["bob"]
    # Accounts of no owner (Fibank, the REST banks, ...) are no one's but the shared role's.
    assert seen["alice"] | seen["bob"] < set(all_transactions)


def test_owner_roles_cannot_read_what_is_everyones_or_private_schemas(
    logins: dict[str, psycopg.Connection],
) -> None:
    conn = logins["alice"]
    for table in ("marts.mart_categorisation_quality", "ops.connections"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"select 1 from {table} limit 1")  # noqa: S608 - fixed names
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("alter table marts.fct_transactions disable row level security")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("set role bankflow_owner_bob")


def test_each_owner_sees_its_share_of_spend_and_cash_flow_and_its_holders_budgets(
    owned: Owned, logins: dict[str, psycopg.Connection], database_url: str
) -> None:
    booked = rows(
        database_url,
        "select account_key, count(*) from marts.fct_transactions where status = 'booked' group by account_key",
    )
    for owner, conn in logins.items():
        for mart, key in (
            ("mart_spend_monthly", "spend_month_key"),
            ("mart_cashflow_monthly", "cashflow_month_key"),
            ("mart_budget_status", "budget_month_key"),
        ):
            query = f"select {key} from marts.{mart}"  # noqa: S608 - fixed names
            theirs = {k for (k,) in rows(database_url, f"{query} where owner = %s", (owner,))}
            assert keys_seen(conn, query) == theirs, (owner, mart)
        # Every booked movement of the owner's accounts, counted once in the owner's cash flow.
        (counted,) = conn.execute(
            "select coalesce(sum(transaction_count), 0) from marts.mart_cashflow_monthly"
        ).fetchone()
        assert counted == sum(n for account, n in booked if owned.owners.get(account) == owner) > 0, owner
    # A budget is an owner's when every account of its holder with movements is: one holder's.
    accounts = rows(
        database_url,
        "select account_key, coalesce(nullif(trim(owner_name), ''), %s) from marts.dim_accounts",
        (UNNAMED,),
    )
    with_movements = {account for account, _ in booked}
    owners_of: dict[str, set] = {}
    for account, holder in accounts:
        if account in with_movements:
            owners_of.setdefault(holder, set()).add(owned.owners.get(account))
    budgets = rows(database_url, "select distinct owner_name, owner from marts.mart_budget_status")
    assert budgets
    for holder, owner in budgets:
        found = owners_of.get(holder, {None})
        assert owner == (next(iter(found)) if len(found) == 1 else None), holder
    assert {h for h, o in budgets if o == "bob"} == {owned.budget_holder}
    assert keys_seen(logins["bob"], "select owner_name from marts.mart_budget_status") == {
        owned.budget_holder
    }
    assert keys_seen(logins["alice"], "select owner_name from marts.mart_budget_status") == set()


def test_bankflow_report_for_an_owner_shows_only_that_owners_rows(
    owned: Owned, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BANKFLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("BANKFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MPLCONFIGDIR", str(Path(__file__).resolve().parents[1] / ".bankflow" / "matplotlib"))
    for owner, password in PASSWORDS.items():
        monkeypatch.setenv(f"BANKFLOW_BI_PASSWORD_{owner.upper()}", password)
    runner = CliRunner()
    result = runner.invoke(app, ["report", "--owner", "bob"])
    assert result.exit_code == 0, result.output
    assert PASSWORDS["bob"] not in result.output
    page = (tmp_path / "home" / "reports" / "bob" / "latest.html").read_text(encoding="utf-8")
    assert "<title>bankflow report for bob " in page
    tables = ReportPage(page).tables
    spend = rows(database_url, "select count(*) from marts.mart_spend_monthly where owner = 'bob'")[0][0]
    assert len(tables["spend_by_category"]) - 1 == spend > 0
    assert {row[0].rsplit(" · ", 1)[-1] for row in tables["spend_by_category"][1:]} == {"bob"}
    assert {row[0] for row in tables["budget_vs_cap"][1:]} == {f"{owned.budget_holder} · bob"}
    bobs = sum(1 for who in owned.owners.values() if who == "bob")
    balances = rows(
        database_url,
        "select count(distinct b.account_key) from marts.fct_account_balances_daily b"
        " join marts.dim_accounts d using (account_key) where d.owner = 'bob'",
    )[0][0]
    assert len(tables["balances"]) - 1 == balances <= bobs

    # The nightly asset makes one per owner with a login, beside everyone's.
    home = tmp_path / "asset-home"
    result = dg.materialize(
        [reports], resources={"warehouse": WarehouseResource(database_url=database_url, home=str(home))}
    )
    assert result.success
    metadata = result.asset_materializations_for_node("reports")[0].metadata
    assert metadata["owner_report_failures"].value == {}
    assert set(metadata["owner_reports"].value) == set(PASSWORDS)
    for owner in PASSWORDS:
        theirs = ReportPage((home / "reports" / owner / "latest.html").read_text(encoding="utf-8")).tables
        assert {row[0].rsplit(" · ", 1)[-1] for row in theirs["cash_flow"][1:]} == {owner}
    everyones = ReportPage((home / "reports" / "latest.html").read_text(encoding="utf-8")).tables
    assert len(everyones["cash_flow"]) > len(theirs["cash_flow"])

    # An owner without a BI login is told how to make one; nothing is written for them.
    result = runner.invoke(app, ["report", "--owner", "carol"])
    assert result.exit_code == 1
    assert "BANKFLOW_BI_PASSWORD_CAROL" in result.output
    assert not (tmp_path / "home" / "reports" / "carol").exists()


def test_the_shared_bi_role_still_sees_every_row(owned: Owned, database_url: str) -> None:
    ensure_bi_reader(database_url, "shared-bi-password", "bankflow_bi_shared_test")
    ((total,),) = rows(database_url, "select count(*) from marts.fct_transactions")
    with psycopg.connect(database_url, user="bankflow_bi_shared_test", password="shared-bi-password") as conn:
        assert conn.execute("select count(*) from marts.fct_transactions").fetchone() == (total,)
        assert (
            conn.execute("select count(*) from marts.dim_accounts").fetchone()
            == rows(database_url, "select count(*) from marts.dim_accounts")[0]
        )


def test_policies_survive_dbt_recreating_the_tables_and_follow_a_new_owner(
    owned: Owned, logins: dict[str, psycopg.Connection], database_url: str, warehouse: WarehouseResource
) -> None:
    oids_before = dict(
        rows(database_url, "select relname, oid from pg_class where relname = any(%s)", (list(TABLE_MARTS),))
    )
    source, ref = owned.moved
    # The account goes back to its connection's owner; only dim_accounts is rebuilt with it, and
    # the incremental fct_transactions follows through its policy.
    assign_account(database_url, source, ref, None)
    try:
        dbt(warehouse, "run", "--select", "int_account_owners", *TABLE_MARTS)
        oids_after = dict(
            rows(
                database_url,
                "select relname, oid from pg_class where relname = any(%s)",
                (list(TABLE_MARTS),),
            )
        )
        assert all(oids_after[t] != oids_before[t] for t in TABLE_MARTS), "dbt did not re-create the tables"
        assert (
            rows(
                database_url,
                "select relname from pg_class where relname = any(%s) and not relrowsecurity",
                (list(TABLE_MARTS),),
            )
            == []
        )
        moved_key = next(
            key
            for key, s, r in rows(
                database_url, "select account_key, source, account_ref from intermediate.int_accounts_unified"
            )
            if (s, r) == owned.moved
        )
        alice = logins["alice"]
        assert moved_key in keys_seen(alice, "select account_key from marts.dim_accounts")
        assert moved_key not in keys_seen(logins["bob"], "select account_key from marts.dim_accounts")
        moved_rows = {
            t
            for (t,) in rows(
                database_url,
                "select transaction_key from marts.fct_transactions where account_key = %s",
                (moved_key,),
            )
        }
        assert moved_rows
        assert moved_rows <= keys_seen(alice, "select transaction_key from marts.fct_transactions")
        for table in TABLE_MARTS[1:]:
            visible = keys_seen(alice, f"select account_key from marts.{table}")  # noqa: S608 - fixed names
            assert visible <= {key for key, who in owned.owners.items() if who == "alice"} | {moved_key}
    finally:
        assign_account(database_url, source, ref, "bob")
        dbt(warehouse, "run", "--select", "int_account_owners", "dim_accounts")


def test_connections_name_their_owner(
    owned: Owned, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_name = {c.name: c for c in list_connections(database_url)}
    assert by_name["truelayer"].owner == "alice"
    assert by_name["revolut"].owner is None
    monkeypatch.setenv("BANKFLOW_DATABASE_URL", database_url)
    listed = CliRunner().invoke(app, ["connections"])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if "truelayer" in line)
    assert "alice" in row


def test_owner_names_passwords_and_the_cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert owner_passwords(
        {"BANKFLOW_BI_PASSWORD_ALICE": "x", "BANKFLOW_BI_PASSWORD": "y", "OTHER": "z"}
    ) == {"alice": "x"}
    for bad in ("Alice", "1st", "a-b", "x" * 41, "robert'); drop table"):
        with pytest.raises(OwnerError):
            assign_account(database_url, "truelayer", "any", bad)
    with pytest.raises(OwnerError, match="no connection named 'nowhere'"):
        set_connection_owner(database_url, "nowhere", "alice")

    monkeypatch.setenv("BANKFLOW_DATABASE_URL", database_url)
    runner = CliRunner()
    result = runner.invoke(app, ["owners", "account", "files", "NL00TEST0000000001", "carol"])
    assert result.exit_code == 0, result.output
    try:
        listed = runner.invoke(app, ["owners", "list"])
        assert listed.exit_code == 0 and "bankflow_bi_carol" in listed.output
    finally:
        assert (
            runner.invoke(app, ["owners", "account", "files", "NL00TEST0000000001", "--remove"]).exit_code
            == 0
        )
    assert rows(database_url, "select count(*) from ops.account_owners where owner = 'carol'") == [(0,)]
    bad = runner.invoke(app, ["owners", "connection", "nowhere", "alice"])
    assert bad.exit_code == 2 and "no connection named 'nowhere'" in bad.output
    assert runner.invoke(app, ["owners", "connection", "truelayer", "Not-An-Owner"]).exit_code == 2
    assert runner.invoke(app, ["owners", "account", "files", "x"]).exit_code == 2
