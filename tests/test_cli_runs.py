"""`bankflow sync` and `bankflow backfill`: one run over the days, of the sources named and
everything downstream of them (dbt once), with each step reported as it ends; bad arguments exit
non-zero with one line that says why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from typer.testing import CliRunner

from bankflow_cli.main import app
from bankflow_cli.runs import RunRequestError, planned_steps, run_days, selected_assets
from pipelines.definitions import configured_extracts

TODAY = datetime.now(UTC).date()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (
            ["backfill", "--from", "2026-02-01", "--to", "2026-01-01"],
            "--from 2026-02-01 is after --to 2026-01-01",
        ),
        (
            ["backfill", "--from", "2020-01-01", "--to", "2020-01-02"],
            "is before the first partition, 2025-01-01",
        ),
        (["backfill", "--from", str(TODAY), "--to", str(TODAY + timedelta(days=1))], "is after today"),
        (["backfill", "--from", "2026-13-01", "--to", "2026-01-01"], "Invalid value for '--from'"),
        (["backfill", "--to", "2026-01-01"], "Missing option '--from'"),
    ],
)
def test_bad_arguments_exit_non_zero_with_the_reason(args: list[str], reason: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert reason in " ".join(result.output.split())


def test_an_unknown_source_is_refused_with_the_configured_ones(
    definitions: dg.Definitions, warehouse
) -> None:
    extracts = configured_extracts(definitions.resources, {})
    with pytest.raises(
        RunRequestError, match=r"not a configured source: nosuch \(configured: berlin_group, "
    ):
        selected_assets(definitions, extracts, ["nosuch"])


def test_a_backfill_of_one_source_runs_it_and_the_models_once(definitions: dg.Definitions) -> None:
    extracts = configured_extracts(definitions.resources, {})
    assets = selected_assets(definitions, extracts, ["truelayer"])
    names = {key.path[-1] for key in assets}
    assert {"raw_truelayer_transactions", "stg_truelayer__transactions", "fct_transactions"} <= names
    assert not {"raw_revolut_transactions", "raw_fibank_transactions"} & names

    heard: list[tuple[str, str]] = []
    first = TODAY - timedelta(days=9)
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_days(
            definitions,
            instance,
            first,
            TODAY - timedelta(days=8),
            assets=assets,
            trigger="backfill",
            on_step=lambda step, outcome: heard.append((step, outcome)),
        )
        assert result.success
        runs = instance.get_runs()
    assert len(runs) == 1 and runs[0].tags["bankflow/trigger"] == "backfill"
    steps = [step for step, _ in heard]
    # Every step that ran was heard of, once; the extract of the source and not another's.
    assert sorted(steps) == sorted(set(steps))
    assert {s for s, outcome in heard if outcome == "STEP_SUCCESS"} == {
        e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"
    }
    assert "raw_truelayer" in steps and "raw_revolut" not in steps
    # The progress bar's total is the steps that run.
    assert len(steps) == planned_steps(definitions, assets)
    assert len([s for s in steps if s.startswith("dbt_marts")]) == 1
