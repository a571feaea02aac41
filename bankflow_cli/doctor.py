"""`bankflow doctor`: what is set up, what is not, and the command or setting that fixes each.

It reads the configuration and asks the database; it starts nothing (no embedded Postgres, no
fetch), so it answers in seconds, and never prints a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from resources.connections import list_connections
from resources.settings import Settings
from resources.vault import TokenVault, VaultError
from resources.warehouse.database import libpq_params

CONNECT_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class Finding:
    check: str
    # "ok", "warn" (works, but look at it), "fail" (something will not run), "off" (not configured)
    state: str
    detail: str
    fix: str = ""


def diagnose(settings: Settings, environ: Mapping[str, str], home: Path, manifest: Path) -> list[Finding]:
    findings = [_secret_key(settings)]
    database = _database(settings)
    findings.append(database)
    if database.state == "ok" and settings.database_url:
        findings += _connections(settings.database_url.get_secret_value(), settings)
    findings += _sources(environ)
    findings += _sftp_host_keys(environ, home)
    findings.append(
        Finding("dbt manifest", "ok", str(manifest))
        if manifest.exists()
        else Finding("dbt manifest", "fail", f"{manifest} is missing", "make manifest")
    )
    return findings


def _secret_key(settings: Settings) -> Finding:
    if not settings.secret_key:
        return Finding(
            "secret key",
            "fail",
            "BANKFLOW_SECRET_KEY is not set: tokens cannot be stored",
            "bankflow secret-key >> .env",
        )
    if _vault("", settings) is None:
        return Finding(
            "secret key",
            "fail",
            "BANKFLOW_SECRET_KEY is not a Fernet key (32 url-safe base64 bytes)",
            "restore the key the tokens were stored with, or `bankflow secret-key` and reconnect",
        )
    return Finding("secret key", "ok", "BANKFLOW_SECRET_KEY is a valid key")


def _database(settings: Settings) -> Finding:
    if not settings.database_url:
        return Finding("database", "ok", "embedded Postgres under BANKFLOW_HOME (started by each command)")
    url = settings.database_url.get_secret_value()
    try:
        params = libpq_params(url)
    except psycopg.ProgrammingError:
        return Finding(
            "database", "fail", "BANKFLOW_DATABASE_URL is not a Postgres URL", "postgresql://user@host/db"
        )
    where = f"{params.get('host', 'localhost')}:{params.get('port', '5432')}/{params.get('dbname', '')}"
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
            schemas = {
                name
                for (name,) in conn.execute(
                    "select nspname from pg_namespace where nspname in ('raw', 'ops', 'marts')"
                )
            }
    except psycopg.OperationalError as error:
        # libpq's message names host and port, never the password; the first line is the reason.
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        password = params.get("password")
        if password:
            reason = reason.replace(password, "***")
        return Finding(
            "database",
            "fail",
            f"cannot reach {where}: {reason}",
            "start the server or fix BANKFLOW_DATABASE_URL",
        )
    if {"raw", "ops"} - schemas:
        return Finding(
            "database", "warn", f"{where} reached; no bankflow schemas yet", "bankflow connections"
        )
    built = "marts built" if "marts" in schemas else "no marts yet (make demo, or a pipeline run)"
    return Finding("database", "ok", f"{where} reached; {built}")


def _connections(database_url: str, settings: Settings) -> list[Finding]:
    findings = []
    vault = _vault(database_url, settings)
    for connection in list_connections(database_url):
        check = f"connection {connection.name}"
        reconnect = f"bankflow connect {connection.provider}"
        try:
            if vault is not None:
                vault.load(connection.name)
        except VaultError:
            findings.append(
                Finding(check, "fail", "its tokens cannot be decrypted with BANKFLOW_SECRET_KEY", reconnect)
            )
            continue
        state = {"ok": "ok", "expiring": "warn", "expired": "fail", "unknown": "ok"}[connection.consent.state]
        findings.append(
            Finding(
                check,
                state,
                f"{connection.provider}: {connection.consent.message}",
                reconnect if state != "ok" else "",
            )
        )
    return findings


def _vault(database_url: str, settings: Settings) -> TokenVault | None:
    """The vault with the configured key; None without a usable key."""
    try:
        return TokenVault(database_url, settings.secret_key.get_secret_value() if settings.secret_key else "")
    except VaultError:
        return None


def _sources(environ: Mapping[str, str]) -> list[Finding]:
    from pipelines.resources import source_settings

    findings = []
    for source, names in source_settings().items():
        missing = [name for name in names if not environ.get(name)]
        if len(missing) == len(names):
            findings.append(Finding(f"source {source}", "off", "not configured"))
        elif missing:
            findings.append(
                Finding(
                    f"source {source}",
                    "fail",
                    f"partly configured: {', '.join(missing)} not set",
                    "set them in .env (see .env.example)",
                )
            )
        else:
            findings.append(Finding(f"source {source}", "ok", "configured"))
    return findings


def _sftp_host_keys(environ: Mapping[str, str], home: Path) -> list[Finding]:
    from resources.files.connections import sftp_connections
    from resources.files.sftp import has_pinned_host_key
    from resources.files.sources import sftp_endpoint

    findings = []
    for connection in sftp_connections():
        if not connection.is_configured(environ):
            continue
        endpoint = sftp_endpoint(connection, environ, home)
        check = f"sftp {connection.name}"
        if has_pinned_host_key(endpoint):
            findings.append(Finding(check, "ok", f"{endpoint.address}: host key pinned"))
        else:
            findings.append(
                Finding(
                    check,
                    "fail",
                    f"{endpoint.address}: no pinned host key (unknown keys are refused)",
                    f"bankflow sftp trust {connection.name} --fingerprint SHA256:<from your bank>",
                )
            )
    return findings


def default_home(settings: Settings, project_root: Path) -> Path:
    return settings.home if settings.home.is_absolute() else (project_root / settings.home).resolve()
