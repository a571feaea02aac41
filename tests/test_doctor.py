"""`bankflow doctor`: a working setup passes; each broken part is named with its fix, no secret shown."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from bankflow_cli.doctor import Finding, diagnose
from bankflow_cli.main import app
from pipelines.transform.project import DBT_PROJECT_DIR
from resources.settings import Settings
from resources.vault import TokenVault, generate_secret_key

MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def test_a_working_setup_has_nothing_to_fix(
    database_url: str, secret_key: str, connected_banks: None, tmp_path: Path
) -> None:
    settings = Settings(_env_file=None, database_url=database_url, secret_key=secret_key)
    findings = by_check(diagnose(settings, os.environ, tmp_path, MANIFEST))
    assert [f for f in findings.values() if f.state == "fail"] == []
    assert findings["database"].state == "ok" and "reached" in findings["database"].detail
    assert findings["source truelayer"].state == "ok"
    assert findings["connection truelayer"].state == "ok"


def test_each_broken_part_is_named_with_its_fix(tmp_path: Path) -> None:
    # Explicit None: a key another test's CLI call loaded from .env into the environment is not read.
    settings = Settings(
        _env_file=None, database_url="postgresql://nobody:s3cret-pw@127.0.0.1:1/books", secret_key=None
    )
    environ = {
        "BANKFLOW_FIBANK_USERNAME": "someone",
        "BANKFLOW_SFTP_NORTHWIND_HOST": "127.0.0.1",
        "BANKFLOW_SFTP_NORTHWIND_USERNAME": "statements",
    }
    findings = by_check(diagnose(settings, environ, tmp_path, tmp_path / "manifest.json"))

    assert findings["secret key"].state == "fail"
    assert findings["secret key"].fix == "bankflow secret-key >> .env"
    database = findings["database"]
    assert database.state == "fail" and "cannot reach 127.0.0.1:1/books" in database.detail
    assert "s3cret-pw" not in repr(findings)
    fibank = findings["source fibank"]
    assert fibank.state == "fail"
    assert "BANKFLOW_FIBANK_BASE_URL" in fibank.detail and "BANKFLOW_FIBANK_PASSWORD" in fibank.detail
    assert findings["source truelayer"].state == "off"
    northwind = findings["sftp northwind"]
    assert northwind.state == "fail" and northwind.fix.startswith("bankflow sftp trust northwind")
    assert "sftp kaveri_sbi" not in findings  # not configured: nothing to pin
    assert findings["dbt manifest"] == Finding(
        "dbt manifest", "fail", f"{tmp_path / 'manifest.json'} is missing", "make manifest"
    )


def test_tokens_the_key_cannot_read_are_named(database_url: str, secret_key: str, tmp_path: Path) -> None:
    TokenVault(database_url, secret_key).save("doctor-test", "truelayer", {"refresh_token": "rt"})
    settings = Settings(_env_file=None, database_url=database_url, secret_key=generate_secret_key())
    finding = by_check(diagnose(settings, {}, tmp_path, MANIFEST))["connection doctor-test"]
    assert finding.state == "fail" and "cannot be decrypted" in finding.detail
    assert finding.fix == "bankflow connect truelayer"


def test_the_command_exits_non_zero_and_shows_no_password(monkeypatch) -> None:
    monkeypatch.setenv("BANKFLOW_DATABASE_URL", "postgresql://nobody:s3cret-pw@127.0.0.1:1/books")
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "to fix" in result.output and "database" in result.output
    assert "s3cret-pw" not in result.output
