"""What bankflow knows about each connection: consent expiry, last sync, accounts, call budget.

Read by `bankflow connections` and by extract assets (a consent close to expiry is a warning
N days before, an error after).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql

DEFAULT_WARN_DAYS = 7
# Providers whose banks allow only a few unattended calls per account and day.
DAILY_CALL_LIMITS = {"gocardless": 4, "berlin_group": 4}


@dataclass(frozen=True)
class ConsentStatus:
    state: str  # ok | expiring | expired | unknown
    expires_at: datetime | None
    days_left: int | None

    @property
    def message(self) -> str:
        if self.state == "expired":
            return f"consent expired on {self.expires_at:%Y-%m-%d}"
        if self.state == "expiring":
            return f"consent expires in {self.days_left} days ({self.expires_at:%Y-%m-%d})"
        if self.state == "ok":
            return f"consent valid until {self.expires_at:%Y-%m-%d}"
        return "consent expiry unknown"


def consent_status(
    expires_at: datetime | None, now: datetime | None = None, warn_days: int | None = None
) -> ConsentStatus:
    now = now or datetime.now(UTC)
    warn_days = (
        int(os.environ.get("BANKFLOW_CONSENT_WARN_DAYS", DEFAULT_WARN_DAYS))
        if warn_days is None
        else warn_days
    )
    if expires_at is None:
        return ConsentStatus("unknown", None, None)
    days_left = (expires_at - now).days
    if expires_at <= now:
        return ConsentStatus("expired", expires_at, days_left)
    return ConsentStatus("expiring" if days_left < warn_days else "ok", expires_at, days_left)


@dataclass(frozen=True)
class ConnectionSummary:
    name: str
    provider: str
    consent: ConsentStatus
    tokens_updated_at: datetime
    last_sync_at: datetime | None
    accounts: int
    calls_today: dict[str, int]  # scope -> successful calls today, summed over accounts
    daily_limit_per_account: int | None
    owner: str | None = None


def list_connections(database_url: str) -> list[ConnectionSummary]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select connection_name, provider, consent_expires_at, updated_at, owner from ops.connections order by 1"
        ).fetchall()
        return [
            ConnectionSummary(
                name=name,
                provider=provider,
                consent=consent_status(expires_at),
                tokens_updated_at=updated_at,
                last_sync_at=(sync := _last_sync(conn, provider))[0],
                accounts=sync[1],
                calls_today=_calls_today(conn, name),
                daily_limit_per_account=DAILY_CALL_LIMITS.get(provider),
                owner=owner,
            )
            for name, provider, expires_at, updated_at, owner in rows
        ]


def _last_sync(conn: psycopg.Connection, provider: str) -> tuple[datetime | None, int]:
    table = f"{provider}_accounts"
    if conn.execute("select to_regclass(%s)", (f"raw.{table}",)).fetchone()[0] is None:
        return None, 0
    query = sql.SQL("select max(fetched_at), count(distinct account_ref) from {}").format(
        sql.Identifier("raw", table)
    )
    last, accounts = conn.execute(query).fetchone()
    return last, accounts


def _calls_today(conn: psycopg.Connection, connection_name: str) -> dict[str, int]:
    rows = conn.execute(
        "select scope, sum(calls_made) from ops.call_budget"
        " where connection_name = %s and day = %s group by scope order by scope",
        (connection_name, datetime.now(UTC).date()),
    ).fetchall()
    return {scope: int(calls) for scope, calls in rows}
