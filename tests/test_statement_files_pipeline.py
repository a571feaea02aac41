"""Statement files end to end over real SSH: the sandbox drop serves the world's daily statements
(camt.053, MT940, CSV, JSON); the files job lands each once, duplicates land nothing, a corrupt
file is quarantined, a changed host key is refused, a cut transfer is retried, and the marts hold
each movement once whether an API, a file or both reported it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from pipeline_runs import clear_statement_files, rows, run_window

from bankflow_cli.demo import SANDBOX_DROPS, use_sandbox_drop
from pipelines.definitions import build_definitions
from pipelines.files.partitions import statement_file_partitions
from pipelines.files.sensors import unseen_files
from resources.files.files_resource import StatementFilesResource
from resources.files.sftp import HostKeyRejected, scan_host_key, trust_host_key
from sandbox.server import Sandbox
from sandbox.sftp_drop import SandboxDrop
from sandbox.sftp_server import corrupt, redrop_duplicate, rename_after_drop
from sandbox.statement_files import STATEMENT_FORMATS, statement_answer_key

TODAY = datetime.now(UTC).date()
FIRST_DAY = TODAY - timedelta(days=8)
LAST_DAY = TODAY - timedelta(days=1)


@pytest.fixture(scope="module")
def drop(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxDrop]:
    home = tmp_path_factory.mktemp("files-home")
    saved = {k: v for k, v in os.environ.items() if k.startswith("BANKFLOW_SFTP_")}
    with SandboxDrop(sandbox.world, FIRST_DAY, LAST_DAY, root=home / "drop") as running:
        use_sandbox_drop(running, home)
        yield running
    for key in [k for k in os.environ if k.startswith("BANKFLOW_SFTP_")]:
        os.environ.pop(key)
    os.environ.update(saved)


@pytest.fixture(scope="module")
def files_definitions(
    definitions: dg.Definitions, drop: SandboxDrop, tmp_path_factory: pytest.TempPathFactory
) -> dg.Definitions:
    home = tmp_path_factory.mktemp("store")
    return build_definitions(
        {**definitions.resources, "statement_files": StatementFilesResource(home=str(home))}
    )


@pytest.fixture(scope="module", autouse=True)
def _clean_files(database_url: str) -> Iterator[None]:
    yield
    # Other modules' marts must not see this module's files.
    clear_statement_files(database_url)


def land_new_files(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult | None:
    """What the sensor requests, as one run over every new file (a backfill of the drop)."""
    resources = defs.resources
    with resources["warehouse"].connect() as conn:
        listing = unseen_files(resources["statement_files"], conn)
    assert not listing.errors, listing.errors
    keys = [key for keys in listing.new.values() for key in keys]
    if not keys:
        return None
    known = set(instance.get_dynamic_partitions(statement_file_partitions.name))
    instance.add_dynamic_partitions(statement_file_partitions.name, [k for k in keys if k not in known])
    ordered = [k for k in instance.get_dynamic_partitions(statement_file_partitions.name) if k in set(keys)]
    return defs.resolve_job_def("statement_files_job").execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": ordered[0],
            "dagster/asset_partition_range_end": ordered[-1],
        },
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(scope="module")
def first_landing(
    files_definitions: dg.Definitions, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    result = land_new_files(files_definitions, instance)
    assert result is not None
    return result


def raw_entries(database_url: str) -> list[tuple]:
    return rows(
        database_url,
        "select source, account_ref, partition_key, record_key, payload, file_id from raw.file_entries"
        " order by source, account_ref, record_key",
    )


def test_every_file_lands_once_and_equals_the_world(
    first_landing: dg.ExecuteInProcessResult, sandbox: Sandbox, drop: SandboxDrop, database_url: str
) -> None:
    assert first_landing.success
    days = (LAST_DAY - FIRST_DAY).days + 1
    ledger = rows(database_url, "select status, format, balance_status, path from ops.file_ledger")
    assert len(ledger) == days * len(STATEMENT_FORMATS)
    # Identical bytes are one file: only the SBI drop's empty days (`[]`) repeat themselves.
    duplicates = [path for status, _, _, path in ledger if status == "duplicate"]
    assert all(Path(drop.root / "kaveri" / Path(p).name).read_text().strip() == "[]" for p in duplicates), (
        duplicates
    )
    ledger = [row[:3] for row in ledger if row[0] != "duplicate"]
    assert {status for status, _, _ in ledger} == {"parsed"}
    assert {fmt for _, fmt, _ in ledger} == {"camt053", "mt940", "csv", "json"}
    # Every sandbox statement reconciles (the JSON drop reports no balances).
    assert {(fmt, status) for _, fmt, status in ledger} == {
        ("camt053", "reconciled"),
        ("mt940", "reconciled"),
        ("csv", "reconciled"),
        ("json", "no_balances"),
    }
    answers = statement_answer_key(sandbox.world, FIRST_DAY, LAST_DAY)
    landed = {
        (fmt, day): (count, total)
        for fmt, day, count, total in rows(
            database_url,
            "select source, partition_key, count(*), sum((payload ->> 'amount')::numeric)"
            " from raw.file_entries where payload ->> 'status' = 'booked' group by 1, 2",
        )
    }
    for (account_key, day), answer in answers.items():
        fmt = STATEMENT_FORMATS[account_key]
        got = landed.get((fmt, day.isoformat()), (0, 0))
        assert got == (answer.entries, answer.total if answer.entries else 0), (account_key, day)
    checks = {e.check_name: e.passed for e in first_landing.get_asset_check_evaluations()}
    assert checks == {"statement_balances_continuous": True, "statement_files_parsed": True}


def test_a_second_pass_finds_nothing_new_and_rerunning_a_file_changes_nothing(
    first_landing: dg.ExecuteInProcessResult,
    files_definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    database_url: str,
) -> None:
    before = raw_entries(database_url)
    assert land_new_files(files_definitions, instance) is None
    # Re-running an already landed partition: recognised by its sha256, nothing replaced.
    key = instance.get_dynamic_partitions(statement_file_partitions.name)[0]
    again = files_definitions.resolve_job_def("statement_files_job").execute_in_process(
        instance=instance, partition_key=key
    )
    assert again.success
    assert raw_entries(database_url) == before


def test_redropped_and_renamed_files_are_recognised_and_land_nothing(
    first_landing: dg.ExecuteInProcessResult,
    files_definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    drop: SandboxDrop,
    database_url: str,
) -> None:
    before = raw_entries(database_url)
    northwind = sorted((drop.root / "northwind").glob("NORTHWIND_GBP_*"))
    redrop_duplicate(northwind[0])
    rename_after_drop(northwind[1], "NORTHWIND_GBP_renamed.camt053.xml")
    result = land_new_files(files_definitions, instance)
    assert result is not None and result.success
    statuses = rows(
        database_url,
        "select path, status, duplicate_of is not null from ops.file_ledger where path ~ 'redrop|renamed'",
    )
    assert sorted(status for _, status, _ in statuses) == ["duplicate", "duplicate"]
    assert all(has_original for _, _, has_original in statuses)
    assert raw_entries(database_url) == before


def test_a_corrupt_file_is_quarantined_and_the_run_goes_on(
    first_landing: dg.ExecuteInProcessResult,
    files_definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    drop: SandboxDrop,
    database_url: str,
) -> None:
    # A new day's camt.053 arrives truncated mid-transfer at the bank, next to a good MT940.
    camt = sorted((drop.root / "northwind").glob("NORTHWIND_GBP_*.camt053.xml"))[-1]
    broken = camt.with_name("NORTHWIND_GBP_extra.camt053.xml")
    broken.write_bytes(camt.read_bytes().replace(b"<MsgId>", b"<MsgId>X", 1))
    corrupt(broken)
    result = land_new_files(files_definitions, instance)
    assert result is not None and result.success
    status, reason, stored = rows(
        database_url,
        "select status, reason, stored_path from ops.file_ledger where path like %s",
        ("%_extra%",),
    )[0]
    assert status == "quarantined" and reason
    assert Path(stored).read_bytes() == broken.read_bytes()  # the original is kept
    quarantined = rows(database_url, "select reason, original from ops.quarantine where entity = 'file'")
    assert (reason, stored) in quarantined
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["statement_files_parsed"] is False


def test_a_changed_file_under_the_same_name_is_a_new_version_replacing_the_old(
    first_landing: dg.ExecuteInProcessResult,
    files_definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    drop: SandboxDrop,
    database_url: str,
) -> None:
    target = sorted((drop.root / "kaveri").glob("KAVERI_SBI_*.json"))[-1]
    records = target.read_text()
    if records.strip() == "[]":
        pytest.skip("the last SBI day has no movements")
    original_count = rows(
        database_url,
        "select entries from ops.file_ledger where path like %s and version = 1",
        (f"%{target.name}",),
    )[0][0]
    # The bank re-issues the file with its last record removed (a correction).
    import json

    corrected = json.loads(records)[:-1]
    target.write_text(json.dumps(corrected))
    stamp = target.stat().st_mtime + 3600
    os.utime(target, (stamp, stamp))
    result = land_new_files(files_definitions, instance)
    assert result is not None and result.success
    versions = rows(
        database_url,
        "select version, status, entries, superseded_by is not null from ops.file_ledger where path like %s"
        " order by version",
        (f"%{target.name}",),
    )
    assert versions == [(1, "parsed", original_count, True), (2, "parsed", original_count - 1, False)]
    in_raw = rows(
        database_url,
        "select count(*) from raw.file_entries where payload ->> 'path' like %s",
        (f"%{target.name}",),
    )[0][0]
    assert in_raw == original_count - 1


def test_an_emptied_correction_still_rebuilds_the_days_its_old_version_had(
    first_landing: dg.ExecuteInProcessResult,
    files_definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    drop: SandboxDrop,
    database_url: str,
) -> None:
    # The marts refresh after a files run rebuilds the days in its metadata; staging follows raw by
    # day, so the days of the entries a new version removed from raw must be among them.
    with_entries = [
        path
        for path in sorted((drop.root / "kaveri").glob("KAVERI_SBI_*.json"))[:-1]
        if path.read_text().strip() != "[]"
    ]
    target = with_entries[-1]
    first, last = rows(
        database_url,
        "select min(partition_key), max(partition_key) from raw.file_entries where payload ->> 'path' like %s",
        (f"%{target.name}",),
    )[0]
    assert first is not None
    original = target.read_text()

    def reissue(text: str) -> dg.ExecuteInProcessResult:
        target.write_text(text)
        stamp = target.stat().st_mtime + 3600
        os.utime(target, (stamp, stamp))
        result = land_new_files(files_definitions, instance)
        assert result is not None and result.success
        return result

    emptied = reissue("[]")  # the bank re-issues the day's file without its movements
    try:
        (landed,) = [
            m.metadata
            for m in emptied.asset_materializations_for_node("raw_statement_files")
            if m.asset_key.to_user_string() == "raw_file_entries"
        ]
        assert (landed["first_day"].value, landed["last_day"].value) == (first, last)
    finally:
        # The later tests compare the marts with the world: the movements back, as a version of
        # its own (the same bytes would be a duplicate of the first version, not a new one).
        reissue(original + "\n")


def test_a_cut_transfer_is_retried_and_lands_whole(
    first_landing: dg.ExecuteInProcessResult,
    files_definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    drop: SandboxDrop,
    database_url: str,
) -> None:
    source = sorted((drop.root / "northwind").glob("NORTHWIND_EUR_*.sta"))[0]
    extra = source.with_name("NORTHWIND_EUR_resent.sta")
    extra.write_bytes(source.read_bytes().replace(b":20:", b":20:R", 1))
    drop.faults.cut_reads(after_bytes=200, count=1)
    try:
        result = land_new_files(files_definitions, instance)
    finally:
        drop.faults.clear()
    assert result is not None and result.success
    status, size = rows(
        database_url, "select status, size from ops.file_ledger where path like %s", ("%resent%",)
    )[0]
    assert status == "parsed" and size == extra.stat().st_size


def test_a_changed_host_key_is_refused_until_trusted(
    first_landing: dg.ExecuteInProcessResult, files_definitions: dg.Definitions, drop: SandboxDrop
) -> None:
    resource: StatementFilesResource = files_definitions.resources["statement_files"]
    drop.faults.rotate_host_key()
    with pytest.raises(HostKeyRejected, match="bankflow sftp trust northwind") as refused:
        with resource.open_source("northwind"):
            pass
    assert "CHANGED" in str(refused.value).upper()
    with files_definitions.resources["warehouse"].connect() as conn:
        listing = unseen_files(resource, conn)
    # Every drop on that host is refused, and said so; none is listed.
    assert set(listing.errors) == set(SANDBOX_DROPS)
    assert all("HostKeyRejected" in error for error in listing.errors.values())
    # The user checks the new fingerprint with the bank and trusts it: the drop works again.
    known_hosts = Path(os.environ["BANKFLOW_SFTP_NORTHWIND_KNOWN_HOSTS"])
    trust_host_key(known_hosts, scan_host_key(drop.info.host, drop.info.port))
    with resource.open_source("northwind") as source:
        assert source.list_files()


def test_the_marts_hold_each_movement_once_whoever_reported_it(
    first_landing: dg.ExecuteInProcessResult,
    files_definitions: dg.Definitions,
    definitions: dg.Definitions,
    sandbox: Sandbox,
    database_url: str,
) -> None:
    # The APIs for the last three days (plus lookback), then dbt for all the files' days.
    # Only the sources that report the statement accounts (TrueLayer: Northwind; REST: Kaveri).
    sources = {key: definitions.resources[key] for key in ("warehouse", "dbt", "truelayer", "rest_banks")}
    assert run_window(build_definitions(sources), LAST_DAY - timedelta(days=2), LAST_DAY).success
    # One day the SBI API never reported (a connector outage): only the JSON drop has it.
    sbi = next(a for a in sandbox.world.accounts if a.key == "kaveri-sbi")
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "delete from raw.rest_transactions where source = 'sbi' and left(payload ->> 'timestamp', 10) = %s",
            (FIRST_DAY.isoformat(),),
        )
    assert refresh_marts(files_definitions).success
    world = sandbox.world
    for account_key in STATEMENT_FORMATS:
        account = next(a for a in world.accounts if a.key == account_key)
        keys = rows(
            database_url,
            "select account_key, sources from marts.dim_accounts where account_key in (select account_key"
            " from intermediate.int_accounts_unified where iban = %s or account_ref = %s)",
            (account.iban or "", account.number or ""),
        )
        # One real account, whichever sources report it: the API connector and the file format.
        assert len(keys) == 1, (account_key, keys)
        assert STATEMENT_FORMATS[account_key] in keys[0][1].split(","), keys
        day = FIRST_DAY
        while day <= LAST_DAY:
            expected = world.booked(account.account_id, day, day + timedelta(days=1))
            got = rows(
                database_url,
                "select source, amount from marts.fct_transactions"
                " where account_key = %s and booking_date = %s and status = 'booked'",
                (keys[0][0], day),
            )
            # Each movement once: never the API's and the file's row both.
            assert sorted(amount for _, amount in got) == sorted(t.amount for t in expected), (
                account_key,
                day,
            )
            day += timedelta(days=1)
    sbi_first_day = rows(
        database_url,
        "select distinct source from marts.fct_transactions where booking_date = %s and account_key in"
        " (select account_key from intermediate.int_accounts_unified where source = 'sbi' and account_ref = %s)",
        (FIRST_DAY, sbi.number),
    )
    expected_sources = (
        [("json",)] if world.booked(sbi.account_id, FIRST_DAY, FIRST_DAY + timedelta(days=1)) else []
    )
    assert sbi_first_day == expected_sources
    # Where the API reported a day, its rows win.
    last_day_sources = rows(
        database_url,
        "select distinct source from marts.fct_transactions where booking_date = %s"
        " and source in ('camt053', 'mt940', 'csv', 'json')",
        (LAST_DAY,),
    )
    assert last_day_sources == []


def refresh_marts(defs: dg.Definitions) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("marts_refresh_job").execute_in_process(
        tags={
            "dagster/asset_partition_range_start": FIRST_DAY.isoformat(),
            "dagster/asset_partition_range_end": LAST_DAY.isoformat(),
        },
        raise_on_error=False,
    )


def test_a_drop_from_an_extra_directory_archives_what_it_landed(
    first_landing: dg.ExecuteInProcessResult,
    files_definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    drop: SandboxDrop,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "archived.yaml").write_text(
        "name: archived\nremote_dir: /outbox\nglob: '*.sta'\narchive_dir: /outbox/done\n"
    )
    monkeypatch.setenv("BANKFLOW_SFTP_CONNECTORS_DIR", str(tmp_path))
    for suffix in ("HOST", "PORT", "USERNAME", "PRIVATE_KEY", "KNOWN_HOSTS"):
        monkeypatch.setenv(
            f"BANKFLOW_SFTP_ARCHIVED_{suffix}", os.environ[f"BANKFLOW_SFTP_NORTHWIND_{suffix}"]
        )
    source = sorted((drop.root / "northwind").glob("NORTHWIND_EUR_*.sta"))[-1]
    outbox = drop.root / "outbox"
    outbox.mkdir()
    (outbox / "EUR_archive_me.sta").write_bytes(source.read_bytes().replace(b":20:", b":20:A", 1))
    result = land_new_files(files_definitions, instance)
    assert result is not None and result.success
    status, archived_to = rows(
        database_url, "select status, archived_to from ops.file_ledger where connection = 'archived'"
    )[0]
    assert status == "parsed" and archived_to == "/outbox/done/EUR_archive_me.sta"
    assert not (outbox / "EUR_archive_me.sta").exists()
    assert (outbox / "done" / "EUR_archive_me.sta").exists()
    # Archived files are out of the drop's glob: nothing new next time.
    assert land_new_files(files_definitions, instance) is None
