"""dbt models compiled to plain SQL against the live warehouse, with vars swapping some of their
inputs: how the backtests run the pipeline's own model SQL over a changed rules file without
writing anything (the changed inputs live in temporary tables of the caller's session)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from resources.warehouse.database import dbt_connection


def compile_models(
    project_dir: Path, database_url: str, models: Sequence[str], dbt_vars: Mapping[str, str]
) -> dict[str, str]:
    """The compiled SQL of each of `models`, by model name, in one dbt call."""
    from dbt.cli.main import dbtRunner

    with tempfile.TemporaryDirectory() as scratch, dbt_connection(database_url):
        # A private target and log path: other dbt processes may be using the project's own.
        result = dbtRunner().invoke(
            [
                "compile",
                "--select",
                *models,
                "--vars",
                json.dumps(dict(dbt_vars)),
                "--project-dir",
                str(project_dir),
                "--profiles-dir",
                str(project_dir),
                "--target-path",
                str(Path(scratch) / "target"),
                "--log-path",
                str(Path(scratch) / "logs"),
                # Not even the compiled SQL dbt prints for a selection: this is a library call.
                "--log-level",
                "none",
            ]
        )
    if not result.success or not result.result:
        raise RuntimeError(f"dbt could not compile {', '.join(models)}: {result.exception}")
    compiled = {r.node.name: r.node.compiled_code for r in result.result.results if r.node.name in models}
    missing = sorted(set(models) - set(compiled))
    if missing:
        raise RuntimeError(f"dbt compiled no SQL for {', '.join(missing)}")
    return compiled
