"""Real parts for every test: Postgres (embedded, or BANKFLOW_DATABASE_URL), the sandbox banks
over HTTP on 127.0.0.1, dbt against that Postgres, Dagster in-process."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster_dbt import DbtCliResource
from pipeline_runs import run_window
from psycopg import sql
from xdist.scheduler import LoadFileScheduling

from bankflow_cli.demo import connect_sandbox_banks, use_sandbox
from pipelines.definitions import build_definitions
from pipelines.transform.project import dbt_project
from resources.providers.berlin_group_resource import BerlinGroupResource
from resources.providers.fibank_resource import FibankResource
from resources.providers.gocardless_resource import GoCardlessResource
from resources.providers.razorpay_resource import RazorpayResource
from resources.providers.rest_bank_resource import RestBanksResource
from resources.providers.revolut_resource import RevolutResource
from resources.providers.truelayer_resource import TrueLayerResource
from resources.vault import generate_secret_key
from resources.warehouse.database import bootstrap_schemas, with_database
from resources.warehouse.embedded import start_embedded_postgres
from resources.warehouse.resource import WarehouseResource
from sandbox.berlin_group import BerlinGroupSandbox, BerlinGroupSwitches
from sandbox.gocardless import GoCardlessControls
from sandbox.server import Sandbox

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEST_DATABASE = "bankflow_test"
# ledger: the sandbox company books test_recon writes, as an accounting system would.
BANKFLOW_SCHEMAS = ("raw", "ops", "staging", "intermediate", "marts", "ledger")
SANDBOX_SEED = 7
# The session runs the daily pipeline many times a day; each provider's own tests exercise the
# banks' real daily call limits.
TEST_CALLS_PER_DAY = 1000
FAST_RETRIES = {"max_attempts": 2, "backoff_initial_seconds": 0.01}
# Five weeks: enough labelled history for the categoriser's layers and the learned model.
CATEGORISATION_WINDOW_DAYS = 35
# Long enough for the sandbox on a busy 2-core machine, short enough to test timeouts.
TEST_TIMEOUT_SECONDS = 5.0

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

# `make test` runs the suite in two pytest-xdist workers (the machine's two cores: one worker keeps
# one core busy, mostly with dbt). Each worker has its own database, sandbox banks and dbt target
# folder; a module's tests stay on one worker (`--dist loadfile`), so its module fixtures run once.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if XDIST_WORKER:
    # The folder dagster-dbt copies the saved parse from and `parse_for_current_connection` parses
    # into: per worker, since each parses with its own database in the connection.
    os.environ.setdefault("DBT_TARGET_PATH", f"target/{XDIST_WORKER}")
    # And dbt's log of the tests' own dbt commands (dbt rotates it: two writers would race).
    os.environ.setdefault("DBT_LOG_PATH", f"logs/{XDIST_WORKER}")
# Modules handed out to one worker together: those that read one session fixture's run
# (categorisation_run: a worker that gets one of them builds it, 230 s), and those on
# truelayer_landing.py.
HANDED_OUT_TOGETHER = {
    "test_categorisation": "categorisation_run",
    "test_category_model": "categorisation_run",
    "test_recon": "categorisation_run",
    "test_bi_access": "categorisation_run",
    "test_reports": "categorisation_run",
    "test_owner_access": "categorisation_run",
    "test_incremental_staging": "truelayer_landing",
    "test_incremental_marts": "truelayer_landing",
}
# The modules that take longest (CI's --durations), handed out first so that neither worker is
# left with a long one at the end; the others follow in name order. Only the order changes.
LONGEST_FIRST = (
    "test_reliability_processes",
    "test_transfers",
    "categorisation_run",
    "test_pipeline_truelayer",
    "test_pending_lineage",
    "test_statement_files_pipeline",
    "test_quality_checks",
    "truelayer_landing",
    "test_marts_finance",
    "test_statement_formats_overlap",
    "test_pipeline_failures",
)


class ModuleGroupScheduling(LoadFileScheduling):
    """xdist's --dist loadfile, with the modules of HANDED_OUT_TOGETHER as one unit: a worker gets
    a unit whole, so a module's fixtures, and a session fixture those modules share, are built on
    that worker only. (xdist's own loadgroup marks do not reach its scheduler under pytest 9.2,
    which no longer reads the item attribute xdist 3.8 renames tests through.)"""

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return HANDED_OUT_TOGETHER.get(Path(path).stem, path)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> ModuleGroupScheduling | None:
    return ModuleGroupScheduling(config, log) if config.getvalue("dist") == "loadfile" else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker: the longest units first (the scheduler hands them out in this order)."""
    if not XDIST_WORKER:
        return
    rank = {group: position for position, group in enumerate(LONGEST_FIRST)}

    def unit(item: pytest.Item) -> str:
        return HANDED_OUT_TOGETHER.get(item.path.stem, item.path.stem)

    # sort() is stable: within a file the tests keep their order.
    items.sort(key=lambda item: (rank.get(unit(item), len(rank)), unit(item), str(item.path)))


@pytest.fixture(scope="session")
def server_url() -> str:
    """The Postgres server under test: BANKFLOW_DATABASE_URL if set, else the embedded one."""
    return os.environ.get("BANKFLOW_DATABASE_URL") or start_embedded_postgres(PROJECT_ROOT / ".bankflow")


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A clean bankflow database: on the embedded server a fresh database of this test session
    (parallel sessions and workers must not drop each other's); on a configured server its
    database with the bankflow schemas dropped and re-created for the first (or only) worker, and
    for another worker a fresh database of its own there, which the environment then names."""
    if os.environ.get("BANKFLOW_DATABASE_URL") and XDIST_WORKER in (None, "gw0"):
        with psycopg.connect(server_url, autocommit=True) as conn:
            for schema in BANKFLOW_SCHEMAS:
                conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        bootstrap_schemas(server_url)
        yield server_url
        return
    name = f"{TEST_DATABASE}_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = with_database(server_url, name)
    bootstrap_schemas(url)
    if os.environ.get("BANKFLOW_DATABASE_URL"):
        os.environ["BANKFLOW_DATABASE_URL"] = url
    yield url
    with psycopg.connect(server_url, autocommit=True) as conn:
        for database in (name, f"{name}_dagster"):
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database)))


@pytest.fixture(scope="session")
def secret_key() -> str:
    return generate_secret_key()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """All sandbox banks, with every provider's settings pointed at them (as `make demo` does)."""
    options = {
        "berlin_group": BerlinGroupSandbox(BerlinGroupSwitches(max_frequency_per_day=TEST_CALLS_PER_DAY)),
        "gocardless": GoCardlessControls(calls_per_day=TEST_CALLS_PER_DAY),
    }
    with Sandbox(seed=SANDBOX_SEED, provider_options=options) as running:
        use_sandbox(running)
        os.environ["BANKFLOW_BERLIN_GROUP_FREQUENCY_PER_DAY"] = str(TEST_CALLS_PER_DAY)
        yield running


@pytest.fixture(autouse=True)
def _no_fault_left(sandbox: Sandbox) -> Iterator[None]:
    yield
    for state in sandbox.states.values():
        state.clear_fault()


@pytest.fixture(scope="session")
def warehouse(database_url: str, secret_key: str) -> WarehouseResource:
    return WarehouseResource(
        database_url=database_url, home=str(PROJECT_ROOT / ".bankflow"), secret_key=secret_key
    )


@pytest.fixture(scope="session")
def truelayer(sandbox: Sandbox) -> TrueLayerResource:
    return TrueLayerResource(
        environment=sandbox.truelayer_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        timeout_seconds=TEST_TIMEOUT_SECONDS,
        **FAST_RETRIES,
    )


def connection_names(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {name for (name,) in conn.execute("select connection_name from ops.connections")}


# The connections the session's pipeline runs use; a module's own connections are removed after it.
SESSION_CONNECTIONS: set[str] = set()


@pytest.fixture(scope="session")
def connected_banks(sandbox: Sandbox, database_url: str, secret_key: str) -> None:
    """Every provider connected through its real consent flow (callback server, state, PKCE
    where the bank has it); a scripted user approves on each sandbox page."""
    before = connection_names(database_url)
    connect_sandbox_banks(database_url, secret_key)
    # GoCardless connections are named by the flow; the others replace any row of the same name.
    SESSION_CONNECTIONS.update(
        connection_names(database_url) - before, {"truelayer", "berlin_group", "revolut"}
    )


@pytest.fixture(scope="module", autouse=True)
def _connections_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """Remove the connections a module saved. The pipeline fetches and checks the consent of every
    connection of a provider, so one left behind (expiring, or to a sandbox that is gone) breaks
    whichever module the same worker runs next."""
    in_module = [item for item in request.session.items if getattr(item, "module", None) is request.module]
    if not any("database_url" in item.fixturenames for item in in_module):
        yield
        return
    database_url = request.getfixturevalue("database_url")
    found = connection_names(database_url)
    yield
    left = connection_names(database_url) - found - SESSION_CONNECTIONS
    if left:
        with psycopg.connect(database_url) as conn:
            conn.execute("delete from ops.connections where connection_name = any(%s)", (sorted(left),))


@pytest.fixture(scope="session")
def connected_truelayer(truelayer: TrueLayerResource, connected_banks: None) -> TrueLayerResource:
    return truelayer


@pytest.fixture(scope="session")
def bank_resources(sandbox: Sandbox, connected_banks: None) -> dict[str, object]:
    """Berlin Group, Revolut, GoCardless and Razorpay on the sandbox, with fast retries and no pacing."""
    return {
        "berlin_group": BerlinGroupResource(
            base_url=os.environ["BANKFLOW_BERLIN_GROUP_BASE_URL"],
            token_url=os.environ["BANKFLOW_BERLIN_GROUP_TOKEN_URL"],
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
            frequency_per_day=TEST_CALLS_PER_DAY,
            **FAST_RETRIES,
        ),
        "revolut": RevolutResource(
            api_url=os.environ["BANKFLOW_REVOLUT_API_URL"],
            consent_url=os.environ["BANKFLOW_REVOLUT_CONSENT_URL"],
            client_id=sandbox.client_id,
            private_key_pem=os.environ["BANKFLOW_REVOLUT_PRIVATE_KEY_PEM"],
            requests_per_minute=0,
            **FAST_RETRIES,
        ),
        "gocardless": GoCardlessResource(
            base_url=os.environ["BANKFLOW_GOCARDLESS_BASE_URL"],
            secret_id=sandbox.client_id,
            secret_key=sandbox.client_secret,
            calls_per_day=TEST_CALLS_PER_DAY,
            **FAST_RETRIES,
        ),
        "razorpay": RazorpayResource(
            base_url=os.environ["BANKFLOW_RAZORPAY_BASE_URL"],
            key_id=sandbox.client_id,
            key_secret=sandbox.client_secret,
            **FAST_RETRIES,
        ),
        # The declarative REST banks: URLs and secrets from the env use_sandbox set per connector file.
        "rest_banks": RestBanksResource(timeout_seconds=TEST_TIMEOUT_SECONDS, **FAST_RETRIES),
        "fibank": FibankResource(
            base_url=os.environ["BANKFLOW_FIBANK_BASE_URL"],
            username=sandbox.client_id,
            password=sandbox.client_secret,
            requests_per_minute=0,
            timeout_seconds=TEST_TIMEOUT_SECONDS,
            **FAST_RETRIES,
        ),
    }


@pytest.fixture(scope="session")
def categorisation_window() -> tuple[date, date]:
    """The partitions the categorisation tests run: CATEGORISATION_WINDOW_DAYS ending today."""
    today = datetime.now(UTC).date()
    return today - timedelta(days=CATEGORISATION_WINDOW_DAYS - 1), today


@pytest.fixture(scope="session")
def categorisation_run(
    definitions: dg.Definitions, categorisation_window: tuple[date, date]
) -> dg.ExecuteInProcessResult:
    """One daily-pipeline run over categorisation_window, read by test_categorisation and
    test_category_model: their modules run one after the other and neither changes what the run
    built (an override they set is cleared, a rules backtest applies nothing, the hidden-rules
    fixture restores the layers and predictions), so the second needs no run of its own."""
    return run_window(definitions, *categorisation_window)


@pytest.fixture(scope="session")
def definitions(
    warehouse: WarehouseResource, connected_truelayer: TrueLayerResource, bank_resources: dict[str, object]
) -> dg.Definitions:
    dbt = DbtCliResource(project_dir=dbt_project(), dbt_executable=str(Path(sys.executable).parent / "dbt"))
    return build_definitions(
        {"warehouse": warehouse, "truelayer": connected_truelayer, "dbt": dbt, **bank_resources}
    )
