"""The dbt project handle. The manifest is built by `make manifest` before definitions load."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


@cache
def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    # Only under `dagster dev`: re-parses so model edits show without a manual step.
    project.prepare_if_dev()
    return project
