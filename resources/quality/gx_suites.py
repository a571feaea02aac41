"""Run Great Expectations 1.x suites against Postgres, computed in SQL.

Suites are reviewed JSON files in `quality/suites/`, one per asset family: `raw.json`,
`staging.json`, `marts.json`. A family file lists its tables, each the asset a Dagster check is
attached to, with the family's shared expectations and any of the table's own; the values they
name as `{"$PARAMETER": ...}` are in `quality/parameters.json`. A table is read whole or through
a query over it (a raw table's JSON payload fields as columns). GX reads through a SQL datasource,
so every metric is a query on the server: no table is pulled into pandas. A table that names a
partition column is validated only for the days a run loaded when given a window; without one,
whole (an audit).

One call validates many suites in one GX context and, when given a folder, renders GX Data Docs
there: an HTML page per suite result and an index.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

SUITES_DIR = Path(__file__).resolve().parents[2] / "quality" / "suites"
LAYERS = ("raw", "staging", "marts")
SAMPLE_SIZE = 5
DATA_DOCS_SITE = "bankflow"


@dataclass(frozen=True)
class Suite:
    """One table of a family file: the rows it reads, the asset and check it reports as, its
    expectations and how bad a failure is."""

    name: str
    layer: str
    asset: str
    check_name: str
    description: str
    relation: str
    query: str | None
    partition_column: str | None
    expectations: list[dict[str, Any]]
    severity: str = "error"

    def rows(self, window: tuple[date, date] | None = None) -> str:
        """The SQL the suite validates: its query (or table), limited to window's days (inclusive)
        when the suite has a partition column."""
        source = self.query or f"select * from {self.relation}"  # noqa: S608 (reviewed suite files)
        if window is None or self.partition_column is None:
            return source
        first, last = (day.isoformat() for day in window)  # dates: safe to write as literals
        return (
            f"select * from ({source}) as suite_rows"  # noqa: S608
            f" where {self.partition_column} >= '{first}' and {self.partition_column} <= '{last}'"
        )


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
    rows_validated: str = "all rows"
    data_docs: str | None = None
    data_docs_index: str | None = None

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


def load_suites(layer: str | None = None, suites_dir: Path = SUITES_DIR) -> list[Suite]:
    """The suites of one family file (`<layer>.json`), or of all three, in file order."""
    layers = [layer] if layer else list(LAYERS)
    return [suite for name in layers for suite in _family(name, suites_dir)]


def load_parameters(suites_dir: Path = SUITES_DIR) -> dict[str, Any]:
    """The values suites refer to as $PARAMETERs (`quality/parameters.json`), without its notes."""
    document = json.loads((suites_dir.parent / "parameters.json").read_text())
    return {key: value for key, value in document.items() if not key.startswith("_")}


def _family(layer: str, suites_dir: Path) -> list[Suite]:
    if layer not in LAYERS:
        raise ValueError(f"unknown suite family {layer!r}; expected one of {', '.join(LAYERS)}")
    document = json.loads((suites_dir / f"{layer}.json").read_text())
    shared = document.get("expectations", [])
    suites = []
    for table in document["tables"]:
        relation = table["table"]
        suites.append(
            Suite(
                name=f"{layer}.{table.get('check_name', relation.split('.')[-1]).removeprefix('gx_')}",
                layer=layer,
                asset=table["asset"],
                check_name=table.get("check_name", f"gx_{layer}"),
                description=table.get("description", document["description"]),
                relation=relation,
                query=table.get("query"),
                partition_column=table.get("partition_column"),
                expectations=[*shared, *table.get("expectations", [])],
                severity=table.get("severity", "error"),
            )
        )
    return suites


def validate_suites(
    sqlalchemy_url: str,
    suites: Sequence[Suite],
    window: tuple[date, date] | None = None,
    parameters: dict[str, Any] | None = None,
    data_docs_dir: Path | None = None,
) -> list[SuiteOutcome]:
    """Validate each suite's rows (within window where it has a partition column) in one GX
    context; `parameters` fill the suites' `$PARAMETER`s. With data_docs_dir, GX Data Docs are
    rebuilt there and each outcome names its page."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    if not suites:
        return []
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    actions = []
    if data_docs_dir is not None:
        context.add_data_docs_site(
            site_name=DATA_DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(data_docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        actions.append(UpdateDataDocsAction(name="data_docs", site_names=[DATA_DOCS_SITE]))
    datasource = context.data_sources.add_sql(name="warehouse", connection_string=sqlalchemy_url)
    definitions = []
    for suite in suites:
        asset = datasource.add_query_asset(name=suite.name, query=suite.rows(window))
        gx_suite = context.suites.add(
            gx.ExpectationSuite(
                name=suite.name,
                expectations=[{"type": e["type"], "kwargs": e["kwargs"]} for e in suite.expectations],
            )
        )
        definitions.append(
            context.validation_definitions.add(
                gx.ValidationDefinition(
                    name=suite.name, data=asset.add_batch_definition_whole_table("rows"), suite=gx_suite
                )
            )
        )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="bankflow_quality",
            validation_definitions=definitions,
            actions=actions,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
        )
    )
    try:
        result = checkpoint.run(expectation_parameters=parameters or {})
    finally:
        # The context is thrown away, its engine's pooled connections would linger until collected.
        datasource.get_engine().dispose()
    by_suite = {
        validation.suite_name: (identifier, validation)
        for identifier, validation in result.run_results.items()
    }
    outcomes = []
    for suite in suites:
        identifier, validation = by_suite[suite.name]
        page = None
        if data_docs_dir is not None:
            *folders, file_name = identifier.to_tuple()
            page = str(data_docs_dir.joinpath("validations", *folders, f"{file_name}.html"))
        outcomes.append(
            SuiteOutcome(
                suite=suite.name,
                table=suite.relation,
                outcomes=[_outcome(r.to_json_dict()) for r in validation.results],
                rows_validated=(
                    f"{suite.partition_column} {window[0]} .. {window[1]}"
                    if window is not None and suite.partition_column
                    else "all rows"
                ),
                data_docs=page,
                data_docs_index=str(data_docs_dir / "index.html") if data_docs_dir is not None else None,
            )
        )
    return outcomes


def _outcome(result: dict[str, Any]) -> ExpectationOutcome:
    config = result["expectation_config"]
    details = result.get("result") or {}
    exception = result.get("exception_info") or {}
    error = exception.get("exception_message") if exception.get("raised_exception") else None
    kwargs = config["kwargs"]
    column = kwargs.get("column") or (",".join(kwargs["column_list"]) if kwargs.get("column_list") else None)
    return ExpectationOutcome(
        expectation=config["type"],
        column=column,
        success=bool(result["success"]),
        unexpected_count=details.get("unexpected_count"),
        unexpected_sample=list(details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE],
        error=error,
    )
