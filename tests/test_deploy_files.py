"""The code location's image and its Helm values agree with the workspace, and keep secrets out.

`docker build` cannot run in CI; these hold the Dockerfile, .dockerignore and docs/deploy.md to
the files they must match, so a renamed module, port or extra breaks here and not in a cluster.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _instruction(name: str) -> str:
    """The last `name` instruction of the Dockerfile (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(name + " ")]
    assert lines, f"no {name} in the Dockerfile"
    return lines[-1][len(name) :].strip()


def _option(args: list[str], *names: str) -> str:
    index = next(i for i, arg in enumerate(args) if arg in names)
    return args[index + 1]


def _workspace_location() -> dict:
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    return workspace["load_from"][0]["python_module"]


def _helm_user_deployment() -> dict:
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "deploy.md").read_text(), re.S)
    values = [
        v for v in map(yaml.safe_load, blocks) if isinstance(v, dict) and "dagster-user-deployments" in v
    ]
    assert len(values) == 1, "docs/deploy.md should show one values file for the chart"
    return values[0]["dagster-user-deployments"]["deployments"][0]


def test_image_serves_the_workspace_code_location_on_its_exposed_port() -> None:
    location = _workspace_location()
    cmd = json.loads(_instruction("CMD"))
    assert cmd[:3] == ["dagster", "api", "grpc"]
    assert _option(cmd, "-m", "--module-name") == location["module_name"]
    assert _option(cmd, "-a", "--attribute") == location["attribute"]
    port = _option(cmd, "-p", "--port")
    assert _instruction("EXPOSE") == port
    health = json.loads(_instruction("HEALTHCHECK").split("CMD", 1)[1])
    assert health[:3] == ["dagster", "api", "grpc-health-check"] and _option(health, "-p") == port

    deployment = _helm_user_deployment()
    args = deployment["dagsterApiGrpcArgs"]
    assert _option(args, "-m") == location["module_name"]
    assert _option(args, "-a") == location["attribute"]
    assert str(deployment["port"]) == port


def test_image_installs_exactly_the_lock_with_an_extra_that_exists() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    syncs = re.findall(r"uv sync ([^\n]*)", dockerfile)
    assert syncs
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    for options in syncs:
        assert "--frozen" in options and "--no-dev" in options
        assert set(re.findall(r"--extra (\S+)", options)) <= extras
    assert "dbt parse" in dockerfile


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (".env", ".bankflow/", ".venv/", "dbt_project/target/"):
        assert path in rules, f".dockerignore does not exclude {path}"
        later = rules[rules.index(path) + 1 :]
        assert not [r for r in later if r.startswith("!") and r[1:].rstrip("/") == path.rstrip("/")]
    # The only file a `!` rule lets back in is the documented example of the settings.
    assert [r for r in rules if r.startswith("!")] == ["!.env.example"]
