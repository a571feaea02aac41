"""The files sensor on a watched local folder: one run request per new file, none once landed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from pipeline_runs import clear_statement_files

from pipelines.definitions import build_definitions
from pipelines.files.partitions import statement_file_partitions
from pipelines.files.sensors import statement_files_sensor
from resources.files.files_resource import StatementFilesResource

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"


@pytest.fixture
def clean(database_url: str) -> Iterator[None]:
    yield
    clear_statement_files(database_url)


def test_the_sensor_requests_each_new_file_once(
    clean: None, definitions: dg.Definitions, tmp_path: Path, database_url: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(SAMPLES / "camt053-iso20022js" / "nordea_example_camt.xml", inbox)
    shutil.copy(SAMPLES / "mt940-wolph" / "jejik_rabobank-iban.sta", inbox)
    files = StatementFilesResource(home=str(tmp_path / "home"), import_dir=str(inbox))
    defs = build_definitions({**definitions.resources, "statement_files": files})
    resources = {"statement_files": files, "warehouse": definitions.resources["warehouse"]}
    with dg.instance_for_test() as instance:
        first = statement_files_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(first, dg.SensorResult)
        keys = [request.partition_key for request in first.run_requests]
        assert len(keys) == 2 and all(key.startswith("local:") for key in keys)
        # The run key is the partition key: Dagster never launches the same file twice from the sensor.
        assert [request.run_key for request in first.run_requests] == keys
        instance.add_dynamic_partitions(statement_file_partitions.name, keys)
        job = defs.resolve_job_def("statement_files_job")
        for key in keys:
            assert job.execute_in_process(instance=instance, partition_key=key).success
        with psycopg.connect(database_url) as conn:
            landed = conn.execute(
                "select format, entries from ops.file_ledger where connection = 'local' order by format"
            ).fetchall()
        assert landed == [("camt053", 6), ("mt940", 4)]
        again = statement_files_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(again, dg.SkipReason)
