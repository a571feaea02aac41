"""Every dbt test runs in the step of the phase that holds its model, asked of dbt itself: a test
no step selects would leave its Dagster check without a result in every run."""

from __future__ import annotations

import json
from pathlib import Path

from dbt.cli.main import dbtRunner

from pipelines.transform.phases import Phases, dbt_phases
from pipelines.transform.project import DBT_PROJECT_DIR, dbt_project


def selected_tests(select: str, target: Path) -> set[str]:
    """The tests `dbt build --select <select>` runs under the steps' buildable test selection."""
    result = dbtRunner().invoke(
        [
            "ls",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
            "--select",
            *select.split(),
            "--indirect-selection",
            "buildable",
            "--resource-type",
            "test",
            "--output",
            "json",
            "--output-keys",
            "unique_id",
            "--quiet",
        ]
    )
    assert result.success, result.exception
    return {json.loads(line)["unique_id"] for line in result.result}


def test_each_dbt_test_runs_in_its_models_phase(tmp_path: Path) -> None:
    manifest = json.loads(dbt_project().manifest_path.read_text())
    phases = dbt_phases(manifest)
    selected = {
        phase: selected_tests(getattr(phases, phase), tmp_path) for phase in Phases.__dataclass_fields__
    }

    phase_of_model = {fqn: phase for phase in selected for fqn in getattr(phases, phase).split()}
    steps_of_test: dict[str, list[str]] = {}
    for phase, tests in selected.items():
        for test in tests:
            steps_of_test.setdefault(test, []).append(phase)

    tests = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] == "test"}
    assert not sorted(tests.keys() - steps_of_test.keys()), "tests that no dbt step runs"
    assert not {test: steps for test, steps in steps_of_test.items() if len(steps) > 1}, "run twice"
    for uid, node in tests.items():
        if attached := node.get("attached_node"):
            model = ".".join(manifest["nodes"][attached]["fqn"])
            assert steps_of_test[uid] == [phase_of_model[model]], uid
