"""Running `bankflow ...` in-process on the test database, as a fresh process would run it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

from bankflow_cli.main import app

# prepare_runtime exports these (a SQLAlchemy Dagster URL among them); a second command in the same
# process must not read them back as settings.
EXPORTED_BY_PREPARE_RUNTIME = ("BANKFLOW_HOME", "BANKFLOW_DAGSTER_DATABASE_URL", "DAGSTER_HOME")


def bankflow_command(database_url: str, patch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """`invoke("recon", "resolve", ...)`: the command on `database_url`; `patch` restores the
    environment when its test or fixture ends."""
    patch.setenv("BANKFLOW_DATABASE_URL", database_url)

    def invoke(*args: str) -> Result:
        for name in EXPORTED_BY_PREPARE_RUNTIME:
            patch.delenv(name, raising=False)
        return CliRunner().invoke(app, list(args))

    return invoke
