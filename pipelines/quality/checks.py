"""Great Expectations suites as Dagster asset checks."""

from datetime import UTC, datetime

import dagster as dg

from resources.quality.gx_suites import SuiteOutcome, load_suite, validate_suite
from resources.warehouse.database import sqlalchemy_url
from resources.warehouse.resource import WarehouseResource

FCT_TRANSACTIONS_SUITE = "marts__fct_transactions"


@dg.asset_check(
    asset="fct_transactions",
    name="gx_fct_transactions",
    description="GX suite quality/suites/marts__fct_transactions.json: unique keys, required values, "
    "ISO 4217 currencies, no bookings after today.",
)
def gx_fct_transactions(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    suite = load_suite(FCT_TRANSACTIONS_SUITE)
    outcome = validate_suite(
        sqlalchemy_url(warehouse.url),
        suite,
        parameters={"today": datetime.now(UTC).date().isoformat()},
    )
    return suite_check_result(outcome)


def suite_check_result(outcome: SuiteOutcome) -> dg.AssetCheckResult:
    """One check result per suite; the failing expectations, counts and samples go in metadata."""
    failed = {
        o.label: {
            "unexpected_count": o.unexpected_count,
            "sample": [str(v) for v in o.unexpected_sample],
            "error": o.error,
        }
        for o in outcome.failed
    }
    return dg.AssetCheckResult(
        passed=outcome.success,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "suite": outcome.suite,
            "table": outcome.table,
            "expectations_evaluated": len(outcome.outcomes),
            "expectations_failed": len(outcome.failed),
            "failed_expectations": dg.MetadataValue.json(failed),
        },
        description=(
            "all expectations passed"
            if outcome.success
            else "failed: "
            + ", ".join(f"{label} ({v['unexpected_count']} unexpected)" for label, v in failed.items())
        ),
    )
