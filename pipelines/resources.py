"""Resource instances for the code location, every value from the environment."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from pipelines.transform.project import dbt_project
from resources.alerts import AlertsResource
from resources.files.files_resource import StatementFilesResource
from resources.ledger_drop import LedgerDropResource
from resources.providers.berlin_group_resource import BerlinGroupResource
from resources.providers.fibank_resource import FibankResource
from resources.providers.gocardless_resource import GoCardlessResource
from resources.providers.razorpay_resource import RazorpayResource
from resources.providers.rest_bank_resource import RestBanksResource
from resources.providers.revolut_resource import RevolutResource
from resources.providers.truelayer_resource import TrueLayerResource
from resources.warehouse.resource import WarehouseResource

# A source is set up when its credential is in the environment; the others are left out of the
# code location (their assets too), so a deployment with two banks does not fail on the third.
SOURCE_CREDENTIALS = {
    "truelayer": "BANKFLOW_TRUELAYER_CLIENT_ID",
    "berlin_group": "BANKFLOW_BERLIN_GROUP_CLIENT_ID",
    "revolut": "BANKFLOW_REVOLUT_CLIENT_ID",
    "gocardless": "BANKFLOW_GOCARDLESS_SECRET_ID",
    "razorpay": "BANKFLOW_RAZORPAY_KEY_ID",
    "fibank": "BANKFLOW_FIBANK_USERNAME",
    # Not a bank: the folder the company's accounting system drops its ledger exports in.
    "ledger_drop": "BANKFLOW_LEDGER_DROP_DIR",
}


def resources_from_env(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """Every resource whose source is configured (see SOURCE_CREDENTIALS), plus the shared ones."""
    environ = os.environ if environ is None else environ
    return {
        key: resource
        for key, resource in _all_resources().items()
        if key not in SOURCE_CREDENTIALS or environ.get(SOURCE_CREDENTIALS[key])
    } | {"alerts": alerts_resource(environ)}


def alerts_resource(environ: Mapping[str, str]) -> AlertsResource:
    # The webhook URL is a secret: as an EnvVar the UI shows its name, never its value.
    return AlertsResource(
        webhook_url=dg.EnvVar("BANKFLOW_ALERT_WEBHOOK_URL")
        if environ.get("BANKFLOW_ALERT_WEBHOOK_URL")
        else None,
        ui_url=environ.get("BANKFLOW_UI_URL") or None,
    )


def source_settings() -> dict[str, tuple[str, ...]]:
    """Each configurable source's environment variables, as its resource reads them."""
    return {
        key: tuple(
            value.env_var_name
            for field in type(resource).model_fields
            if isinstance(value := getattr(resource, field, None), dg.EnvVar)
        )
        for key, resource in _all_resources().items()
        if key in SOURCE_CREDENTIALS
    }


def _all_resources() -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(
            database_url=dg.EnvVar("BANKFLOW_DATABASE_URL"),
            home=dg.EnvVar("BANKFLOW_HOME"),
            secret_key=dg.EnvVar("BANKFLOW_SECRET_KEY"),
        ),
        "truelayer": TrueLayerResource(
            environment=dg.EnvVar("BANKFLOW_TRUELAYER_ENVIRONMENT"),
            client_id=dg.EnvVar("BANKFLOW_TRUELAYER_CLIENT_ID"),
            client_secret=dg.EnvVar("BANKFLOW_TRUELAYER_CLIENT_SECRET"),
        ),
        # The dbt of this environment, whether or not its bin/ is on PATH.
        "berlin_group": BerlinGroupResource(
            base_url=dg.EnvVar("BANKFLOW_BERLIN_GROUP_BASE_URL"),
            token_url=dg.EnvVar("BANKFLOW_BERLIN_GROUP_TOKEN_URL"),
            client_id=dg.EnvVar("BANKFLOW_BERLIN_GROUP_CLIENT_ID"),
            client_secret=dg.EnvVar("BANKFLOW_BERLIN_GROUP_CLIENT_SECRET"),
        ),
        "revolut": RevolutResource(
            api_url=dg.EnvVar("BANKFLOW_REVOLUT_API_URL"),
            consent_url=dg.EnvVar("BANKFLOW_REVOLUT_CONSENT_URL"),
            client_id=dg.EnvVar("BANKFLOW_REVOLUT_CLIENT_ID"),
            private_key_pem=dg.EnvVar("BANKFLOW_REVOLUT_PRIVATE_KEY_PEM"),
        ),
        "gocardless": GoCardlessResource(
            base_url=dg.EnvVar("BANKFLOW_GOCARDLESS_BASE_URL"),
            secret_id=dg.EnvVar("BANKFLOW_GOCARDLESS_SECRET_ID"),
            secret_key=dg.EnvVar("BANKFLOW_GOCARDLESS_SECRET_KEY"),
        ),
        "ledger_drop": LedgerDropResource(folder=dg.EnvVar("BANKFLOW_LEDGER_DROP_DIR")),
        "razorpay": RazorpayResource(
            base_url=dg.EnvVar("BANKFLOW_RAZORPAY_BASE_URL"),
            key_id=dg.EnvVar("BANKFLOW_RAZORPAY_KEY_ID"),
            key_secret=dg.EnvVar("BANKFLOW_RAZORPAY_KEY_SECRET"),
        ),
        # Each declarative REST bank's URL and secret names are in its connectors/rest/ file.
        "rest_banks": RestBanksResource(),
        "fibank": FibankResource(
            base_url=dg.EnvVar("BANKFLOW_FIBANK_BASE_URL"),
            username=dg.EnvVar("BANKFLOW_FIBANK_USERNAME"),
            password=dg.EnvVar("BANKFLOW_FIBANK_PASSWORD"),
        ),
        # Statement drops are connectors/sftp/*.yaml files; their secrets are read when a run opens one.
        "statement_files": StatementFilesResource(home=dg.EnvVar("BANKFLOW_HOME")),
        "dbt": DbtCliResource(
            project_dir=dbt_project(), dbt_executable=str(Path(sys.executable).parent / "dbt")
        ),
    }
