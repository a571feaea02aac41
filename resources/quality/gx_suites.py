"""Run a Great Expectations 1.x suite file against a Postgres table, computed in SQL.

Suites are reviewed JSON files in `quality/suites/`. GX reads the table through a SQL
datasource, so every metric is a query on the server: no table is pulled into pandas.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUITES_DIR = Path(__file__).resolve().parents[2] / "quality" / "suites"
SAMPLE_SIZE = 5


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None
    unexpected_sample: list[Any] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.expectation}({self.column})" if self.column else self.expectation


@dataclass(frozen=True)
class SuiteOutcome:
    suite: str
    table: str
    outcomes: list[ExpectationOutcome]

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


def load_suite(name: str, suites_dir: Path = SUITES_DIR) -> dict[str, Any]:
    return json.loads((suites_dir / f"{name}.json").read_text())


def validate_suite(
    sqlalchemy_url: str,
    suite: dict[str, Any],
    parameters: dict[str, Any] | None = None,
) -> SuiteOutcome:
    """Validate the table the suite names; `parameters` fill the suite's `$PARAMETER`s."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    table = suite["table"]
    datasource = context.data_sources.add_sql(name="warehouse", connection_string=sqlalchemy_url)
    asset = datasource.add_table_asset(
        name=table["name"], table_name=table["name"], schema_name=table["schema"]
    )
    batch = asset.add_batch_definition_whole_table("whole_table").get_batch()
    gx_suite = context.suites.add(
        gx.ExpectationSuite(
            name=suite["name"],
            expectations=[{"type": e["type"], "kwargs": e["kwargs"]} for e in suite["expectations"]],
        )
    )
    result = batch.validate(
        gx_suite,
        expectation_parameters=parameters or {},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
    )
    return SuiteOutcome(
        suite=suite["name"],
        table=f"{table['schema']}.{table['name']}",
        outcomes=[_outcome(r.to_json_dict()) for r in result.results],
    )


def _outcome(result: dict[str, Any]) -> ExpectationOutcome:
    config = result["expectation_config"]
    details = result.get("result") or {}
    exception = result.get("exception_info") or {}
    error = exception.get("exception_message") if exception.get("raised_exception") else None
    return ExpectationOutcome(
        expectation=config["type"],
        column=config["kwargs"].get("column"),
        success=bool(result["success"]),
        unexpected_count=details.get("unexpected_count"),
        unexpected_sample=list(details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE],
        error=error,
    )
