"""The bankflow command and the consent redirect handling."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bankflow_cli.connect import ConsentError, code_from_redirect
from bankflow_cli.main import app


def test_commands_are_listed() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "ui", "connect", "sandbox", "secret-key"):
        assert command in result.output


def test_secret_key_prints_a_fernet_key() -> None:
    from cryptography.fernet import Fernet

    result = CliRunner().invoke(app, ["secret-key"])
    name, _, key = result.output.strip().partition("=")
    assert name == "BANKFLOW_SECRET_KEY"
    Fernet(key.encode())


def test_redirect_code_needs_the_matching_state() -> None:
    assert code_from_redirect("http://127.0.0.1:3000/callback?code=abc&state=s1", "s1") == "abc"
    with pytest.raises(ConsentError, match="state does not match"):
        code_from_redirect("http://127.0.0.1:3000/callback?code=abc&state=evil", "s1")
    with pytest.raises(ConsentError, match="refused consent: access_denied"):
        code_from_redirect("http://127.0.0.1:3000/callback?error=access_denied&state=s1", "s1")


def test_connect_names_what_is_wrong() -> None:
    unknown = CliRunner().invoke(app, ["connect", "mybank"])
    assert unknown.exit_code == 2
    # Rich wraps at the terminal width: compare the words.
    assert "choose one of truelayer, berlin_group, revolut, gocardless" in " ".join(unknown.output.split())
    no_bank = CliRunner().invoke(app, ["connect", "gocardless"])
    assert no_bank.exit_code == 2 and "--institution" in no_bank.output


def test_the_runtime_can_be_prepared_twice_in_one_process(database_url: str, monkeypatch) -> None:
    """The first call exports the Dagster URL in SQLAlchemy form; a second call (two CLI commands in
    one process, as the tests run them) reads that back and must still reach the same database."""
    import os

    from bankflow_cli.runtime import prepare_runtime
    from resources.settings import load_settings

    exported = ("BANKFLOW_DAGSTER_DATABASE_URL", "BANKFLOW_HOME", "DAGSTER_HOME")
    environ = {k: v for k, v in os.environ.items() if k not in exported}
    monkeypatch.setattr(os, "environ", {**environ, "BANKFLOW_DATABASE_URL": database_url})
    first = prepare_runtime(load_settings())
    assert os.environ["BANKFLOW_DAGSTER_DATABASE_URL"].startswith("postgresql+psycopg2://")
    second = prepare_runtime(load_settings())
    assert second.dagster_database_url == first.dagster_database_url
