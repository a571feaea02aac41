"""Great Expectations suites as Dagster asset checks: one check per suite table, one op per family.

Raw and staging checks are blocking: when one fails, the models after its asset do not run in that
run, and the marts keep what they had. A run over partitions validates the days it loaded (with
the lookback); a run without partitions (the `quality_audit` job, or a check launched from the
UI) validates whole tables.
"""

import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg

from pipelines.partitions import booking_window
from resources.quality.gx_suites import (
    LAYERS,
    Suite,
    SuiteOutcome,
    load_parameters,
    load_suites,
    validate_suites,
)
from resources.warehouse.database import sqlalchemy_url
from resources.warehouse.resource import WarehouseResource

BLOCKING_LAYERS = frozenset({"raw", "staging"})
SEVERITIES = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}
DATA_DOCS_DIRNAME = Path("quality") / "data_docs"


def build_suite_checks(suites: Sequence[Suite] | None = None) -> list[dg.AssetChecksDefinition]:
    """One multi-asset check per family (`gx_raw_suites`, ...), with a check per suite table."""
    suites = load_suites() if suites is None else suites
    return [_family_check(layer, [s for s in suites if s.layer == layer]) for layer in LAYERS]


def _family_check(layer: str, suites: list[Suite]) -> dg.AssetChecksDefinition:
    by_key = {dg.AssetCheckKey(dg.AssetKey(s.asset), s.check_name): s for s in suites}

    @dg.multi_asset_check(
        name=f"gx_{layer}_suites",
        specs=[
            dg.AssetCheckSpec(
                name=suite.check_name,
                asset=suite.asset,
                description=f"GX suite quality/suites/{layer}.json ({suite.relation}): {suite.description}",
                blocking=layer in BLOCKING_LAYERS,
                metadata={"suite_file": f"quality/suites/{layer}.json", "table": suite.relation},
            )
            for suite in suites
        ],
        can_subset=True,
        description=f"The Great Expectations suites of the {layer} layer, validated in SQL in one GX context.",
    )
    def family_check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.AssetCheckResult]:
        selected = [by_key[key] for key in sorted(context.selected_asset_check_keys, key=str)]
        window = run_window(context.op_execution_context)
        outcomes = validate_suites(
            sqlalchemy_url(warehouse.url),
            selected,
            window=window,
            parameters={**load_parameters(), "today": datetime.now(UTC).date().isoformat()},
            data_docs_dir=data_docs_dir(Path(warehouse.home), layer, selected),
        )
        for suite, outcome in zip(selected, outcomes, strict=True):
            yield suite_check_result(suite, outcome)

    return family_check


def data_docs_dir(home: Path, layer: str, suites: Sequence[Suite]) -> Path:
    """The Data Docs site of one validation op: GX rebuilds a site's index from the results it
    holds and removes pages it does not, so each set of suites validated together (Dagster runs a
    family's checks in a step per place in the graph) keeps a site of its own."""
    digest = hashlib.sha256("\n".join(sorted(s.name for s in suites)).encode()).hexdigest()[:10]
    return home.resolve() / DATA_DOCS_DIRNAME / f"{layer}-{digest}"


def run_window(context: dg.OpExecutionContext) -> tuple[date, date] | None:
    """The days a partitioned run loaded (its partitions and the lookback), or None (whole tables)."""
    if not context.has_partition_key_range:
        return None
    keys = context.partition_key_range
    end = date.fromisoformat(keys.end) + timedelta(days=1)
    window = booking_window(
        datetime.combine(date.fromisoformat(keys.start), datetime.min.time(), UTC),
        datetime.combine(end, datetime.min.time(), UTC),
    )
    return window.first_day, window.last_day


def suite_check_result(suite: Suite, outcome: SuiteOutcome) -> dg.AssetCheckResult:
    """The suite's result: the failing expectations with their unexpected counts and a sample of
    the offending values (never whole rows: they could carry account numbers), and its Data Docs page."""
    failed = {
        o.label: {
            "unexpected_count": o.unexpected_count,
            "sample": [str(v) for v in o.unexpected_sample],
            "error": o.error,
        }
        for o in outcome.failed
    }
    metadata: dict[str, object] = {
        "suite": outcome.suite,
        "table": outcome.table,
        "rows_validated": outcome.rows_validated,
        "expectations_evaluated": len(outcome.outcomes),
        "expectations_failed": len(outcome.failed),
        "failed_expectations": dg.MetadataValue.json(failed),
    }
    if outcome.data_docs:
        metadata["data_docs"] = dg.MetadataValue.path(outcome.data_docs)
    if outcome.data_docs_index:
        metadata["data_docs_index"] = dg.MetadataValue.path(outcome.data_docs_index)
    return dg.AssetCheckResult(
        asset_key=suite.asset,
        check_name=suite.check_name,
        passed=outcome.success,
        severity=SEVERITIES[suite.severity],
        metadata=metadata,
        description=(
            "all expectations passed"
            if outcome.success
            else "failed: "
            + ", ".join(f"{label} ({v['unexpected_count']} unexpected)" for label, v in failed.items())
        ),
    )
