"""Provider configuration from the environment, for the CLI (Dagster reads the same variables
through its resources)."""

from __future__ import annotations

import os

from resources.providers.berlin_group import BerlinGroupConfig
from resources.providers.gocardless_resource import GoCardlessResource
from resources.providers.revolut import RevolutConfig
from resources.providers.truelayer import TrueLayerConfig, environment_urls

DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"


class MissingSetting(Exception):
    pass


def truelayer_config() -> TrueLayerConfig:
    auth_url, api_url = environment_urls(_required("BANKFLOW_TRUELAYER_ENVIRONMENT"))
    return TrueLayerConfig(
        auth_url=auth_url,
        api_url=api_url,
        client_id=_required("BANKFLOW_TRUELAYER_CLIENT_ID"),
        client_secret=_required("BANKFLOW_TRUELAYER_CLIENT_SECRET"),
        redirect_uri=_redirect("TRUELAYER"),
    )


def berlin_group_config() -> BerlinGroupConfig:
    return BerlinGroupConfig(
        base_url=_required("BANKFLOW_BERLIN_GROUP_BASE_URL"),
        token_url=_required("BANKFLOW_BERLIN_GROUP_TOKEN_URL"),
        client_id=_required("BANKFLOW_BERLIN_GROUP_CLIENT_ID"),
        client_secret=_required("BANKFLOW_BERLIN_GROUP_CLIENT_SECRET"),
        redirect_uri=_redirect("BERLIN_GROUP"),
        # What the consent asks for; the bank may grant less (PSD2's usual is 4 unattended reads a day).
        frequency_per_day=int(os.environ.get("BANKFLOW_BERLIN_GROUP_FREQUENCY_PER_DAY", "4")),
    )


def revolut_config() -> RevolutConfig:
    return RevolutConfig(
        api_url=_required("BANKFLOW_REVOLUT_API_URL"),
        consent_url=_required("BANKFLOW_REVOLUT_CONSENT_URL"),
        client_id=_required("BANKFLOW_REVOLUT_CLIENT_ID"),
        private_key_pem=_required("BANKFLOW_REVOLUT_PRIVATE_KEY_PEM"),
        redirect_uri=_redirect("REVOLUT"),
    )


def gocardless_resource() -> GoCardlessResource:
    return GoCardlessResource(
        base_url=_required("BANKFLOW_GOCARDLESS_BASE_URL"),
        secret_id=_required("BANKFLOW_GOCARDLESS_SECRET_ID"),
        secret_key=_required("BANKFLOW_GOCARDLESS_SECRET_KEY"),
    )


def _redirect(provider: str) -> str:
    return os.environ.get(f"BANKFLOW_{provider}_REDIRECT_URI", DEFAULT_REDIRECT_URI)


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise MissingSetting(f"{name} is not set (environment or .env)")
    return value
