"""Checks on each source itself: is its last good fetch recent enough, and is its consent still
good. Both sit on the source's main raw table (the one its quarantine check is on) and name the
source, so the UI says which bank to look at."""

import os
from collections.abc import Iterator, Mapping
from datetime import timedelta

import dagster as dg
import psycopg

from pipelines.sources.landing import QUARANTINE_CHECK
from resources.connections import consent_status
from resources.warehouse.resource import WarehouseResource

# A daily fetch, plus two hours of grace for a slow night. BANKFLOW_<SOURCE>_FRESHNESS_HOURS
# sets a source's own cadence (a bank that only publishes on weekdays: 74).
DEFAULT_FRESHNESS_HOURS = 26
# The providers whose access rests on a consent the user gave and must renew.
CONSENTED_PROVIDERS = ("truelayer", "berlin_group", "revolut", "gocardless")
CONSENT_CHECK = "consent_current"


def main_asset(extract: dg.AssetsDefinition) -> dg.AssetKey:
    """The table a source's checks sit on: the one its quarantine check is on."""
    return next(spec.asset_key for spec in extract.check_specs if spec.name == QUARANTINE_CHECK)


def freshness_hours(source: str, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    return int(environ.get(f"BANKFLOW_{source.upper()}_FRESHNESS_HOURS", DEFAULT_FRESHNESS_HOURS))


def freshness_checks(
    extracts: Mapping[str, dg.AssetsDefinition], environ: Mapping[str, str] | None = None
) -> list[dg.AssetChecksDefinition]:
    """Dagster's last-update freshness check on each source's main table: it warns when the last
    successful extract (of any partition) is older than the source's cadence. Sources with the
    same cadence share one op."""
    by_cadence: dict[int, list[dg.AssetKey]] = {}
    for source, extract in extracts.items():
        by_cadence.setdefault(freshness_hours(source, environ), []).append(main_asset(extract))
    return [
        check
        for hours, assets in sorted(by_cadence.items())
        for check in dg.build_last_update_freshness_checks(
            assets=assets, lower_bound_delta=timedelta(hours=hours), severity=dg.AssetCheckSeverity.WARN
        )
    ]


def consent_checks(extracts: Mapping[str, dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """One check per consented source: a warning BANKFLOW_CONSENT_WARN_DAYS (7) before a
    connection's consent ends, an error once it has, each naming `bankflow connect <provider>`."""
    specs = {
        provider: dg.AssetCheckSpec(
            CONSENT_CHECK,
            asset=main_asset(extracts[provider]),
            description=f"Every {provider} connection's consent is good for more than "
            f"BANKFLOW_CONSENT_WARN_DAYS days; renew with `bankflow connect {provider}`.",
        )
        for provider in CONSENTED_PROVIDERS
        if provider in extracts
    }
    if not specs:
        return []

    @dg.multi_asset_check(
        name="source_consents",
        specs=list(specs.values()),
        can_subset=True,
        description="The consent of each connected bank, read from ops.connections.",
    )
    def source_consents(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.AssetCheckResult]:
        selected = [p for p, spec in specs.items() if spec.key in context.selected_asset_check_keys]
        with psycopg.connect(warehouse.url) as conn:
            expiries = conn.execute(
                "select provider, connection_name, consent_expires_at from ops.connections"
                " where provider = any(%s) order by connection_name",
                (selected,),
            ).fetchall()
        for provider in selected:
            connections = {name: consent_status(expires) for p, name, expires in expiries if p == provider}
            yield consent_result(provider, specs[provider].asset_key, connections)

    return [source_consents]


def consent_result(provider: str, asset_key: dg.AssetKey, connections: Mapping) -> dg.AssetCheckResult:
    renew = f"renew with `bankflow connect {provider}`"
    metadata = {
        "connections": dg.MetadataValue.json(
            {
                name: {
                    "state": status.state,
                    "expires_at": status.expires_at.isoformat() if status.expires_at else None,
                    "days_left": status.days_left,
                }
                for name, status in connections.items()
            }
        )
    }
    if not connections:
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CONSENT_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=metadata,
            description=f"no {provider} connection: connect with `bankflow connect {provider}`",
        )
    expired = {name: s for name, s in connections.items() if s.state == "expired"}
    expiring = {name: s for name, s in connections.items() if s.state == "expiring"}
    problems = expired or expiring
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=CONSENT_CHECK,
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR if expired else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=(
            "; ".join(f"{provider} connection {name!r}: {s.message}" for name, s in problems.items())
            + f"; {renew}"
            if problems
            else f"every {provider} consent is good for more than the warning period"
        ),
    )
