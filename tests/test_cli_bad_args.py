"""Every `bankflow` command, given bad arguments or missing configuration, exits non-zero with one
line that says why, never a traceback.

The commands are read from the app itself: a command without cases in BAD_ARGUMENTS and
MISSING_CONFIGURATION (or a place in NEED_NO_CONFIGURATION) fails test_every_command_has_its_cases,
so a new one cannot be forgotten. Most cases run in-process (typer's runner); two run the real
`bankflow` executable.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bankflow_cli import main
from bankflow_cli.main import app
from resources.vault import generate_secret_key

YESTERDAY = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
# Rich wraps at the terminal's width: wide enough that typer's error boxes never wrap a reason.
# (The commands' console is told not to wrap: under pytest-xdist its width is fixed at import.)
WIDE = "400"
# Box drawing of typer's usage errors, around the one line of the reason.
FRAME = "│╭╮╰╯─ "


@dataclass(frozen=True)
class Case:
    """`bankflow <args>`, whose one line must contain `reason`. `database`: "unreachable" (a
    server that is not there: no case reaches a real one by mistake) or "test" (the session's);
    `env`: settings for the case ("" is unset: a .env file cannot fill it in)."""

    args: tuple[str, ...]
    reason: str
    database: str = "unreachable"
    env: dict[str, str] = field(default_factory=dict)
    # A report (doctor): its findings, then the one line that sums up what to fix.
    report: bool = False


def bad(*args: str, reason: str, **kwargs: object) -> Case:
    return Case(args, reason, **kwargs)


NO_DATABASE = "Cannot reach the database"
TRUELAYER_UNSET = {
    "BANKFLOW_TRUELAYER_ENVIRONMENT": "",
    "BANKFLOW_TRUELAYER_CLIENT_ID": "",
    "BANKFLOW_TRUELAYER_CLIENT_SECRET": "",
}
A_FILE = "{tmp}/statement.xml"
BAD_RULES = "{tmp}/rules.csv"

# Per command (its words): bad arguments, and where it needs configuration, missing configuration.
BAD_ARGUMENTS: dict[str, list[Case]] = {
    "demo": [bad("demo", "--days", "0", reason="Invalid value for '--days'")],
    "ui": [bad("ui", "--port", "70000", reason="Invalid value for '--port'")],
    "connect": [
        bad("connect", "mybank", reason="Unknown provider 'mybank'"),
        bad("connect", "gocardless", reason="GoCardless needs --institution"),
    ],
    "connections": [bad("connections", "extra", reason="unexpected extra argument")],
    "export": [
        bad("export", "--format", "pdf", reason="--format is one of csv, xlsx, parquet"),
        bad("export", "--mart", "nosuch", reason="no mart named 'nosuch'", database="test"),
    ],
    "serve": [
        bad(
            "serve",
            "--port",
            "70000",
            reason="Invalid value for '--port'",
            env={"BANKFLOW_EXPORT_TOKEN": "t"},
        )
    ],
    "doctor": [bad("doctor", "extra", reason="unexpected extra argument")],
    "sync": [bad("sync", "--source", "nosuch", reason="not a configured source: nosuch", database="test")],
    "backfill": [
        bad("backfill", "--from", "2026-02-01", "--to", "2026-01-01", reason="is after --to 2026-01-01"),
        bad("backfill", "--from", "yesterday", "--to", YESTERDAY, reason="Invalid value for '--from'"),
    ],
    "status": [bad("status", "extra", reason="unexpected extra argument")],
    "import": [bad("import", "/nonexistent/statement.xml", reason="does not exist")],
    "files": [bad("files", "--limit", "0", reason="Invalid value for '--limit'")],
    "secret-key": [bad("secret-key", "extra", reason="unexpected extra argument")],
    "categorise": [
        bad("categorise", reason="Missing argument"),
        bad("categorise", "some-key", reason="Give a category", database="test"),
    ],
    "sandbox serve": [bad("sandbox", "serve", "--port", "70000", reason="Invalid value for '--port'")],
    "sftp trust": [bad("sftp", "trust", "nosuch", reason="No drop named 'nosuch'")],
    "rules backtest": [
        bad("rules", "backtest", "--rules", "/nonexistent/rules.csv", reason="does not exist"),
        bad("rules", "backtest", "--rules", BAD_RULES, reason="missing column", database="test"),
    ],
    "recon unmatch": [bad("recon", "unmatch", reason="Missing argument")],
    "recon resolve": [bad("recon", "resolve", "some-key", reason="Missing option '--note'")],
    "recon backtest": [
        bad("recon", "backtest", "--rules", BAD_RULES, reason="missing column", database="test")
    ],
    "recon import-ledger": [
        bad("recon", "import-ledger", "/nonexistent/ledger.csv", reason="does not exist")
    ],
    "owners connection": [
        bad("owners", "connection", "some-connection", reason="Name an owner, or --remove without one"),
        bad("owners", "connection", "some-connection", "Not An Owner", reason="is not a valid name"),
        bad(
            "owners", "connection", "nosuch", "alice", reason="no connection named 'nosuch'", database="test"
        ),
    ],
    "owners account": [bad("owners", "account", "truelayer", "acc-1", reason="Name an owner, or --remove")],
    "owners list": [bad("owners", "list", "extra", reason="unexpected extra argument")],
    "report": [
        bad("report", "--output", "{tmp}/report.txt", reason="--output is the HTML file to write"),
        bad("report", "--owner", "Alice", reason="owner 'Alice' is not a valid name"),
    ],
}
MISSING_CONFIGURATION: dict[str, list[Case]] = {
    "demo": [bad("demo", reason=NO_DATABASE)],
    "ui": [bad("ui", reason=NO_DATABASE)],
    "connect": [
        bad("connect", "truelayer", reason=NO_DATABASE),
        bad(
            "connect",
            "truelayer",
            reason="BANKFLOW_TRUELAYER_ENVIRONMENT is not set",
            database="test",
            env=TRUELAYER_UNSET,
        ),
        bad(
            "connect",
            "truelayer",
            reason="BANKFLOW_SECRET_KEY is not a valid Fernet key",
            database="test",
            env={"BANKFLOW_SECRET_KEY": "not-a-key"},
        ),
    ],
    "connections": [bad("connections", reason=NO_DATABASE)],
    "export": [bad("export", reason=NO_DATABASE)],
    "serve": [
        bad("serve", reason="BANKFLOW_EXPORT_TOKEN is not set", env={"BANKFLOW_EXPORT_TOKEN": ""}),
        bad("serve", reason=NO_DATABASE, env={"BANKFLOW_EXPORT_TOKEN": "t"}),
    ],
    "doctor": [bad("doctor", reason="database", report=True)],
    "sync": [
        bad("sync", reason=NO_DATABASE),
        bad(
            "sync",
            "--source",
            "truelayer",
            reason="not a configured source: truelayer",
            database="test",
            env=TRUELAYER_UNSET,
        ),
    ],
    "backfill": [bad("backfill", "--from", YESTERDAY, "--to", YESTERDAY, reason=NO_DATABASE)],
    "status": [bad("status", reason=NO_DATABASE)],
    "import": [bad("import", A_FILE, reason=NO_DATABASE)],
    "files": [bad("files", reason=NO_DATABASE)],
    "categorise": [bad("categorise", "some-key", "groceries", reason=NO_DATABASE)],
    "sftp trust": [
        bad(
            "sftp",
            "trust",
            "northwind",
            reason="BANKFLOW_SFTP_NORTHWIND_HOST is not set",
            env={"BANKFLOW_SFTP_NORTHWIND_HOST": ""},
        ),
        bad(
            "sftp",
            "trust",
            "northwind",
            reason="could not connect to 127.0.0.1",
            env={
                "BANKFLOW_SFTP_NORTHWIND_HOST": "127.0.0.1",
                "BANKFLOW_SFTP_NORTHWIND_PORT": "{closed_port}",
            },
        ),
    ],
    "rules backtest": [bad("rules", "backtest", reason=NO_DATABASE)],
    "recon unmatch": [bad("recon", "unmatch", "some-match", reason=NO_DATABASE)],
    "recon resolve": [bad("recon", "resolve", "some-exception", "--note", "checked", reason=NO_DATABASE)],
    "recon backtest": [bad("recon", "backtest", reason=NO_DATABASE)],
    "recon import-ledger": [bad("recon", "import-ledger", A_FILE, reason=NO_DATABASE)],
    "owners connection": [bad("owners", "connection", "some-connection", "alice", reason=NO_DATABASE)],
    "owners account": [bad("owners", "account", "truelayer", "acc-1", "alice", reason=NO_DATABASE)],
    "owners list": [bad("owners", "list", reason=NO_DATABASE)],
    "report": [bad("report", reason=NO_DATABASE)],
}
# Commands that read no configuration at all.
NEED_NO_CONFIGURATION = {"secret-key", "sandbox serve"}


def commands() -> list[str]:
    """Every command of the app, subcommands by their words ("recon backtest")."""
    found: list[str] = []

    def walk(command: object, words: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            found.append(" ".join(words))
            return
        for name, subcommand in subcommands.items():
            walk(subcommand, (*words, name))

    walk(typer.main.get_command(app), ())
    return sorted(found)


def test_every_command_has_its_cases() -> None:
    every = set(commands())
    assert {"backfill", "recon backtest", "sandbox serve"} <= every  # the walk reaches subcommands
    assert every - BAD_ARGUMENTS.keys() == set(), "commands without a bad-arguments case"
    assert every - NEED_NO_CONFIGURATION - MISSING_CONFIGURATION.keys() == set(), (
        "commands without a missing-configuration case (or not in NEED_NO_CONFIGURATION)"
    )
    assert (BAD_ARGUMENTS.keys() | MISSING_CONFIGURATION.keys()) - every == set(), "cases of no command"


def reason_lines(output: str) -> list[str]:
    """The output's lines without typer's usage lines and the box around its error."""
    lines = [line.strip(FRAME) for line in output.splitlines()]
    return [line for line in lines if line and line != "Error" and not line.startswith(("Usage:", "Try '"))]


def assert_one_line_reason(exit_code: int, output: str, case: Case) -> None:
    assert exit_code != 0, output
    assert "Traceback" not in output, output
    lines = reason_lines(output)
    if case.report:
        lines = lines[-1:]
        assert "to fix:" in lines[0], output
    assert len(lines) == 1, output
    assert case.reason in lines[0], output


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (it was just given and let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def case_environment(
    tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The environment every case starts from (restored afterwards: commands export settings into
    os.environ): a valid secret key (a command never writes one to the project's .env), a home of
    the test's own, and the files the cases name."""
    saved = dict(os.environ)
    monkeypatch.setattr(main.console, "soft_wrap", True)
    (tmp_path / "statement.xml").write_text("<Document/>")
    (tmp_path / "rules.csv").write_text("a,b\n1,2\n")
    values = {
        "tmp": str(tmp_path),
        "closed_port": str(closed_port),
        "unreachable": f"postgresql://bankflow@127.0.0.1:{closed_port}/bankflow",
    }
    os.environ.update(
        {
            "COLUMNS": WIDE,
            "BANKFLOW_HOME": str(tmp_path / "home"),
            "BANKFLOW_SECRET_KEY": generate_secret_key(),
        }
    )
    for exported in ("BANKFLOW_DAGSTER_DATABASE_URL", "DAGSTER_HOME"):
        os.environ.pop(exported, None)
    yield values
    os.environ.clear()
    os.environ.update(saved)


def case_id(case: Case) -> str:
    return " ".join(case.args) + ("" if case.database == "unreachable" else " [db]")


def all_cases(table: dict[str, list[Case]]) -> list[Case]:
    return [case for cases in table.values() for case in cases]


@pytest.mark.parametrize("case", all_cases(BAD_ARGUMENTS) + all_cases(MISSING_CONFIGURATION), ids=case_id)
def test_a_bad_call_exits_non_zero_with_one_line(
    case: Case, case_environment: dict[str, str], request: pytest.FixtureRequest
) -> None:
    values = dict(case_environment)
    values["database"] = (
        request.getfixturevalue("database_url") if case.database == "test" else values["unreachable"]
    )
    os.environ["BANKFLOW_DATABASE_URL"] = values["database"]
    os.environ.update({name: value.format(**values) for name, value in case.env.items()})
    result = CliRunner().invoke(app, [arg.format(**values) for arg in case.args])
    # An exception the command let through is a traceback in a terminal.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert_one_line_reason(result.exit_code, result.output, case)


@pytest.mark.parametrize("command", commands())
def test_an_unknown_option_is_refused_by_every_command(command: str) -> None:
    result = CliRunner().invoke(app, [*command.split(), "--no-such-option"], env={"COLUMNS": WIDE})
    assert result.exit_code == 2
    (line,) = reason_lines(result.output)
    # Typer may add the options it has that look alike.
    assert line.startswith("No such option: --no-such-option"), result.output


def test_the_real_executable_says_why_in_one_line(case_environment: dict[str, str], tmp_path: Path) -> None:
    """`bankflow` as a terminal runs it: typer prints a traceback of anything let through."""
    executable = Path(sys.executable).parent / "bankflow"
    calls = [
        (
            bad("backfill", "--from", "2026-02-01", "--to", "2026-01-01", reason="is after --to 2026-01-01"),
            {},
        ),
        (bad("connections", reason=NO_DATABASE), {"BANKFLOW_DATABASE_URL": case_environment["unreachable"]}),
    ]
    # Both at once: each process pays a few seconds of imports.
    running = [
        (
            case,
            subprocess.Popen(  # noqa: S603
                [str(executable), *case.args],
                # Not the project folder: its .env is not the test's configuration.
                cwd=tmp_path,
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
        for case, env in calls
    ]
    for case, process in running:
        output, _ = process.communicate()
        assert_one_line_reason(process.returncode, output, case)
